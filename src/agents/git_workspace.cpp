#include "agents/git_workspace.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "agents/sandbox/runner.hpp"
#include "core/log.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::size_t kMaxStat = 16 * 1024;

struct GitRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs git with `args` (no shell), with hooks, the system config and prompts disabled.
Result<GitRun> git(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(120)) {
  sandbox::RunSpec s;
  s.isolation = sandbox::Isolation::kNone;
  s.workspace = "/";
  s.argv = {"git", "-c", "core.hooksPath=/dev/null", "-c", "user.name=devplane", "-c",
            "user.email=devplane@localhost", "-c", "commit.gpgSign=false", "-c",
            "protocol.ext.allow=never"};
  s.argv.insert(s.argv.end(), args.begin(), args.end());
  s.env = {{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_TERMINAL_PROMPT", "0"}, {"HOME", "/nonexistent"},
           {"LC_ALL", "C"}};
  s.limits.memory_bytes = 2LL * 1024 * 1024 * 1024;
  s.limits.pids = 256;
  s.timeout = timeout;
  s.stop_grace = std::chrono::milliseconds(1000);
  s.output_limit = 4 * 1024 * 1024;
  DP_ASSIGN_OR_RETURN(auto r, sandbox::run(s));
  GitRun g;
  g.code = r.outcome == "exited" ? r.exit_code : -1;
  g.out = std::move(r.stdout_text);
  g.err = std::move(r.stderr_text);
  if (r.outcome == "timeout") g.err = "git timed out: " + g.err;
  return g;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return trim(nl == std::string::npos ? s : s.substr(0, nl));
}

// One mutex per repository (by path), for this process.
std::mutex& repo_mutex(const std::string& git_dir) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<std::mutex>> locks;
  std::lock_guard lock(mu);
  auto& m = locks[git_dir];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

bool is_url(const std::string& repo) { return !repo.empty() && repo.front() != '/'; }

// The bare clone of `url` under data_dir/repos, made or fetched.
Result<std::string> cached_clone(const std::string& url, const std::string& data_dir) {
  std::ostringstream name;
  name << std::hex << std::hash<std::string>{}(url);
  const fs::path dir = fs::path(data_dir) / "repos" / (name.str() + ".git");
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  std::lock_guard lock(repo_mutex(dir.string()));
  if (!fs::exists(dir / "HEAD", ec)) {
    fs::remove_all(dir, ec);
    DP_ASSIGN_OR_RETURN(auto r, git({"clone", "--bare", "--quiet", "--", url, dir.string()},
                                    std::chrono::seconds(600)));
    if (r.code != 0) {
      fs::remove_all(dir, ec);
      return Error::unavailable("cannot clone " + url + ": " + first_line(r.err));
    }
  } else {
    DP_ASSIGN_OR_RETURN(auto r, git({"-C", dir.string(), "fetch", "--quiet", "origin",
                                     "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
                                    std::chrono::seconds(600)));
    if (r.code != 0) return Error::unavailable("cannot fetch " + url + ": " + first_line(r.err));
  }
  return dir.string();
}

std::int64_t number_before(const std::string& text, const std::string& word) {
  const auto at = text.find(word);
  if (at == std::string::npos) return 0;
  auto start = text.rfind(' ', at > 0 ? at - 2 : 0);
  start = start == std::string::npos ? 0 : start + 1;
  try {
    return std::stoll(text.substr(start, at - start));
  } catch (...) {
    return 0;
  }
}

}  // namespace

json::object GitOutcome::to_json(const GitWorkspace& ws) const {
  return json::object{{"repo", ws.repo},
                      {"baseRef", ws.base_ref.empty() ? std::string("HEAD") : ws.base_ref},
                      {"baseCommit", ws.base_commit},
                      {"branch", ws.branch},
                      {"commit", commit},
                      {"committed", committed},
                      {"diffStat", json::object{{"filesChanged", files_changed},
                                                {"insertions", insertions},
                                                {"deletions", deletions},
                                                {"text", stat}}}};
}

std::string branch_segment(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    out.push_back(ok ? c : '-');
    if (out.size() >= 64) break;
  }
  while (!out.empty() && (out.front() == '-' || out.front() == '.')) out.erase(out.begin());
  return out;
}

Result<GitWorkspace> prepare_worktree(const GitWorkspaceSpec& spec) {
  GitWorkspace ws;
  ws.repo = spec.repo;
  ws.base_ref = spec.base_ref;
  ws.branch = spec.branch;
  ws.dir = spec.dir;
  if (fs::path(spec.dir).is_relative() || fs::path(spec.data_dir).is_relative()) {
    return Error::invalid_argument("invalid_spec", "the worktree and data folders must be absolute paths");
  }
  if (is_url(spec.repo)) {
    DP_ASSIGN_OR_RETURN(ws.git_dir, cached_clone(spec.repo, spec.data_dir));
  } else {
    DP_ASSIGN_OR_RETURN(auto top, git({"-C", spec.repo, "rev-parse", "--git-common-dir"}));
    if (top.code != 0) {
      return Error::invalid_argument("invalid_repo", "'" + spec.repo + "' is not a git repository: " +
                                                         first_line(top.err));
    }
    fs::path common(trim(top.out));
    if (common.is_relative()) common = fs::path(spec.repo) / common;
    ws.git_dir = fs::weakly_canonical(common).string();
  }
  std::lock_guard lock(repo_mutex(ws.git_dir));
  const std::string ref = spec.base_ref.empty() ? "HEAD" : spec.base_ref;
  DP_ASSIGN_OR_RETURN(auto rev, git({"--git-dir", ws.git_dir, "rev-parse", "--verify", "--quiet",
                                     "--end-of-options", ref + "^{commit}"}));
  if (rev.code != 0) {
    return Error::invalid_argument("invalid_ref", "baseRef '" + ref + "' does not name a commit in " +
                                                      spec.repo);
  }
  ws.base_commit = trim(rev.out);
  DP_ASSIGN_OR_RETURN(auto add, git({"--git-dir", ws.git_dir, "worktree", "add", "--quiet", "-b",
                                     spec.branch, "--", spec.dir, ws.base_commit}));
  if (add.code != 0) {
    return Error::unavailable("cannot create the worktree: " + first_line(add.err));
  }
  std::ifstream in(fs::path(spec.dir) / ".git");
  std::getline(in, ws.dot_git);
  return ws;
}

