// Store: durable state of devplane, one repository per aggregate.
//
// Work happens in units: `write(fn)` runs `fn` inside one database transaction and
// commits only if `fn` returns Ok (the outbox row that announces a change is written in
// the same unit: commit, then announce). `read(fn)` runs `fn` against a consistent
// read-only view. Repositories obtained from a Tx are valid only inside `fn`.
//
// Backends: SQLite (embedded default; one writer connection, a pool of readers) and
// PostgreSQL (libpq connection pool). All calls block: callers on I/O threads must hop
// to the blocking pool first (see http/blocking.hpp). Safe from any thread.
//
// Errors: kNotFound, kAlreadyExists (unique violations), kFailedPrecondition (stale
// version), kUnavailable (database down or busy past its timeout), kAborted
// (serialization conflict that outlived the retries), kInternal.
// No SQLite or libpq type appears in this header; a store never publishes events.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"
#include "model/agent.hpp"
#include "model/audit.hpp"
#include "model/identity.hpp"
#include "model/memory.hpp"
#include "model/message.hpp"
#include "model/metric.hpp"
#include "model/task.hpp"
#include "model/workflow.hpp"
#include "model/tool.hpp"

namespace dp::store {

template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total = 0;
  std::optional<std::string> next_cursor;  // opaque; pass back as `after` for the next page
};

struct AgentFilter {
  std::optional<std::string> status;
  std::optional<std::string> type;
  std::optional<std::string> name_contains;
  bool include_decommissioned = false;  // when no status filter names it
  int limit = 50;
  std::int64_t offset = 0;
  std::optional<std::string> after;  // keyset cursor (an agent id); replaces offset
};

class AgentRepository {
 public:
  virtual ~AgentRepository() = default;
  // kAlreadyExists when a live agent already has this name.
  virtual Status insert(const model::Agent& agent) = 0;
  // kNotFound when absent (decommissioned agents are returned).
  virtual Result<model::Agent> get(std::string_view id) = 0;
  virtual Result<Page<model::Agent>> list(const AgentFilter& filter) = 0;
  // How many agents are in each status, under the filter's `type` and `name_contains` (its
  // status, paging and include_decommissioned are ignored): one GROUP BY, whatever the number
  // of agents. Statuses without agents are absent.
  virtual Result<std::map<std::string, std::int64_t>> count_by_status(
      const AgentFilter& filter) = 0;
  // Writes every field of `agent` if the stored version equals `expected_version`.
  // kFailedPrecondition (reason version_conflict) on a stale version, kNotFound when absent,
  // kAlreadyExists when the new name is taken.
  virtual Status update(const model::Agent& agent, std::int64_t expected_version) = 0;
  // Removes the agent and its history. kNotFound when absent.
  virtual Status purge(std::string_view id) = 0;
  virtual Status append_state(const model::AgentStateEntry& entry) = 0;
  // Newest first.
  virtual Result<std::vector<model::AgentStateEntry>> history(std::string_view agent_id,
                                                              int limit) = 0;
};

class MessageRepository {
 public:
  virtual ~MessageRepository() = default;
  virtual Status insert(const model::Message& message) = 0;
  // Messages to `agent_id`, oldest first, after the message id `after` (a keyset cursor) when
  // given; `undelivered_only` keeps those not yet delivered.
  virtual Result<Page<model::Message>> list(std::string_view agent_id,
                                            std::optional<std::string> after, int limit,
                                            bool undelivered_only) = 0;
  // Sets delivered_at on those of `ids` addressed to `agent_id` that had none; returns how many.
  virtual Result<std::int64_t> mark_delivered(std::string_view agent_id,
                                              const std::vector<std::string>& ids,
                                              std::int64_t at_ms) = 0;
};

struct TaskFilter {
  std::string agent_id;
  std::optional<std::string> status;
  std::optional<std::string> after;  // keyset cursor (a task id)
  int limit = 50;
};

