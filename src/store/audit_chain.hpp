// The audit log's hash chain, shared by the store (which computes it on append and
// recomputes it on verify) and by tests and tools that check it independently.
//
//   hash(n) = hex(SHA-256(canonical_form(entry n)))   where the canonical form includes
//   prev_hash(n) = hash(n - 1), and prev_hash(1) = kGenesisHash.
//
// The canonical form is a versioned, length-prefixed rendering of every stored field but
// `hash` in a fixed order, so no two different entries share one (a field cannot leak into
// its neighbour). Because `seq` is hashed too, swapping two rows, deleting one or editing any
// field breaks the chain at that row. SHA-256 is libsodium's crypto_hash_sha256.
// Pure functions: safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "model/audit.hpp"

namespace dp::store::audit_chain {

// prev_hash of the first entry: 64 zeros.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The bytes that are hashed (every field but `hash`, including `prev_hash`).
std::string canonical_form(const model::AuditRecord& record);

// hex(SHA-256(canonical_form(record))), lower case.
std::string compute_hash(const model::AuditRecord& record);

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

// JSON text with object keys sorted (recursively) and no whitespace: the stable form in which
// `details` is stored and hashed.
std::string canonical_json(const boost::json::value& value);

}  // namespace dp::store::audit_chain
