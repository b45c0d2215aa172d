// Secrets at rest: values the platform stores for others (MCP adapter headers and
// environment, LLM provider keys) are sealed with libsodium's secretbox (XSalsa20-Poly1305)
// under one 32-byte master key, each with a fresh random nonce:
//
//   seal("s3cret") -> "dpsec:v1:<base64(nonce | ciphertext+MAC)>"
//
// open() returns the plaintext, or kInvalidArgument when the value was altered, was sealed
// under another key or is not a sealed value. The master key comes from DEVPLANE_MASTER_KEY
// (config `master_key`: base64 of 32 bytes) or from a key file (config `master_key_file`,
// default <data_dir>/master.key) that is created with mode 0600 at first run; a key file that
// group or others may read is refused.
//
// redact() is for logs and tool-execution records: it masks the values of secret-looking keys.
// Thread safety: a Secrets object is immutable after construction; safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/config.hpp"
#include "core/result.hpp"

namespace dp::auth {

inline constexpr std::string_view kSealedPrefix = "dpsec:v1:";
inline constexpr std::size_t kMasterKeyBytes = 32;

using MasterKey = std::array<unsigned char, kMasterKeyBytes>;

class Secrets {
 public:
  explicit Secrets(const MasterKey& key);
  ~Secrets();
  Secrets(const Secrets&) = delete;
  Secrets& operator=(const Secrets&) = delete;
  Secrets(Secrets&& other) noexcept;
  Secrets& operator=(Secrets&&) = delete;

  // The key from config: `master_key` (DEVPLANE_MASTER_KEY) when set, else the key file
  // (`master_key_file`, default <data_dir>/master.key), created when absent.
  // kInvalidArgument for a malformed key; kPermissionDenied for a key file readable by group
  // or others; kUnavailable when the file cannot be read or written.
  static Result<Secrets> from_config(const Config& config);

  // Base64 (standard alphabet, padded) of exactly 32 bytes.
  static Result<MasterKey> parse_key(std::string_view base64);
  static std::string encode_key(const MasterKey& key);
  // 32 random bytes.
  static MasterKey generate_key();
  // Reads the key file, or creates it (mode 0600, O_EXCL) with a new key when absent.
  static Result<MasterKey> load_or_create_key_file(const std::string& path);

  // "dpsec:v1:..." (a new nonce each call, so equal plaintexts give different values).
  std::string seal(std::string_view plaintext) const;
  // The plaintext. kInvalidArgument (reason `secret_unreadable`) when `sealed` is not a sealed
  // value, was altered, or was sealed under another key.
  Result<std::string> open(std::string_view sealed) const;
  static bool is_sealed(std::string_view value) noexcept;

 private:
  MasterKey key_{};
};

// Key rotation: opens `sealed` with `old_key` and seals the plaintext with `new_key`.
// Errors as Secrets::open.
Result<std::string> reseal(std::string_view sealed, const Secrets& old_key,
                           const Secrets& new_key);

// A copy of `value` in which every object member whose key looks secret (case-insensitive,
// contains token, secret, password, apikey, api_key, authorization or key) has its value
// replaced by "***", at any depth. Numeric counters named *tokens (token usage) are kept.
boost::json::value redact(const boost::json::value& value);
bool is_secret_key(std::string_view key) noexcept;

}  // namespace dp::auth
