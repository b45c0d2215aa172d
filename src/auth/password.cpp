#include "auth/password.hpp"

#include <sodium.h>

#include <mutex>

#include "auth/crypto.hpp"

namespace dp::auth {
namespace {

void limits(PasswordCost cost, unsigned long long& ops, std::size_t& mem) {
  if (cost == PasswordCost::kInteractive) {
    ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  } else {
    ops = crypto_pwhash_OPSLIMIT_MODERATE;
    mem = crypto_pwhash_MEMLIMIT_MODERATE;
  }
}

}  // namespace

Status check_password_rules(std::string_view password) {
  if (password.size() < kMinPasswordLength) {
    return Error::invalid_argument("weak_password", "the password must have at least " +
                                                        std::to_string(kMinPasswordLength) +
                                                        " characters");
  }
  if (password.size() > kMaxPasswordLength) {
    return Error::invalid_argument("weak_password", "the password must have at most " +
                                                        std::to_string(kMaxPasswordLength) +
                                                        " bytes");
  }
  for (char ch : password) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return Error::invalid_argument("weak_password",
                                     "the password must not contain control characters");
    }
  }
  return Ok{};
}

Result<std::string> hash_password(std::string_view password, PasswordCost cost) {
  ensure_sodium();
  unsigned long long ops = 0;
  std::size_t mem = 0;
  limits(cost, ops, mem);
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), ops, mem) != 0) {
    return Error{ErrorCode::kResourceExhausted, "out_of_memory",
                 "not enough memory to hash a password", {}};
  }
  return std::string(out);
}

bool verify_password(std::string_view password, std::string_view hash) noexcept {
  ensure_sodium();
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  char buf[crypto_pwhash_STRBYTES] = {};
  hash.copy(buf, hash.size());
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

void burn_password_check(std::string_view password, PasswordCost cost) {
  static std::once_flag once[2];
  static std::string dummy[2];
  const int i = cost == PasswordCost::kModerate ? 1 : 0;
  std::call_once(once[i], [&] {
    auto h = hash_password("not-a-real-password", cost);
    if (h.ok()) dummy[i] = std::move(*h);
  });
  const bool ignored = verify_password(password, dummy[i]);
  (void)ignored;
}

std::string generate_password() { return random_alnum(24); }

}  // namespace dp::auth
