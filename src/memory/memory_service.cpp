#include "memory/memory_service.hpp"

#include <algorithm>
#include <unordered_map>

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::memory {
namespace {

namespace json = boost::json;

constexpr int kScanPage = 500;
constexpr std::int64_t kCatchUpEveryMs = 1000;

// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence.
std::string cut_utf8(std::string s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  s.resize(end);
  return s;
}

std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

}  // namespace

std::string outcome_text(const model::Task& task, std::size_t max_chars) {
  std::string out = "Task: " + text_of(task.input) + "\nOutcome: " + task.status;
  if (!task.error.empty()) out += "\nError: " + task.error;
  if (task.result.is_object()) {
    // Command agents: {exitCode, stdout, stderr, ...}; llm agents: {text, ...}. The readable
    // parts first; the whole result when neither is there.
    const auto& r = task.result.as_object();
    bool any = false;
    for (const char* key : {"text", "summary", "stdout", "output", "stderr"}) {
      if (const auto* v = r.if_contains(key); v != nullptr && v->is_string() && !v->as_string().empty()) {
        out += "\n" + std::string(key) + ": " + std::string(v->as_string());
        any = true;
      }
    }
    if (!any) out += "\nResult: " + json::serialize(r);
  } else if (!task.result.is_null()) {
    out += "\nResult: " + text_of(task.result);
  }
  return cut_utf8(std::move(out), max_chars);
}

json::object to_json(const model::Memory& m) {
  return json::object{{"id", m.id},
                      {"kind", m.kind},
                      {"text", m.text},
                      {"metadata", m.metadata},
                      {"embedder", m.embedder},
                      {"createdAt", clock::format_iso8601(m.created_at)},
                      {"createdBy", m.created_by}};
}

std::string memory_event(const model::Memory& m) {
  json::object o{{"memoryId", m.id}, {"kind", m.kind}, {"createdBy", m.created_by}};
  if (!m.agent_id.empty()) o["agentId"] = m.agent_id;
  if (!m.task_id.empty()) o["taskId"] = m.task_id;
  return json::serialize(o);
}

MemoryService::MemoryService(store::Store& store, std::unique_ptr<Embedder> embedder,
                             MemoryOptions options)
    : store_(store), embedder_(std::move(embedder)), options_(options), index_(options.index) {}

MemoryService::~MemoryService() { stop(); }

Result<std::size_t> MemoryService::load() {
  const std::string name = embedder_->name();
  std::string after;
  std::size_t reembedded = 0;
  for (;;) {
    std::vector<model::Memory> page;
    DP_TRY(store_.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(page, tx.memories().scan(after, kScanPage));
      return Ok{};
    }));
    if (page.empty()) break;
    after = page.back().id;
    for (auto& m : page) {
      if (m.embedder != name || m.embedding.empty()) {
        // Made by another embedder (or unreadable): made again, so every vector in the index
        // is comparable with the queries.
        auto v = embedder_->embed(m.text);
        if (!v.ok()) {
          log::global().warn("memory not indexed", {{"memoryId", m.id}, {"error", v.error().message}});
          continue;
        }
        m.embedding = std::move(*v);
        DP_TRY(store_.write([&](store::Tx& tx) { return tx.memories().set_embedding(m.id, name, m.embedding); }));
        ++reembedded;
      }
      if (auto s = index_.add(m.id, m.kind, m.agent_id, std::move(m.embedding)); !s.ok()) {
        log::global().warn("memory not indexed", {{"memoryId", m.id}, {"error", s.error().message}});
      }
    }
  }
  {
    std::lock_guard lock(sync_mu_);
    if (after > seen_up_to_) seen_up_to_ = after;
    last_catch_up_ms_ = clock::now_ms();
  }
  log::global().info("memory loaded", {{"memories", index_.size()},
                                       {"reembedded", reembedded},
                                       {"embedder", name},
                                       {"graph", index_.graph_built()}});
  return index_.size();
}

void MemoryService::catch_up() {
  std::unique_lock lock(sync_mu_);
  const std::int64_t now = clock::now_ms();
  if (now - last_catch_up_ms_ < kCatchUpEveryMs) return;
  last_catch_up_ms_ = now;
  std::string after = seen_up_to_;
  lock.unlock();
  const std::string name = embedder_->name();
  for (;;) {
    std::vector<model::Memory> page;
    Status s = store_.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(page, tx.memories().scan(after, kScanPage));
      return Ok{};
    });
    if (!s.ok() || page.empty()) break;
    after = page.back().id;
    for (auto& m : page) {
      if (index_.contains(m.id) || m.embedder != name || m.embedding.empty()) continue;
      (void)index_.add(m.id, m.kind, m.agent_id, std::move(m.embedding));
    }
  }
  lock.lock();
  if (after > seen_up_to_) seen_up_to_ = after;
}

