// Passwords: Argon2id hashes via libsodium's crypto_pwhash_str (salted, self-describing
// strings "$argon2id$v=19$m=...,t=...,p=1$..."), and the rules a new password must meet.
// A password is never logged, stored or returned in clear. Safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace dp::auth {

// Argon2id cost: `kModerate` (3 passes, 256 MiB) is the default; `kInteractive`
// (2 passes, 64 MiB) suits small machines and test suites.
enum class PasswordCost { kInteractive, kModerate };

constexpr std::size_t kMinPasswordLength = 10;
constexpr std::size_t kMaxPasswordLength = 256;

// kInvalidArgument `weak_password` when the password is too short, too long or contains
// NUL or control characters.
Status check_password_rules(std::string_view password);

// The Argon2id hash string. kResourceExhausted when the machine lacks the memory.
Result<std::string> hash_password(std::string_view password, PasswordCost cost);

// True when `password` matches `hash`; false for a mismatch or a malformed hash.
bool verify_password(std::string_view password, std::string_view hash) noexcept;

// Runs a verification against a fixed hash, so a login for an unknown user costs what a
// real one does (no username oracle from timing).
void burn_password_check(std::string_view password, PasswordCost cost);

// A random password of 24 characters from [A-Za-z0-9] (about 143 bits).
std::string generate_password();

}  // namespace dp::auth
