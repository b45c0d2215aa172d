// Small cryptographic helpers over libsodium: random tokens, SHA-256, HMAC-SHA256,
// base64url and constant-time comparison. Safe from any thread (sodium_init runs once).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dp::auth {

// Initialises libsodium once; aborts the process if it cannot (no secure randomness).
void ensure_sodium();

// `n` random bytes from the OS CSPRNG.
std::string random_bytes(std::size_t n);
// `n` random characters from [A-Za-z0-9] (uniform, no modulo bias).
std::string random_alnum(std::size_t n);
// `n` random characters from [a-z0-9].
std::string random_lower_alnum(std::size_t n);

std::string base64url_encode(std::string_view bytes);  // no padding
// nullopt when `text` is not unpadded base64url.
std::optional<std::string> base64url_decode(std::string_view text);

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes

// Constant time in the length of the inputs; false when the lengths differ.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace dp::auth
