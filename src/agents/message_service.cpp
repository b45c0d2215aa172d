#include "agents/message_service.hpp"

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"

namespace dp::agents {

Result<model::Message> MessageService::send(NewMessage&& spec, const std::string& correlation_id) {
  model::Message m;
  m.id = ids::uuid_v7();
  m.to_agent_id = std::move(spec.to_agent_id);
  m.from_agent_id = std::move(spec.from_agent_id);
  m.message_type = std::move(spec.type);
  m.payload = std::move(spec.payload);
  m.created_at = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent to, tx.agents().get(m.to_agent_id));
    if (to.status == model::AgentStatus::kDecommissioned) {
      Error e = Error::failed_precondition(
          "invalid_transition", "agent " + to.id + " is decommissioned and takes no messages");
      e.details = boost::json::object{{"currentStatus", "decommissioned"}};
      return e;
    }
    if (!m.from_agent_id.empty()) {
      auto from = tx.agents().get(m.from_agent_id);
      if (!from.ok()) return Error::not_found("sender agent " + m.from_agent_id + " not found");
    }
    DP_TRY(tx.messages().insert(m));
    boost::json::object payload{
        {"messageId", m.id},
        {"agentId", m.to_agent_id},
        {"fromAgentId", m.from_agent_id.empty() ? boost::json::value(nullptr)
                                                : boost::json::value(m.from_agent_id)},
        {"type", m.message_type},
        {"payload", m.payload},
        {"timestamp", clock::format_iso8601(m.created_at)}};
    DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.message", boost::json::serialize(payload),
                                                 correlation_id, m.created_at, std::nullopt}));
    return Ok{};
  }));
  return m;
}

Result<store::Page<model::Message>> MessageService::list(const std::string& agent_id,
                                                         std::optional<std::string> after,
                                                         int limit, bool undelivered_only) {
  std::optional<store::Page<model::Message>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().get(agent_id));
    DP_ASSIGN_OR_RETURN(out, tx.messages().list(agent_id, std::move(after), limit, undelivered_only));
    return Ok{};
  }));
  return std::move(*out);
}

Result<std::int64_t> MessageService::mark_delivered(const std::string& agent_id,
                                                    const std::vector<std::string>& ids) {
  std::int64_t n = 0;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(n, tx.messages().mark_delivered(agent_id, ids, clock::now_ms()));
    return Ok{};
  }));
  return n;
}

}  // namespace dp::agents
