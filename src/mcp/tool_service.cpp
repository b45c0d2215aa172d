#include "mcp/tool_service.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "mcp/schema.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;

constexpr const char* kMasked = "***";
constexpr std::size_t kMaxEventResultBytes = 16 * 1024;
constexpr const char* kSecretMaps[] = {"env", "headers"};

store::OutboxEvent event(std::string topic, const json::object& payload, const std::string& corr) {
  return store::OutboxEvent{0, std::move(topic), json::serialize(payload), corr, clock::now_ms(), std::nullopt};
}

json::object status_payload(const model::Adapter& a) {
  json::object o{{"adapterId", a.id}, {"name", a.name}, {"status", a.status}, {"reason", a.status_reason}};
  if (a.latency_us) o["latencyMs"] = static_cast<double>(*a.latency_us) / 1000.0;
  return o;
}

std::string caller_or(const std::string& c) { return c.empty() ? std::string("system") : c; }

}  // namespace

bool valid_adapter_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

ToolService::ToolService(store::Store& store, Registry& registry, const auth::Secrets& secrets,
                         std::function<void()> on_commit)
    : store_(store), registry_(registry), secrets_(secrets), on_commit_(std::move(on_commit)) {}

ToolService::~ToolService() {
  stop_health_checker();
  stop_record_writer();
}

void ToolService::set_records(Records mode) {
  std::lock_guard lock(records_mu_);
  deferred_ = mode == Records::kDeferred;
  relaxed_.store(mode == Records::kRelaxed);
  if (deferred_ && !record_writer_.joinable() && !records_stopping_) {
    record_writer_ = std::thread([this] { record_loop(); });
  }
}

void ToolService::stop_record_writer() {
  {
    std::lock_guard lock(records_mu_);
    records_stopping_ = true;
  }
  records_cv_.notify_all();
  // The writer drains the queue before it ends: nothing handed over is dropped on shutdown.
  if (record_writer_.joinable()) record_writer_.join();
}

void ToolService::flush_records() {
  std::unique_lock lock(records_mu_);
  const std::uint64_t target = records_queued_;
  records_cv_.wait(lock, [&] { return records_done_ >= target || !record_writer_.joinable(); });
}

void ToolService::record_loop() {
  for (;;) {
    std::vector<QueuedRecord> batch;
    {
      std::unique_lock lock(records_mu_);
      records_cv_.wait(lock, [this] { return records_stopping_ || !records_.empty(); });
      if (records_.empty()) return;  // stopping, and nothing left
      batch.swap(records_);
    }
    auto write_all = [&](std::size_t from, std::size_t to) {
      return store_.write([&](store::Tx& tx) -> Status {
        for (std::size_t i = from; i < to; ++i) {
          DP_TRY(tx.tool_executions().insert(batch[i].execution));
          DP_TRY(tx.outbox().append(event("tool.execution.result", batch[i].payload,
                                          batch[i].execution.correlation_id)));
        }
        return Ok{};
      });
    };
    auto s = write_all(0, batch.size());
    if (!s.ok() && batch.size() > 1) {
      // One bad record must not take the others with it: write them one by one.
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (auto one = write_all(i, i + 1); !one.ok()) {
          log::Logger(batch[i].execution.correlation_id)
              .error("could not store an MCP tool call's record",
                     {{"executionId", batch[i].execution.id}, {"error", one.error().message}});
        }
      }
    } else if (!s.ok()) {
      log::Logger(batch[0].execution.correlation_id)
          .error("could not store an MCP tool call's record",
                 {{"executionId", batch[0].execution.id}, {"error", s.error().message}});
    }
    if (on_commit_) on_commit_();
    {
      std::lock_guard lock(records_mu_);
      records_done_ += batch.size();
    }
    records_cv_.notify_all();
  }
}

json::object ToolService::seal(const json::object& config, const json::object* stored) const {
  json::object out = config;
  for (const char* key : kSecretMaps) {
    auto* map = out.if_contains(key);
    if (map == nullptr || !map->is_object()) continue;
    const json::object* old = nullptr;
    if (stored != nullptr) {
      if (const auto* o = stored->if_contains(key); o != nullptr && o->is_object()) old = &o->get_object();
    }
    for (auto& kv : map->get_object()) {
      if (!kv.value().is_string()) continue;
      const std::string_view v = kv.value().get_string();
      if (v == kMasked && old != nullptr) {
        // "***" is how callers see a secret: sending it back keeps the stored value.
        if (const auto* prev = old->if_contains(kv.key())) {
          kv.value() = *prev;
          continue;
        }
      }
      if (!auth::Secrets::is_sealed(v)) kv.value() = secrets_.seal(v);
    }
  }
  return out;
}

