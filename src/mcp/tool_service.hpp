// ToolService: the registered MCP servers ("adapters") and every tool call made through them
// (the /api/v1/tools routes and, later, workflow steps and agents).
//
// - Adapters live in the store; secrets in their config (values of `env` and `headers`) are
//   sealed with auth::Secrets before they are written and opened only to connect. Views for
//   callers (`adapter_json`) show them as "***".
// - Live connections come from the Registry (one Client per adapter, backoff after failures).
// - Pinning: the first catalog seen (at registration) is pinned, one hash per tool
//   (mcp::Tool::pin_hash). Whenever the live catalog is read again, a tool whose hash differs
//   from its pin, or a tool that was not pinned, is flagged (stored in flagged_tools with a
//   `tool.catalog.changed` event) and held: execute refuses it with kFailedPrecondition
//   `tool_held` until an operator approves the current version (`approve`).
// - Every call that reaches an adapter, or is refused because the tool is held or the adapter
//   is down, writes a tool_executions row (arguments redacted with auth::redact) and a
//   `tool.execution.result` event in one transaction. Arguments that fail the tool's input
//   schema are refused before that (422) and change nothing.
// - Health: `check_health` pings the adapter (connecting if needed), records status,
//   last_health_check and latency, and emits `tool.adapter.status` when the status or reason
//   changes. `start_health_checker` runs that for every adapter periodically on a thread.
//
// Blocking (store and MCP calls): run on the blocking pool. Safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "auth/secrets.hpp"
#include "core/result.hpp"
#include "mcp/protocol.hpp"
#include "mcp/registry.hpp"
#include "model/tool.hpp"
#include "store/store.hpp"

namespace dp::mcp {

struct AdapterInput {
  std::string name;
  boost::json::object config;  // validated by the caller (see api/v1/tools.cpp)
};

struct ExecuteRequest {
  std::string adapter_id;
  std::string tool;
  boost::json::value arguments;  // an object
  std::string caller;            // "user:<id>", "apikey:<id>", "workflow:<id>", ...
  std::string correlation_id;
  // Cancel token (the agents' flag, or /mcp's for a client's notifications/cancelled): setting
  // it ends a call in flight (the server is sent notifications/cancelled) with kAborted
  // `cancelled`, recorded with status "cancelled".
  const std::atomic<bool>* cancel = nullptr;
  // Every notifications/progress the adapter sends for this call (its params as sent, the
  // token devplane's own), on a transport thread, possibly after execute returned.
  ProgressFn on_progress;
  // The adapter as the caller just read it (the gateway does, to resolve the name): saves
  // execute its own read. Must be the adapter named by adapter_id.
  std::optional<model::Adapter> adapter;
};

struct HealthReport {
  model::Adapter adapter;  // after the check
  bool changed = false;    // status or reason changed
};

struct CatalogEntry {
  Tool tool;
  std::string pin_hash;     // current
  std::string pinned_hash;  // approved; empty when the tool was never approved
  bool held = false;
};

struct Catalog {
  std::vector<CatalogEntry> tools;
  InitializeResult server;
};

class ToolService {
 public:
  // `on_commit` is called after a unit of work that appended events (may be empty).
  ToolService(store::Store& store, Registry& registry, const auth::Secrets& secrets,
              std::function<void()> on_commit = {});
  ~ToolService();
  ToolService(const ToolService&) = delete;
  ToolService& operator=(const ToolService&) = delete;

  // Registers the adapter, then connects and pins its catalog (or records why it could not:
  // the adapter is created either way, status unhealthy). kAlreadyExists for a taken name.
  Result<model::Adapter> create(AdapterInput&& input, const std::string& actor,
                                const std::string& correlation_id);
  Result<std::vector<model::Adapter>> list();
  Result<model::Adapter> get(const std::string& id);
  // Replaces name and config ("***" for a secret keeps the stored value). A changed config
  // reconnects. kFailedPrecondition version_conflict when `expected_version` is stale.
  Result<model::Adapter> update(const std::string& id, AdapterInput&& input,
                                std::optional<std::int64_t> expected_version,
                                const std::string& correlation_id);
  Status remove(const std::string& id, const std::string& correlation_id);