class TaskRepository {
 public:
  virtual ~TaskRepository() = default;
  // kAlreadyExists when the agent already has a task with this idempotency key.
  virtual Status insert(const model::Task& task) = 0;
  // kNotFound when absent.
  virtual Result<model::Task> get(std::string_view id) = 0;
  virtual Result<std::optional<model::Task>> find_by_key(std::string_view agent_id,
                                                         std::string_view key) = 0;
  // Newest first.
  virtual Result<Page<model::Task>> list(const TaskFilter& filter) = 0;
  // Takes the oldest queued task of `agent_id` for `node_id` until `lease_until` (epoch ms):
  // status running, attempts + 1. nullopt when none is queued (or another node took it).
  virtual Result<std::optional<model::Task>> claim(std::string_view agent_id,
                                                   std::string_view node_id, std::int64_t now_ms,
                                                   std::int64_t lease_until) = 0;
  virtual Result<std::int64_t> count_running(std::string_view agent_id) = 0;
  // The running tasks of any of `agent_ids`, oldest first. REQUIRES: agent_ids.size() <= 1000.
  virtual Result<std::vector<model::Task>> list_running(const std::vector<std::string>& agent_ids) = 0;
  // Extends the lease of the running tasks `node_id` holds.
  virtual Status renew(std::string_view node_id, std::int64_t lease_until) = 0;
  // Ends a task `node_id` is running. kFailedPrecondition when it no longer is (requeued or
  // taken over), so a late finisher cannot overwrite another node's attempt.
  virtual Status finish(std::string_view id, std::string_view node_id, std::string_view status,
                        std::string_view result_json, std::string_view error,
                        std::int64_t now_ms) = 0;
  // Queued: cancelled at once. Running: cancel_requested set, the runner stops it.
  // Finished: kFailedPrecondition. Returns the task after the change.
  virtual Result<model::Task> request_cancel(std::string_view id, std::int64_t now_ms) = 0;
  // True when a cancel was requested for this running task.
  virtual Result<bool> cancel_requested(std::string_view id) = 0;
  // Running tasks whose lease lapsed go back to queued; returns how many.
  virtual Result<std::int64_t> requeue_expired(std::int64_t now_ms) = 0;
  // Gives every running task of `agent_id` to `node_id` until `lease_until`, keeping its
  // attempt (a remote agent that reconnects resumes what it was doing); oldest first.
  virtual Result<std::vector<model::Task>> take_over(std::string_view agent_id,
                                                     std::string_view node_id,
                                                     std::int64_t lease_until) = 0;
};

struct WorkflowFilter {
  std::optional<std::string> name_contains;
  bool include_archived = false;
  std::optional<std::string> after;  // keyset cursor (a workflow id)
  int limit = 50;
};

// Workflows and their versions. Names are unique among workflows that are not archived.
class WorkflowRepository {
 public:
  virtual ~WorkflowRepository() = default;
  // Writes the workflow and its version row. kAlreadyExists when a live workflow has the name.
  virtual Status insert(const model::Workflow& workflow) = 0;
  // kNotFound when absent (archived workflows are returned).
  virtual Result<model::Workflow> get(std::string_view id) = 0;
  // The live workflow with this name, if any.
  virtual Result<std::optional<model::Workflow>> find_by_name(std::string_view name) = 0;
  // Oldest first.
  virtual Result<Page<model::Workflow>> list(const WorkflowFilter& filter) = 0;
  // Stores `workflow` (its version already incremented) and the new version row when the
  // stored version equals `expected_version`. kFailedPrecondition `version_conflict` on a stale
  // version, kNotFound when absent, kAlreadyExists when the new name is taken.
  virtual Status update(const model::Workflow& workflow, std::int64_t expected_version) = 0;
  // kNotFound when the workflow or the version does not exist.
  virtual Result<model::WorkflowVersion> get_version(std::string_view id, std::int64_t version) = 0;
};

struct ExecutionFilter {
  std::optional<std::string> workflow_id;
  std::optional<std::string> status;
  std::optional<std::string> parent_execution_id;
  std::optional<std::string> after;  // keyset cursor (an execution id)
  int limit = 50;
  std::optional<std::string> cause;  // manual | schedule | webhook | workflow
};