Result<json::object> ToolService::open(const json::object& config) const {
  json::object out = config;
  for (const char* key : kSecretMaps) {
    auto* map = out.if_contains(key);
    if (map == nullptr || !map->is_object()) continue;
    for (auto& kv : map->get_object()) {
      if (!kv.value().is_string() || !auth::Secrets::is_sealed(kv.value().get_string())) continue;
      DP_ASSIGN_OR_RETURN(std::string plain, secrets_.open(kv.value().get_string()));
      kv.value() = plain;
    }
  }
  return out;
}

json::object ToolService::adapter_json(const model::Adapter& a) {
  json::object config = a.config;
  for (const char* key : kSecretMaps) {
    auto* map = config.if_contains(key);
    if (map == nullptr || !map->is_object()) continue;
    for (auto& kv : map->get_object()) kv.value() = kMasked;
  }
  json::array held;
  for (const auto& kv : a.flagged_tools) held.emplace_back(kv.key());
  json::object o{{"id", a.id},
                 {"name", a.name},
                 {"config", std::move(config)},
                 {"status", a.status},
                 {"statusReason", a.status_reason},
                 {"lastHealthCheck", a.last_health_check ? json::value(clock::format_iso8601(*a.last_health_check))
                                                         : json::value(nullptr)},
                 {"latencyMs", a.latency_us ? json::value(static_cast<double>(*a.latency_us) / 1000.0)
                                            : json::value(nullptr)},
                 {"pinnedTools", static_cast<std::int64_t>(a.pinned_tools.size())},
                 {"heldTools", std::move(held)},
                 {"approvedAt", a.approved_at ? json::value(clock::format_iso8601(*a.approved_at))
                                              : json::value(nullptr)},
                 {"approvedBy", a.approved_by},
                 {"version", a.version},
                 {"createdAt", clock::format_iso8601(a.created_at)},
                 {"updatedAt", clock::format_iso8601(a.updated_at)}};
  return o;
}

json::object ToolService::execution_json(const model::ToolExecution& e) {
  return json::object{{"id", e.id},
                      {"adapterId", e.adapter_id ? json::value(*e.adapter_id) : json::value(nullptr)},
                      {"tool", e.tool_name},
                      {"arguments", e.parameters},
                      {"status", e.status},
                      {"result", e.result},
                      {"error", e.error.empty() ? json::value(nullptr) : json::value(e.error)},
                      {"durationMs", e.duration_ms},
                      {"caller", e.caller},
                      {"correlationId", e.correlation_id},
                      {"executedAt", clock::format_iso8601(e.executed_at)}};
}

Result<std::shared_ptr<Client>> ToolService::connect(const model::Adapter& a) {
  DP_ASSIGN_OR_RETURN(json::object plain, open(a.config));
  return registry_.client(a.id, a.name, plain);
}

Result<model::Adapter> ToolService::create(AdapterInput&& input, const std::string& actor,
                                           const std::string& correlation_id) {
  model::Adapter a;
  a.id = ids::uuid_v7();
  a.name = std::move(input.name);
  a.config = seal(input.config, nullptr);
  a.created_at = a.updated_at = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_TRY(tx.adapters().insert(a));
    return tx.outbox().append(event("tool.adapter.created", status_payload(a), correlation_id));
  }));
  if (on_commit_) on_commit_();
  // Connect now: pin the catalog as it is at registration and record the first health.
  auto c = connect(a);
  if (c.ok()) {
    auto tools = (*c)->catalog();
    if (tools.ok()) {
      a = sync_pins(std::move(a), **tools, correlation_id);
      log::Logger(correlation_id).info("mcp adapter registered and its catalog pinned",
                                       {{"adapter", a.name},
                                        {"tools", static_cast<std::int64_t>(a.pinned_tools.size())},
                                        {"by", actor}});
    }
  }
  auto h = check_health(a.id, correlation_id);
  ++catalog_gen_;
  if (h.ok()) return std::move(h->adapter);
  return a;
}

