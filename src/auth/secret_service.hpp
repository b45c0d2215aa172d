// SecretService: named secrets at rest (LLM provider keys today, MCP adapter credentials
// later). `put` seals the value with the master key (auth::Secrets) before it reaches the
// store; nothing here ever returns a value, only names and times. Agents name a secret in
// their config (`apiKeySecret`); the executor opens it when a task runs.
//
// Names: 1..128 characters of [A-Za-z0-9_.-]. Values: 1..16384 bytes.
// Errors: kInvalidArgument (`validation_failed`) for a bad name or value, kNotFound, and the
// store's errors. Blocking (store); safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "auth/secrets.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace dp::auth {

struct SecretInfo {
  std::string name;
  std::string updated_by;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

boost::json::object to_json(const SecretInfo& s);

class SecretService {
 public:
  SecretService(store::Store& store, const Secrets& secrets) : store_(store), secrets_(secrets) {}

  // Creates or replaces; the bool says whether it was created now.
  Result<std::pair<SecretInfo, bool>> put(std::string_view name, std::string_view value,
                                          std::string_view actor);
  Result<std::vector<SecretInfo>> list();
  Status remove(std::string_view name);

  static bool valid_name(std::string_view name) noexcept;

 private:
  store::Store& store_;
  const Secrets& secrets_;
};

}  // namespace dp::auth
