#include "auth/secrets.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace dp::auth {
namespace {

void ensure_sodium() {
  // Idempotent and thread-safe; -1 only when no entropy source exists at all.
  static const int kReady = sodium_init();
  if (kReady < 0) throw std::runtime_error("libsodium failed to initialise");
}

Error unreadable(std::string why) {
  return Error::invalid_argument("secret_unreadable", "sealed secret cannot be opened: " + why);
}

std::string to_base64(const unsigned char* data, std::size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool from_base64(std::string_view text, std::vector<unsigned char>& out) {
  out.assign(text.size() / 4 * 3 + 3, 0);
  std::size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return false;
  }
  out.resize(n);
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Secrets::Secrets(const MasterKey& key) : key_(key) { ensure_sodium(); }

Secrets::~Secrets() { sodium_memzero(key_.data(), key_.size()); }

Secrets::Secrets(Secrets&& other) noexcept : key_(other.key_) {
  sodium_memzero(other.key_.data(), other.key_.size());
}

Result<MasterKey> Secrets::parse_key(std::string_view base64) {
  while (!base64.empty() && (base64.back() == '\n' || base64.back() == '\r' || base64.back() == ' ')) {
    base64.remove_suffix(1);
  }
  ensure_sodium();
  std::vector<unsigned char> bytes;
  if (!from_base64(base64, bytes) || bytes.size() != kMasterKeyBytes) {
    sodium_memzero(bytes.data(), bytes.size());
    return Error::invalid_argument(
        "bad_master_key", "the master key must be the base64 of exactly 32 bytes (make one with "
                          "`head -c 32 /dev/urandom | base64`)");
  }
  MasterKey key{};
  std::memcpy(key.data(), bytes.data(), key.size());
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

std::string Secrets::encode_key(const MasterKey& key) { return to_base64(key.data(), key.size()); }

MasterKey Secrets::generate_key() {
  ensure_sodium();
  MasterKey key{};
  crypto_secretbox_keygen(key.data());
  return key;
}

Result<MasterKey> Secrets::load_or_create_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Error::unavailable("cannot stat master key file " + path + ": " + std::strerror(errno));
    }
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    // O_EXCL: two processes starting together must not both write a key; the loser reads.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) return load_or_create_key_file(path);
      return Error::unavailable("cannot create master key file " + path + ": " +
                                std::strerror(errno));
    }
    const MasterKey key = generate_key();
    const std::string text = encode_key(key) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return Error::unavailable("cannot write master key file " + path);
    }
    return key;
  }
  if (!S_ISREG(st.st_mode)) {
    return Error::unavailable("master key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error{ErrorCode::kPermissionDenied, "insecure_key_file",
                 "master key file " + path + " has mode " + mode +
                     ": group or others may read it; run `chmod 600 " + path + "`",
                 nullptr};
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error::unavailable("cannot read master key file " + path + ": " + std::strerror(errno));
  }
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) return Error::unavailable("cannot read master key file " + path);
  auto key = parse_key(std::string_view(buf, static_cast<std::size_t>(n)));
  sodium_memzero(buf, sizeof buf);
  if (!key.ok()) {
    Error e = std::move(key).error();
    e.message = "master key file " + path + ": " + e.message;
    return e;
  }
  return key;
}

Result<Secrets> Secrets::from_config(const Config& config) {
  if (!config.master_key.empty()) {
    auto key = parse_key(config.master_key);
    if (!key.ok()) {
      Error e = std::move(key).error();
      e.message = "master_key (DEVPLANE_MASTER_KEY): " + e.message;
      return e;
    }
    return Secrets(*key);
  }
  const std::string path = config.master_key_file.empty()
                               ? (std::filesystem::path(config.data_dir) / "master.key").string()
                               : config.master_key_file;
  DP_ASSIGN_OR_RETURN(MasterKey key, load_or_create_key_file(path));
  Secrets s(key);
  sodium_memzero(key.data(), key.size());
  return s;
}

std::string Secrets::seal(std::string_view plaintext) const {
  std::vector<unsigned char> box(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES +
                                 plaintext.size());
  unsigned char* nonce = box.data();
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(box.data() + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        nonce, key_.data());
  return std::string(kSealedPrefix) + to_base64(box.data(), box.size());
}

Result<std::string> Secrets::open(std::string_view sealed) const {
  if (!is_sealed(sealed)) return unreadable("not a dpsec:v1 value");
  std::vector<unsigned char> box;
  if (!from_base64(sealed.substr(kSealedPrefix.size()), box)) return unreadable("bad base64");
  if (box.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return unreadable("too short");
  }
  const std::size_t n = box.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
  std::string plain(n, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                 box.data() + crypto_secretbox_NONCEBYTES,
                                 box.size() - crypto_secretbox_NONCEBYTES, box.data(),
                                 key_.data()) != 0) {
    return unreadable("it was altered or sealed under another master key");
  }
  return plain;
}

bool Secrets::is_sealed(std::string_view value) noexcept { return value.starts_with(kSealedPrefix); }

Result<std::string> reseal(std::string_view sealed, const Secrets& old_key,
                           const Secrets& new_key) {
  DP_ASSIGN_OR_RETURN(std::string plain, old_key.open(sealed));
  std::string out = new_key.seal(plain);
  sodium_memzero(plain.data(), plain.size());
  return out;
}

bool is_secret_key(std::string_view key) noexcept {
  static constexpr std::string_view kWords[] = {"token",  "secret",        "password", "apikey",
                                                "api_key", "authorization", "key"};
  const std::string k = lower(key);
  for (auto w : kWords) {
    if (k.find(w) != std::string::npos) return true;
  }
  return false;
}

boost::json::value redact(const boost::json::value& value) {
  if (value.is_array()) {
    boost::json::array out;
    out.reserve(value.get_array().size());
    for (const auto& e : value.get_array()) out.push_back(redact(e));
    return out;
  }
  if (!value.is_object()) return value;
  boost::json::object out;
  for (const auto& [k, v] : value.get_object()) {
    const std::string key_lower = lower(k);
    // Token usage counters (promptTokens, total_tokens) are numbers, not credentials.
    const bool counter = key_lower.ends_with("tokens") && v.is_number();
    if (is_secret_key(k) && !counter) {
      out[k] = "***";
    } else {
      out[k] = redact(v);
    }
  }
  return out;
}

}  // namespace dp::auth
