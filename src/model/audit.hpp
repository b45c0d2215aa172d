// AuditRecord: one stored entry of the audit log, as the store keeps it. The chain fields
// (`seq`, `prev_hash`, `hash`) are filled by the store on append; `details` is the
// canonical JSON text that was hashed (keys sorted), never secrets.
#pragma once

#include <cstdint>
#include <string>

namespace dp::model {

struct AuditRecord {
  std::int64_t seq = 0;  // 1, 2, 3, ... without gaps; the chain's order
  std::string id;        // UUIDv7
  std::int64_t at = 0;   // epoch ms
  std::string actor_id;
  std::string actor_name;
  std::string actor_kind;  // "user" | "api_key" | "anonymous" | "system"
  std::string action;      // "auth.login", "POST /api/v1/agents/:id/start", ...
  std::string target;      // "agent:<id>", or empty
  std::string outcome;     // "success" | "failure" | "denied"
  int status = 0;          // HTTP status when the entry is a request, else 0
  std::string correlation_id;
  std::string source_address;
  std::string details = "{}";  // canonical JSON object text
  std::string prev_hash;       // hex SHA-256 of the previous entry, or the genesis value
  std::string hash;            // hex SHA-256 over prev_hash and the canonical form
};

}  // namespace dp::model
