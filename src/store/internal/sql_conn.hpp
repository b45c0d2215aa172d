// SqlConn: the narrow seam between the generic repositories and a database driver.
// SQL is written once with PostgreSQL-style `$N` placeholders; the SQLite driver maps
// them to `?N`. Values come back as text (NULL as nullopt), the way libpq gives them.
// Strand-confined: a connection is used by one thread at a time (the store's pool
// hands it out).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace dp::store::internal {

enum class Dialect { kSqlite, kPostgres };

using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string_view>;

struct Rows {
  std::vector<std::vector<std::optional<std::string>>> data;
  std::size_t size() const noexcept { return data.size(); }
  bool empty() const noexcept { return data.empty(); }
  const std::optional<std::string>& at(std::size_t row, std::size_t col) const {
    return data[row][col];
  }
  std::string text(std::size_t row, std::size_t col) const {
    const auto& v = data[row][col];
    return v ? *v : std::string();
  }
  std::int64_t integer(std::size_t row, std::size_t col) const;
};

class SqlConn {
 public:
  virtual ~SqlConn() = default;
  virtual Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) = 0;
  // Returns the number of affected rows.
  virtual Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) = 0;
  virtual Dialect dialect() const noexcept = 0;
};

}  // namespace dp::store::internal
