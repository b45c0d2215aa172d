// HookService: webhook triggers (docs/workflows.md, "Webhooks").
//
// `POST /api/v1/workflows/:id/hooks/:hookId` is public: the signature is the credential. A
// delivery carries three headers:
//
//   X-Devplane-Timestamp: <unix seconds>
//   X-Devplane-Delivery:  <delivery id, 1..128 of [A-Za-z0-9._:-]>
//   X-Devplane-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<delivery id>.<raw body>")>
//
// The secret is the named secret (/api/v1/secrets, sealed at rest) that the trigger names.
// Timestamp and delivery id are signed with the body so that neither can be changed to get a
// captured delivery past the time window or the replay check. Checks, in order: the hook
// exists on an active workflow (404), the headers are well formed (400), the signature (401
// bad_signature), the timestamp within `tolerance` of now (401 stale_timestamp), the delivery id
// not seen before for this hook (a repeat answers 200 with the execution the first one started
// and starts nothing), then the execution starts (cause `webhook`) and the delivery id is
// recorded in the same transaction.
//
// Blocking (calls the store): run on the blocking pool. Safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "auth/secrets.hpp"
#include "core/result.hpp"
#include "model/workflow.hpp"
#include "store/store.hpp"

namespace dp::workflow {

inline constexpr std::size_t kMaxHookBodyBytes = 256 * 1024;

struct HookOptions {
  std::chrono::seconds tolerance{300};
  std::function<std::int64_t()> now_ms;  // default: the system clock
};

struct HookDelivery {
  std::string workflow_id;
  std::string hook_id;
  std::string timestamp;
  std::string delivery_id;
  std::string signature;
  std::string body;
  std::string correlation_id;
};

struct HookOutcome {
  model::Execution execution;
  bool duplicate = false;  // the delivery id was seen before; `execution` is the first one's
};

class HookService {
 public:
  HookService(store::Store& store, const auth::Secrets& secrets, HookOptions options,
              std::function<void(const std::string&)> started = {})
      : store_(store), secrets_(secrets), options_(std::move(options)), started_(std::move(started)) {}

  // kNotFound (no such hook), kInvalidArgument (headers; or `validation_failed` inputs),
  // kUnauthenticated (`bad_signature`, `stale_timestamp`), kResourceExhausted
  // (`payload_too_large`), kUnavailable (the hook's secret is not set).
  Result<HookOutcome> deliver(const HookDelivery& delivery);

 private:
  store::Store& store_;
  const auth::Secrets& secrets_;
  const HookOptions options_;
  std::function<void(const std::string&)> started_;
};

// "sha256=<hex>" for `secret` over "<timestamp>.<delivery id>.<body>" (senders and tests).
std::string hook_signature(std::string_view secret, std::string_view timestamp,
                           std::string_view delivery_id, std::string_view body);

}  // namespace dp::workflow
