// VectorIndex: the in-process nearest-neighbour index over memories' embeddings.
//
// Exact (brute force over every vector) while it holds fewer than `graph_threshold` vectors;
// from then on an HNSW graph (hnswlib, Debian's libhnswlib-dev) answers unfiltered searches and
// filtered ones whose filter matches many vectors. A filtered search that the graph answers
// with fewer than k matches, or whose filter matches at most `graph_threshold` vectors, is
// answered exactly over the matching vectors instead, so filters never lose results to the
// approximation. Scores are cosine similarities (vectors are L2-normalised), best first.
//
// Entries are keyed by memory id; an id is added once (adding it again is a no-op). Removal
// marks the graph node deleted. All vectors have the dimension of the first one added.
//
// Thread safety: safe from any thread (one mutex; searches over a few thousand vectors take
// well under a millisecond).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

namespace dp::memory {

struct IndexOptions {
  std::size_t graph_threshold = 2000;  // below: exact search only
  std::size_t m = 16;                  // HNSW links per node
  std::size_t ef_construction = 200;
  std::size_t ef_search = 128;  // at least k is used
};

struct IndexFilter {
  std::optional<std::string> kind;
  std::optional<std::string> agent_id;
};

struct IndexHit {
  std::string id;
  float score = 0;  // cosine similarity, -1..1
};

class VectorIndex {
 public:
  explicit VectorIndex(IndexOptions options = {});
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // kInvalidArgument `dims_mismatch` when `vector` has another dimension than the index.
  // REQUIRES: `vector` is L2-normalised.
  Status add(const std::string& id, const std::string& kind, const std::string& agent_id,
             std::vector<float> vector);
  // False when the id is not in the index.
  bool remove(const std::string& id);
  bool contains(const std::string& id) const;
  // Best first; at most k hits, each scoring at least `min_score`.
  std::vector<IndexHit> search(const std::vector<float>& query, std::size_t k,
                               const IndexFilter& filter, float min_score) const;
  // Exact top k by brute force (the reference the graph is tested against).
  std::vector<IndexHit> exact(const std::vector<float>& query, std::size_t k,
                              const IndexFilter& filter, float min_score) const;
  std::size_t size() const;
  std::size_t dims() const;
  bool graph_built() const;

 private:
  struct Entry {
    std::string id;
    std::string kind;
    std::string agent_id;
    std::vector<float> vector;
    bool alive = true;
  };
  struct Graph;

  bool matches(const Entry& e, const IndexFilter& f) const;
  std::vector<IndexHit> exact_locked(const std::vector<float>& query, std::size_t k,
                                     const IndexFilter& filter, float min_score) const;
  void build_graph_locked();

  const IndexOptions options_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;                       // by label (position)
  std::unordered_map<std::string, std::size_t> by_id_;  // live entries only
  std::size_t dims_ = 0;
  std::unique_ptr<Graph> graph_;
};

}  // namespace dp::memory
