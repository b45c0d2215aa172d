#include "core/config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include <boost/json/array.hpp>
#include <yaml-cpp/yaml.h>

namespace dp {
namespace {

template <class T>
Status parse_uint(std::string_view key, std::string_view value, std::string_view source,
                  T min, T max, T& out) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() ||
      v < static_cast<std::uint64_t>(min) || v > static_cast<std::uint64_t>(max)) {
    return Error::invalid_argument(
        "bad_config", std::string(key) + " (" + std::string(source) + ") must be an integer in " +
                          std::to_string(min) + ".." + std::to_string(max) + ", got '" +
                          std::string(value) + "'");
  }
  out = static_cast<T>(v);
  return Ok{};
}

Status one_of(std::string_view key, std::string_view value, std::string_view source,
              std::initializer_list<std::string_view> allowed, std::string& out) {
  for (auto a : allowed) {
    if (value == a) {
      out = std::string(value);
      return Ok{};
    }
  }
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return Error::invalid_argument("bad_config", std::string(key) + " (" + std::string(source) +
                                                   ") must be one of " + list + ", got '" +
                                                   std::string(value) + "'");
}

}  // namespace

const std::vector<std::string>& Config::keys() {
  static const std::vector<std::string> k = {
      "host", "port", "data_dir", "database_url", "redis_url", "log_level", "log_format",
      "io_threads", "blocking_threads", "write_threads", "db_pool_size", "max_body_bytes", "header_timeout_ms",
      "idle_timeout_ms", "request_timeout_ms", "shutdown_timeout_ms", "sqlite_synchronous", "audit_records",
      "event_retention_hours", "health_interval_ms", "mcp_health_interval_ms", "mcp_tool_records", "allowed_origins", "master_key_file", "master_key",
      "jwt_secret", "access_token_ttl_s", "refresh_token_ttl_s", "password_hash_cost",
      "oidc_issuer", "oidc_client_id", "oidc_client_secret", "oidc_redirect_url", "oidc_role_claim",
      "oidc_role_map", "oidc_scopes", "oidc_display_name", "oidc_jwks_min_refresh_ms", "web_dir",
      "redis_key_prefix", "remote_heartbeat_timeout_ms", "workflow_lease_ms", "workflow_tick_ms", "task_lease_ms",
      "workspace_retention_hours", "llm_prices", "docker_socket", "agent_log_max_bytes",
      "agent_log_files", "agent_log_max_followers", "webhook_timestamp_tolerance_s",
      "cron_late_tolerance_s", "webhook_delivery_retention_s", "memory_outcomes", "memory_embedder",
      "memory_embedding_url", "memory_embedding_model", "memory_embedding_key_secret", "memory_dims",
      "agent_resources_interval_ms", "agent_resources_retention_minutes"};
  return k;
}

