// MemoryService: devplane's vector memory (docs/memory.md). Owns the in-process index over the
// `memories` table and the embedder; the store keeps the rows.
//
// - add(): embeds the text, writes the memory and its `memory.added` event in one store
//   transaction, then indexes it. remove() deletes it (`memory.deleted`) and unindexes it.
// - search(): embeds the query, asks the index for the top k (cosine, with optional kind and
//   agent filters and a minimum score) and reads the hits' rows from the store, so a memory
//   another node deleted is not returned. Before searching it picks up, at most once a second,
//   memories other nodes added (rows past the highest id it has seen).
// - remember_task(): queues the outcome of a finished task; a worker thread of this service
//   embeds and stores it (a task is remembered once: a repeat is ignored). The caller never
//   waits for an embedder or the store.
// - load(): rebuilds the index from the store at start, re-embedding rows that another
//   embedder made.
//
// Blocking (store, remote embedder): call from the blocking pool. Safe from any thread.
// Errors: kInvalidArgument `empty_text` (nothing to embed), kNotFound, the embedder's errors,
// the store's errors.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"
#include "memory/embedder.hpp"
#include "memory/vector_index.hpp"
#include "model/memory.hpp"
#include "model/task.hpp"
#include "store/store.hpp"

namespace dp::memory {

struct MemoryOptions {
  bool remember_outcomes = true;     // task outcomes become memories
  std::size_t max_outcome_chars = 4000;  // an outcome's text is cut to this many bytes
  std::size_t max_queue = 10'000;    // outcomes waiting; beyond: dropped (and logged)
  IndexOptions index;
};

struct NewMemory {
  std::string kind = "note";
  std::string text;
  boost::json::object metadata;  // agentId, taskId, executionId, status, labels (validated)
  std::string created_by;
};

struct SearchQuery {
  std::string text;
  std::size_t k = 10;
  std::optional<std::string> kind;
  std::optional<std::string> agent_id;
  float min_score = 0;
};

struct Scored {
  model::Memory memory;
  float score = 0;
};

struct MemoryStats {
  std::size_t indexed = 0;
  std::size_t dims = 0;
  bool graph = false;
  std::string embedder;
};

class MemoryService {
 public:
  MemoryService(store::Store& store, std::unique_ptr<Embedder> embedder, MemoryOptions options);
  ~MemoryService();
  MemoryService(const MemoryService&) = delete;
  MemoryService& operator=(const MemoryService&) = delete;

  // Rebuilds the index from the store; returns how many memories it holds.
  Result<std::size_t> load();
  // Starts / stops the outcome worker. stop() writes what is queued first.
  void start();
  void stop();

  Result<model::Memory> add(NewMemory&& memory, const std::string& correlation_id);
  Result<model::Memory> get(const std::string& id);
  Status remove(const std::string& id, const std::string& correlation_id);
  Result<std::vector<Scored>> search(const SearchQuery& query);

  // Queues the outcome of `task` (succeeded or failed; others are ignored). Never blocks on
  // the embedder or the store.
  void remember_task(const model::Task& task);
  // Waits until the queued outcomes are written (tests, shutdown).
  void drain();

  MemoryStats stats() const;
  const Embedder& embedder() const { return *embedder_; }

 private:
  Status write_outcome(const model::Task& task);
  void catch_up();
  void run_worker();

  store::Store& store_;
  std::unique_ptr<Embedder> embedder_;
  const MemoryOptions options_;
  VectorIndex index_;

  std::mutex sync_mu_;
  std::string seen_up_to_;               // highest id scanned from the store
  std::int64_t last_catch_up_ms_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<model::Task> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

// The text remembered for a finished task: its input, status, and result or error, cut to
// `max_chars` bytes (at a UTF-8 boundary).
std::string outcome_text(const model::Task& task, std::size_t max_chars);

// The memory as the API shows it (no embedding).
boost::json::object to_json(const model::Memory& memory);

// The `memory.added` / `memory.deleted` event payloads.
std::string memory_event(const model::Memory& memory);

}  // namespace dp::memory
