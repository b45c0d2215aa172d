// Repositories written once against SqlConn, shared by both backends.
#pragma once

#include <string>

#include "store/internal/sql_conn.hpp"
#include "store/store.hpp"

namespace dp::store::internal {

class SqlAgentRepository final : public AgentRepository {
 public:
  explicit SqlAgentRepository(SqlConn& conn) : conn_(conn) {}

  // store::AgentRepository
  Status insert(const model::Agent& agent) override;
  Result<model::Agent> get(std::string_view id) override;
  Result<Page<model::Agent>> list(const AgentFilter& filter) override;
  Result<std::map<std::string, std::int64_t>> count_by_status(const AgentFilter& filter) override;
  Status update(const model::Agent& agent, std::int64_t expected_version) override;
  Status purge(std::string_view id) override;
  Status append_state(const model::AgentStateEntry& entry) override;
  Result<std::vector<model::AgentStateEntry>> history(std::string_view agent_id,
                                                      int limit) override;

 private:
  std::string where_clause(const AgentFilter& f, bool by_status, std::vector<SqlValue>& params,
                           std::string& like);

  SqlConn& conn_;
};

class SqlOutboxRepository final : public OutboxRepository {
 public:
  explicit SqlOutboxRepository(SqlConn& conn) : conn_(conn) {}

  // store::OutboxRepository
  Result<std::int64_t> append(const OutboxEvent& event) override;
  Result<std::vector<OutboxEvent>> pending(int limit) override;
  Status mark_published(const std::vector<std::int64_t>& ids, std::int64_t at_ms) override;
  Result<std::vector<OutboxEvent>> claim_for_publishing(int limit) override;
  Result<std::optional<std::vector<OutboxEvent>>> ready_to_publish(int limit) override;
  Result<std::vector<OutboxEvent>> since(std::int64_t after_seq, int limit) override;
  Result<std::pair<std::int64_t, std::int64_t>> seq_range() override;
  Result<std::int64_t> prune(std::int64_t before_ms) override;

 private:
  SqlConn& conn_;
};

class SqlMessageRepository final : public MessageRepository {
 public:
  explicit SqlMessageRepository(SqlConn& conn) : conn_(conn) {}

  // store::MessageRepository
  Status insert(const model::Message& message) override;
  Result<Page<model::Message>> list(std::string_view agent_id, std::optional<std::string> after,
                                    int limit, bool undelivered_only) override;
  Result<std::int64_t> mark_delivered(std::string_view agent_id,
                                      const std::vector<std::string>& ids,
                                      std::int64_t at_ms) override;

 private:
  SqlConn& conn_;
};

class SqlLeaseRepository final : public LeaseRepository {
 public:
  explicit SqlLeaseRepository(SqlConn& conn) : conn_(conn) {}

  // store::LeaseRepository
  Result<bool> acquire(std::string_view name, std::string_view holder, std::int64_t now_ms,
                       std::int64_t ttl_ms) override;
  Status take(std::string_view name, std::string_view holder, std::int64_t now_ms,
              std::int64_t ttl_ms) override;
  Result<bool> release(std::string_view name, std::string_view holder) override;

 private:
  SqlConn& conn_;
};

class SqlUserRepository final : public UserRepository {
 public:
  explicit SqlUserRepository(SqlConn& conn) : conn_(conn) {}

  // store::UserRepository
  Status insert(const model::User& user) override;
  Result<model::User> get(std::string_view id) override;
  Result<model::User> find_by_username(std::string_view username) override;
  Result<model::User> find_by_external(std::string_view issuer, std::string_view subject) override;
  Result<std::vector<model::User>> list() override;
  Status update(const model::User& user) override;
  Result<std::int64_t> count_active(std::string_view role) override;

