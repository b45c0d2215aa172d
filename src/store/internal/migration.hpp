// Versioned, forward-only migrations, one list per dialect, embedded at build time from
// src/store/migrations/<dialect>/NNNN_name.sql.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace dp::store::internal {

struct Migration {
  std::int64_t version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

}  // namespace dp::store::internal