Result<std::vector<model::Adapter>> ToolService::list() {
  std::vector<model::Adapter> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.adapters().list());
    return Ok{};
  }));
  return out;
}

Result<model::Adapter> ToolService::get(const std::string& id) {
  std::optional<model::Adapter> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.adapters().get(id));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Adapter> ToolService::update(const std::string& id, AdapterInput&& input,
                                           std::optional<std::int64_t> expected_version,
                                           const std::string& correlation_id) {
  std::optional<model::Adapter> out;
  bool reconnect = false;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Adapter a, tx.adapters().get(id));
    const std::int64_t version = expected_version.value_or(a.version);
    if (version != a.version) {
      Error e = Error::failed_precondition("version_conflict", "MCP adapter " + id + " is at version " +
                                                                   std::to_string(a.version) + ", not " +
                                                                   std::to_string(version));
      e.details = json::object{{"currentVersion", a.version}};
      return e;
    }
    json::object sealed = seal(input.config, &a.config);
    reconnect = sealed != a.config;
    a.name = std::move(input.name);
    a.config = std::move(sealed);
    a.version = version + 1;
    a.updated_at = clock::now_ms();
    DP_TRY(tx.adapters().update(a, version));
    DP_TRY(tx.outbox().append(event("tool.adapter.updated", status_payload(a), correlation_id)));
    out = std::move(a);
    return Ok{};
  }));
  if (on_commit_) on_commit_();
  if (reconnect) registry_.forget(id);
  ++catalog_gen_;
  return std::move(*out);
}

Status ToolService::remove(const std::string& id, const std::string& correlation_id) {
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Adapter a, tx.adapters().get(id));
    DP_TRY(tx.adapters().remove(id));
    return tx.outbox().append(event("tool.adapter.deleted", json::object{{"adapterId", a.id}, {"name", a.name}},
                                    correlation_id));
  }));
  if (on_commit_) on_commit_();
  registry_.forget(id);
  ++catalog_gen_;
  return Ok{};
}

Result<HealthReport> ToolService::check_health(const std::string& id, const std::string& correlation_id) {
  DP_ASSIGN_OR_RETURN(model::Adapter a, get(id));
  std::string status = "healthy", reason;
  std::optional<std::int64_t> latency;
  if (a.status == "disabled") {
    status = "disabled";
    reason = a.status_reason;
  } else {
    auto c = connect(a);
    if (!c.ok()) {
      status = "unhealthy";
      reason = c.error().message;
    } else {
      auto rtt = (*c)->ping(std::chrono::milliseconds(5'000));
      if (rtt.ok()) {
        latency = rtt->count();
      } else {
        status = "unhealthy";
        reason = rtt.error().message;
      }
    }
  }
  HealthReport report;
  const std::int64_t now = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Adapter cur, tx.adapters().get(id));
    report.changed = cur.status != status || cur.status_reason != reason;
    DP_TRY(tx.adapters().record_health(id, status, reason, now, latency));
    cur.status = status;
    cur.status_reason = reason;
    cur.last_health_check = now;
    if (latency) cur.latency_us = latency;
    if (report.changed) {
      DP_TRY(tx.outbox().append(event("tool.adapter.status", status_payload(cur), correlation_id)));
    }
    report.adapter = std::move(cur);
    return Ok{};
  }));
  if (report.changed) {
    ++catalog_gen_;
    if (on_commit_) on_commit_();
  }
  return report;
}