Result<GitOutcome> finish_worktree(const GitWorkspace& ws, bool commit, const std::string& message) {
  // The agent could write the worktree's `.git` file and point it at another repository on
  // the host; git then must not run in it.
  {
    std::error_code ec;
    const auto st = fs::symlink_status(fs::path(ws.dir) / ".git", ec);
    std::string line;
    if (!ec && fs::is_regular_file(st)) {
      std::ifstream in(fs::path(ws.dir) / ".git");
      std::getline(in, line);
    }
    if (line.empty() || line != ws.dot_git) {
      return Error{ErrorCode::kPermissionDenied, "workspace_tampered",
                   "the worktree's .git link was altered by the agent; nothing was committed", nullptr};
    }
  }
  std::lock_guard lock(repo_mutex(ws.git_dir));
  GitOutcome out;
  DP_ASSIGN_OR_RETURN(auto add, git({"-C", ws.dir, "add", "-A", commit ? "." : "--intent-to-add"}));
  if (!commit && add.code != 0) {
    // `--intent-to-add` wants pathspecs.
    DP_ASSIGN_OR_RETURN(add, git({"-C", ws.dir, "add", "-A", "--intent-to-add", "."}));
  }
  if (add.code != 0) return Error::unavailable("git add failed: " + first_line(add.err));
  if (commit) {
    DP_ASSIGN_OR_RETURN(auto st, git({"-C", ws.dir, "status", "--porcelain"}));
    if (!trim(st.out).empty()) {
      DP_ASSIGN_OR_RETURN(auto c, git({"-C", ws.dir, "commit", "--quiet", "--no-verify", "-m", message}));
      if (c.code != 0) return Error::unavailable("git commit failed: " + first_line(c.err + c.out));
      out.committed = true;
    }
  }
  DP_ASSIGN_OR_RETURN(auto head, git({"-C", ws.dir, "rev-parse", "HEAD"}));
  out.commit = trim(head.out);
  // Committed: the branch against its base. Not committed: the working tree against it.
  std::vector<std::string> diff = {"-C", ws.dir, "diff", "--stat=120", ws.base_commit};
  if (commit) diff.push_back("HEAD");
  DP_ASSIGN_OR_RETURN(auto d, git(diff));
  out.stat = d.out.size() > kMaxStat ? d.out.substr(0, kMaxStat) : d.out;
  // The last line: " N files changed, X insertions(+), Y deletions(-)".
  const std::string s = trim(d.out);
  const auto nl = s.rfind('\n');
  const std::string summary = " " + (nl == std::string::npos ? s : s.substr(nl + 1));
  out.files_changed = number_before(summary, summary.find("files changed") != std::string::npos
                                                 ? "files changed"
                                                 : "file changed");
  out.insertions = number_before(summary, "insertion");
  out.deletions = number_before(summary, "deletion");
  return out;
}

void remember_worktree(const std::string& task_workspace, const std::string& git_dir) {
  const fs::path p(task_workspace);
  std::ofstream(p.parent_path() / ("." + p.filename().string() + ".gitdir")) << git_dir;
}

int sweep_workspaces(const std::string& data_dir, std::chrono::seconds retention,
                     const std::set<std::string>& keep) {
  if (retention.count() <= 0) return 0;
  std::error_code ec;
  const fs::path root = fs::path(data_dir) / "workspaces";
  if (!fs::is_directory(root, ec)) return 0;
  const auto cutoff = fs::file_time_type::clock::now() - retention;
  int removed = 0;
  std::set<std::string> prune;
  for (const auto& agent : fs::directory_iterator(root, ec)) {
    if (!agent.is_directory(ec) || agent.is_symlink(ec)) continue;
    std::vector<fs::path> old;
    for (const auto& task : fs::directory_iterator(agent.path(), ec)) {
      const auto name = task.path().filename().string();
      if (name.empty() || name.front() == '.' || keep.count(name) != 0) continue;
      if (!task.is_directory(ec) || task.is_symlink(ec)) continue;
      const auto t = fs::last_write_time(task.path(), ec);
      if (!ec && t < cutoff) old.push_back(task.path());
    }
    for (const auto& p : old) {
      const fs::path marker = p.parent_path() / ("." + p.filename().string() + ".gitdir");
      std::ifstream in(marker);
      std::string git_dir;
      std::getline(in, git_dir);
      if (!git_dir.empty()) prune.insert(git_dir);
      fs::remove_all(p, ec);
      fs::remove(marker, ec);
      ++removed;
    }
  }
  for (const auto& g : prune) {
    std::lock_guard lock(repo_mutex(g));
    auto r = git({"--git-dir", g, "worktree", "prune"});
    if (!r.ok() || r->code != 0) {
      log::global().warn("git worktree prune failed", {{"gitDir", g}});
    }
  }
  return removed;
}

}  // namespace dp::agents
