// Registry: the live connections to the registered MCP servers (adapters), one Client per
// adapter, made on first use and remade after a failure with exponential backoff.
//
// An adapter's config (model::Adapter::config, secrets already opened by the caller) says how
// to reach it. `client` returns the live connection, connecting when there is none; when the
// last attempt failed less than the backoff ago it fails at once with kUnavailable reason
// `adapter_unhealthy` and the last failure, so a dead server costs callers nothing. A
// connection that failed (server crashed, garbage on stdout) is dropped and counts as a
// failure. A config change (different config text) replaces the connection.
//
// Safe from any thread; connecting happens outside the registry's lock, one attempt per
// adapter at a time.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

#include "core/result.hpp"
#include "mcp/client.hpp"

namespace dp::mcp {

struct RegistryOptions {
  std::string work_dir;  // <data_dir>/mcp: per-adapter working folders for stdio servers
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{60'000};
  std::size_t max_message_bytes = 4 * 1024 * 1024;
};

// How an adapter's config (with plain-text secrets) becomes a transport and client options.
// kInvalidArgument `invalid_config` for a config that names no usable transport.
struct ConnectionSpec {
  std::unique_ptr<Transport> transport;
  ClientOptions options;
};
Result<ConnectionSpec> connection_spec(const std::string& adapter_id, const std::string& name,
                                       const boost::json::object& config,
                                       const RegistryOptions& options);

class Registry {
 public:
  explicit Registry(RegistryOptions options) : opt_(std::move(options)) {}
  ~Registry() { close_all(); }

  Result<std::shared_ptr<Client>> client(const std::string& adapter_id, const std::string& name,
                                         const boost::json::object& config);
  // Closes and forgets the adapter's connection and backoff (deleted or reconfigured).
  void forget(const std::string& adapter_id);
  void close_all();
  // The last failure, when the adapter is in backoff.
  std::optional<Error> last_failure(const std::string& adapter_id) const;

 private:
  struct Entry {
    std::shared_ptr<Client> client;
    boost::json::object config;  // the connection's config
    int failures = 0;
    std::chrono::steady_clock::time_point retry_at{};
    std::optional<Error> last_error;
    std::shared_ptr<std::mutex> connect_mu = std::make_shared<std::mutex>();
  };

  std::chrono::milliseconds backoff(int failures) const;

  RegistryOptions opt_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dp::mcp