model::Adapter ToolService::sync_pins(model::Adapter a, const ToolCatalog& catalog,
                                      const std::string& correlation_id) {
  const std::vector<Tool>& tools = catalog.tools;
  json::object pinned = a.pinned_tools;
  json::object flagged;
  bool first = pinned.empty() && !a.approved_at;
  const std::int64_t now = clock::now_ms();
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const Tool& t = tools[i];
    const std::string& hash = catalog.pin_hashes.at(i);
    if (first) {
      pinned[t.name] = hash;
      continue;
    }
    const auto* p = pinned.if_contains(t.name);
    if (p != nullptr && p->is_string() && p->get_string() == hash) continue;
    json::object f{{"pinnedHash", p != nullptr ? *p : json::value(nullptr)}, {"currentHash", hash},
                   {"detectedAt", clock::format_iso8601(now)}};
    // Keep when it was first seen, as long as it is the same change.
    if (const auto* old = a.flagged_tools.if_contains(t.name); old != nullptr && old->is_object()) {
      const auto& o = old->get_object();
      if (const auto* ch = o.if_contains("currentHash"); ch != nullptr && *ch == json::value(hash)) {
        if (const auto* d = o.if_contains("detectedAt")) f["detectedAt"] = *d;
      }
    }
    flagged[t.name] = std::move(f);
  }
  if (!first && flagged == a.flagged_tools) return a;
  std::optional<model::Adapter> stored;
  auto s = store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Adapter cur, tx.adapters().get(a.id));
    if (first) {
      if (!cur.pinned_tools.empty() || cur.approved_at) return Ok{};  // someone pinned meanwhile
      cur.pinned_tools = pinned;
      cur.approved_at = now;
      cur.approved_by = "registration";
    }
    cur.flagged_tools = flagged;
    const std::int64_t v = cur.version;
    cur.version = v + 1;
    cur.updated_at = now;
    DP_TRY(tx.adapters().update(cur, v));
    if (!first || !flagged.empty()) {
      json::array held;
      for (const auto& kv : flagged) held.emplace_back(kv.key());
      DP_TRY(tx.outbox().append(event("tool.catalog.changed",
                                      json::object{{"adapterId", cur.id}, {"name", cur.name}, {"heldTools", held}},
                                      correlation_id)));
    }
    stored = std::move(cur);
    return Ok{};
  });
  if (!s.ok()) {
    // The hold is decided from the live catalog on every call, so a lost write only delays
    // the record; the next call tries again.
    log::Logger(correlation_id).warn("could not store the MCP catalog check",
                                     {{"adapter", a.name}, {"error", s.error().message}});
    a.flagged_tools = flagged;
    if (first) a.pinned_tools = pinned;
    return a;
  }
  if (on_commit_) on_commit_();
  // The first pin offers what is live already: only a change of the held set changes the tools.
  if (!first || !flagged.empty()) ++catalog_gen_;
  if (stored) {
    if (!flagged.empty()) {
      log::Logger(correlation_id).warn("mcp tools changed since approval and are held",
                                       {{"adapter", stored->name}, {"held", static_cast<std::int64_t>(flagged.size())}});
    }
    return std::move(*stored);
  }
  auto fresh = get(a.id);
  return fresh.ok() ? std::move(fresh).value() : a;
}

Result<Catalog> ToolService::catalog(const std::string& id, const std::string& correlation_id) {
  DP_ASSIGN_OR_RETURN(model::Adapter a, get(id));
  DP_ASSIGN_OR_RETURN(auto client, connect(a));
  DP_ASSIGN_OR_RETURN(auto live, client->catalog());
  a = sync_pins(std::move(a), *live, correlation_id);
  Catalog out;
  out.server = client->server();
  for (std::size_t i = 0; i < live->tools.size(); ++i) {
    const Tool& t = live->tools[i];
    CatalogEntry e;
    e.pin_hash = live->pin_hashes[i];
    if (const auto* p = a.pinned_tools.if_contains(t.name); p != nullptr && p->is_string()) {
      e.pinned_hash = std::string(p->get_string());
    }
    e.held = a.flagged_tools.contains(t.name);
    e.tool = t;
    out.tools.push_back(std::move(e));
  }
  return out;
}

Result<model::Adapter> ToolService::approve(const std::string& id, const std::vector<std::string>& names,
                                            const std::string& actor, const std::string& correlation_id) {
  DP_ASSIGN_OR_RETURN(model::Adapter a, get(id));
  DP_ASSIGN_OR_RETURN(auto client, connect(a));
  DP_ASSIGN_OR_RETURN(auto fetched, client->catalog(true));
  std::map<std::string, std::string> live;
  for (std::size_t i = 0; i < fetched->tools.size(); ++i) live[fetched->tools[i].name] = fetched->pin_hashes[i];
  std::set<std::string> chosen(names.begin(), names.end());
  for (const auto& n : chosen) {
    if (!live.count(n)) {
      return Error::not_found("MCP adapter '" + a.name + "' has no tool named '" + n + "'");
    }
  }
  std::optional<model::Adapter> out;
  const std::int64_t now = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Adapter cur, tx.adapters().get(id));
    json::array approved;
    for (const auto& [name, hash] : live) {
      const bool pick = chosen.empty() ? (cur.flagged_tools.contains(name) || !cur.pinned_tools.contains(name))
                                       : chosen.count(name) > 0;
      if (!pick) continue;
      cur.pinned_tools[name] = hash;
      cur.flagged_tools.erase(name);
      approved.emplace_back(name);
    }
    const std::int64_t v = cur.version;
    cur.version = v + 1;
    cur.updated_at = now;
    cur.approved_at = now;
    cur.approved_by = actor;
    DP_TRY(tx.adapters().update(cur, v));
    DP_TRY(tx.outbox().append(event("tool.catalog.approved",
                                    json::object{{"adapterId", cur.id}, {"name", cur.name},
                                                 {"approvedTools", approved}, {"by", actor}},
                                    correlation_id)));
    out = std::move(cur);
    return Ok{};
  }));
  if (on_commit_) on_commit_();
  ++catalog_gen_;
  return std::move(*out);
}