 private:
  Result<model::User> one(std::string_view where, std::span<const SqlValue> params,
                          std::string_view what);
  SqlConn& conn_;
};

class SqlApiKeyRepository final : public ApiKeyRepository {
 public:
  explicit SqlApiKeyRepository(SqlConn& conn) : conn_(conn) {}

  // store::ApiKeyRepository
  Status insert(const model::ApiKey& key) override;
  Result<model::ApiKey> get(std::string_view id) override;
  Result<model::ApiKey> find_by_prefix(std::string_view prefix) override;
  Result<std::vector<model::ApiKey>> list() override;
  Status revoke(std::string_view id, std::int64_t at_ms) override;
  Status touch(std::string_view id, std::int64_t at_ms) override;

 private:
  SqlConn& conn_;
};

class SqlRefreshTokenRepository final : public RefreshTokenRepository {
 public:
  explicit SqlRefreshTokenRepository(SqlConn& conn) : conn_(conn) {}

  // store::RefreshTokenRepository
  Status insert(const model::RefreshToken& token) override;
  Result<model::RefreshToken> find_by_hash(std::string_view token_hash) override;
  Result<bool> mark_rotated(std::string_view id, std::int64_t at_ms) override;
  Result<std::int64_t> revoke_family(std::string_view family_id, std::int64_t at_ms) override;
  Result<std::int64_t> revoke_user(std::string_view user_id, std::int64_t at_ms) override;

 private:
  SqlConn& conn_;
};

class SqlAuditRepository final : public AuditRepository {
 public:
  explicit SqlAuditRepository(SqlConn& conn) : conn_(conn) {}

  // store::AuditRepository
  Result<model::AuditRecord> append(const model::AuditRecord& record) override;
  Result<Page<model::AuditRecord>> list(const AuditFilter& filter) override;
  Result<ChainReport> verify(std::int64_t from_seq, std::int64_t to_seq) override;
  Result<std::int64_t> last_seq() override;

 private:
  SqlConn& conn_;
};

class SqlTaskRepository final : public TaskRepository {
 public:
  explicit SqlTaskRepository(SqlConn& conn) : conn_(conn) {}

  // store::TaskRepository
  Status insert(const model::Task& task) override;
  Result<model::Task> get(std::string_view id) override;
  Result<std::optional<model::Task>> find_by_key(std::string_view agent_id,
                                                 std::string_view key) override;
  Result<Page<model::Task>> list(const TaskFilter& filter) override;
  Result<std::optional<model::Task>> claim(std::string_view agent_id, std::string_view node_id,
                                           std::int64_t now_ms, std::int64_t lease_until) override;
  Result<std::int64_t> count_running(std::string_view agent_id) override;
  Result<std::vector<model::Task>> list_running(const std::vector<std::string>& agent_ids) override;
  Status renew(std::string_view node_id, std::int64_t lease_until) override;
  Status finish(std::string_view id, std::string_view node_id, std::string_view status,
                std::string_view result_json, std::string_view error, std::int64_t now_ms) override;
  Result<model::Task> request_cancel(std::string_view id, std::int64_t now_ms) override;
  Result<bool> cancel_requested(std::string_view id) override;
  Result<std::int64_t> requeue_expired(std::int64_t now_ms) override;
  Result<std::vector<model::Task>> take_over(std::string_view agent_id, std::string_view node_id,
                                             std::int64_t lease_until) override;

 private:
  SqlConn& conn_;
};

class SqlMetricRepository final : public MetricRepository {
 public:
  explicit SqlMetricRepository(SqlConn& conn) : conn_(conn) {}

  // store::MetricRepository
  Status append(const model::Metric& metric) override;
  Result<std::vector<model::Metric>> list(const MetricFilter& filter) override;
  Result<std::vector<model::Metric>> latest(const std::vector<std::string>& agent_ids,
                                            const std::vector<std::string>& types) override;
  Result<std::int64_t> prune(std::string_view agent_id, const std::vector<std::string>& types,
                             std::int64_t before_ms) override;

