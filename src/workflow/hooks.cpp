#include "workflow/hooks.hpp"

#include <charconv>

#include <boost/json/parse.hpp>

#include "auth/crypto.hpp"
#include "core/clock.hpp"
#include "workflow/definition.hpp"
#include "workflow/service.hpp"

namespace dp::workflow {
namespace {

namespace json = boost::json;

Error unauthenticated(std::string reason, std::string message) {
  Error e;
  e.code = ErrorCode::kUnauthenticated;
  e.reason = std::move(reason);
  e.message = std::move(message);
  return e;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool valid_delivery_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string hook_signature(std::string_view secret, std::string_view timestamp,
                           std::string_view delivery_id, std::string_view body) {
  std::string signed_text;
  signed_text.reserve(timestamp.size() + delivery_id.size() + body.size() + 2);
  signed_text.append(timestamp).append(".").append(delivery_id).append(".").append(body);
  return "sha256=" + to_hex(auth::hmac_sha256(secret, signed_text));
}

Result<HookOutcome> HookService::deliver(const HookDelivery& d) {
  // The hook: its trigger in the current definition, and the secret's sealed value.
  std::optional<model::Workflow> w;
  std::string sealed;
  std::string secret_name;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    auto got = tx.workflows().get(d.workflow_id);
    if (!got.ok()) return got.error();
    w = std::move(*got);
    return Ok{};
  }));
  auto def = parse_definition(w->definition);
  const Trigger* t = def.ok() ? def->trigger(d.hook_id) : nullptr;
  if (w->status != "active" || t == nullptr || t->kind != "webhook") {
    return Error::not_found("workflow " + d.workflow_id + " has no hook '" + d.hook_id + "'");
  }
  if (d.body.size() > kMaxHookBodyBytes) {
    Error e;
    e.code = ErrorCode::kResourceExhausted;
    e.reason = "payload_too_large";
    e.message = "a webhook body is at most 262144 bytes";
    return e;
  }
  std::int64_t ts = 0;
  {
    const auto& s = d.timestamp;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), ts);
    if (s.empty() || s.size() > 12 || ec != std::errc() || p != s.data() + s.size() || ts < 0) {
      return Error::invalid_argument("invalid_timestamp",
                                     "X-Devplane-Timestamp must be the time in unix seconds");
    }
  }
  if (!valid_delivery_id(d.delivery_id)) {
    return Error::invalid_argument(
        "invalid_delivery_id", "X-Devplane-Delivery must be 1..128 of letters, digits, . _ : -");
  }
  if (d.signature.rfind("sha256=", 0) != 0 || d.signature.size() != 7 + 64) {
    return unauthenticated("bad_signature", "X-Devplane-Signature must be sha256=<64 hex digits>");
  }
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    auto s = tx.secrets().get(t->secret);
    if (!s.ok()) {
      if (s.error().code == ErrorCode::kNotFound) {
        return Error::unavailable("the secret '" + t->secret + "' of this hook is not set");
      }
      return s.error();
    }
    sealed = s->value;
    return Ok{};
  }));
  auto secret = secrets_.open(sealed);
  if (!secret.ok()) return Error::unavailable("the secret of this hook cannot be opened");
  const std::string expected = hook_signature(*secret, d.timestamp, d.delivery_id, d.body);
  if (!auth::constant_time_equal(expected, d.signature)) {
    return unauthenticated("bad_signature", "the signature does not match the body");
  }
  const std::int64_t now = options_.now_ms ? options_.now_ms() : clock::now_ms();
  const std::int64_t skew = now / 1000 - ts;
  if (skew > options_.tolerance.count() || -skew > options_.tolerance.count()) {
    return unauthenticated("stale_timestamp", "the timestamp is more than " +
                                                  std::to_string(options_.tolerance.count()) +
                                                  " s away from the server's clock");
  }
  // The inputs: the trigger's fixed ones, and the body in payloadInput (JSON when it parses).
  json::object inputs = t->inputs;
  if (!t->payload_input.empty()) {
    boost::system::error_code ec;
    json::value body = json::parse(d.body, ec);
    inputs[t->payload_input] = ec ? json::value(json::string(d.body)) : std::move(body);
  }
  HookOutcome out;
  auto attempt = [&]() -> Status {
    return store_.write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(auto seen, tx.triggers().find_delivery(w->id, t->id, d.delivery_id));
      if (seen) {
        DP_ASSIGN_OR_RETURN(out.execution, tx.executions().get(seen->execution_id));
        out.duplicate = true;
        return Ok{};
      }
      ExecutionCause cause;
      cause.cause = "webhook";
      cause.created_by = "hook:" + t->id;
      cause.correlation_id = d.correlation_id;
      cause.detail = json::object{{"hook", t->id}, {"deliveryId", d.delivery_id}};
      DP_ASSIGN_OR_RETURN(out.execution,
                          start_execution(tx, w->id, inputs, std::move(cause), now, &*def));
      store::WebhookDelivery rec{w->id, t->id, d.delivery_id, out.execution.id, now};
      DP_TRY(tx.triggers().insert_delivery(rec));
      DP_ASSIGN_OR_RETURN(auto rows, tx.triggers().list(w->id));
      for (auto& row : rows) {
        if (row.trigger_id != t->id) continue;
        row.last_fire_at = now;
        row.last_execution_id = out.execution.id;
        DP_TRY(tx.triggers().put(row));
      }
      out.duplicate = false;
      return Ok{};
    });
  };
  Status s = attempt();
  // Two deliveries with the same id at once: the loser's insert fails; it reads the winner's.
  if (!s.ok() && s.error().code == ErrorCode::kAlreadyExists) s = attempt();
  DP_TRY(s);
  if (!out.duplicate && started_) started_(out.execution.id);
  return out;
}

}  // namespace dp::workflow
