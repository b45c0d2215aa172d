#include "store/store.hpp"

#include "store/internal/migration.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace dp::store {

Result<std::unique_ptr<Store>> open_store(const Config& config) {
  if (config.distributed()) return postgres::open(config);
  return sqlite::open(config);
}

std::int64_t latest_schema_version() {
  const auto& s = internal::sqlite_migrations();
  return s.empty() ? 0 : s.back().version;
}

}  // namespace dp::store
