#include "app/dashboard.hpp"

#include "app/build_info.hpp"

namespace dp::app {

void register_dashboard_routes(http::Router& router) {
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
<p>The full dashboard is built from <code>web/</code> and served here once it lands.</p>
</body></html>
)";
    return r;
  });
}

}  // namespace dp::app
