// Metrics: the process's Prometheus registry (prometheus-cpp) and the instruments the
// core reports to: HTTP requests by route and status, latency histograms, in-flight
// requests, open connections, store operation latency. Safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "http/server.hpp"

namespace dp::metrics {

class Metrics final : public http::RequestObserver {
 public:
  Metrics();
  ~Metrics() override;

  // http::RequestObserver
  void on_start() override;
  void on_finish(std::string_view route, std::string_view method, unsigned status,
                 double seconds) override;
  void on_connection(int delta) override;

  void observe_store(std::string_view op, double seconds, bool ok);

  // The registry in the Prometheus text exposition format (version 0.0.4).
  std::string scrape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dp::metrics
