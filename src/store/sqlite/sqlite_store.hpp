// SQLite backend of Store: WAL journal, foreign keys on, a busy timeout, one writer
// connection (behind a mutex) and a small pool of read-only connections.
// Safe from any thread.
#pragma once

#include <memory>
#include <string>

#include "core/config.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace dp::store::sqlite {

// Opens (creating if needed) `<data_dir>/devplane.db`.
Result<std::unique_ptr<Store>> open(const Config& config);

}  // namespace dp::store::sqlite