Status ToolService::record(model::ToolExecution& e, const std::string& adapter_name) {
  json::object payload{{"executionId", e.id},
                       {"adapterId", e.adapter_id ? json::value(*e.adapter_id) : json::value(nullptr)},
                       {"adapterName", adapter_name},
                       {"tool", e.tool_name},
                       {"status", e.status},
                       {"isError", e.status == "tool_error"},
                       {"durationMs", e.duration_ms},
                       {"caller", e.caller}};
  if (!e.error.empty()) payload["error"] = e.error;
  if (!e.result.is_null()) {
    if (json::serialize(e.result).size() <= kMaxEventResultBytes) {
      payload["result"] = e.result;
    } else {
      payload["resultTruncated"] = true;
    }
  }
  {
    std::lock_guard lock(records_mu_);
    if (deferred_ && record_writer_.joinable() && !records_stopping_) {
      records_.push_back(QueuedRecord{e, std::move(payload)});
      ++records_queued_;
      records_cv_.notify_all();
      return Ok{};
    }
  }
  const auto write = [&](store::Tx& tx) -> Status {
    DP_TRY(tx.tool_executions().insert(e));
    return tx.outbox().append(event("tool.execution.result", payload, e.correlation_id));
  };
  auto s = relaxed_.load() ? store_.write_relaxed(write) : store_.write(write);
  if (s.ok() && on_commit_) on_commit_();
  return s;
}

