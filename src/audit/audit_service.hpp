// AuditService: the audit module. It implements audit::Recorder (other modules' facts: logins,
// key and user changes) and http::RequestAuditor (every mutating or refused request), and
// answers the audit API and CLI (list with filters, verify the chain).
//
// Entries go to the store's hash-chained audit_log, one short write per entry. Recording
// never throws and never fails its caller: a store failure is logged and counted
// (`failures()`), so an audit outage is visible without turning a login into an error page.
// Nothing recorded holds a request body, a header value or a query value.
// Thread safety: safe from any thread; calls block on the store.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

#include "audit/recorder.hpp"
#include "core/result.hpp"
#include "http/security.hpp"
#include "store/store.hpp"

namespace dp::audit {

// How many of the newest entries a list call re-verifies (the full check is verify()).
inline constexpr std::int64_t kListVerifyWindow = 10'000;

class AuditService final : public Recorder, public http::RequestAuditor {
 public:
  // How an entry's commit is written. kRelaxed: the commit does not wait for the disk sync
  // (Store::write_relaxed), so a request is not held up by a second sync after its change's;
  // the entry survives a crash of devplane at once and a power loss once the next synced
  // commit (anyone's) has run. kDurable: every entry waits for its own sync.
  enum class Commit { kRelaxed, kDurable };

  explicit AuditService(store::Store& store, Commit commit = Commit::kRelaxed);

  // Called after each failed record (for a metric); set before use.
  void set_on_failure(std::function<void()> fn) { on_failure_ = std::move(fn); }

  // audit::Recorder
  void record(Entry entry) override;

  // http::RequestAuditor
  void on_handled(const http::Request& request, const http::Response& response) override;

  // Entries matching `filter`, newest first.
  Result<store::Page<model::AuditRecord>> list(const store::AuditFilter& filter);
  // Walks the whole chain (window <= 0) or only its newest `window` entries.
  Result<store::ChainReport> verify(std::int64_t window = 0);

  // Entries that could not be written since start.
  std::uint64_t failures() const noexcept { return failures_.load(); }

  // The pieces of on_handled, exposed for tests.
  // "success" for 1xx-3xx, "denied" for 401 and 403, else "failure".
  static std::string outcome_for(unsigned status);
  // "agent:<id>" from the route "/api/v1/agents/:id/start" and its params; nested params give
  // "agent:<id>/message:<mid>"; a create without params names what it created when the 201
  // answer carries data.id; else the collection ("agents") or empty.
  static std::string target_for(const http::Request& request, const http::Response& response);

 private:
  store::Store& store_;
  Commit commit_;
  std::atomic<std::uint64_t> failures_{0};
  std::function<void()> on_failure_;
};

// JSON for the API: {seq, id, at (ISO-8601), actor: {id, name, kind}, action, target,
// outcome, status, correlationId, sourceAddress, details, prevHash, hash}.
boost::json::object to_json(const model::AuditRecord& record);
// {verified, checked, firstSeq, lastSeq, headHash, brokenAt?, reason?}
boost::json::object to_json(const store::ChainReport& report);

}  // namespace dp::audit
