// The only file that includes hnswlib (a large header-only library), so the build stays light.
#include "memory/vector_index.hpp"

#include <algorithm>
#include <exception>
#include <queue>

#include <hnswlib/hnswlib.h>

#include "core/log.hpp"

namespace dp::memory {
namespace {

// The exact search's inner loop, here rather than memory::dot so that it is built -O2 with the
// rest of this file in every build type.
float inner(const float* a, const float* b, std::size_t n) noexcept {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

struct VectorIndex::Graph {
  explicit Graph(std::size_t dims) : space(dims) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
  std::size_t capacity = 0;
};

VectorIndex::VectorIndex(IndexOptions options) : options_(options) {}
VectorIndex::~VectorIndex() = default;

bool VectorIndex::matches(const Entry& e, const IndexFilter& f) const {
  if (!e.alive) return false;
  if (f.kind && e.kind != *f.kind) return false;
  if (f.agent_id && e.agent_id != *f.agent_id) return false;
  return true;
}

Status VectorIndex::add(const std::string& id, const std::string& kind, const std::string& agent_id,
                        std::vector<float> vector) {
  std::lock_guard lock(mu_);
  if (by_id_.contains(id)) return Ok{};
  if (vector.empty()) return Error::invalid_argument("dims_mismatch", "the vector is empty");
  if (dims_ == 0) dims_ = vector.size();
  if (vector.size() != dims_) {
    return Error::invalid_argument("dims_mismatch", "the vector has " + std::to_string(vector.size()) +
                                                        " dimensions, the index " + std::to_string(dims_));
  }
  const std::size_t label = entries_.size();
  entries_.push_back(Entry{id, kind, agent_id, std::move(vector), true});
  by_id_.emplace(id, label);
  if (graph_) {
    try {
      if (label >= graph_->capacity) {
        graph_->capacity = std::max<std::size_t>(graph_->capacity * 2, label + 1);
        graph_->hnsw->resizeIndex(graph_->capacity);
      }
      graph_->hnsw->addPoint(entries_[label].vector.data(), label);
    } catch (const std::exception& e) {
      // The graph is an accelerator: without it searches are exact (slower, never wrong).
      log::global().warn("memory index graph dropped", {{"error", e.what()}});
      graph_.reset();
    }
  } else if (by_id_.size() >= options_.graph_threshold) {
    build_graph_locked();
  }
  return Ok{};
}

void VectorIndex::build_graph_locked() {
  try {
    auto g = std::make_unique<Graph>(dims_);
    g->capacity = std::max<std::size_t>(entries_.size() * 2, 1024);
    g->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(&g->space, g->capacity, options_.m,
                                                                 options_.ef_construction);
    for (std::size_t label = 0; label < entries_.size(); ++label) {
      g->hnsw->addPoint(entries_[label].vector.data(), label);
      if (!entries_[label].alive) g->hnsw->markDelete(label);
    }
    graph_ = std::move(g);
  } catch (const std::exception& e) {
    log::global().warn("memory index graph not built", {{"error", e.what()}});
    graph_.reset();
  }
}

bool VectorIndex::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  Entry& e = entries_[it->second];
  e.alive = false;
  e.vector.clear();
  e.vector.shrink_to_fit();
  if (graph_) {
    try {
      graph_->hnsw->markDelete(it->second);
    } catch (const std::exception&) {
      // Already deleted in the graph: nothing to do.
    }
  }
  by_id_.erase(it);
  return true;
}

bool VectorIndex::contains(const std::string& id) const {
  std::lock_guard lock(mu_);
  return by_id_.contains(id);
}

std::size_t VectorIndex::size() const {
  std::lock_guard lock(mu_);
  return by_id_.size();
}

std::size_t VectorIndex::dims() const {
  std::lock_guard lock(mu_);
  return dims_;
}

bool VectorIndex::graph_built() const {
  std::lock_guard lock(mu_);
  return graph_ != nullptr;
}

std::vector<IndexHit> VectorIndex::exact(const std::vector<float>& query, std::size_t k,
                                         const IndexFilter& filter, float min_score) const {
  std::lock_guard lock(mu_);
  return exact_locked(query, k, filter, min_score);
}

std::vector<IndexHit> VectorIndex::exact_locked(const std::vector<float>& query, std::size_t k,
                                                const IndexFilter& filter, float min_score) const {
  std::vector<IndexHit> out;
  if (k == 0 || query.size() != dims_) return out;
  // A min-heap of the best k so far.
  auto worse = [](const IndexHit& a, const IndexHit& b) { return a.score > b.score; };
  std::priority_queue<IndexHit, std::vector<IndexHit>, decltype(worse)> best(worse);
  for (const auto& e : entries_) {
    if (!matches(e, filter)) continue;
    const float s = inner(query.data(), e.vector.data(), dims_);
    if (s < min_score) continue;
    if (best.size() < k) {
      best.push(IndexHit{e.id, s});
    } else if (s > best.top().score) {
      best.pop();
      best.push(IndexHit{e.id, s});
    }
  }
  out.reserve(best.size());
  while (!best.empty()) {
    out.push_back(best.top());
    best.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<IndexHit> VectorIndex::search(const std::vector<float>& query, std::size_t k,
                                          const IndexFilter& filter, float min_score) const {
  std::lock_guard lock(mu_);
  if (k == 0 || query.size() != dims_ || by_id_.empty()) return {};
  if (!graph_) return exact_locked(query, k, filter, min_score);
  const bool filtered = filter.kind.has_value() || filter.agent_id.has_value();
  if (filtered) {
    std::size_t matching = 0;
    for (const auto& e : entries_) {
      if (matches(e, filter)) ++matching;
    }
    if (matching <= options_.graph_threshold) return exact_locked(query, k, filter, min_score);
  }
  // Filtered searches ask the graph for more candidates, as most may not match.
  const std::size_t want = std::min(by_id_.size(), filtered ? k * 8 : k);
  std::vector<IndexHit> out;
  try {
    graph_->hnsw->setEf(std::max(options_.ef_search, want));
    auto pq = graph_->hnsw->searchKnn(query.data(), want);
    std::vector<IndexHit> all;
    while (!pq.empty()) {
      const auto [distance, label] = pq.top();
      pq.pop();
      const Entry& e = entries_[label];
      if (!matches(e, filter)) continue;
      const float s = 1.0F - distance;  // hnswlib's inner-product distance is 1 - dot
      if (s >= min_score) all.push_back(IndexHit{e.id, s});
    }
    std::sort(all.begin(), all.end(), [](const IndexHit& a, const IndexHit& b) { return a.score > b.score; });
    if (all.size() > k) all.resize(k);
    out = std::move(all);
  } catch (const std::exception& e) {
    log::global().warn("memory index graph search failed; exact search", {{"error", e.what()}});
    return exact_locked(query, k, filter, min_score);
  }
  // Fewer than k from the graph under a filter: the matches may lie beyond the candidates.
  if (filtered && out.size() < k) return exact_locked(query, k, filter, min_score);
  return out;
}

}  // namespace dp::memory
