// API keys for service accounts and agents: `dp_<prefix>_<secret>`, where `prefix` is 12
// characters of [a-z0-9] (unique, stored and shown, used to find the key) and `secret` is
// 40 characters of [A-Za-z0-9] (about 238 bits). Only SHA-256 of the whole key is stored;
// a slow hash is not needed for a secret of that entropy. Safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dp::auth {

constexpr std::size_t kApiKeyPrefixLength = 12;
constexpr std::size_t kApiKeySecretLength = 40;

struct ApiKeyParts {
  std::string prefix;
  std::string secret;
};

struct NewApiKeySecret {
  std::string key;     // the full key, shown once
  std::string prefix;
  std::string hash;    // sha256_hex(key)
};

NewApiKeySecret generate_api_key();

// True when `token` looks like an API key at all (starts with "dp_").
bool looks_like_api_key(std::string_view token) noexcept;
// The parts of a well-formed key; nullopt for anything else.
std::optional<ApiKeyParts> parse_api_key(std::string_view token);

std::string hash_api_key(std::string_view key);

}  // namespace dp::auth