// MCP adapters (registered MCP servers). Names are unique.
class AdapterRepository {
 public:
  virtual ~AdapterRepository() = default;
  // kAlreadyExists when the name is taken.
  virtual Status insert(const model::Adapter& adapter) = 0;
  // kNotFound when absent.
  virtual Result<model::Adapter> get(std::string_view id) = 0;
  // Every adapter, by name.
  virtual Result<std::vector<model::Adapter>> list() = 0;
  // Writes every field but the health ones if the stored version equals `expected_version`.
  // kFailedPrecondition (reason version_conflict) on a stale version, kNotFound when absent,
  // kAlreadyExists when the new name is taken.
  virtual Status update(const model::Adapter& adapter, std::int64_t expected_version) = 0;
  // kNotFound when absent. Its executions stay, with adapter_id null.
  virtual Status remove(std::string_view id) = 0;
  // Status, reason, last_health_check and (when given) latency; not versioned, as the health
  // checker writes it concurrently with operators' edits. kNotFound when absent.
  virtual Status record_health(std::string_view id, std::string_view status,
                               std::string_view reason, std::int64_t at_ms,
                               std::optional<std::int64_t> latency_us) = 0;
};

struct ToolExecutionFilter {
  std::optional<std::string> adapter_id;
  std::optional<std::string> tool_name;
  std::optional<std::string> after;  // keyset cursor (an execution id)
  int limit = 50;
};

// Workflow executions and their steps. Every step write is a compare-and-set on the status
// and attempt the writer read, so a writer acting on a superseded attempt changes nothing.
class ExecutionRepository {
 public:
  virtual ~ExecutionRepository() = default;
  virtual Status insert(const model::Execution& execution) = 0;
  // kNotFound when absent.
  virtual Result<model::Execution> get(std::string_view id) = 0;
  // Newest first.
  virtual Result<Page<model::Execution>> list(const ExecutionFilter& filter) = 0;
  // Writes status, outputs, error, cancel_requested, started_at, completed_at.
  virtual Status update(const model::Execution& execution) = 0;
  // Takes or renews the lease of an unfinished execution for `node_id` until `lease_until` when
  // the node holds it already or the holder's lease lapsed before `now_ms`. False otherwise
  // (another node drives it, or it has finished).
  virtual Result<bool> lease(std::string_view id, std::string_view node_id, std::int64_t now_ms,
                             std::int64_t lease_until) = 0;
  // Ids of unfinished executions this node may drive (its own or with a lapsed lease), oldest
  // first, at most `limit`.
  virtual Result<std::vector<std::string>> claimable(std::string_view node_id, std::int64_t now_ms,
                                                     int limit) = 0;
  // The execution's steps_version: a counter the store bumps on every insert, update or delete
  // of one of its step rows, by any writer. kNotFound when absent.
  virtual Result<std::int64_t> steps_version(std::string_view id) = 0;
  // kAlreadyExists when the execution already has this step.
  virtual Status insert_step(const model::ExecutionStep& step) = 0;
  // In creation order.
  virtual Result<std::vector<model::ExecutionStep>> steps(std::string_view execution_id) = 0;
  virtual Result<model::ExecutionStep> step(std::string_view execution_id,
                                            std::string_view step_id) = 0;
  // Writes every mutable field of `step` when the stored row still has `expected_status` and
  // `expected_attempt`. kFailedPrecondition `stale_step` otherwise.
  virtual Status update_step(const model::ExecutionStep& step, std::string_view expected_status,
                             std::int64_t expected_attempt) = 0;
};

// The state of one trigger of a workflow's current version (docs/workflows.md, "Triggers").
struct TriggerState {
  std::string workflow_id;
  std::string trigger_id;
  std::string kind;  // schedule | webhook
  std::string spec;  // schedule: what next_fire_at was computed from; a change recomputes it
  std::int64_t next_fire_at = 0;  // schedule: epoch ms of the next scheduled time; 0: none
  std::int64_t last_fire_at = 0;  // the scheduled time (or receipt) of the last execution
  std::string last_execution_id;
};

