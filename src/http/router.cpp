#include "http/router.hpp"

#include <algorithm>

namespace dp::http {

bool split_path(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  if (path.empty() || path.front() != '/') return false;
  std::size_t i = 1;
  while (i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    const std::string_view seg = path.substr(i, j - i);
    if (seg.empty()) {
      // A trailing slash is tolerated; an empty segment inside is not.
      if (j < path.size()) return false;
    } else {
      out.push_back(seg);
    }
    i = j + 1;
  }
  return true;
}

void Router::add(std::string_view method, std::string_view pattern, Handler handler) {
  Route r;
  r.method = method;
  r.pattern = pattern;
  std::vector<std::string_view> segs;
  split_path(pattern, segs);
  for (auto s : segs) r.segments.emplace_back(s);
  r.catch_all = !r.segments.empty() && r.segments.back() == "*";
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

Router::Match Router::match(std::string_view method, std::string_view path, Fields& params) const {
  Match m;
  std::vector<std::string_view> segs;
  if (!split_path(path, segs)) return m;
  std::vector<std::string> allowed;
  for (const Route& r : routes_) {
    // A catch-all needs at least one segment where its "*" stands.
    if (r.catch_all ? segs.size() < r.segments.size() : r.segments.size() != segs.size()) continue;
    const std::size_t fixed = r.catch_all ? r.segments.size() - 1 : r.segments.size();
    bool ok = true;
    for (std::size_t i = 0; i < fixed && ok; ++i) {
      const std::string& p = r.segments[i];
      ok = (!p.empty() && p.front() == ':') || p == segs[i];
    }
    if (!ok) continue;
    if (r.method != method && !(method == "HEAD" && r.method == "GET")) {
      if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) {
        allowed.push_back(r.method);
      }
      continue;
    }
    params.clear();
    for (std::size_t i = 0; i < fixed; ++i) {
      if (r.segments[i].front() == ':') {
        params.emplace_back(r.segments[i].substr(1), std::string(segs[i]));
      }
    }
    if (r.catch_all) {
      std::string rest;
      for (std::size_t i = fixed; i < segs.size(); ++i) {
        if (!rest.empty()) rest += '/';
        rest += segs[i];
      }
      params.emplace_back("*", std::move(rest));
    }
    m.outcome = Outcome::kFound;
    m.handler = &r.handler;
    m.pattern = r.pattern;
    return m;
  }
  if (!allowed.empty()) {
    m.outcome = Outcome::kMethodNotAllowed;
    for (const auto& a : allowed) m.allow += (m.allow.empty() ? "" : ", ") + a;
  }
  return m;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Route& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

}  // namespace dp::http
