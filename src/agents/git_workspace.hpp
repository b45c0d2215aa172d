// Git workspaces: a task that names a repository runs in its own `git worktree`, on its own
// branch, inside the task's workspace, so agents working on the same repository in parallel
// never touch each other's files.
//
// A local repository (an absolute path) gets the worktree and the branch directly, so its
// owner sees the branch at once. A URL is cloned once (bare) under `<data_dir>/repos/`, fetched
// before each task, and the worktree is made from that clone.
// After the agent ran, `finish_worktree` (optionally) commits what the agent left, with
// hooks disabled, and reports the branch, the commit and the diff stat against the base.
// `sweep_workspaces` removes task workspaces older than the retention and prunes the
// worktrees they held.
//
// git runs as a child process (never in a shell). Operations on one repository are
// serialized in this process (git's own locks would make parallel `worktree add`s fail).
// Blocking: call from a task thread. Safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp::agents {

struct GitWorkspaceSpec {
  std::string repo;      // absolute path or URL
  std::string base_ref;  // empty: HEAD
  std::string branch;    // the branch to create, e.g. devplane/linter/<task id>
  std::string dir;       // where the worktree goes (must not exist)
  std::string data_dir;  // for the clone cache of URLs
};

struct GitWorkspace {
  std::string repo;         // as given
  std::string git_dir;      // the repository the worktree belongs to (local, or the clone)
  std::string base_ref;
  std::string base_commit;  // what base_ref resolved to
  std::string branch;
  std::string dir;
  std::string dot_git;      // the worktree's `.git` file as written by git (checked at the end)
};

struct GitOutcome {
  std::string commit;  // the branch's head after the task
  bool committed = false;
  std::int64_t files_changed = 0;
  std::int64_t insertions = 0;
  std::int64_t deletions = 0;
  std::string stat;  // `git diff --stat` text, capped

  boost::json::object to_json(const GitWorkspace& ws) const;
};

// A branch name segment made of [A-Za-z0-9._-] from `name` (empty when nothing is left).
std::string branch_segment(std::string_view name);

// Creates the worktree. kInvalidArgument for a repository or ref that does not resolve,
// kUnavailable when git is missing or a clone/fetch fails; the message carries git's words.
Result<GitWorkspace> prepare_worktree(const GitWorkspaceSpec& spec);

// Commits what the agent left (when `commit`; nothing to commit is not an error) and reports
// the result. kPermissionDenied when the worktree's `.git` link was altered (then nothing is
// run in it).
Result<GitOutcome> finish_worktree(const GitWorkspace& ws, bool commit, const std::string& message);

// Removes `<data_dir>/workspaces/<agent>/<task>` folders last changed more than `retention`
// ago, except the tasks in `keep` (running ones), and prunes the worktrees they held.
// Returns how many were removed. A zero retention removes nothing.
int sweep_workspaces(const std::string& data_dir, std::chrono::seconds retention,
                     const std::set<std::string>& keep);

// Records (outside the workspace, which the agent can write) which repository a task's
// worktree belongs to, for the sweep.
void remember_worktree(const std::string& task_workspace, const std::string& git_dir);

}  // namespace dp::agents
