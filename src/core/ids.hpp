// Identifiers: UUIDv7 (RFC 9562), time-ordered so primary keys stay append-mostly.
// Safe from any thread. Within one process, ids are strictly increasing.
#pragma once

#include <string>
#include <string_view>

namespace dp::ids {

// A new UUIDv7 in canonical lowercase text form (36 characters).
std::string uuid_v7();

// True when `s` is a canonical UUID (any version) in lowercase or uppercase hex.
bool is_uuid(std::string_view s) noexcept;

}  // namespace dp::ids
