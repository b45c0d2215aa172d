// /api/v1/system: health (liveness plus store and bus reachability) and info.
#include <chrono>

#include "api/v1/routes.hpp"
#include "app/build_info.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

boost::json::object check(const std::function<Status()>& probe) {
  const auto t0 = std::chrono::steady_clock::now();
  Status s = probe();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  boost::json::object o{{"status", s.ok() ? "up" : "down"}, {"latencyMs", ms}};
  if (!s.ok()) o["error"] = s.error().message;
  return o;
}

}  // namespace

void register_system_routes(http::Router& router, SystemDeps deps) {
  router.add("GET", "/api/v1/system/health", [deps](Request& req) {
    auto store = check([&] { return deps.store->ping(); });
    store["backend"] = deps.store->info().backend;
    auto bus = check(deps.bus_ping);
    bus["backend"] = deps.bus_backend;
    const bool store_up = store["status"] == "up";
    const bool bus_up = bus["status"] == "up";
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                      deps.started_at)
                            .count();
    boost::json::object data{
        {"status", !store_up ? "down" : (bus_up ? "ok" : "degraded")},
        {"version", app::kVersion},
        {"uptimeSeconds", uptime},
        {"checks", boost::json::object{{"store", std::move(store)}, {"bus", std::move(bus)}}}};
    // The store is what every request needs: without it the node cannot serve.
    return http::data_response(store_up ? 200 : 503, std::move(data), {}, req.request_id);
  });

  router.add("GET", "/api/v1/system/info", [deps](Request& req) {
    const auto si = deps.store->info();
    boost::json::object data{
        {"name", "devplane"},
        {"version", app::kVersion},
        {"mode", deps.config->distributed() ? "distributed" : "embedded"},
        {"store", boost::json::object{{"backend", si.backend},
                                      {"location", si.location},
                                      {"schemaVersion", si.schema_version},
                                      {"serverVersion", si.server_version}}},
        {"bus", boost::json::object{{"backend", deps.bus_backend}}},
        {"build", boost::json::object{{"gitCommit", app::kGitCommit},
                                      {"buildType", app::kBuildType},
                                      {"compiler", app::kCompiler},
                                      {"builtAt", app::kBuildDate}}},
        {"connections", deps.connections ? deps.connections() : 0},
    };
    return http::data_response(200, std::move(data), {}, req.request_id);
  });
}

}  // namespace dp::api::v1
