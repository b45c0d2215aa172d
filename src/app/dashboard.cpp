#include "app/dashboard.hpp"

#include <filesystem>
#include <memory>
#include <system_error>

#include "app/build_info.hpp"
#include "app/static_files.hpp"

namespace dp::app {
namespace {

void register_placeholder(http::Router& router) {
  router.add("GET", "/", [](http::Request&) {
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.set_header("Cache-Control", "no-cache");
    r.body = std::string(R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devplane</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2937}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:.25rem}a{color:#2563eb}</style></head>
<body><h1>devplane</h1><p>Version )") +
             kVersion + R"(. The control plane is running.</p>
<ul>
<li><a href="/api/v1/system/health">/api/v1/system/health</a>: health of this node</li>
<li><a href="/api/v1/system/info">/api/v1/system/info</a>: mode, backends, build</li>
<li><a href="/api/v1/agents">/api/v1/agents</a>: agents</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
<p>The dashboard is not built. <code>scripts/run</code> builds it; by hand:
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then restart devplane (or point
<code>web_dir</code> at a built <code>web/dist</code>). See docs/dashboard.md.</p>
</body></html>
)";
    return r;
  });
}

std::filesystem::path exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path(ec) : p.parent_path();
}

}  // namespace

Result<DashboardSource> register_dashboard_routes(http::Router& router,
                                                  const std::string& web_dir_setting) {
  DP_ASSIGN_OR_RETURN(auto dir, find_web_dir(web_dir_setting, exe_dir()));
  if (!dir || !has_built_dashboard(*dir)) {
    register_placeholder(router);
    return DashboardSource{};
  }
  register_static_routes(router, std::make_shared<const StaticFiles>(*dir));
  return DashboardSource{dir->string()};
}

}  // namespace dp::app
