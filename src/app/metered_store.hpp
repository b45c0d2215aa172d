// MeteredStore: a Store decorator that reports each unit of work's latency to metrics.
// Thread safety: as the wrapped store.
#pragma once

#include <chrono>
#include <memory>

#include "metrics/metrics.hpp"
#include "store/store.hpp"

namespace dp::app {

class MeteredStore final : public store::Store {
 public:
  MeteredStore(std::unique_ptr<store::Store> inner, metrics::Metrics& metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  // store::Store
  Status write(const std::function<Status(store::Tx&)>& fn) override {
    return timed("write", [&] { return inner_->write(fn); });
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
};

}  // namespace dp::app
