#include "mcp/registry.hpp"

#include <filesystem>

#include "core/log.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool flag(const json::object& o, std::string_view key, bool fallback) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_bool() ? v->get_bool() : fallback;
}

std::int64_t integer(const json::object& o, std::string_view key, std::int64_t fallback) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->get_int64() : fallback;
}

Error invalid(std::string m) { return Error::invalid_argument("invalid_config", std::move(m)); }

}  // namespace

Result<ConnectionSpec> connection_spec(const std::string& adapter_id, const std::string& name,
                                       const json::object& config, const RegistryOptions& options) {
  ConnectionSpec spec;
  spec.options.log_name = name;
  spec.options.request_timeout = std::chrono::milliseconds(integer(config, "timeoutMs", 30'000));
  spec.options.max_concurrent = static_cast<std::size_t>(integer(config, "maxConcurrent", 8));
  spec.options.max_message_bytes = options.max_message_bytes;
  const std::string transport = str(config, "transport");
  if (transport == "stdio") {
    StdioOptions o;
    o.argv.push_back(str(config, "command"));
    if (o.argv.front().empty()) return invalid("a stdio adapter needs a command");
    if (const auto* args = config.if_contains("args"); args != nullptr && args->is_array()) {
      for (const auto& a : args->get_array()) {
        if (a.is_string()) o.argv.emplace_back(a.get_string());
      }
    }
    if (const auto* env = config.if_contains("env"); env != nullptr && env->is_object()) {
      for (const auto& kv : env->get_object()) {
        if (kv.value().is_string()) o.env.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
      }
    }
    o.sandbox = flag(config, "sandbox", true);
    o.limits = agents::sandbox::limits_from_config(config, o.limits);
    o.network = flag(config, "network", false);
    if (const auto* ro = config.if_contains("readOnlyPaths"); ro != nullptr && ro->is_array()) {
      for (const auto& p : ro->get_array()) {
        if (p.is_string()) o.ro_binds.emplace_back(p.get_string());
      }
    }
    o.workspace = str(config, "cwd");
    if (o.workspace.empty()) {
      o.workspace = options.work_dir + "/" + adapter_id;
      std::error_code ec;
      std::filesystem::create_directories(o.workspace, ec);
      if (ec) return Error::unavailable("cannot create " + o.workspace + ": " + ec.message());
    }
    bool has_home = false;
    for (const auto& [k, v] : o.env) has_home = has_home || k == "HOME";
    if (!has_home) o.env.emplace_back("HOME", o.sandbox ? "/workspace" : o.workspace);
    o.max_message_bytes = options.max_message_bytes;
    o.log_name = name;
    spec.transport = make_stdio_transport(std::move(o));
    return spec;
  }
  if (transport == "http" || transport == "sse") {
    HttpOptions o;
    o.url = str(config, "url");
    if (o.url.empty()) return invalid("an " + transport + " adapter needs a url");
    if (const auto* h = config.if_contains("headers"); h != nullptr && h->is_object()) {
      for (const auto& kv : h->get_object()) {
        if (kv.value().is_string()) o.headers.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
      }
    }
    o.max_message_bytes = options.max_message_bytes;
    spec.transport = transport == "sse" ? make_sse_transport(std::move(o)) : make_http_transport(std::move(o));
    return spec;
  }
  return invalid("transport must be stdio, http or sse");
}

std::chrono::milliseconds Registry::backoff(int failures) const {
  const auto shift = std::min(std::max(failures - 1, 0), 16);
  return std::min(opt_.backoff_max, opt_.backoff_min * (std::int64_t{1} << shift));
}

Result<std::shared_ptr<Client>> Registry::client(const std::string& adapter_id,
                                                 const std::string& name, const json::object& config) {
  std::shared_ptr<std::mutex> connect_mu;
  std::shared_ptr<Client> stale;
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[adapter_id];
    // Compared as objects, whose equality ignores key order: the same config reads back from
    // PostgreSQL's jsonb in another order than the API gave it.
    if (e.client && e.config != config) {
      stale = std::move(e.client);
      e = Entry{};
    }
    if (e.client) {
      if (e.client->healthy()) return e.client;
      // The connection broke since it was made: that is a failure, and it starts the backoff.
      e.last_error = e.client->failure();
      stale = std::move(e.client);
      ++e.failures;
      e.retry_at = Clock::now() + backoff(e.failures);
    }
    connect_mu = e.connect_mu;
  }
  if (stale) stale->close();

  std::lock_guard connect_lock(*connect_mu);
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[adapter_id];
    if (e.client && e.config == config && e.client->healthy()) return e.client;  // another thread connected
    if (e.failures > 0 && Clock::now() < e.retry_at && e.last_error) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(e.retry_at - Clock::now());
      // The message is the last failure's, unchanged, so a health record does not change
      // (and announce itself) on every check while the server stays down.
      Error err{ErrorCode::kUnavailable, "adapter_unhealthy", e.last_error->message,
                json::object{{"cause", e.last_error->reason},
                             {"retryInMs", static_cast<std::int64_t>(wait.count())}}};
      return err;
    }
  }
  auto spec = connection_spec(adapter_id, name, config, opt_);
  if (!spec.ok()) return std::move(spec).error();
  auto c = std::make_shared<Client>(std::move(spec->transport), std::move(spec->options));
  auto s = c->connect();
  std::lock_guard lock(mu_);
  Entry& e = entries_[adapter_id];
  if (!s.ok()) {
    c->close();
    ++e.failures;
    const auto delay = backoff(e.failures);
    e.retry_at = Clock::now() + delay;
    e.last_error = s.error();
    log::global().warn("mcp adapter failed to connect",
                       {{"adapter", name}, {"reason", s.error().reason}, {"error", s.error().message},
                        {"failures", e.failures}, {"retryInMs", static_cast<std::int64_t>(delay.count())}});
    return std::move(s).error();
  }
  e.client = c;
  e.config = config;
  e.failures = 0;
  e.last_error.reset();
  return c;
}

void Registry::forget(const std::string& adapter_id) {
  std::shared_ptr<Client> c;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(adapter_id);
    if (it == entries_.end()) return;
    c = std::move(it->second.client);
    entries_.erase(it);
  }
  if (c) c->close();
}

void Registry::close_all() {
  std::map<std::string, Entry> all;
  {
    std::lock_guard lock(mu_);
    all.swap(entries_);
  }
  for (auto& [id, e] : all) {
    if (e.client) e.client->close();
  }
}

std::optional<Error> Registry::last_failure(const std::string& adapter_id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(adapter_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.last_error;
}

}  // namespace dp::mcp