 private:
  SqlConn& conn_;
};

class SqlAdapterRepository final : public AdapterRepository {
 public:
  explicit SqlAdapterRepository(SqlConn& conn) : conn_(conn) {}
  // store::AdapterRepository
  Status insert(const model::Adapter& adapter) override;
  Result<model::Adapter> get(std::string_view id) override;
  Result<std::vector<model::Adapter>> list() override;
  Status update(const model::Adapter& adapter, std::int64_t expected_version) override;
  Status remove(std::string_view id) override;
  Status record_health(std::string_view id, std::string_view status, std::string_view reason,
                       std::int64_t at_ms, std::optional<std::int64_t> latency_us) override;

 private:
  SqlConn& conn_;
};

class SqlWorkflowRepository final : public WorkflowRepository {
 public:
  explicit SqlWorkflowRepository(SqlConn& conn) : conn_(conn) {}

  // store::WorkflowRepository
  Status insert(const model::Workflow& workflow) override;
  Result<model::Workflow> get(std::string_view id) override;
  Result<std::optional<model::Workflow>> find_by_name(std::string_view name) override;
  Result<Page<model::Workflow>> list(const WorkflowFilter& filter) override;
  Status update(const model::Workflow& workflow, std::int64_t expected_version) override;
  Result<model::WorkflowVersion> get_version(std::string_view id, std::int64_t version) override;

 private:
  SqlConn& conn_;
};

class SqlSecretRepository final : public SecretRepository {
 public:
  explicit SqlSecretRepository(SqlConn& conn) : conn_(conn) {}

  // store::SecretRepository
  Status put(const SecretRecord& secret) override;
  Result<SecretRecord> get(std::string_view name) override;
  Result<std::vector<SecretRecord>> list() override;
  Status remove(std::string_view name) override;

 private:
  SqlConn& conn_;
};

class SqlExecutionRepository final : public ExecutionRepository {
 public:
  explicit SqlExecutionRepository(SqlConn& conn) : conn_(conn) {}

  // store::ExecutionRepository
  Status insert(const model::Execution& execution) override;
  Result<model::Execution> get(std::string_view id) override;
  Result<Page<model::Execution>> list(const ExecutionFilter& filter) override;
  Status update(const model::Execution& execution) override;
  Result<bool> lease(std::string_view id, std::string_view node_id, std::int64_t now_ms,
                     std::int64_t lease_until) override;
  Result<std::vector<std::string>> claimable(std::string_view node_id, std::int64_t now_ms,
                                             int limit) override;
  Result<std::int64_t> steps_version(std::string_view id) override;
  Status insert_step(const model::ExecutionStep& step) override;
  Result<std::vector<model::ExecutionStep>> steps(std::string_view execution_id) override;
  Result<model::ExecutionStep> step(std::string_view execution_id, std::string_view step_id) override;
  Status update_step(const model::ExecutionStep& step, std::string_view expected_status,
                     std::int64_t expected_attempt) override;

 private:
  SqlConn& conn_;
};

class SqlToolExecutionRepository final : public ToolExecutionRepository {
 public:
  explicit SqlToolExecutionRepository(SqlConn& conn) : conn_(conn) {}
  // store::ToolExecutionRepository
  Status insert(const model::ToolExecution& execution) override;
  Result<model::ToolExecution> get(std::string_view id) override;
  Result<Page<model::ToolExecution>> list(const ToolExecutionFilter& filter) override;

 private:
  SqlConn& conn_;
};

class SqlTriggerRepository final : public TriggerRepository {
 public:
  explicit SqlTriggerRepository(SqlConn& conn) : conn_(conn) {}
  // store::TriggerRepository
  Result<std::vector<TriggerState>> list(std::string_view workflow_id) override;
  Status put(const TriggerState& trigger) override;
  Status remove(std::string_view workflow_id, std::string_view trigger_id) override;
  Result<std::vector<TriggerState>> due(std::int64_t now_ms, int limit) override;
  Result<std::int64_t> next_due() override;
  Status insert_delivery(const WebhookDelivery& delivery) override;
  Result<std::optional<WebhookDelivery>> find_delivery(std::string_view workflow_id,
                                                       std::string_view hook_id,
                                                       std::string_view delivery_id) override;
  Result<std::int64_t> prune_deliveries(std::int64_t before_ms) override;

