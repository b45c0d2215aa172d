#include "auth/secret_service.hpp"

#include "core/clock.hpp"

namespace dp::auth {

constexpr std::size_t kMaxName = 128;
constexpr std::size_t kMaxValue = 16 * 1024;

boost::json::object to_json(const SecretInfo& s) {
  return boost::json::object{{"name", s.name},
                             {"updatedBy", s.updated_by},
                             {"createdAt", clock::format_iso8601(s.created_at)},
                             {"updatedAt", clock::format_iso8601(s.updated_at)}};
}

bool SecretService::valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<std::pair<SecretInfo, bool>> SecretService::put(std::string_view name, std::string_view value,
                                                       std::string_view actor) {
  if (!valid_name(name)) {
    return Error::validation("invalid secret",
                             boost::json::array{boost::json::object{
                                 {"field", "name"},
                                 {"code", "bad_format"},
                                 {"message", "a secret's name is 1..128 characters of A-Z a-z 0-9 _ . -"}}});
  }
  if (value.empty() || value.size() > kMaxValue) {
    return Error::validation("invalid secret",
                             boost::json::array{boost::json::object{
                                 {"field", "value"},
                                 {"code", "out_of_range"},
                                 {"message", "value must be 1..16384 bytes"}}});
  }
  const std::int64_t now = clock::now_ms();
  store::SecretRecord rec{std::string(name), secrets_.seal(value), std::string(actor), now, now};
  bool created = false;
  SecretInfo info;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    auto old = tx.secrets().get(name);
    created = !old.ok();
    DP_TRY(tx.secrets().put(rec));
    info = SecretInfo{rec.name, rec.updated_by, old.ok() ? old->created_at : now, now};
    return Ok{};
  }));
  return std::pair<SecretInfo, bool>{std::move(info), created};
}

Result<std::vector<SecretInfo>> SecretService::list() {
  std::vector<SecretInfo> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(auto all, tx.secrets().list());
    for (auto& r : all) out.push_back(SecretInfo{r.name, r.updated_by, r.created_at, r.updated_at});
    return Ok{};
  }));
  return out;
}

Status SecretService::remove(std::string_view name) {
  if (!valid_name(name)) return Error::not_found("secret not found");
  return store_.write([&](store::Tx& tx) { return tx.secrets().remove(name); });
}

}  // namespace dp::auth