// A webhook delivery that started an execution (replay protection).
struct WebhookDelivery {
  std::string workflow_id;
  std::string hook_id;
  std::string delivery_id;
  std::string execution_id;
  std::int64_t received_at = 0;  // epoch ms
};

// Trigger rows (kept in step with each workflow's current definition by the workflow service)
// and the webhook deliveries seen.
class TriggerRepository {
 public:
  virtual ~TriggerRepository() = default;
  // The trigger rows of a workflow, by trigger id.
  virtual Result<std::vector<TriggerState>> list(std::string_view workflow_id) = 0;
  // Inserts, or replaces every field of the row with the same workflow and trigger id.
  virtual Status put(const TriggerState& trigger) = 0;
  virtual Status remove(std::string_view workflow_id, std::string_view trigger_id) = 0;
  // Schedule triggers of active workflows whose next_fire_at (> 0) is at or before now_ms,
  // soonest first, at most `limit`.
  virtual Result<std::vector<TriggerState>> due(std::int64_t now_ms, int limit) = 0;
  // The earliest next_fire_at (> 0) of a schedule trigger of an active workflow; 0: none.
  virtual Result<std::int64_t> next_due() = 0;
  // kAlreadyExists when the hook has recorded this delivery id already.
  virtual Status insert_delivery(const WebhookDelivery& delivery) = 0;
  virtual Result<std::optional<WebhookDelivery>> find_delivery(std::string_view workflow_id,
                                                               std::string_view hook_id,
                                                               std::string_view delivery_id) = 0;
  // Forgets deliveries received before `before_ms`; returns how many.
  virtual Result<std::int64_t> prune_deliveries(std::int64_t before_ms) = 0;
};

// The record of every tool call (append-only).
class ToolExecutionRepository {
 public:
  virtual ~ToolExecutionRepository() = default;
  virtual Status insert(const model::ToolExecution& execution) = 0;
  // kNotFound when absent.
  virtual Result<model::ToolExecution> get(std::string_view id) = 0;
  // Newest first.
  virtual Result<Page<model::ToolExecution>> list(const ToolExecutionFilter& filter) = 0;
};

// An event waiting to be published; `payload` is a JSON document.
struct OutboxEvent {
  std::int64_t id = 0;  // assigned at insert; follows insertion, not commit order
  std::string topic;
  std::string payload;
  std::string correlation_id;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> published_at;
  std::int64_t seq = 0;  // global event order, assigned by claim_for_publishing; 0 until then
};

class OutboxRepository {
 public:
  virtual ~OutboxRepository() = default;
  // Returns the new id.
  virtual Result<std::int64_t> append(const OutboxEvent& event) = 0;
  // Unpublished events in id order.
  virtual Result<std::vector<OutboxEvent>> pending(int limit) = 0;
  virtual Status mark_published(const std::vector<std::int64_t>& ids, std::int64_t at_ms) = 0;

  // Gives the next `seq` numbers (continuing after the highest one given) to up to `limit`
  // committed rows that have none, in id order, then returns the rows that have a seq but are
  // not yet published, in seq order (at most `limit`). SQLite, with its single writer, gives
  // the seq already in `append` (commit order is insert order there); PostgreSQL here. Rows a crashed relay sequenced but did
  // not publish come back with the seq they already had, so republishing is idempotent.
  // REQUIRES: the caller holds the relay lease (one sequencer at a time).
  virtual Result<std::vector<OutboxEvent>> claim_for_publishing(int limit) = 0;
  // The read-only half of claim_for_publishing, for inside Store::read: the rows it would
  // return, or nullopt when some row still waits for its seq (then claim in a write). On
  // SQLite every row has its seq from `append`, so the relay's usual round writes nothing
  // and does not wait behind other writers' disk syncs.
  virtual Result<std::optional<std::vector<OutboxEvent>>> ready_to_publish(int limit) = 0;
  // Sequenced events with seq > `after_seq`, in seq order, at most `limit` (for resume).
  virtual Result<std::vector<OutboxEvent>> since(std::int64_t after_seq, int limit) = 0;
  // The lowest and highest seq still retained (0, 0 when none).
  virtual Result<std::pair<std::int64_t, std::int64_t>> seq_range() = 0;
  // Deletes published events created before `before_ms`; returns how many.
  virtual Result<std::int64_t> prune(std::int64_t before_ms) = 0;
};