Result<model::ToolExecution> ToolService::execute(ExecuteRequest&& req) {
  model::Adapter a;
  if (req.adapter && req.adapter->id == req.adapter_id) {
    a = std::move(*req.adapter);
  } else {
    DP_ASSIGN_OR_RETURN(a, get(req.adapter_id));
  }
  model::ToolExecution e;
  e.id = ids::uuid_v7();
  e.adapter_id = a.id;
  e.tool_name = req.tool;
  e.parameters = auth::redact(req.arguments);
  e.caller = caller_or(req.caller);
  e.correlation_id = req.correlation_id;
  e.executed_at = clock::now_ms();
  // A call refused or failed before it reached the tool is recorded too, then reported.
  auto refuse = [&](Error err, const char* status) -> Result<model::ToolExecution> {
    e.status = status;
    e.error = err.reason + ": " + err.message;
    e.duration_ms = clock::now_ms() - e.executed_at;
    if (auto s = record(e, a.name); !s.ok()) return std::move(s).error();
    json::object d = err.details.is_object() ? err.details.get_object() : json::object{};
    d["executionId"] = e.id;
    err.details = std::move(d);
    return err;
  };
  if (a.status == "disabled") {
    return refuse(Error::failed_precondition("adapter_disabled", "MCP adapter '" + a.name + "' is disabled"),
                  "refused");
  }
  auto client = connect(a);
  if (!client.ok()) return refuse(std::move(client).error(), "failed");
  auto tools = (*client)->catalog();
  if (!tools.ok()) return refuse(std::move(tools).error(), "failed");
  a = sync_pins(std::move(a), **tools, req.correlation_id);
  const Tool* tool = nullptr;
  for (const auto& t : (*tools)->tools) {
    if (t.name == req.tool) tool = &t;
  }
  if (tool == nullptr) {
    Error err = Error::not_found("MCP adapter '" + a.name + "' has no tool named '" + req.tool + "'");
    err.reason = "tool_not_found";
    return err;
  }
  if (a.flagged_tools.contains(req.tool)) {
    Error err = Error::failed_precondition(
        "tool_held", "tool '" + req.tool + "' of MCP adapter '" + a.name +
                         "' changed since it was approved and is held until an operator approves it "
                         "(POST /api/v1/tools/" + a.id + "/approve)");
    err.details = json::object{{"tool", req.tool}, {"change", a.flagged_tools.at(req.tool)}};
    return refuse(std::move(err), "refused");
  }
  DP_TRY(validate_arguments(req.arguments, tool->input_schema));
  // Progress the server reports becomes tool.execution.progress events, at most one per
  // 100 ms. The callback may run on the transport's thread after the call returned, so it owns
  // what it uses.
  struct ProgressState {
    store::Store* store;
    std::function<void()> on_commit;
    json::object base;
    std::string correlation_id;
    std::atomic<std::int64_t> last_ms{0};
    ProgressFn forward;
  };
  auto state = std::make_shared<ProgressState>();
  state->store = &store_;
  state->on_commit = on_commit_;
  state->base = json::object{{"executionId", e.id}, {"adapterId", a.id}, {"tool", req.tool}};
  state->correlation_id = req.correlation_id;
  state->forward = std::move(req.on_progress);
  CallOptions opts;
  opts.cancel = req.cancel;
  opts.on_progress = [state](const json::object& p) {
    if (state->forward) state->forward(p);
    const std::int64_t now = clock::now_ms();
    std::int64_t last = state->last_ms.load();
    if (now - last < 100 || !state->last_ms.compare_exchange_strong(last, now)) return;
    json::object payload = state->base;
    for (const char* k : {"progress", "total", "message"}) {
      if (const auto* v = p.if_contains(k)) payload[k] = *v;
    }
    auto s = state->store->write([&](store::Tx& tx) {
      return Status(tx.outbox().append(event("tool.execution.progress", payload, state->correlation_id)));
    });
    if (s.ok() && state->on_commit) state->on_commit();
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*client)->call_tool(req.tool, req.arguments, opts);
  e.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    e.status = r.error().reason == "cancelled" ? "cancelled" : "failed";
    e.error = r.error().reason + ": " + r.error().message;
    DP_TRY(record(e, a.name));
    Error err = std::move(r).error();
    json::object d = err.details.is_object() ? err.details.get_object() : json::object{};
    d["executionId"] = e.id;
    err.details = std::move(d);
    return err;
  }
  e.result = r->raw;
  e.status = r->is_error ? "tool_error" : "succeeded";
  DP_TRY(record(e, a.name));
  return e;
}

Result<store::Page<model::ToolExecution>> ToolService::executions(const store::ToolExecutionFilter& filter) {
  flush_records();  // this node's deferred records first: a caller reads its own calls
  std::optional<store::Page<model::ToolExecution>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    if (filter.adapter_id) DP_TRY(tx.adapters().get(*filter.adapter_id));
    DP_ASSIGN_OR_RETURN(out, tx.tool_executions().list(filter));
    return Ok{};
  }));
  return std::move(*out);
}

void ToolService::start_health_checker(std::chrono::milliseconds interval) {
  std::lock_guard lock(checker_mu_);
  if (checker_.joinable()) return;
  stopping_ = false;
  checker_ = std::thread([this, interval] { health_loop(interval); });
}

void ToolService::stop_health_checker() {
  {
    std::lock_guard lock(checker_mu_);
    stopping_ = true;
  }
  checker_cv_.notify_all();
  if (checker_.joinable()) checker_.join();
}

void ToolService::health_loop(std::chrono::milliseconds interval) {
  for (;;) {
    {
      std::unique_lock lock(checker_mu_);
      if (checker_cv_.wait_for(lock, interval, [this] { return stopping_; })) return;
    }
    auto all = list();
    if (!all.ok()) continue;
    for (const auto& a : *all) {
      {
        std::lock_guard lock(checker_mu_);
        if (stopping_) return;
      }
      auto r = check_health(a.id, "health-" + ids::uuid_v7());
      if (r.ok() && r->changed) {
        log::global().info("mcp adapter health changed",
                           {{"adapter", a.name}, {"status", r->adapter.status}, {"reason", r->adapter.status_reason}});
      }
    }
  }
}

}  // namespace dp::mcp
