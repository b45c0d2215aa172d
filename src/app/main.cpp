// devplane: the command-line entry point. `serve` runs the control plane, `migrate`
// applies schema migrations, `version` prints build information.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/commands.hpp"
#include "app/run_command.hpp"
#include "app/user_commands.hpp"

int main(int argc, char** argv) {
  // A peer that goes away (a client socket, a Redis connection, a sandboxed program's stdin)
  // must turn a write into an error, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App cli{"devplane: a self-hosted control plane for AI agents working on software"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", dp::app::version_string());

  dp::app::ServeOptions serve;
  auto* serve_cmd = cli.add_subcommand("serve", "Run the control plane (HTTP API, dashboard, metrics)");
  dp::app::add_common_flags(*serve_cmd, serve.common);
  serve_cmd->add_flag("--print-routes", serve.print_routes,
                      "Print every route with its access rule as JSON and exit");
  serve_cmd->add_flag("--print-config", serve.print_config,
                      "Print the effective configuration (secrets masked) and exit");

  dp::app::CommonOptions migrate;
  auto* migrate_cmd = cli.add_subcommand("migrate", "Apply pending schema migrations and exit");
  dp::app::add_common_flags(*migrate_cmd, migrate);

  dp::app::CommonOptions check;
  auto* check_cmd =
      cli.add_subcommand("check", "Check the database: schema version and integrity");
  dp::app::add_common_flags(*check_cmd, check);

  auto* audit_cmd = cli.add_subcommand("audit", "Inspect the audit log (offline, on the configured database)");
  audit_cmd->require_subcommand(1);
  dp::app::CommonOptions audit_verify;
  auto* audit_verify_cmd = audit_cmd->add_subcommand(
      "verify", "Walk the whole hash chain: exit 0 when it verifies, 1 naming the first broken entry");
  dp::app::add_common_flags(*audit_verify_cmd, audit_verify);
  dp::app::AuditListOptions audit_list;
  auto* audit_list_cmd =
      audit_cmd->add_subcommand("list", "Print the newest audit entries, one JSON object a line");
  dp::app::add_common_flags(*audit_list_cmd, audit_list.common);
  audit_list_cmd->add_option("--limit", audit_list.limit, "How many entries (default 20)")
      ->check(CLI::Range(1, 100000));

  cli.add_subcommand("version", "Print version and build information");

  dp::app::RunOptions run;
  auto* run_cmd = dp::app::add_run_command(cli, run);

  dp::app::UserOptions user;
  dp::app::add_user_commands(cli, user);

  CLI11_PARSE(cli, argc, argv);

  if (int rc = dp::app::run_user_command(cli, user); rc >= 0) return rc;

  if (run_cmd->parsed()) return dp::app::run_run_command(run);
  if (serve_cmd->parsed()) return dp::app::run_serve(serve);
  if (migrate_cmd->parsed()) return dp::app::run_migrate(migrate);
  if (check_cmd->parsed()) return dp::app::run_check(check);
  if (audit_verify_cmd->parsed()) return dp::app::run_audit_verify(audit_verify);
  if (audit_list_cmd->parsed()) return dp::app::run_audit_list(audit_list);
  std::cout << dp::app::version_string() << "\n";
  return 0;
}
