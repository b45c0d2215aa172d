// Recorder: where security-relevant facts go (mutating requests, logins, key and user
// changes). The audit module implements it with an append-only, hash-chained log in the
// store; other modules only see this interface.
// Thread safety: implementations are safe from any thread. `record` may block (store).
#pragma once

#include <cstdint>
#include <string>

#include <boost/json/object.hpp>

namespace dp::audit {

struct Entry {
  std::string actor_id;        // user or API key id; empty when nobody was authenticated
  std::string actor_name;      // username or key name, or the name a failed login tried
  std::string actor_kind;      // "user" | "api_key" | "anonymous" | "system"
  std::string action;          // e.g. "auth.login", "POST /api/v1/agents/:id/start"
  std::string target;          // the resource acted on, e.g. "agent:0190..."; may be empty
  std::string outcome;         // "success" | "failure" | "denied"
  int status = 0;              // HTTP status when the fact is a request
  std::string correlation_id;
  std::string source_address;
  boost::json::object details;  // never secrets
  std::int64_t at = 0;          // epoch ms; 0: now
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  // Appends one entry. Failures are logged by the implementation, never thrown: an audit
  // outage must not turn a login into an error page, but it must be visible.
  virtual void record(Entry entry) = 0;
};

}  // namespace dp::audit
