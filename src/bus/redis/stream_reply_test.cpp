// The Redis reply parsers against well-formed and malformed replies, built as Values and as
// raw RESP bytes. Whatever a server (or an attacker between us) sends, they skip and count
// bad entries and never crash. Also the redis:// URL parser.
#include "bus/redis/stream_reply.hpp"

#include <gtest/gtest.h>

#include <string>

#include "bus/redis/redis_conn.hpp"

namespace dp::bus::redis {
namespace {

Value str(std::string s) { return Value::string(std::move(s)); }
Value arr(std::vector<Value> v) { return Value::array(std::move(v)); }
Value entry(std::string id, std::vector<std::string> kv) {
  std::vector<Value> f;
  for (auto& s : kv) f.push_back(str(std::move(s)));
  return arr({str(std::move(id)), arr(std::move(f))});
}
Value read_reply(std::string key, std::vector<Value> entries) {
  return arr({arr({str(std::move(key)), arr(std::move(entries))})});
}

TEST(StreamIdTest, ParsesAndOrders) {
  auto a = parse_stream_id("5-1");
  auto b = parse_stream_id("12-0");
  ASSERT_TRUE(a && b);
  EXPECT_LT(*a, *b);
  EXPECT_EQ(a->to_string(), "5-1");
  EXPECT_EQ(parse_stream_id("7")->ms, 7u);
  for (const char* bad : {"", "-", "a-1", "1-", "1-b", "1-2-3", "-1", "99999999999999999999-0"}) {
    EXPECT_FALSE(parse_stream_id(bad)) << bad;
  }
}

TEST(ReadReplyTest, NilIsATimeoutWithNoEntries) {
  auto r = parse_read_reply(Value::nil(), "k");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->entries.empty());
}

TEST(ReadReplyTest, ParsesEntriesOfTheRightKeyOnly) {
  Value reply = arr({arr({str("other"), arr({entry("1-1", {"topic", "t"})})}),
                     arr({str("k"), arr({entry("2-1", {"topic", "a", "payload", "{}"}),
                                         entry("3-1", {"topic", "b", "payload", "{}"})})})});
  auto r = parse_read_reply(reply, "k");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].id, "2-1");
  EXPECT_EQ(*r->entries[1].field("topic"), "b");
  EXPECT_EQ(r->entries[1].field("missing"), nullptr);
}

TEST(ReadReplyTest, WrongTopLevelShapesAreErrors) {
  EXPECT_FALSE(parse_read_reply(str("x"), "k").ok());
  EXPECT_FALSE(parse_read_reply(Value::integer_value(3), "k").ok());
  EXPECT_FALSE(parse_read_reply(Value::error("ERR boom"), "k").ok());
  EXPECT_FALSE(parse_read_reply(arr({str("k")}), "k").ok());
  EXPECT_FALSE(parse_read_reply(arr({arr({str("k")})}), "k").ok());
  EXPECT_FALSE(parse_read_reply(arr({arr({Value::integer_value(1), arr({})})}), "k").ok());
}

TEST(ReadReplyTest, MalformedEntriesAreSkippedNotTrusted) {
  std::vector<Value> entries;
  entries.push_back(entry("1-1", {"topic", "ok", "payload", "{}"}));
  entries.push_back(str("not an entry"));                              // malformed
  entries.push_back(arr({}));                                          // malformed
  entries.push_back(arr({Value::integer_value(5), arr({})}));          // id not a string
  entries.push_back(arr({str("nope"), arr({})}));                      // id unreadable
  entries.push_back(entry("2-1", {"topic", "t", "payload"}));          // odd field count
  entries.push_back(arr({str("3-1"), Value::nil()}));                  // deleted while pending
  entries.push_back(arr({str("4-1"), arr({str("topic"), Value::integer_value(1)})}));  // types
  entries.push_back(arr({str("5-1"), arr({}), str("extra")}));         // extra element
  entries.push_back(entry("6-1", {"topic", "fine", "payload", "{}"}));
  auto r = parse_read_reply(read_reply("k", std::move(entries)), "k");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[1].id, "6-1");
  EXPECT_EQ(r->malformed, 4);
  EXPECT_EQ(r->skipped_ids, (std::vector<std::string>{"2-1", "3-1", "4-1", "5-1"}));
}

TEST(ReadReplyTest, EntriesThatAreNotAnArrayCountAsMalformed) {
  auto r = parse_read_reply(arr({arr({str("k"), str("x")})}), "k");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->malformed, 1);
}

TEST(EventEntryTest, RoundTripsThroughTheEntryFormat) {
  Event e{42, "agent.log", R"({"line":"hi"})", "req-1", 1'700'000'000'123};
  Command cmd = event_xadd("p:events", 1000, e);
  ASSERT_EQ(cmd.size(), 14u);
  EXPECT_EQ(cmd[5], "42-1");
  StreamEntry entry{cmd[5], {}};
  for (std::size_t i = 6; i + 1 < cmd.size(); i += 2) entry.fields.emplace_back(cmd[i], cmd[i + 1]);
  auto back = event_from_entry(entry);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->seq, 42);
  EXPECT_EQ(back->topic, e.topic);
  EXPECT_EQ(back->payload, e.payload);
  EXPECT_EQ(back->correlation_id, e.correlation_id);
  EXPECT_EQ(back->created_at, e.created_at);
}

