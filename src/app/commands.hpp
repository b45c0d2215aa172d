// The subcommands of the devplane binary and their shared flags.
#pragma once

#include <map>
#include <string>

namespace CLI {
class App;
}

namespace dp::app {

struct CommonOptions {
  std::string config_file;
  std::map<std::string, std::string> flags;  // config key -> value given on the command line
};

struct ServeOptions {
  CommonOptions common;
  bool print_config = false;
  bool print_routes = false;  // print every route and its access rule as JSON, then exit
};

void add_common_flags(CLI::App& cmd, CommonOptions& opts);
std::string version_string();

int run_serve(const ServeOptions& opts);
int run_migrate(const CommonOptions& opts);
int run_check(const CommonOptions& opts);

struct AuditListOptions {
  CommonOptions common;
  int limit = 20;
};
// `devplane audit verify`: 0 when the whole chain verifies, 1 when it does not (or the
// database cannot be read), naming the first broken seq.
int run_audit_verify(const CommonOptions& opts);
// `devplane audit list [--limit N]`: newest first, one JSON object a line.
int run_audit_list(const AuditListOptions& opts);

}  // namespace dp::app
