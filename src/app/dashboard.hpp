// The dashboard at `/`: the built web app (web/dist, see static_files.hpp) when there is one,
// else a small built-in page that links to the API, health and metrics and says how to build
// the dashboard.
#pragma once

#include <string>

#include "core/result.hpp"
#include "http/router.hpp"

namespace dp::app {

struct DashboardSource {
  std::string web_dir;  // the folder served; empty when the placeholder is
};

// `web_dir_setting`: the `web_dir` config value (empty: look in the default places).
// kInvalidArgument when a configured web_dir is not a directory.
Result<DashboardSource> register_dashboard_routes(http::Router& router,
                                                  const std::string& web_dir_setting);

}  // namespace dp::app