// Named leases for singleton work (the outbox relay, schedulers) across nodes.
class LeaseRepository {
 public:
  virtual ~LeaseRepository() = default;
  // Takes or renews lease `name` for `holder` until now_ms + ttl_ms. True when `holder` holds
  // it afterwards; false when another holder's lease has not expired yet.
  virtual Result<bool> acquire(std::string_view name, std::string_view holder,
                               std::int64_t now_ms, std::int64_t ttl_ms) = 0;
  // Gives `holder` the lease until now_ms + ttl_ms whoever held it (a newer claim wins, as a
  // remote agent's newest connection does).
  virtual Status take(std::string_view name, std::string_view holder, std::int64_t now_ms,
                      std::int64_t ttl_ms) = 0;
  // Gives the lease up if `holder` holds it (lapsed or not). True when it did.
  virtual Result<bool> release(std::string_view name, std::string_view holder) = 0;
};

// Users (people who log in). Usernames and (external_issuer, external_subject) are unique.
class UserRepository {
 public:
  virtual ~UserRepository() = default;
  // kAlreadyExists when the username (or the external identity) is taken.
  virtual Status insert(const model::User& user) = 0;
  // kNotFound when absent.
  virtual Result<model::User> get(std::string_view id) = 0;
  virtual Result<model::User> find_by_username(std::string_view username) = 0;
  virtual Result<model::User> find_by_external(std::string_view issuer,
                                               std::string_view subject) = 0;
  // Every user, by username.
  virtual Result<std::vector<model::User>> list() = 0;
  // Writes the mutable fields (display_name, role, status, password_hash, failed_logins,
  // locked_until, updated_at, last_login_at). kNotFound when absent.
  virtual Status update(const model::User& user) = 0;
  // Active users with this role.
  virtual Result<std::int64_t> count_active(std::string_view role) = 0;
};

// API keys; the key itself is never stored, only its hash.
class ApiKeyRepository {
 public:
  virtual ~ApiKeyRepository() = default;
  // kAlreadyExists when the prefix is taken.
  virtual Status insert(const model::ApiKey& key) = 0;
  // kNotFound when absent.
  virtual Result<model::ApiKey> get(std::string_view id) = 0;
  virtual Result<model::ApiKey> find_by_prefix(std::string_view prefix) = 0;
  // Every key, newest first.
  virtual Result<std::vector<model::ApiKey>> list() = 0;
  // Sets revoked_at if unset. kNotFound when absent; Ok when already revoked.
  virtual Status revoke(std::string_view id, std::int64_t at_ms) = 0;
  virtual Status touch(std::string_view id, std::int64_t at_ms) = 0;
};

// Refresh tokens, stored hashed; tokens rotated from one login share a family.
class RefreshTokenRepository {
 public:
  virtual ~RefreshTokenRepository() = default;
  virtual Status insert(const model::RefreshToken& token) = 0;
  // kNotFound when no token has this hash.
  virtual Result<model::RefreshToken> find_by_hash(std::string_view token_hash) = 0;
  // Marks the token rotated if it was neither rotated nor revoked; false when it already was
  // (a concurrent refresh won, or the token is being reused).
  virtual Result<bool> mark_rotated(std::string_view id, std::int64_t at_ms) = 0;
  // Revokes every live token of the family / of the user; returns how many.
  virtual Result<std::int64_t> revoke_family(std::string_view family_id, std::int64_t at_ms) = 0;
  virtual Result<std::int64_t> revoke_user(std::string_view user_id, std::int64_t at_ms) = 0;
};

