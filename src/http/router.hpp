// Router: maps (method, path) to a handler for patterns such as
// "/api/v1/agents/:id/start". Segments are matched literally or captured by ":name"; a last
// segment "*" (as in "/_astro/*") matches one or more remaining segments, captured as the
// parameter "*" joined by "/". Routes are tried in the order they were added.
// Built at start-up, then immutable: safe to match from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace dp::http {

// Runs on the blocking pool: may call the store, must not block on I/O threads' work.
using Handler = std::function<Response(Request&)>;

class Router {
 public:
  void add(std::string_view method, std::string_view pattern, Handler handler);

  enum class Outcome { kFound, kNotFound, kMethodNotAllowed };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    const Handler* handler = nullptr;
    std::string_view pattern;
    std::string allow;  // for kMethodNotAllowed: "GET, POST"
  };
  // Fills `params` on kFound.
  Match match(std::string_view method, std::string_view path, Fields& params) const;

  // Every (method, pattern), for docs and tests.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    bool catch_all = false;  // the last segment is "*"
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Splits "/a/b/" into {"a","b"}; empty segments in the middle make it invalid (returns false).
bool split_path(std::string_view path, std::vector<std::string_view>& out);

}  // namespace dp::http