TEST(EventEntryTest, RejectsEntriesWithoutSeqTopicOrPayload) {
  EXPECT_FALSE(event_from_entry({"0-1", {{"topic", "t"}, {"payload", "{}"}}}).ok());
  EXPECT_FALSE(event_from_entry({"x", {{"topic", "t"}, {"payload", "{}"}}}).ok());
  EXPECT_FALSE(event_from_entry({"9223372036854775808-1", {{"topic", "t"}, {"payload", "{}"}}})
                   .ok());
  EXPECT_FALSE(event_from_entry({"1-1", {{"payload", "{}"}}}).ok());
  EXPECT_FALSE(event_from_entry({"1-1", {{"topic", ""}, {"payload", "{}"}}}).ok());
  EXPECT_FALSE(event_from_entry({"1-1", {{"topic", "t"}}}).ok());
  auto lax = event_from_entry({"1-1", {{"topic", "t"}, {"payload", "{}"}, {"at", "soon"}}});
  ASSERT_TRUE(lax.ok());  // a bad timestamp is not worth losing the event
  EXPECT_EQ(lax->created_at, 0);
}

TEST(AutoclaimReplyTest, ParsesRedis7Shape) {
  Value reply = arr({str("0-0"), arr({entry("1-0", {"payload", "a"}), Value::nil()}),
                     arr({str("2-0"), Value::integer_value(3)})});
  auto r = parse_autoclaim_reply(reply);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->next_cursor, "0-0");
  ASSERT_EQ(r->claimed.entries.size(), 1u);
  EXPECT_EQ(r->claimed.malformed, 1);
  EXPECT_EQ(r->deleted_ids, (std::vector<std::string>{"2-0"}));
}

TEST(AutoclaimReplyTest, WrongShapesAreErrors) {
  EXPECT_FALSE(parse_autoclaim_reply(Value::nil()).ok());
  EXPECT_FALSE(parse_autoclaim_reply(arr({str("0-0")})).ok());
  EXPECT_FALSE(parse_autoclaim_reply(arr({str("cursor"), arr({})})).ok());
  EXPECT_FALSE(parse_autoclaim_reply(Value::error("NOGROUP")).ok());
}

TEST(PendingReplyTest, KeepsGoodRowsOnly) {
  Value reply = arr({arr({str("1-0"), str("c1"), Value::integer_value(10), Value::integer_value(2)}),
                     arr({str("2-0"), str("c1")}),
                     str("junk"),
                     arr({str("3-0"), str("c2"), str("7"), str("3")})});
  auto r = parse_pending_reply(reply);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].deliveries, 2);
  EXPECT_EQ((*r)[1].consumer, "c2");
  EXPECT_EQ((*r)[1].idle_ms, 7);
  EXPECT_FALSE(parse_pending_reply(str("x")).ok());
}

TEST(GroupsReplyTest, ReadsPendingAndLag) {
  Value g1 = arr({str("name"), str("g1"), str("consumers"), Value::integer_value(2), str("pending"),
                  Value::integer_value(3), str("last-delivered-id"), str("5-0"),
                  str("entries-read"), Value::integer_value(5), str("lag"),
                  Value::integer_value(4)});
  Value g2 = arr({str("name"), str("g2"), str("pending"), Value::integer_value(1), str("lag"),
                  Value::nil()});
  Value odd = arr({str("name")});
  auto r = parse_groups_reply(arr({g1, g2, odd, str("junk")}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].pending, 3);
  EXPECT_EQ((*r)[0].lag, 4);
  EXPECT_EQ((*r)[0].last_delivered_id, "5-0");
  EXPECT_FALSE((*r)[1].lag.has_value());
}

TEST(RespTest, DecodesAnXreadReplyFromBytes) {
  const std::string bytes =
      "*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n7-1\r\n*4\r\n$5\r\ntopic\r\n$1\r\nt\r\n"
      "$7\r\npayload\r\n$2\r\n{}\r\n";
  auto v = parse_resp(bytes);
  ASSERT_TRUE(v.ok());
  auto r = parse_read_reply(*v, "k");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(event_from_entry(r->entries[0])->seq, 7);
}

TEST(RespTest, MalformedBytesAreErrorsAndOddRepliesAreSkipped) {
  EXPECT_FALSE(parse_resp("").ok());
  EXPECT_FALSE(parse_resp("*2\r\n$1\r\nk\r\n").ok());  // incomplete
  EXPECT_FALSE(parse_resp("?what\r\n").ok());          // unknown type byte
  EXPECT_FALSE(parse_resp("$-5x\r\n").ok());
  // Well-formed RESP, nonsense for XREAD: an integer where the entries should be.
  auto v = parse_resp("*1\r\n*2\r\n$1\r\nk\r\n:5\r\n");
  ASSERT_TRUE(v.ok());
  auto r = parse_read_reply(*v, "k");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->malformed, 1);
  // Deep nesting is cut off, not recursed into without bound.
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  auto d = parse_resp(deep);
  if (d.ok()) {
    EXPECT_FALSE(parse_read_reply(*d, "k").ok());
  }
}

TEST(RedisUrlTest, ParsesTheSupportedForms) {
  auto a = parse_redis_url("redis://127.0.0.1:56379");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 56379);
  EXPECT_EQ(a->db, 0);
  auto b = parse_redis_url("redis://:s3cret@localhost:6380/2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->password, "s3cret");
  EXPECT_TRUE(b->user.empty());
  EXPECT_EQ(b->db, 2);
  auto c = parse_redis_url("redis://app:pw@h");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "app");
  EXPECT_EQ(c->port, 6379);
  for (const char* bad : {"", "http://h:1", "redis://h:1/x", "redis://h:1/-1", "rediss://h:1",
                          "redis://h:1?db=2", "not a url"}) {
    auto r = parse_redis_url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace dp::bus::redis
