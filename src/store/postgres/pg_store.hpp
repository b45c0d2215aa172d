// PostgreSQL backend of Store: a bounded libpq connection pool, prepared statements per
// connection, every query parameterised, statement and connect timeouts, UTC sessions.
// Safe from any thread.
#pragma once

#include <memory>

#include "core/config.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace dp::store::postgres {

// Connects one connection eagerly so a wrong URL fails at start-up.
Result<std::unique_ptr<Store>> open(const Config& config);

}  // namespace dp::store::postgres