 private:
  SqlConn& conn_;
};

class SqlMemoryRepository final : public MemoryRepository {
 public:
  explicit SqlMemoryRepository(SqlConn& conn) : conn_(conn) {}
  // store::MemoryRepository
  Status insert(const model::Memory& memory) override;
  Result<model::Memory> get(std::string_view id) override;
  Result<std::vector<model::Memory>> get_many(const std::vector<std::string>& ids) override;
  Status remove(std::string_view id) override;
  Result<std::vector<model::Memory>> scan(std::string_view after, int limit) override;
  Status set_embedding(std::string_view id, std::string_view embedder,
                       const std::vector<float>& embedding) override;
  Result<std::int64_t> count() override;

 private:
  SqlConn& conn_;
};

// A Tx over one connection.
class SqlTx final : public Tx {
 public:
  explicit SqlTx(SqlConn& conn)
      : agents_(conn),
        outbox_(conn),
        leases_(conn),
        messages_(conn),
        users_(conn),
        api_keys_(conn),
        refresh_tokens_(conn), audit_(conn), tasks_(conn), metrics_(conn), secrets_(conn),
        workflows_(conn), executions_(conn), adapters_(conn), tool_executions_(conn),
        triggers_(conn), memories_(conn) {}
  AuditRepository& audit() override { return audit_; }
  AgentRepository& agents() override { return agents_; }
  OutboxRepository& outbox() override { return outbox_; }
  LeaseRepository& leases() override { return leases_; }
  MessageRepository& messages() override { return messages_; }
  TaskRepository& tasks() override { return tasks_; }
  MetricRepository& metrics() override { return metrics_; }
  SecretRepository& secrets() override { return secrets_; }
  WorkflowRepository& workflows() override { return workflows_; }
  ExecutionRepository& executions() override { return executions_; }
  AdapterRepository& adapters() override { return adapters_; }
  ToolExecutionRepository& tool_executions() override { return tool_executions_; }
  TriggerRepository& triggers() override { return triggers_; }
  UserRepository& users() override { return users_; }
  ApiKeyRepository& api_keys() override { return api_keys_; }
  RefreshTokenRepository& refresh_tokens() override { return refresh_tokens_; }
  MemoryRepository& memories() override { return memories_; }

 private:
  SqlAgentRepository agents_;
  SqlOutboxRepository outbox_;
  SqlLeaseRepository leases_;
  SqlMessageRepository messages_;
  SqlUserRepository users_;
  SqlApiKeyRepository api_keys_;
  SqlRefreshTokenRepository refresh_tokens_;
  SqlAuditRepository audit_;
  SqlTaskRepository tasks_;
  SqlMetricRepository metrics_;
  SqlSecretRepository secrets_;
  SqlWorkflowRepository workflows_;
  SqlExecutionRepository executions_;
  SqlAdapterRepository adapters_;
  SqlToolExecutionRepository tool_executions_;
  SqlTriggerRepository triggers_;
  SqlMemoryRepository memories_;
};

// Time values: SQLite stores ISO-8601 text, PostgreSQL timestamptz; both read back here.
std::int64_t parse_db_time(const std::optional<std::string>& text);

// The SQL marker of the n-th bound parameter ("$3"). Built with += : gcc 12 warns of a false
// -Wrestrict on "$" + std::to_string(...).
inline std::string bind_marker(std::size_t n) {
  std::string m = "$";
  m += std::to_string(n);
  return m;
}

}  // namespace dp::store::internal