Result<model::Memory> MemoryService::add(NewMemory&& in, const std::string& correlation_id) {
  DP_ASSIGN_OR_RETURN(std::vector<float> v, embedder_->embed(in.text));
  model::Memory m;
  m.id = ids::uuid_v7();
  m.kind = std::move(in.kind);
  m.text = std::move(in.text);
  m.metadata = std::move(in.metadata);
  if (const auto* a = m.metadata.if_contains("agentId"); a != nullptr && a->is_string()) {
    m.agent_id = std::string(a->as_string());
  }
  if (const auto* t = m.metadata.if_contains("taskId"); t != nullptr && t->is_string()) {
    m.task_id = std::string(t->as_string());
  }
  m.embedder = embedder_->name();
  m.embedding = std::move(v);
  m.created_at = clock::now_ms();
  m.created_by = std::move(in.created_by);
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_TRY(tx.memories().insert(m));
    return tx.outbox().append(store::OutboxEvent{0, "memory.added", memory_event(m), correlation_id, m.created_at, std::nullopt});
  }));
  if (auto s = index_.add(m.id, m.kind, m.agent_id, m.embedding); !s.ok()) {
    log::global().warn("memory not indexed", {{"memoryId", m.id}, {"error", s.error().message}});
  }
  return m;
}

Result<model::Memory> MemoryService::get(const std::string& id) {
  model::Memory m;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(m, tx.memories().get(id));
    return Ok{};
  }));
  return m;
}

Status MemoryService::remove(const std::string& id, const std::string& correlation_id) {
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Memory m, tx.memories().get(id));
    DP_TRY(tx.memories().remove(id));
    return tx.outbox().append(store::OutboxEvent{0, "memory.deleted", memory_event(m), correlation_id, clock::now_ms(),
                                   std::nullopt});
  }));
  index_.remove(id);
  return Ok{};
}

Result<std::vector<Scored>> MemoryService::search(const SearchQuery& q) {
  DP_ASSIGN_OR_RETURN(std::vector<float> v, embedder_->embed(q.text));
  catch_up();
  IndexFilter f{q.kind, q.agent_id};
  const auto hits = index_.search(v, q.k, f, q.min_score);
  std::vector<Scored> out;
  if (hits.empty()) return out;
  std::vector<std::string> ids;
  ids.reserve(hits.size());
  for (const auto& h : hits) ids.push_back(h.id);
  std::vector<model::Memory> rows;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(rows, tx.memories().get_many(ids));
    return Ok{};
  }));
  std::unordered_map<std::string, model::Memory*> by_id;
  for (auto& r : rows) by_id.emplace(r.id, &r);
  for (const auto& h : hits) {
    auto it = by_id.find(h.id);
    if (it == by_id.end()) {
      index_.remove(h.id);  // deleted on another node
      continue;
    }
    it->second->embedding.clear();
    out.push_back(Scored{std::move(*it->second), h.score});
  }
  return out;
}

void MemoryService::remember_task(const model::Task& task) {
  if (!options_.remember_outcomes) return;
  if (task.status != "succeeded" && task.status != "failed") return;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || !worker_.joinable()) return;
    if (queue_.size() >= options_.max_queue) {
      log::global().warn("task outcome not remembered: queue full", {{"taskId", task.id}});
      return;
    }
    queue_.push_back(task);
  }
  cv_.notify_one();
}

Status MemoryService::write_outcome(const model::Task& task) {
  const std::string text = outcome_text(task, options_.max_outcome_chars);
  DP_ASSIGN_OR_RETURN(std::vector<float> v, embedder_->embed(text));
  model::Memory m;
  m.id = ids::uuid_v7();
  m.kind = "task_outcome";
  m.text = text;
  m.agent_id = task.agent_id;
  m.task_id = task.id;
  m.metadata = json::object{{"agentId", task.agent_id}, {"taskId", task.id}, {"status", task.status}};
  if (task.created_by.starts_with("execution:")) {
    m.metadata["executionId"] = task.created_by.substr(std::string_view("execution:").size());
  }
  m.embedder = embedder_->name();
  m.embedding = std::move(v);
  m.created_at = clock::now_ms();
  m.created_by = "system:memory";
  // Relaxed (no wait for the disk): the outcome was queued in memory since the task ended, so
  // a crash before this write loses it just as a power failure before the next durable commit
  // does; a durable commit here made the next task's create wait for this one's sync.
  Status s = store_.write_relaxed([&](store::Tx& tx) -> Status {
    DP_TRY(tx.memories().insert(m));
    return tx.outbox().append(store::OutboxEvent{0, "memory.added", memory_event(m), task.correlation_id, m.created_at,
                                   std::nullopt});
  });
  if (!s.ok()) {
    if (s.error().code == ErrorCode::kAlreadyExists) return Ok{};  // remembered already
    return s;
  }
  (void)index_.add(m.id, m.kind, m.agent_id, std::move(m.embedding));
  return Ok{};
}

void MemoryService::run_worker() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything is written
    model::Task task = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    if (auto s = write_outcome(task); !s.ok()) {
      log::global().warn("task outcome not remembered", {{"taskId", task.id}, {"error", s.error().message}});
    }
    lock.lock();
    busy_ = false;
    idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

void MemoryService::start() {
  std::lock_guard lock(mu_);
  if (worker_.joinable() || !options_.remember_outcomes) return;
  stopping_ = false;
  worker_ = std::thread([this] { run_worker(); });
}

void MemoryService::stop() {
  {
    std::lock_guard lock(mu_);
    if (!worker_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void MemoryService::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || !worker_.joinable(); });
}

MemoryStats MemoryService::stats() const {
  return MemoryStats{index_.size(), index_.dims(), index_.graph_built(), embedder_->name()};
}

}  // namespace dp::memory