  Result<HealthReport> check_health(const std::string& id, const std::string& correlation_id);
  // The live catalog with each tool's pin state.
  Result<Catalog> catalog(const std::string& id, const std::string& correlation_id);
  // Pins the current version of `tools` (all held tools when empty) and releases them.
  // kNotFound for a name the server does not list.
  Result<model::Adapter> approve(const std::string& id, const std::vector<std::string>& tools,
                                 const std::string& actor, const std::string& correlation_id);
  // Calls the tool. The execution record on success and on tool errors (isError); errors
  // otherwise: kNotFound (adapter or tool), kInvalidArgument validation_failed (arguments),
  // kFailedPrecondition tool_held / adapter_disabled, kUnavailable, kDeadlineExceeded.
  Result<model::ToolExecution> execute(ExecuteRequest&& request);
  Result<store::Page<model::ToolExecution>> executions(const store::ToolExecutionFilter& filter);

  // Moves whenever the tools callers may see could have changed on this node: an adapter
  // registered, updated, approved or removed, its health status changed, or tools held.
  std::uint64_t catalog_generation() const { return catalog_gen_.load(); }

  // How `execute` writes its record (config `mcp_tool_records`).
  // - kDurable (the default of a new ToolService): execute returns after the record's
  //   transaction committed and reached the disk.
  // - kRelaxed: execute returns after the record's transaction committed, without waiting for
  //   the disk (Store::write_relaxed): a crash of devplane loses nothing; a power loss before
  //   the next synced commit may lose the record.
  // - kDeferred: the record and its event go to a writer thread, which commits every record
  //   waiting in one transaction (one disk sync for the batch), and execute returns without
  //   waiting for that commit: a crash between the answer and the commit loses that record.
  // `executions` and `flush_records` see every record handed over before them in every mode.
  enum class Records { kDurable, kRelaxed, kDeferred };
  void set_records(Records mode);
  // Waits until every record handed over before this call is committed (or failed, logged).
  void flush_records();

  void start_health_checker(std::chrono::milliseconds interval);
  void stop_health_checker();

  // The adapter as callers see it (secrets masked).
  static boost::json::object adapter_json(const model::Adapter& a);
  static boost::json::object execution_json(const model::ToolExecution& e);

 private:
  boost::json::object seal(const boost::json::object& config, const boost::json::object* stored) const;
  Result<boost::json::object> open(const boost::json::object& config) const;
  Result<std::shared_ptr<Client>> connect(const model::Adapter& a);
  // Compares the catalog's pin hashes with the pins; stores and announces a change of the
  // flagged set. Pins everything when nothing was ever approved. Returns the adapter as now stored.
  model::Adapter sync_pins(model::Adapter a, const ToolCatalog& catalog, const std::string& correlation_id);
  Status record(model::ToolExecution& e, const std::string& adapter_name);
  void health_loop(std::chrono::milliseconds interval);
  void record_loop();
  void stop_record_writer();

  store::Store& store_;
  Registry& registry_;
  const auth::Secrets& secrets_;
  std::function<void()> on_commit_;
  std::thread checker_;
  std::mutex checker_mu_;
  std::condition_variable checker_cv_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> catalog_gen_{0};

  // Deferred records: the queue, the writer thread and how far it got.
  struct QueuedRecord {
    model::ToolExecution execution;
    boost::json::object payload;
  };
  std::mutex records_mu_;
  std::condition_variable records_cv_;
  std::vector<QueuedRecord> records_;      // guarded by records_mu_
  std::uint64_t records_queued_ = 0;       // guarded by records_mu_
  std::uint64_t records_done_ = 0;         // guarded by records_mu_
  bool records_stopping_ = false;          // guarded by records_mu_
  bool deferred_ = false;                  // guarded by records_mu_
  std::atomic<bool> relaxed_{false};       // kRelaxed
  std::thread record_writer_;
};

// Name rules for adapters: 1..64 of [A-Za-z0-9_-].
bool valid_adapter_name(std::string_view name) noexcept;

}  // namespace dp::mcp
