#include "auth/api_key.hpp"

#include "auth/crypto.hpp"

namespace dp::auth {
namespace {

bool only_alnum(std::string_view s, bool upper_allowed) {
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    (upper_allowed && c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

NewApiKeySecret generate_api_key() {
  NewApiKeySecret k;
  k.prefix = random_lower_alnum(kApiKeyPrefixLength);
  k.key = "dp_" + k.prefix + "_" + random_alnum(kApiKeySecretLength);
  k.hash = hash_api_key(k.key);
  return k;
}

bool looks_like_api_key(std::string_view token) noexcept { return token.starts_with("dp_"); }

std::optional<ApiKeyParts> parse_api_key(std::string_view token) {
  if (token.size() != 3 + kApiKeyPrefixLength + 1 + kApiKeySecretLength) return std::nullopt;
  if (!token.starts_with("dp_") || token[3 + kApiKeyPrefixLength] != '_') return std::nullopt;
  const auto prefix = token.substr(3, kApiKeyPrefixLength);
  const auto secret = token.substr(3 + kApiKeyPrefixLength + 1);
  if (!only_alnum(prefix, false) || !only_alnum(secret, true)) return std::nullopt;
  return ApiKeyParts{std::string(prefix), std::string(secret)};
}

std::string hash_api_key(std::string_view key) { return sha256_hex(key); }

}  // namespace dp::auth
