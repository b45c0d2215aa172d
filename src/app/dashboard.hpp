// The dashboard at `/`. Until the web app lands (web/), a small built-in page that
// links to the API, health and metrics.
#pragma once

#include "http/router.hpp"

namespace dp::app {

void register_dashboard_routes(http::Router& router);

}  // namespace dp::app
