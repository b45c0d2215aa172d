// The built dashboard (web/dist) served from disk: pages, hashed assets and a few top-level
// files. Which folder: the `web_dir` setting, else the first that exists of
// <build dir>/../../web/dist and ./web/dist (find_web_dir). Files are read on each request
// (handlers run on the blocking pool), so a rebuilt dashboard is served without a restart.
//
// - Hashed assets under /_astro/ get `Cache-Control: public, max-age=31536000, immutable`;
//   HTML and the other files get `no-cache` with an ETag, so a revalidation costs a 304.
// - Paths are checked segment by segment (no "..", no dot files, no backslashes or NULs) and
//   the resolved file must stay inside the root, symlinks included: traversal gets a 404.
// - Each page is its own HTML file (Astro's directory format: /agents -> agents/index.html),
//   so no SPA fallback is needed; a path that names no file is a plain 404.
//
// Immutable after construction: safe from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

namespace dp::app {

// The pages the dashboard has (each `<name>/index.html` in the build), besides "/".
inline constexpr std::string_view kDashboardPages[] = {"login", "dashboard", "agents",
                                                       "workflows", "admin"};

class StaticFiles {
 public:
  // REQUIRES: `root` is a directory.
  explicit StaticFiles(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // Serves the file at `relative` (slash-separated, no leading slash, e.g. "_astro/a.js" or
  // "agents/index.html"). 404 `not_found` when it does not exist or is refused; 304 when
  // `if_none_match` names the current ETag.
  http::Response serve(std::string_view relative, const http::Request& request) const;

  static std::string_view content_type_for(std::string_view path);
  // True when every segment of `relative` is a plain file or folder name.
  static bool safe_relative_path(std::string_view relative);

 private:
  std::filesystem::path root_;
  std::filesystem::path canonical_root_;
};

// `configured` when set (and then it must exist: an error otherwise); else the first that
// exists of <build dir>/../../web/dist (the binary is <build dir>/src/devplane), then
// <exe_dir>/../../web/dist, then <cwd>/web/dist; nullopt when none does.
Result<std::optional<std::filesystem::path>> find_web_dir(const std::string& configured,
                                                          const std::filesystem::path& exe_dir);

// True when `dir` holds a built dashboard (its index.html).
bool has_built_dashboard(const std::filesystem::path& dir);

// GET /, the pages, /favicon.svg and /_astro/* from `files`. These routes are public
// (auth/policy.cpp).
void register_static_routes(http::Router& router, std::shared_ptr<const StaticFiles> files);

}  // namespace dp::app