// Filters for the audit log; every set field must match. Newest first.
struct AuditFilter {
  std::optional<std::string> actor;          // actor_id or actor_name equals
  std::optional<std::string> action_prefix;  // action starts with
  std::optional<std::string> outcome;        // "success" | "failure" | "denied"
  std::optional<std::string> target;         // target equals
  std::optional<std::int64_t> from_ms;       // at >= from
  std::optional<std::int64_t> to_ms;         // at < to
  int limit = 50;
  std::optional<std::int64_t> before_seq;  // keyset cursor: entries with seq < before_seq
};

// What walking (part of) the audit chain found.
struct ChainReport {
  bool verified = true;
  std::int64_t checked = 0;      // entries whose links and hashes were recomputed
  std::int64_t first_seq = 0;    // the range walked (0, 0 when empty)
  std::int64_t last_seq = 0;
  std::optional<std::int64_t> broken_at;  // the first seq that does not verify
  std::string reason;                     // why, when broken
  std::string head_hash;                  // hash of the last entry walked (anchor it elsewhere)
};

// The audit log: append-only and hash-chained (see store/audit_chain.hpp). There is no
// update or delete. Appends are serialized (SQLite's one writer; on PostgreSQL an advisory
// transaction lock), so the chain never forks.
class AuditRepository {
 public:
  virtual ~AuditRepository() = default;
  // Appends `record` at the end of the chain: sets seq (last + 1), prev_hash and hash, and
  // returns the stored record. `record.details` must be a JSON object's text.
  // REQUIRES: inside Store::write.
  virtual Result<model::AuditRecord> append(const model::AuditRecord& record) = 0;
  // Entries matching `filter`, newest first; `next_cursor` is a seq to pass as before_seq.
  virtual Result<Page<model::AuditRecord>> list(const AuditFilter& filter) = 0;
  // Walks the chain over seq in [from_seq, to_seq] (from 1 when from_seq <= 1, to the last
  // entry when to_seq <= 0), recomputing every link and hash; stops at the first break.
  // A range that starts past 1 is anchored on the stored hash of entry from_seq - 1.
  virtual Result<ChainReport> verify(std::int64_t from_seq, std::int64_t to_seq) = 0;
  // The highest seq, 0 when the log is empty.
  virtual Result<std::int64_t> last_seq() = 0;
};

// Filters for agent metrics; every set field must match. Oldest first.
struct MetricFilter {
  std::string agent_id;
  std::optional<std::string> task_id;
  std::optional<std::string> metric_type;
  int limit = 1000;
};

// agent_metrics rows (token use, latency, turns).
class MetricRepository {
 public:
  virtual ~MetricRepository() = default;
  // Appends `metric` (its id is assigned). kFailedPrecondition `foreign_key` when the agent
  // does not exist.
  virtual Status append(const model::Metric& metric) = 0;
  virtual Result<std::vector<model::Metric>> list(const MetricFilter& filter) = 0;
  // The newest row of each of `types` for each of `agent_ids` (absent when there is none),
  // one indexed look-up per pair. REQUIRES: agent_ids.size() * types.size() <= 1000.
  virtual Result<std::vector<model::Metric>> latest(const std::vector<std::string>& agent_ids,
                                                    const std::vector<std::string>& types) = 0;
  // Deletes the agent's rows of `types` older than `before_ms`; how many.
  virtual Result<std::int64_t> prune(std::string_view agent_id, const std::vector<std::string>& types,
                                     std::int64_t before_ms) = 0;
};

// A named secret: `value` is sealed (auth::Secrets), never plaintext; the store neither seals
// nor opens.
struct SecretRecord {
  std::string name;
  std::string value;
  std::string updated_by;
  std::int64_t created_at = 0;  // epoch ms
  std::int64_t updated_at = 0;
};

class SecretRepository {
 public:
  virtual ~SecretRepository() = default;
  // Inserts, or replaces the value of an existing name (created_at is kept).
  virtual Status put(const SecretRecord& secret) = 0;
  // kNotFound when there is no such name.
  virtual Result<SecretRecord> get(std::string_view name) = 0;
  // Every secret by name (values included: callers must not show them).
  virtual Result<std::vector<SecretRecord>> list() = 0;
  // kNotFound when there is no such name.
  virtual Status remove(std::string_view name) = 0;
};

