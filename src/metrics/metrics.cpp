#include "metrics/metrics.hpp"

#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace dp::metrics {

namespace {
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return b;
}
}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("devplane_http_requests_total")
          .Help("HTTP requests by route pattern, method and status")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("devplane_http_request_duration_seconds")
          .Help("HTTP request latency by route pattern and method")
          .Register(*registry);
  prometheus::Gauge& in_flight = prometheus::BuildGauge()
                                     .Name("devplane_http_requests_in_flight")
                                     .Help("HTTP requests being handled")
                                     .Register(*registry)
                                     .Add({});
  prometheus::Gauge& connections = prometheus::BuildGauge()
                                       .Name("devplane_http_connections")
                                       .Help("Open HTTP connections")
                                       .Register(*registry)
                                       .Add({});
  prometheus::Family<prometheus::Histogram>& store_latency =
      prometheus::BuildHistogram()
          .Name("devplane_store_operation_duration_seconds")
          .Help("Store unit-of-work latency by operation (read, write) and outcome")
          .Register(*registry);

  // Family::Add hashes the label map under a lock; cache the handles per label tuple.
  std::mutex mu;
  std::map<std::tuple<std::string, std::string, unsigned>, prometheus::Counter*> counter_cache;
  std::map<std::pair<std::string, std::string>, prometheus::Histogram*> hist_cache;
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::on_start() { impl_->in_flight.Increment(); }

void Metrics::on_finish(std::string_view route, std::string_view method, unsigned status,
                        double seconds) {
  impl_->in_flight.Decrement();
  prometheus::Counter* c = nullptr;
  prometheus::Histogram* h = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    auto key = std::make_tuple(std::string(route), std::string(method), status);
    auto it = impl_->counter_cache.find(key);
    if (it == impl_->counter_cache.end()) {
      c = &impl_->requests.Add({{"route", std::string(route)},
                                {"method", std::string(method)},
                                {"status", std::to_string(status)}});
      impl_->counter_cache.emplace(std::move(key), c);
    } else {
      c = it->second;
    }
    auto hkey = std::make_pair(std::string(route), std::string(method));
    auto hit = impl_->hist_cache.find(hkey);
    if (hit == impl_->hist_cache.end()) {
      h = &impl_->latency.Add({{"route", hkey.first}, {"method", hkey.second}}, latency_buckets());
      impl_->hist_cache.emplace(std::move(hkey), h);
    } else {
      h = hit->second;
    }
  }
  c->Increment();
  h->Observe(seconds);
}

void Metrics::on_connection(int delta) { impl_->connections.Increment(delta); }

void Metrics::observe_store(std::string_view op, double seconds, bool ok) {
  impl_->store_latency
      .Add({{"op", std::string(op)}, {"outcome", ok ? "ok" : "error"}}, latency_buckets())
      .Observe(seconds);
}

std::string Metrics::scrape() const {
  prometheus::TextSerializer s;
  std::ostringstream out;
  s.Serialize(out, impl_->registry->Collect());
  return out.str();
}

}  // namespace dp::metrics
