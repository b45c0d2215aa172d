// The memory repository, written once for both dialects (see sql_repos.hpp). The embedding
// travels as hex text: SQLite keeps it as TEXT, PostgreSQL as bytea (decode/encode 'hex'),
// since SqlConn passes text values only.
#include <array>
#include <bit>
#include <cstring>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

static_assert(std::endian::native == std::endian::little, "embeddings are stored little-endian");
static_assert(sizeof(float) == 4);

constexpr std::string_view kHex = "0123456789abcdef";

std::string to_hex(const std::vector<float>& v) {
  std::string out;
  out.reserve(v.size() * 8);
  for (float f : v) {
    unsigned char b[4];
    std::memcpy(b, &f, 4);
    for (unsigned char c : b) {
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// PostgreSQL's encode(..., 'hex') and SQLite's text both give plain hex; a bad row gives an
// empty vector (the memory service re-embeds it).
std::vector<float> from_hex(std::string_view hex) {
  if (hex.starts_with("\\x")) hex.remove_prefix(2);
  std::vector<float> out;
  if (hex.size() % 8 != 0) return out;
  out.resize(hex.size() / 8);
  for (std::size_t i = 0; i < out.size(); ++i) {
    unsigned char b[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const int hi = nibble(hex[i * 8 + j * 2]);
      const int lo = nibble(hex[i * 8 + j * 2 + 1]);
      if (hi < 0 || lo < 0) return {};
      b[j] = static_cast<unsigned char>(hi * 16 + lo);
    }
    std::memcpy(&out[i], b, 4);
  }
  return out;
}

std::string columns(Dialect d) {
  return std::string("id, kind, text, metadata, agent_id, task_id, embedder, dims, ") +
         (d == Dialect::kPostgres ? "encode(embedding, 'hex')" : "embedding") +
         ", created_at, created_by";
}

std::string embedding_param(Dialect d, std::size_t n) {
  return d == Dialect::kPostgres ? "decode($" + std::to_string(n) + ", 'hex')"
                                 : "$" + std::to_string(n);
}

model::Memory from_row(const Rows& rows, std::size_t r) {
  model::Memory m;
  m.id = rows.text(r, 0);
  m.kind = rows.text(r, 1);
  m.text = rows.text(r, 2);
  boost::system::error_code ec;
  auto meta = boost::json::parse(rows.text(r, 3), ec);
  if (!ec && meta.is_object()) m.metadata = std::move(meta.as_object());
  m.agent_id = rows.text(r, 4);
  m.task_id = rows.text(r, 5);
  m.embedder = rows.text(r, 6);
  m.embedding = from_hex(rows.text(r, 8));
  if (static_cast<std::int64_t>(m.embedding.size()) != rows.integer(r, 7)) m.embedding.clear();
  m.created_at = parse_db_time(rows.at(r, 9));
  m.created_by = rows.text(r, 10);
  return m;
}

}  // namespace

Status SqlMemoryRepository::insert(const model::Memory& m) {
  const std::string meta = boost::json::serialize(m.metadata);
  const std::string emb = to_hex(m.embedding);
  const std::string at = clock::format_iso8601(m.created_at);
  const std::array<SqlValue, 11> params = {
      m.id, m.kind, m.text, std::string_view(meta), m.agent_id, m.task_id, m.embedder,
      static_cast<std::int64_t>(m.embedding.size()), std::string_view(emb), std::string_view(at),
      m.created_by};
  DP_TRY(conn_.exec("INSERT INTO memories (id, kind, text, metadata, agent_id, task_id, embedder, "
                    "dims, embedding, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, " + embedding_param(conn_.dialect(), 9) + ", $10, $11)",
                    params));
  return Ok{};
}

Result<model::Memory> SqlMemoryRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + columns(conn_.dialect()) +
                                                 " FROM memories WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("memory " + std::string(id) + " not found");
  return from_row(rows, 0);
}

Result<std::vector<model::Memory>> SqlMemoryRepository::get_many(const std::vector<std::string>& ids) {
  std::vector<model::Memory> out;
  if (ids.empty()) return out;
  std::vector<SqlValue> params;
  std::string in;
  for (const auto& id : ids) {
    params.emplace_back(std::string_view(id));
    in += (in.empty() ? "$" : ", $") + std::to_string(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + columns(conn_.dialect()) +
                                                 " FROM memories WHERE id IN (" + in + ")",
                                             params));
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(from_row(rows, r));
  return out;
}

Status SqlMemoryRepository::remove(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(std::int64_t n, conn_.exec("DELETE FROM memories WHERE id = $1", params));
  if (n == 0) return Error::not_found("memory " + std::string(id) + " not found");
  return Ok{};
}

Result<std::vector<model::Memory>> SqlMemoryRepository::scan(std::string_view after, int limit) {
  const std::array<SqlValue, 2> params = {after, static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + columns(conn_.dialect()) +
                                                 " FROM memories WHERE id > $1 ORDER BY id LIMIT $2",
                                             params));
  std::vector<model::Memory> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(from_row(rows, r));
  return out;
}

Status SqlMemoryRepository::set_embedding(std::string_view id, std::string_view embedder,
                                          const std::vector<float>& embedding) {
  const std::string emb = to_hex(embedding);
  const std::array<SqlValue, 4> params = {embedder, static_cast<std::int64_t>(embedding.size()),
                                          std::string_view(emb), id};
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE memories SET embedder = $1, dims = $2, embedding = " +
                                     embedding_param(conn_.dialect(), 3) + " WHERE id = $4",
                                 params));
  if (n == 0) return Error::not_found("memory " + std::string(id) + " not found");
  return Ok{};
}

Result<std::int64_t> SqlMemoryRepository::count() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT count(*) FROM memories", {}));
  return rows.integer(0, 0);
}

}  // namespace dp::store::internal
