// `devplane user add|list|passwd|disable`: manage users offline, on the configured
// SQLite or PostgreSQL database (migrated first, like `migrate`). Passwords come from
// stdin, never from the command line (argv is visible to every local user).
#pragma once

#include <string>

#include "app/commands.hpp"

namespace CLI {
class App;
}

namespace dp::app {

struct UserOptions {
  CommonOptions common;
  std::string username;
  std::string role = "viewer";
  std::string display_name;
  bool password_stdin = false;  // accepted for clarity; stdin is always where it comes from
};

// Adds the `user` command and its subcommands to `cli`; returns a function that runs the
// one parsed (or nullptr-like empty function when `user` was not given).
void add_user_commands(CLI::App& cli, UserOptions& opts);
// Exit code of the parsed `user` subcommand; -1 when `user` was not on the command line.
int run_user_command(CLI::App& cli, const UserOptions& opts);

}  // namespace dp::app
