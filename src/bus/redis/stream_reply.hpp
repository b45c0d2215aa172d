// Pure parsers for the replies of XREAD, XREADGROUP, XAUTOCLAIM, XPENDING and XINFO GROUPS,
// and the mapping between stream entries and bus Events.
//
// The reply comes from a server we do not control (or, in the fuzzer, from anywhere): a
// malformed entry is skipped and counted, never trusted, and nothing here crashes or throws
// on any input. A reply whose overall shape is wrong is an Error (kInternal), after which
// the reader backs off and asks again. Stateless; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bus/event_bus.hpp"
#include "bus/redis/redis_conn.hpp"
#include "core/result.hpp"

namespace dp::bus::redis {

struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;
  friend auto operator<=>(const StreamId&, const StreamId&) = default;
  std::string to_string() const;
};
// "<ms>-<seq>" (or "<ms>"): nullopt for anything else.
std::optional<StreamId> parse_stream_id(std::string_view text);

struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  const std::string* field(std::string_view name) const;
};

struct ParsedEntries {
  std::vector<StreamEntry> entries;
  // Entries with a readable id but unusable fields (deleted, odd count, wrong types): the
  // caller moves past them (and acknowledges them, on a queue) instead of retrying forever.
  std::vector<std::string> skipped_ids;
  int malformed = 0;  // elements without even a readable id: dropped
};

// An array of [id, [field, value, ...]] entries.
ParsedEntries parse_entries(const Value& entries);
// XREAD / XREADGROUP: nil on timeout, else [[key, entries], ...]; keeps `key`'s entries.
Result<ParsedEntries> parse_read_reply(const Value& reply, std::string_view key);

struct AutoclaimReply {
  std::string next_cursor;
  ParsedEntries claimed;
  std::vector<std::string> deleted_ids;  // Redis 7: pending ids whose entry is gone
};
Result<AutoclaimReply> parse_autoclaim_reply(const Value& reply);

struct PendingInfo {
  std::string id;
  std::string consumer;
  std::int64_t idle_ms = 0;
  std::int64_t deliveries = 0;
};
// XPENDING key group start end count [consumer]: [[id, consumer, idle, deliveries], ...].
Result<std::vector<PendingInfo>> parse_pending_reply(const Value& reply);

struct GroupInfo {
  std::string name;
  std::int64_t pending = 0;
  std::optional<std::int64_t> lag;  // Redis 7: nil when the server cannot tell
  std::string last_delivered_id;
};
// XINFO GROUPS: [[name, "g", consumers, n, pending, n, last-delivered-id, id, ...], ...].
Result<std::vector<GroupInfo>> parse_groups_reply(const Value& reply);

// Event <-> entry. The entry id is "<seq>-1": the stream itself then rejects a seq that is
// not greater than the last one (XADD "equal or smaller"), which makes publishing idempotent
// across relays and nodes.
std::string event_entry_id(std::int64_t seq);
Command event_xadd(std::string_view key, std::int64_t max_events, const Event& event);
// kInvalidArgument when the id does not carry a seq or topic/payload are missing.
Result<Event> event_from_entry(const StreamEntry& entry);

}  // namespace dp::bus::redis
