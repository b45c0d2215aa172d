#include "app/static_files.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <utility>

#include "core/error.hpp"

namespace dp::app {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

http::Response not_found(const http::Request& request) {
  return http::error_response(Error::not_found("no file at " + request.path), request.request_id);
}

// True when `inner` is `outer` or lies inside it (both canonical).
bool within(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin();
  auto i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

}  // namespace

StaticFiles::StaticFiles(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  canonical_root_ = fs::canonical(root_, ec);
  if (ec) canonical_root_ = fs::absolute(root_);
}

std::string_view StaticFiles::content_type_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  }};
  const auto dot = path.rfind('.');
  const auto slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return "application/octet-stream";
  }
  const std::string ext = lower(path.substr(dot));
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

bool StaticFiles::safe_relative_path(std::string_view relative) {
  if (relative.empty() || relative.size() > 1024) return false;
  std::size_t i = 0;
  while (i <= relative.size()) {
    const std::size_t j = std::min(relative.find('/', i), relative.size());
    const std::string_view seg = relative.substr(i, j - i);
    // Empty, ".", ".." and every dot file are refused; so are separators and control bytes
    // that some layer below might read differently.
    if (seg.empty() || seg.front() == '.') return false;
    for (const char c : seg) {
      if (c == '\\' || c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    }
    i = j + 1;
  }
  return true;
}

http::Response StaticFiles::serve(std::string_view relative, const http::Request& request) const {
  if (!safe_relative_path(relative)) return not_found(request);
  std::error_code ec;
  const fs::path file = fs::canonical(root_ / fs::path(std::string(relative)), ec);
  // canonical() resolves symlinks: a link that leads out of the root is refused like "..".
  if (ec || !within(canonical_root_, file) || !fs::is_regular_file(file, ec) || ec) {
    return not_found(request);
  }
  const auto size = fs::file_size(file, ec);
  if (ec) return not_found(request);
  const auto mtime = fs::last_write_time(file, ec);
  if (ec) return not_found(request);

  http::Response r;
  r.content_type = std::string(content_type_for(file.filename().string()));
  const bool hashed = relative.starts_with("_astro/");
  if (hashed) {
    r.set_header("Cache-Control", std::string(kImmutable));
  } else {
    r.set_header("Cache-Control", "no-cache");
    std::ostringstream etag;
    etag << "\"" << std::hex << size << "-"
         << static_cast<unsigned long long>(mtime.time_since_epoch().count()) << "\"";
    r.set_header("ETag", etag.str());
    if (auto inm = request.header("if-none-match"); inm && *inm == etag.str()) {
      r.status = 304;
      return r;
    }
  }
  if (r.content_type.starts_with("text/html")) {
    // The dashboard is never framed by another site.
    r.set_header("X-Frame-Options", "DENY");
    r.set_header("Referrer-Policy", "same-origin");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return not_found(request);
  r.body.resize(static_cast<std::size_t>(size));
  in.read(r.body.data(), static_cast<std::streamsize>(size));
  r.body.resize(static_cast<std::size_t>(in.gcount()));
  return r;
}

Result<std::optional<fs::path>> find_web_dir(const std::string& configured, const fs::path& exe_dir) {
  std::error_code ec;
  if (!configured.empty()) {
    if (!fs::is_directory(configured, ec)) {
      return Error::invalid_argument("bad_config",
                                     "web_dir '" + configured + "' is not a directory");
    }
    return std::optional<fs::path>(fs::path(configured));
  }
  // The binary sits in <build dir>/src/ (build/release/src/devplane), two levels under the
  // source tree; an installed one may have web/dist two levels up.
  for (const fs::path& candidate :
       {exe_dir / ".." / ".." / ".." / "web" / "dist", exe_dir / ".." / ".." / "web" / "dist",
        fs::current_path(ec) / "web" / "dist"}) {
    if (fs::is_directory(candidate, ec)) {
      return std::optional<fs::path>(fs::weakly_canonical(candidate, ec));
    }
  }
  return std::optional<fs::path>();
}

bool has_built_dashboard(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "index.html", ec);
}

void register_static_routes(http::Router& router, std::shared_ptr<const StaticFiles> files) {
  router.add("GET", "/", [files](http::Request& req) { return files->serve("index.html", req); });
  for (const std::string_view page : kDashboardPages) {
    router.add("GET", "/" + std::string(page),
               [files, file = std::string(page) + "/index.html"](http::Request& req) {
                 return files->serve(file, req);
               });
  }
  router.add("GET", "/favicon.svg",
             [files](http::Request& req) { return files->serve("favicon.svg", req); });
  router.add("GET", "/_astro/*", [files](http::Request& req) {
    return files->serve("_astro/" + std::string(req.param("*")), req);
  });
}

}  // namespace dp::app
