#include "auth/jwt.hpp"

#include <fcntl.h>
#include <jwt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <boost/json/parse.hpp>

#include "auth/crypto.hpp"
#include "core/ids.hpp"

namespace dp::auth {
namespace {

constexpr std::size_t kMaxTokenBytes = 8192;

struct JwtFree {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

std::optional<boost::json::object> decode_segment(std::string_view segment) {
  auto bytes = base64url_decode(segment);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(*bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::optional<std::int64_t> int_claim(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->as_uint64());
  }
  return std::nullopt;
}

std::string str_claim(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

Error unauthenticated(std::string message) {
  return Error{ErrorCode::kUnauthenticated, "unauthenticated", std::move(message), {}};
}

JwtCodec::JwtCodec(JwtOptions options) : options_(std::move(options)) {}

Result<std::string> JwtCodec::issue(AccessClaims& c, std::int64_t now_s) const {
  c.issued_at = now_s;
  c.expires_at = now_s + options_.access_ttl.count();
  c.token_id = ids::uuid_v7();
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return Error::internal("jwt_new failed");
  JwtPtr j(raw);
  int rc = 0;
  rc |= jwt_add_grant(j.get(), "iss", options_.issuer.c_str());
  rc |= jwt_add_grant(j.get(), "aud", options_.audience.c_str());
  rc |= jwt_add_grant(j.get(), "sub", c.subject.c_str());
  rc |= jwt_add_grant(j.get(), "name", c.name.c_str());
  rc |= jwt_add_grant(j.get(), "role", c.role.c_str());
  rc |= jwt_add_grant(j.get(), "jti", c.token_id.c_str());
  rc |= jwt_add_grant_int(j.get(), "iat", static_cast<long>(c.issued_at));
  rc |= jwt_add_grant_int(j.get(), "nbf", static_cast<long>(c.issued_at));
  rc |= jwt_add_grant_int(j.get(), "exp", static_cast<long>(c.expires_at));
  rc |= jwt_set_alg(j.get(), JWT_ALG_HS256,
                    reinterpret_cast<const unsigned char*>(options_.secret.data()),
                    static_cast<int>(options_.secret.size()));
  if (rc != 0) return Error::internal("cannot build an access token");
  char* out = jwt_encode_str(j.get());
  if (out == nullptr) return Error::internal("cannot sign an access token");
  std::string token(out);
  std::free(out);
  return token;
}

Result<AccessClaims> JwtCodec::verify(std::string_view token, std::int64_t now_s) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return unauthenticated("malformed token");
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return unauthenticated("malformed token");
  }
  // The algorithm is the server's choice, never the token's: read the header before any
  // library sees the token and refuse everything but HS256.
  auto header = decode_segment(token.substr(0, dot1));
  if (!header) return unauthenticated("malformed token");
  if (str_claim(*header, "alg") != "HS256") return unauthenticated("token algorithm not accepted");
  if (header->contains("crit")) return unauthenticated("token has critical headers");
  if (const auto* typ = header->if_contains("typ");
      typ != nullptr && (!typ->is_string() || typ->as_string() != "JWT")) {
    return unauthenticated("malformed token");
  }
  // Our own constant-time HMAC check (libjwt 1.10 compares signatures with strcmp).
  const std::string_view signing_input = token.substr(0, dot2);
  const std::string expected = base64url_encode(hmac_sha256(options_.secret, signing_input));
  if (!constant_time_equal(expected, token.substr(dot2 + 1))) {
    return unauthenticated("token signature does not verify");
  }
  // And the library's, with the algorithm checked again on what it parsed.
  const std::string owned(token);
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, owned.c_str(), reinterpret_cast<const unsigned char*>(options_.secret.data()),
                 static_cast<int>(options_.secret.size())) != 0 ||
      raw == nullptr) {
    return unauthenticated("token signature does not verify");
  }
  JwtPtr j(raw);
  if (jwt_get_alg(j.get()) != JWT_ALG_HS256) return unauthenticated("token algorithm not accepted");

  auto claims = decode_segment(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return unauthenticated("malformed token");
  const std::int64_t skew = options_.skew.count();
  auto exp = int_claim(*claims, "exp");
  if (!exp) return unauthenticated("token has no expiry");
  if (now_s > *exp + skew) return unauthenticated("token expired");
  if (auto nbf = int_claim(*claims, "nbf"); nbf && now_s + skew < *nbf) {
    return unauthenticated("token not yet valid");
  }
  if (claims->contains("nbf") && !int_claim(*claims, "nbf")) return unauthenticated("malformed token");
  auto iat = int_claim(*claims, "iat");
  if (iat && now_s + skew < *iat) return unauthenticated("token issued in the future");
  if (str_claim(*claims, "iss") != options_.issuer) return unauthenticated("token issuer not accepted");
  bool aud_ok = false;
  if (const auto* aud = claims->if_contains("aud")) {
    if (aud->is_string()) {
      aud_ok = aud->as_string() == options_.audience;
    } else if (aud->is_array()) {
      for (const auto& a : aud->as_array()) {
        aud_ok = aud_ok || (a.is_string() && a.as_string() == options_.audience);
      }
    }
  }
  if (!aud_ok) return unauthenticated("token audience not accepted");
  AccessClaims out;
  out.subject = str_claim(*claims, "sub");
  if (out.subject.empty()) return unauthenticated("token has no subject");
  out.name = str_claim(*claims, "name");
  out.role = str_claim(*claims, "role");
  out.token_id = str_claim(*claims, "jti");
  out.issued_at = iat.value_or(0);
  out.expires_at = *exp;
  return out;
}

Result<std::string> load_or_create_jwt_secret(const Config& config) {
  if (!config.jwt_secret.empty()) {
    if (config.jwt_secret.size() < 32) {
      return Error::invalid_argument("bad_config", "jwt_secret must have at least 32 characters");
    }
    return config.jwt_secret;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(config.data_dir, ec);
  if (ec) return Error::unavailable("cannot create " + config.data_dir + ": " + ec.message());
  const fs::path path = fs::path(config.data_dir) / "jwt.key";
  // O_EXCL: of two processes starting at once, one creates the key and the other reads it.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const std::string secret = base64url_encode(random_bytes(48)) + "\n";
    const bool written = ::write(fd, secret.data(), secret.size()) ==
                         static_cast<ssize_t>(secret.size());
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!written || !synced) {
      ::unlink(path.c_str());
      return Error::unavailable("cannot write " + path.string());
    }
  } else if (errno != EEXIST) {
    return Error::unavailable("cannot create " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error::unavailable("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return Error::failed_precondition(
        "insecure_key_file", path.string() + " is readable by other users; run chmod 600 on it");
  }
  std::ifstream in(path);
  std::string secret;
  std::getline(in, secret);
  if (secret.size() < 32) {
    return Error::failed_precondition("bad_key_file",
                                      path.string() + " holds no usable key (under 32 characters)");
  }
  return secret;
}

}  // namespace dp::auth