// Memories (src/memory/): text with its embedding. The store neither embeds nor searches; the
// memory service keeps the index and asks for rows by id.
class MemoryRepository {
 public:
  virtual ~MemoryRepository() = default;
  // kAlreadyExists when the id, or a non-empty task_id, is already stored.
  virtual Status insert(const model::Memory& memory) = 0;
  // kNotFound when absent.
  virtual Result<model::Memory> get(std::string_view id) = 0;
  // Those of `ids` that exist, in no particular order.
  virtual Result<std::vector<model::Memory>> get_many(const std::vector<std::string>& ids) = 0;
  // kNotFound when absent.
  virtual Status remove(std::string_view id) = 0;
  // Memories in id order after `after` (all when empty), at most `limit`: the index is rebuilt
  // from these pages at start.
  virtual Result<std::vector<model::Memory>> scan(std::string_view after, int limit) = 0;
  // Replaces the embedding (another embedder made a new one). kNotFound when absent.
  virtual Status set_embedding(std::string_view id, std::string_view embedder,
                               const std::vector<float>& embedding) = 0;
  virtual Result<std::int64_t> count() = 0;
};

// One unit of work.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual AuditRepository& audit() = 0;
  virtual AgentRepository& agents() = 0;
  virtual OutboxRepository& outbox() = 0;
  virtual LeaseRepository& leases() = 0;
  virtual MessageRepository& messages() = 0;
  virtual TaskRepository& tasks() = 0;
  virtual MetricRepository& metrics() = 0;
  virtual SecretRepository& secrets() = 0;
  virtual WorkflowRepository& workflows() = 0;
  virtual ExecutionRepository& executions() = 0;
  virtual AdapterRepository& adapters() = 0;
  virtual ToolExecutionRepository& tool_executions() = 0;
  virtual TriggerRepository& triggers() = 0;
  virtual UserRepository& users() = 0;
  virtual ApiKeyRepository& api_keys() = 0;
  virtual RefreshTokenRepository& refresh_tokens() = 0;
  virtual MemoryRepository& memories() = 0;
};

struct StoreInfo {
  std::string backend;      // "sqlite" | "postgres"
  std::string location;     // file path or masked URL
  std::int64_t schema_version = 0;
  std::string server_version;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Status write(const std::function<Status(Tx&)>& fn) = 0;
  // Like write(), but the commit does not wait for the disk (SQLite: synchronous=NORMAL for
  // this transaction, so the WAL frames are written but not synced; PostgreSQL:
  // synchronous_commit off): the unit becomes durable with the next ordinary write, or is lost
  // if the machine (SQLite) or the database server (PostgreSQL) dies first; a crash of
  // devplane alone loses nothing. For bookkeeping whose loss is harmless because it is redone
  // (outbox rows marked published are published again, and the bus drops what it already
  // has), for records whose loss in a power failure the operator accepted (audit entries
  // under `audit_records: relaxed`), and for derived records that waited in memory before
  // being written, so were never safe from a crash (task-outcome memories); never for a state
  // that is reported or acted on. Units still commit in order with every other write.
  virtual Status write_relaxed(const std::function<Status(Tx&)>& fn) { return write(fn); }
  virtual Status read(const std::function<Status(Tx&)>& fn) = 0;
  // A cheap round trip; kUnavailable when the database cannot be reached.
  virtual Status ping() = 0;
  // Applies pending migrations. kFailedPrecondition when the database is newer than this binary.
  virtual Result<std::int64_t> migrate() = 0;
  virtual StoreInfo info() = 0;
  // Integrity check (SQLite `PRAGMA integrity_check`; PostgreSQL: a ping). Ok when sound.
  virtual Status check_integrity() = 0;
  // Closes every connection; later calls fail with kUnavailable.
  virtual void close() = 0;
};

// Opens the store the config names (PostgreSQL when database_url is set, else SQLite in
// data_dir). Does not migrate.
Result<std::unique_ptr<Store>> open_store(const Config& config);

// The newest schema version this binary knows.
std::int64_t latest_schema_version();

}  // namespace dp::store