std::optional<std::map<std::string, std::pair<double, double>>> parse_prices(std::string_view text) {
  std::map<std::string, std::pair<double, double>> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    std::string_view entry = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (!entry.empty()) {
      const auto eq = entry.rfind('=');
      const auto slash = entry.rfind('/');
      if (eq == std::string_view::npos || eq == 0 || slash == std::string_view::npos || slash < eq) {
        return std::nullopt;
      }
      const std::string in(entry.substr(eq + 1, slash - eq - 1));
      const std::string outp(entry.substr(slash + 1));
      char* end = nullptr;
      const double a = std::strtod(in.c_str(), &end);
      if (in.empty() || *end != '\0' || !(a >= 0 && a < 1e6)) return std::nullopt;
      const double b = std::strtod(outp.c_str(), &end);
      if (outp.empty() || *end != '\0' || !(b >= 0 && b < 1e6)) return std::nullopt;
      out[std::string(entry.substr(0, eq))] = {a, b};
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

Status Config::set(std::string_view key, std::string_view value, std::string_view source) {
  if (key == "host") {
    if (value.empty()) {
      return Error::invalid_argument("bad_config",
                                     "host (" + std::string(source) + ") must not be empty");
    }
    host = value;
  } else if (key == "port") {
    return parse_uint<std::uint16_t>(key, value, source, 0, 65535, port);
  } else if (key == "data_dir") {
    if (value.empty()) {
      return Error::invalid_argument("bad_config",
                                     "data_dir (" + std::string(source) + ") must not be empty");
    }
    data_dir = value;
  } else if (key == "database_url") {
    if (!value.empty() && !value.starts_with("postgres://") && !value.starts_with("postgresql://") &&
        !value.starts_with("sqlite:")) {
      return Error::invalid_argument(
          "bad_config", "database_url (" + std::string(source) +
                            ") must start with postgres://, postgresql:// or sqlite:");
    }
    database_url = value.starts_with("sqlite:") ? std::string() : std::string(value);
    if (value.starts_with("sqlite:") && value.size() > 7) data_dir = value.substr(7);
  } else if (key == "redis_url") {
    if (!value.empty() && !value.starts_with("redis://")) {
      return Error::invalid_argument("bad_config", "redis_url (" + std::string(source) +
                                                       ") must start with redis://");
    }
    redis_url = value;
  } else if (key == "log_level") {
    return one_of(key, value, source, {"debug", "info", "warn", "error"}, log_level);
  } else if (key == "log_format") {
    return one_of(key, value, source, {"json", "text"}, log_format);
  } else if (key == "io_threads") {
    return parse_uint<int>(key, value, source, 0, 256, io_threads);
  } else if (key == "blocking_threads") {
    return parse_uint<int>(key, value, source, 1, 256, blocking_threads);
  } else if (key == "write_threads") {
    return parse_uint<int>(key, value, source, 1, 256, write_threads);
  } else if (key == "db_pool_size") {
    return parse_uint<int>(key, value, source, 1, 256, db_pool_size);
  } else if (key == "max_body_bytes") {
    return parse_uint<std::uint64_t>(key, value, source, 1024, 1ULL << 32, max_body_bytes);
  } else if (key == "header_timeout_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 100, 600'000, header_timeout_ms);
  } else if (key == "idle_timeout_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 100, 3'600'000, idle_timeout_ms);
  } else if (key == "request_timeout_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 100, 3'600'000, request_timeout_ms);
  } else if (key == "shutdown_timeout_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 0, 600'000, shutdown_timeout_ms);
  } else if (key == "sqlite_synchronous") {
    return one_of(key, value, source, {"full", "normal"}, sqlite_synchronous);
  } else if (key == "audit_records") {
    return one_of(key, value, source, {"relaxed", "durable"}, audit_records);
  } else if (key == "event_retention_hours") {
    return parse_uint<std::uint32_t>(key, value, source, 1, 24 * 366, event_retention_hours);
  } else if (key == "docker_socket") {
    if (value.empty() || value.front() != '/') {
      return Error::invalid_argument("bad_config", "docker_socket (" + std::string(source) +
                                                       ") must be an absolute path to a unix socket");
    }
    docker_socket = value;
    return Ok{};
  } else if (key == "agent_log_max_bytes") {
    return parse_uint<std::uint64_t>(key, value, source, 4096, 1ULL << 30, agent_log_max_bytes);
  } else if (key == "agent_log_files") {
    return parse_uint<int>(key, value, source, 0, 100, agent_log_files);
  } else if (key == "agent_log_max_followers") {
    return parse_uint<std::uint32_t>(key, value, source, 1, 100'000, agent_log_max_followers);
  } else if (key == "webhook_timestamp_tolerance_s") {
    return parse_uint<std::uint32_t>(key, value, source, 1, 86'400, webhook_timestamp_tolerance_s);
  } else if (key == "cron_late_tolerance_s") {
    return parse_uint<std::uint32_t>(key, value, source, 1, 86'400, cron_late_tolerance_s);
  } else if (key == "webhook_delivery_retention_s") {
    return parse_uint<std::uint32_t>(key, value, source, 2, 366 * 86'400,
                                     webhook_delivery_retention_s);
  } else if (key == "agent_resources_interval_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 0, 3'600'000, agent_resources_interval_ms);
  } else if (key == "agent_resources_retention_minutes") {
    return parse_uint<std::uint32_t>(key, value, source, 1, 7 * 24 * 60, agent_resources_retention_minutes);
  } else if (key == "workspace_retention_hours") {
    return parse_uint<std::uint32_t>(key, value, source, 0, 24 * 3660, workspace_retention_hours);
  } else if (key == "llm_prices") {
    auto table = parse_prices(value);
    if (!table) {
      return Error::invalid_argument(
          "bad_config", "llm_prices (" + std::string(source) +
                            ") must read model=input/output[,model=input/output...] (USD per "
                            "million tokens, e.g. gpt-4o=2.5/10)");
    }
    llm_prices = std::move(*table);
    return Ok{};
  } else if (key == "task_lease_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 1000, 600'000, task_lease_ms);
  } else if (key == "workflow_lease_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 1000, 600'000, workflow_lease_ms);
  } else if (key == "workflow_tick_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 10, 60'000, workflow_tick_ms);
  } else if (key == "health_interval_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 100, 3'600'000, health_interval_ms);
  } else if (key == "remote_heartbeat_timeout_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 1'000, 600'000, remote_heartbeat_timeout_ms);
  } else if (key == "mcp_health_interval_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 200, 86'400'000, mcp_health_interval_ms);
  } else if (key == "memory_outcomes") {
    return one_of(key, value, source, {"on", "off"}, memory_outcomes);
  } else if (key == "memory_embedder") {
    return one_of(key, value, source, {"hashing", "openai"}, memory_embedder);
  } else if (key == "memory_embedding_url") {
    memory_embedding_url = std::string(value);
    return Ok{};
  } else if (key == "memory_embedding_model") {
    memory_embedding_model = std::string(value);
    return Ok{};
  } else if (key == "memory_embedding_key_secret") {
    memory_embedding_key_secret = std::string(value);
    return Ok{};
  } else if (key == "memory_dims") {
    return parse_uint<std::uint32_t>(key, value, source, 64, 4096, memory_dims);
  } else if (key == "mcp_tool_records") {
    return one_of(key, value, source, {"deferred", "relaxed", "durable"}, mcp_tool_records);
  } else if (key == "allowed_origins") {
    // Parsed aside so that a bad item leaves the previous list in place.
    std::vector<std::string> origins;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) {
        if (!item.starts_with("http://") && !item.starts_with("https://")) {
          return Error::invalid_argument(
              "bad_config", "allowed_origins (" + std::string(source) +
                                ") must list origins like https://example.com, got '" +
                                std::string(item) + "'");
        }
        origins.emplace_back(item);
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    allowed_origins = std::move(origins);
  } else if (key == "jwt_secret") {
    if (!value.empty() && value.size() < 32) {
      return Error::invalid_argument("bad_config", "jwt_secret (" + std::string(source) +
                                                       ") must have at least 32 characters");
    }
    jwt_secret = value;
  } else if (key == "access_token_ttl_s") {
    return parse_uint<std::uint32_t>(key, value, source, 30, 86'400, access_token_ttl_s);
  } else if (key == "refresh_token_ttl_s") {
    return parse_uint<std::uint32_t>(key, value, source, 60, 90 * 86'400, refresh_token_ttl_s);
  } else if (key == "password_hash_cost") {
    return one_of(key, value, source, {"moderate", "interactive"}, password_hash_cost);
  } else if (key == "master_key_file") {
    master_key_file = value;
  } else if (key == "master_key") {
    // Checked (base64 of 32 bytes) where it is used, by auth::Secrets, at start-up.
    master_key = value;
  } else if (key == "oidc_issuer" || key == "oidc_redirect_url") {
    if (!value.empty() && !value.starts_with("https://") && !value.starts_with("http://")) {
      return Error::invalid_argument("bad_config", std::string(key) + " (" + std::string(source) +
                                                       ") must be an http:// or https:// URL");
    }
    (key == "oidc_issuer" ? oidc_issuer : oidc_redirect_url) = value;
  } else if (key == "oidc_client_id") {
    oidc_client_id = value;
  } else if (key == "oidc_client_secret") {
    oidc_client_secret = value;
  } else if (key == "oidc_role_claim") {
    if (value.empty()) {
      return Error::invalid_argument("bad_config", "oidc_role_claim (" + std::string(source) +
                                                       ") must not be empty");
    }
    oidc_role_claim = value;
  } else if (key == "oidc_role_map") {
    // Syntax only here; roles are checked by auth::parse_role_map at start-up.
    for (std::string_view rest = value; !rest.empty();) {
      const auto comma = rest.find(',');
      const auto item = rest.substr(0, comma);
      if (item.find_first_not_of(' ') != std::string_view::npos &&
          item.find('=') == std::string_view::npos) {
        return Error::invalid_argument("bad_config", "oidc_role_map (" + std::string(source) +
                                                         ") items must be value=role, got '" +
                                                         std::string(item) + "'");
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    oidc_role_map = value;
  } else if (key == "oidc_scopes") {
    oidc_scopes = value;
  } else if (key == "oidc_display_name") {
    oidc_display_name = value;
  } else if (key == "oidc_jwks_min_refresh_ms") {
    return parse_uint<std::uint32_t>(key, value, source, 0, 3'600'000, oidc_jwks_min_refresh_ms);
  } else if (key == "web_dir") {
    web_dir = value;
  } else if (key == "redis_key_prefix") {
    // Becomes part of Redis key names: keep it to a safe, short alphabet.
    const bool ok = !value.empty() && value.size() <= 64 &&
                    std::all_of(value.begin(), value.end(), [](char ch) {
                      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                             ch == '_' || ch == '.';
                    });
    if (!ok) {
      return Error::invalid_argument("bad_config",
                                     "redis_key_prefix (" + std::string(source) +
                                         ") must be 1..64 of a-z, 0-9, '-', '_', '.', got '" +
                                         std::string(value.substr(0, 80)) + "'");
    }
    redis_key_prefix = value;
  } else {
    return Error::invalid_argument("bad_config", "unknown config key '" + std::string(key) +
                                                     "' (" + std::string(source) + ")");
  }
  return Ok{};
}

Status Config::check() const {
  // A delivery id must be remembered for as long as its timestamp can pass the window (either
  // side of now), or a captured delivery could be replayed once its id is pruned.
  if (static_cast<std::uint64_t>(webhook_delivery_retention_s) <
      2ULL * webhook_timestamp_tolerance_s) {
    return Error::invalid_argument(
        "bad_config", "webhook_delivery_retention_s (" +
                          std::to_string(webhook_delivery_retention_s) +
                          " s) must cover twice webhook_timestamp_tolerance_s (" +
                          std::to_string(webhook_timestamp_tolerance_s) + " s)");
  }
  if (memory_embedder == "openai" &&
      (memory_embedding_url.empty() || memory_embedding_model.empty())) {
    return Error::invalid_argument(
        "bad_config", "memory_embedder openai needs memory_embedding_url and memory_embedding_model");
  }
  if (!memory_embedding_url.empty() && !memory_embedding_url.starts_with("http://") &&
      !memory_embedding_url.starts_with("https://")) {
    return Error::invalid_argument("bad_config", "memory_embedding_url must be an http(s) URL");
  }
  return Ok{};
}

Status Config::apply_file(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return Error::not_found("config file " + path + " does not exist");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return Error::invalid_argument("bad_config", "config file " + path + ": " + e.what());
  }
  if (root.IsNull()) return Ok{};
  if (!root.IsMap()) {
    return Error::invalid_argument("bad_config", "config file " + path + " must be a mapping");
  }
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      return Error::invalid_argument("bad_config",
                                     "config file " + path + ": " + key + " must be a scalar");
    }
    DP_TRY(set(key, kv.second.as<std::string>(), "file " + path));
  }
  return Ok{};
}

Status Config::apply_env(const std::function<const char*(const char*)>& getenv) {
  for (const auto& key : keys()) {
    std::string var = "DEVPLANE_";
    for (char c : key) var.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
    if (const char* v = getenv(var.c_str()); v != nullptr) {
      DP_TRY(set(key, v, "env " + var));
    }
  }
  return Ok{};
}

boost::json::object Config::to_json_masked() const {
  boost::json::object o;
  o["host"] = host;
  o["port"] = port;
  o["data_dir"] = data_dir;
  o["database_url"] = mask_url_password(database_url);
  o["redis_url"] = mask_url_password(redis_url);
  o["log_level"] = log_level;
  o["log_format"] = log_format;
  o["config_file"] = config_file;
  o["io_threads"] = io_threads;
  o["blocking_threads"] = blocking_threads;
  o["write_threads"] = write_threads;
  o["db_pool_size"] = db_pool_size;
  o["max_body_bytes"] = max_body_bytes;
  o["header_timeout_ms"] = header_timeout_ms;
  o["idle_timeout_ms"] = idle_timeout_ms;
  o["request_timeout_ms"] = request_timeout_ms;
  o["shutdown_timeout_ms"] = shutdown_timeout_ms;
  o["sqlite_synchronous"] = sqlite_synchronous;
  o["audit_records"] = audit_records;
  o["event_retention_hours"] = event_retention_hours;
  o["health_interval_ms"] = health_interval_ms;
  o["remote_heartbeat_timeout_ms"] = remote_heartbeat_timeout_ms;
  o["workflow_lease_ms"] = workflow_lease_ms;
  o["workflow_tick_ms"] = workflow_tick_ms;
  o["task_lease_ms"] = task_lease_ms;
  o["workspace_retention_hours"] = workspace_retention_hours;
  o["agent_resources_interval_ms"] = agent_resources_interval_ms;
  o["agent_resources_retention_minutes"] = agent_resources_retention_minutes;
  o["docker_socket"] = docker_socket;
  o["agent_log_max_bytes"] = agent_log_max_bytes;
  o["agent_log_files"] = agent_log_files;
  o["agent_log_max_followers"] = agent_log_max_followers;
  o["webhook_timestamp_tolerance_s"] = webhook_timestamp_tolerance_s;
  o["cron_late_tolerance_s"] = cron_late_tolerance_s;
  o["webhook_delivery_retention_s"] = webhook_delivery_retention_s;
  {
    boost::json::object prices;
    for (const auto& [model, p] : llm_prices) {
      prices[model] = boost::json::object{{"input", p.first}, {"output", p.second}};
    }
    o["llm_prices"] = std::move(prices);
  }
  o["mcp_health_interval_ms"] = mcp_health_interval_ms;
  o["mcp_tool_records"] = mcp_tool_records;
  o["memory_outcomes"] = memory_outcomes;
  o["memory_embedder"] = memory_embedder;
  o["memory_embedding_url"] = memory_embedding_url;
  o["memory_embedding_model"] = memory_embedding_model;
  o["memory_embedding_key_secret"] = memory_embedding_key_secret;
  o["memory_dims"] = memory_dims;
  {
    boost::json::array origins;
    for (const auto& x : allowed_origins) origins.emplace_back(x);
    o["allowed_origins"] = std::move(origins);
  }
  o["jwt_secret"] = jwt_secret.empty() ? "" : "***";
  o["access_token_ttl_s"] = access_token_ttl_s;
  o["refresh_token_ttl_s"] = refresh_token_ttl_s;
  o["password_hash_cost"] = password_hash_cost;
  o["master_key_file"] = master_key_file;
  o["master_key"] = master_key.empty() ? "" : "***";
  o["oidc_issuer"] = oidc_issuer;
  o["oidc_client_id"] = oidc_client_id;
  o["oidc_client_secret"] = oidc_client_secret.empty() ? "" : "***";
  o["oidc_redirect_url"] = oidc_redirect_url;
  o["oidc_role_claim"] = oidc_role_claim;
  o["oidc_role_map"] = oidc_role_map;
  o["oidc_scopes"] = oidc_scopes;
  o["oidc_display_name"] = oidc_display_name;
  o["oidc_jwks_min_refresh_ms"] = oidc_jwks_min_refresh_ms;
  o["web_dir"] = web_dir;
  o["redis_key_prefix"] = redis_key_prefix;
  o["mode"] = distributed() ? "distributed" : "embedded";
  return o;
}

std::string mask_url_password(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  std::string out(url);
  // An '@' in the query is not a credentials separator. The last '@' before the query is,
  // so that a password holding an unescaped '@' or '/' is still masked whole.
  const auto query = std::min(url.find_first_of("?#", scheme + 3), url.size());
  const auto at = url.substr(0, query).rfind('@');
  if (at != std::string_view::npos && at > scheme + 3) {
    const auto colon = url.find(':', scheme + 3);
    if (colon != std::string_view::npos && colon < at) {
      out = std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
    }
  }
  // libpq also accepts ?password=...; mask it too.
  const auto q = out.find('?');
  if (q != std::string::npos) {
    const auto p = out.find("password=", q);
    if (p != std::string::npos) {
      auto end = out.find('&', p);
      if (end == std::string::npos) end = out.size();
      out = out.substr(0, p + 9) + "***" + out.substr(end);
    }
  }
  return out;
}

}  // namespace dp
