#include "app/user_commands.hpp"

#include <unistd.h>

#include <functional>
#include <iomanip>
#include <iostream>

#include <CLI/CLI.hpp>

#include "auth/auth_service.hpp"
#include "auth/password.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "store/store.hpp"

namespace dp::app {
namespace {

// defaults < file < DEVPLANE_* < flags, as for serve.
Result<Config> config_for(const CommonOptions& opts) {
  Config c;
  std::string file = opts.config_file;
  if (file.empty()) {
    if (const char* f = std::getenv("DEVPLANE_CONFIG"); f != nullptr) file = f;
  }
  if (!file.empty()) DP_TRY(c.apply_file(file));
  DP_TRY(c.apply_env([](const char* name) { return std::getenv(name); }));
  for (const auto& [key, value] : opts.flags) DP_TRY(c.set(key, value, "flag"));
  return c;
}

int fail(const Error& e) {
  std::cerr << "devplane: " << e.message << "\n";
  return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
}

// One line from stdin, without its newline. Prompts only when stdin is a terminal (and
// then does not echo? a terminal echo toggle needs termios; keep it simple and say so).
Result<std::string> read_password() {
  if (isatty(STDIN_FILENO) != 0) std::cerr << "new password (input is visible; or pipe it in): ";
  std::string pw;
  if (!std::getline(std::cin, pw)) {
    return Error::invalid_argument("no_password", "no password on stdin");
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  return pw;
}

int with_service(const UserOptions& opts,
                 const std::function<int(auth::AuthService&)>& fn) {
  auto cfg = config_for(opts.common);
  if (!cfg.ok()) return fail(cfg.error());
  log::configure(log::Level::kWarn, *log::parse_format(cfg->log_format));
  auto s = store::open_store(*cfg);
  if (!s.ok()) return fail(s.error());
  auto v = (*s)->migrate();
  if (!v.ok()) return fail(v.error());
  // The CLI never signs tokens: a throwaway key keeps AuthService whole without reading
  // or creating the server's jwt.key.
  auth::AuthService svc(**s, auth::auth_options_from(*cfg, std::string(48, 'x')));
  const int rc = fn(svc);
  (*s)->close();
  return rc;
}

}  // namespace

void add_user_commands(CLI::App& cli, UserOptions& opts) {
  auto* user = cli.add_subcommand("user", "Manage users on the configured database");
  user->require_subcommand(1);
  auto* add = user->add_subcommand("add", "Create a user; the password is read from stdin");
  add->add_option("username", opts.username, "Login name (a-z, 0-9, . _ @ -)")->required();
  add->add_option("--role", opts.role, "admin, operator or viewer (default viewer)")
      ->check(CLI::IsMember({"admin", "operator", "viewer"}));
  add->add_option("--display-name", opts.display_name, "Name shown in the dashboard");
  add->add_flag("--password-stdin", opts.password_stdin, "Read the password from stdin (default)");
  add_common_flags(*add, opts.common);

  auto* list = user->add_subcommand("list", "List users (never their passwords)");
  add_common_flags(*list, opts.common);

  auto* passwd = user->add_subcommand(
      "passwd", "Set a user's password from stdin; clears a lockout and ends their sessions");
  passwd->add_option("username", opts.username, "Login name")->required();
  passwd->add_flag("--password-stdin", opts.password_stdin, "Read the password from stdin (default)");
  add_common_flags(*passwd, opts.common);

  auto* disable = user->add_subcommand("disable", "Disable a user and end their sessions");
  disable->add_option("username", opts.username, "Login name")->required();
  add_common_flags(*disable, opts.common);
}

int run_user_command(CLI::App& cli, const UserOptions& opts) {
  auto* user = cli.get_subcommand("user");
  if (!user->parsed()) return -1;
  const auth::RequestContext ctx{"local", "cli"};
  const http::Caller actor = auth::system_caller("cli");
  if (user->get_subcommand("add")->parsed()) {
    auto pw = read_password();
    if (!pw.ok()) return fail(pw.error());
    return with_service(opts, [&](auth::AuthService& svc) {
      auto u = svc.create_user({opts.username, opts.display_name, opts.role, *pw}, actor, ctx);
      if (!u.ok()) return fail(u.error());
      std::cout << "created user " << u->username << " (" << u->role << ", id " << u->id << ")\n";
      return 0;
    });
  }
  if (user->get_subcommand("list")->parsed()) {
    return with_service(opts, [&](auth::AuthService& svc) {
      auto users = svc.list_users();
      if (!users.ok()) return fail(users.error());
      std::cout << std::left << std::setw(24) << "USERNAME" << std::setw(10) << "ROLE"
                << std::setw(10) << "STATUS" << std::setw(26) << "LAST LOGIN" << "ID\n";
      for (const auto& u : *users) {
        std::cout << std::setw(24) << u.username << std::setw(10) << u.role << std::setw(10)
                  << u.status << std::setw(26)
                  << (u.last_login_at ? clock::format_iso8601(*u.last_login_at) : "-") << u.id
                  << "\n";
      }
      return 0;
    });
  }
  if (user->get_subcommand("passwd")->parsed()) {
    auto pw = read_password();
    if (!pw.ok()) return fail(pw.error());
    return with_service(opts, [&](auth::AuthService& svc) {
      auto u = svc.find_user(opts.username);
      if (!u.ok()) return fail(u.error());
      if (auto s = svc.set_password(u->id, *pw, actor, ctx); !s.ok()) return fail(s.error());
      std::cout << "password of " << u->username << " changed; their sessions are ended\n";
      return 0;
    });
  }
  return with_service(opts, [&](auth::AuthService& svc) {
    auto u = svc.find_user(opts.username);
    if (!u.ok()) return fail(u.error());
    auth::UserPatch patch;
    patch.status = "disabled";
    auto d = svc.update_user(u->id, patch, actor, ctx);
    if (!d.ok()) return fail(d.error());
    std::cout << "user " << d->username << " disabled\n";
    return 0;
  });
}

}  // namespace dp::app
