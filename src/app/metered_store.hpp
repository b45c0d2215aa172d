// MeteredStore: a Store decorator that reports each unit of work's latency to metrics and
// tells the outbox relay when something was committed.
// Thread safety: as the wrapped store.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "metrics/metrics.hpp"
#include "store/store.hpp"

namespace dp::app {

class MeteredStore final : public store::Store {
 public:
  MeteredStore(std::unique_ptr<store::Store> inner, metrics::Metrics& metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  // Called after every committed write that appended an outbox event (the outbox relay
  // wakes on it). Set before use.
  void set_on_commit(std::function<void()> fn) { on_commit_ = std::move(fn); }

  // store::Store
  Status write(const std::function<Status(store::Tx&)>& fn) override {
    bool appended = false;
    Status s = timed("write", [&] {
      return inner_->write([&](store::Tx& tx) {
        NotingTx noting(tx, appended);
        return fn(noting);
      });
    });
    if (s.ok() && appended && on_commit_) on_commit_();
    return s;
  }
  Status write_relaxed(const std::function<Status(store::Tx&)>& fn) override {
    bool appended = false;
    Status s = timed("write", [&] {
      return inner_->write_relaxed([&](store::Tx& tx) {
        NotingTx noting(tx, appended);
        return fn(noting);
      });
    });
    if (s.ok() && appended && on_commit_) on_commit_();
    return s;
  }
  Status read(const std::function<Status(store::Tx&)>& fn) override {
    return timed("read", [&] { return inner_->read(fn); });
  }
  Status ping() override { return timed("ping", [&] { return inner_->ping(); }); }
  Result<std::int64_t> migrate() override { return inner_->migrate(); }
  store::StoreInfo info() override { return inner_->info(); }
  Status check_integrity() override { return inner_->check_integrity(); }
  void close() override { inner_->close(); }

 private:
  // Forwards to the real unit of work and notes whether an event was appended.
  class NotingOutbox final : public store::OutboxRepository {
   public:
    NotingOutbox(store::OutboxRepository& inner, bool& appended) : inner_(inner), appended_(appended) {}
    Result<std::int64_t> append(const store::OutboxEvent& e) override {
      appended_ = true;
      return inner_.append(e);
    }
    Result<std::vector<store::OutboxEvent>> pending(int limit) override { return inner_.pending(limit); }
    Status mark_published(const std::vector<std::int64_t>& ids, std::int64_t at) override {
      return inner_.mark_published(ids, at);
    }
    Result<std::vector<store::OutboxEvent>> claim_for_publishing(int limit) override {
      return inner_.claim_for_publishing(limit);
    }
    Result<std::optional<std::vector<store::OutboxEvent>>> ready_to_publish(int limit) override {
      return inner_.ready_to_publish(limit);
    }
    Result<std::vector<store::OutboxEvent>> since(std::int64_t after, int limit) override {
      return inner_.since(after, limit);
    }
    Result<std::pair<std::int64_t, std::int64_t>> seq_range() override { return inner_.seq_range(); }
    Result<std::int64_t> prune(std::int64_t before_ms) override { return inner_.prune(before_ms); }

   private:
    store::OutboxRepository& inner_;
    bool& appended_;
  };
  class NotingTx final : public store::Tx {
   public:
    NotingTx(store::Tx& inner, bool& appended) : inner_(inner), outbox_(inner.outbox(), appended) {}
    store::AuditRepository& audit() override { return inner_.audit(); }
    store::AgentRepository& agents() override { return inner_.agents(); }
    store::OutboxRepository& outbox() override { return outbox_; }
    store::LeaseRepository& leases() override { return inner_.leases(); }
    store::MessageRepository& messages() override { return inner_.messages(); }
    store::TaskRepository& tasks() override { return inner_.tasks(); }
    store::MetricRepository& metrics() override { return inner_.metrics(); }
    store::SecretRepository& secrets() override { return inner_.secrets(); }
    store::WorkflowRepository& workflows() override { return inner_.workflows(); }
    store::ExecutionRepository& executions() override { return inner_.executions(); }
    store::AdapterRepository& adapters() override { return inner_.adapters(); }
    store::ToolExecutionRepository& tool_executions() override { return inner_.tool_executions(); }
    store::TriggerRepository& triggers() override { return inner_.triggers(); }
    store::UserRepository& users() override { return inner_.users(); }
    store::ApiKeyRepository& api_keys() override { return inner_.api_keys(); }
    store::RefreshTokenRepository& refresh_tokens() override { return inner_.refresh_tokens(); }
    store::MemoryRepository& memories() override { return inner_.memories(); }

   private:
    store::Tx& inner_;
    NotingOutbox outbox_;
  };

  template <class F>
  Status timed(std::string_view op, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    Status s = f();
    // Not-found and conflicts are answers, not store failures.
    const bool ok = s.ok() || (s.error().code != ErrorCode::kUnavailable &&
                               s.error().code != ErrorCode::kInternal);
    metrics_.observe_store(
        op, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), ok);
    return s;
  }

  std::unique_ptr<store::Store> inner_;
  metrics::Metrics& metrics_;
  std::function<void()> on_commit_;
};

}  // namespace dp::app
