// Agents for development work over real HTTP, with the real binary, real git and real
// bubblewrap sandboxes, on SQLite and PostgreSQL: tasks that name a git repository run in
// their own worktree on their own branch (local path and file:// URL; two agents in parallel
// on one repository), bad repositories and refs, and the budgets that can trip for command
// agents (output size, wall time per task; the agent's totals across tasks) with their
// reasons in the task, its event and the audit log.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

// Runs a shell command line made by the test (fixed strings and temp paths only).
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class DevWorkTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(GetParam());
    ASSERT_EQ(server_->error(), "") << "server did not start";
    client_ = std::make_unique<HttpClient>(server_->port());
    repo_ = std::make_unique<TempDir>();
    const std::string r = repo_->path().string();
    const std::string git = "git -C " + r + " -c user.name=t -c user.email=t@localhost ";
    sh("git init -q -b main " + r);
    std::ofstream(repo_->path() / "README.md") << "hello\n";
    std::ofstream(repo_->path() / "lib.txt") << "one\ntwo\n";
    sh(git + "add -A && " + git + "commit -q -m init");
    sh(git + "tag v1");
    std::ofstream(repo_->path() / "lib.txt") << "one\ntwo\nthree\n";
    sh(git + "commit -q -am second");
  }
  void TearDown() override {
    client_.reset();
    if (server_ && server_->process().running()) {
      EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
    }
    server_.reset();
  }

  std::string agent(const std::string& name, json::object config) {
    auto r = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", name}, {"type", "command"},
                                                        {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    EXPECT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
    return id;
  }

  std::string submit(const std::string& agent_id, const json::object& body) {
    auto r = client_->post("/api/v1/agents/" + agent_id + "/tasks", json::serialize(body));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }

  HttpResponse wait_done(const std::string& agent_id, const std::string& task_id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    HttpResponse r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = client_->get("/api/v1/agents/" + agent_id + "/tasks/" + task_id);
      const auto st = r.str("/data/status");
      if (st == "succeeded" || st == "failed" || st == "cancelled") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "task did not finish in time: " << r.describe();
    return r;
  }

  std::string git(const std::string& args) { return sh("git -C " + repo_->path().string() + " " + args); }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> client_;
  std::unique_ptr<TempDir> repo_;
};

TEST_P(DevWorkTest, ATaskWorksInItsOwnWorktreeAndReturnsBranchCommitAndDiffStat) {
  const std::string id = agent(
      "editor", json::object{{"command", "echo four >> lib.txt; echo new > added.txt; git status >/dev/null 2>&1; pwd"}});
  const std::string head_before = git("rev-parse HEAD");
  const std::string task = submit(id, json::object{{"input", "edit"}, {"repo", repo_->path().string()}});
  auto done = wait_done(id, task);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.str("/data/result/stdout"), "/workspace/repo\n");
  EXPECT_EQ(done.str("/data/repo"), repo_->path().string());
  const std::string branch = done.str("/data/result/git/branch");
  EXPECT_EQ(branch, "devplane/editor/" + task);
  EXPECT_EQ(done.str("/data/result/git/baseCommit"), head_before);
  const std::string commit = done.str("/data/result/git/commit");
  ASSERT_EQ(commit.size(), 40u) << done.describe();
  EXPECT_NE(commit, head_before);
  EXPECT_EQ(done.num("/data/result/git/diffStat/filesChanged"), 2);
  EXPECT_EQ(done.num("/data/result/git/diffStat/insertions"), 2);
  EXPECT_EQ(done.num("/data/result/git/diffStat/deletions"), 0);
  // The branch exists in the repository with the agent's work; the main checkout is untouched.
  EXPECT_EQ(git("rev-parse " + branch), commit);
  EXPECT_EQ(git("show " + branch + ":lib.txt"), "one\ntwo\nthree\nfour");
  EXPECT_EQ(git("show " + branch + ":added.txt"), "new");
  EXPECT_EQ(git("rev-parse HEAD"), head_before);
  EXPECT_EQ(git("status --porcelain"), "");
}

TEST_P(DevWorkTest, ABaseRefAndAUrlRepositoryWork) {
  const std::string id = agent("reader", json::object{{"command", "cat lib.txt; echo x > x.txt"},
                                                      {"gitCommit", false}});
  const std::string url = "file://" + repo_->path().string();
  const std::string task = submit(id, json::object{{"input", "read"}, {"repo", url}, {"baseRef", "v1"}});
  auto done = wait_done(id, task);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.str("/data/result/stdout"), "one\ntwo\n");
  EXPECT_EQ(done.str("/data/result/git/baseRef"), "v1");
  EXPECT_EQ(done.str("/data/result/git/baseCommit"), git("rev-parse v1^{commit}"));
  // Not committed: the branch stays at the base, the stat counts the working tree.
  const auto* committed = done.at("/data/result/git/committed");
  ASSERT_NE(committed, nullptr);
  EXPECT_FALSE(committed->as_bool());
  EXPECT_EQ(done.str("/data/result/git/commit"), git("rev-parse v1^{commit}"));
  EXPECT_EQ(done.num("/data/result/git/diffStat/filesChanged"), 1) << done.describe();
  // The URL was cloned by devplane: the local repository has no such branch.
  EXPECT_EQ(git("branch --list devplane/*"), "");
}

TEST_P(DevWorkTest, TwoAgentsInParallelNeverTouchEachOthersFiles) {
  const std::string cmd =
      "for i in 1 2 3 4 5 6 7 8 9 10; do echo $DEVPLANE_AGENT_ID >> shared.txt; sleep 0.05; done; "
      "cat shared.txt | sort -u | wc -l";
  const std::string a = agent("left", json::object{{"command", cmd}});
  const std::string b = agent("right", json::object{{"command", cmd}});
  const std::string ta = submit(a, json::object{{"input", "go"}, {"repo", repo_->path().string()}});
  const std::string tb = submit(b, json::object{{"input", "go"}, {"repo", repo_->path().string()}});
  auto da = wait_done(a, ta);
  auto db = wait_done(b, tb);
  ASSERT_EQ(da.str("/data/status"), "succeeded") << da.describe();
  ASSERT_EQ(db.str("/data/status"), "succeeded") << db.describe();
  // Each saw only its own lines, and each branch holds only its own agent's file.
  EXPECT_EQ(da.str("/data/result/stdout"), "1\n");
  EXPECT_EQ(db.str("/data/result/stdout"), "1\n");
  const std::string fa = git("show " + da.str("/data/result/git/branch") + ":shared.txt");
  const std::string fb = git("show " + db.str("/data/result/git/branch") + ":shared.txt");
  EXPECT_EQ(fa.find(b), std::string::npos);
  EXPECT_EQ(fb.find(a), std::string::npos);
  EXPECT_NE(fa.find(a), std::string::npos);
  EXPECT_NE(fb.find(b), std::string::npos);
  EXPECT_NE(da.str("/data/result/git/branch"), db.str("/data/result/git/branch"));
}

TEST_P(DevWorkTest, AnAgentThatRedirectsItsGitLinkGetsNothingCommitted) {
  // A second repository the agent must not reach through a rewritten .git file.
  TempDir other;
  sh("git init -q -b main " + other.path().string());
  const std::string id = agent(
      "sneaky", json::object{{"command", "echo 'gitdir: " + other.path().string() + "/.git' > .git; echo x > y"}});
  const std::string task = submit(id, json::object{{"input", "x"}, {"repo", repo_->path().string()}});
  auto done = wait_done(id, task);
  EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
  EXPECT_NE(done.str("/data/error").find(".git link was altered"), std::string::npos) << done.describe();
  EXPECT_EQ(sh("git -C " + other.path().string() + " log --oneline 2>/dev/null | wc -l"), "0");
}

TEST_P(DevWorkTest, BadRepositoriesAndRefsAreRefusedOrFailTheTask) {
  const std::string id = agent("strict", json::object{{"command", "true"}});
  const std::string base = "/api/v1/agents/" + id + "/tasks";
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"input": "x", "repo": ""})", "repo"},
      {R"({"input": "x", "repo": "relative/path"})", "repo"},
      {R"({"input": "x", "repo": "-uhoh"})", "repo"},
      {R"({"input": "x", "repo": "ext::sh -c touch% /tmp/pwned"})", "repo"},
      {R"({"input": "x", "repo": 5})", "repo"},
      {R"({"input": "x", "baseRef": "main"})", "baseRef"},
      {R"({"input": "x", "repo": "/tmp", "baseRef": "--upload-pack=x"})", "baseRef"},
      {R"({"input": "x", "repo": "/tmp", "baseRef": "a..b"})", "baseRef"},
      {R"({"input": "x", "repo": "/tmp", "baseRef": "a b"})", "baseRef"},
      {R"({"input": "x", "limits": {"timeoutSeconds": 0}})", "limits.timeoutSeconds"},
      {R"({"input": "x", "limits": {"maxOutputBytes": "big"}})", "limits.maxOutputBytes"},
      {R"({"input": "x", "limits": {"maxCostUsd": -1}})", "limits.maxCostUsd"},
      {R"({"input": "x", "limits": {"wallTime": 5}})", "limits.wallTime"},
      {R"({"input": "x", "limits": []})", "limits"},
      {"{\"input\": \"x\", \"repo\": \"/" + std::string(5000, 'a') + "\"}", "repo"},
  };
  for (const auto& c : cases) {
    auto r = client_->post(base, c.body);
    EXPECT_EQ(r.status, 422u) << c.body.substr(0, 80) << " -> " << r.describe();
    EXPECT_NE(r.body.find("\"" + c.field + "\""), std::string::npos) << c.body.substr(0, 80) << " -> " << r.describe();
  }
  EXPECT_EQ(client_->get(base).num("/meta/total"), 0);
  // Valid in form but not a repository, or a ref that does not exist: the task fails with why.
  TempDir plain;
  auto t1 = submit(id, json::object{{"input", "x"}, {"repo", plain.path().string()}});
  auto d1 = wait_done(id, t1);
  EXPECT_EQ(d1.str("/data/status"), "failed");
  EXPECT_NE(d1.str("/data/error").find("not a git repository"), std::string::npos) << d1.describe();
  EXPECT_EQ(d1.str("/data/result/stopReason"), "workspace_error");
  auto t2 = submit(id, json::object{{"input", "x"}, {"repo", repo_->path().string()}, {"baseRef", "nope"}});
  auto d2 = wait_done(id, t2);
  EXPECT_EQ(d2.str("/data/status"), "failed");
  EXPECT_NE(d2.str("/data/error").find("does not name a commit"), std::string::npos) << d2.describe();
  EXPECT_EQ(git("branch --list devplane/*"), "");
  EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);
}

TEST_P(DevWorkTest, OutputSizeAndWallTimeBudgetsStopATaskWithTheirReason) {
  const std::string id = agent("chatty", json::object{{"command", "yes hello"}, {"maxOutputBytes", 100000}});
  const std::string t1 = submit(id, json::object{{"input", "x"}});
  auto d1 = wait_done(id, t1);
  EXPECT_EQ(d1.str("/data/status"), "failed") << d1.describe();
  EXPECT_EQ(d1.str("/data/result/stopReason"), "max_output_bytes");
  EXPECT_NE(d1.str("/data/error").find("maxOutputBytes (100000)"), std::string::npos) << d1.describe();
  // A task's own limit wins over the agent's.
  const std::string t2 = submit(id, json::object{{"input", "x"}, {"limits", json::object{{"maxOutputBytes", 10}}}});
  auto d2 = wait_done(id, t2);
  EXPECT_NE(d2.str("/data/error").find("maxOutputBytes (10)"), std::string::npos) << d2.describe();
  EXPECT_EQ(d2.str("/data/limits/maxOutputBytes"), "");
  EXPECT_EQ(d2.num("/data/limits/maxOutputBytes"), 10);
  const std::string slow = agent("slow", json::object{{"command", json::array{"sleep", "30"}}});
  const std::string t3 = submit(slow, json::object{{"input", "x"}, {"limits", json::object{{"timeoutSeconds", 1}}}});
  auto d3 = wait_done(slow, t3);
  EXPECT_EQ(d3.str("/data/status"), "failed");
  EXPECT_EQ(d3.str("/data/result/stopReason"), "timeout");
  EXPECT_LT(d3.num("/data/result/wallMs"), 10000);
  // The output stop is in the audit log with its reason.
  auto audit = client_->get("/api/v1/audit?action=agent.task.stopped");
  ASSERT_EQ(audit.status, 200u) << audit.describe();
  EXPECT_NE(audit.body.find("max_output_bytes"), std::string::npos) << audit.describe();
}

TEST_P(DevWorkTest, AnAgentsBudgetSpansItsTasks) {
  const std::string id = agent("thrifty", json::object{{"command", "head -c 600 /dev/zero"},
                                                       {"budget", json::object{{"maxOutputBytes", 1000}}}});
  auto d1 = wait_done(id, submit(id, json::object{{"input", "1"}}));
  EXPECT_EQ(d1.str("/data/status"), "succeeded") << d1.describe();
  auto d2 = wait_done(id, submit(id, json::object{{"input", "2"}}));
  EXPECT_EQ(d2.str("/data/status"), "succeeded") << d2.describe();
  // 1200 bytes used: the third does not start.
  auto d3 = wait_done(id, submit(id, json::object{{"input", "3"}}));
  EXPECT_EQ(d3.str("/data/status"), "failed") << d3.describe();
  EXPECT_EQ(d3.str("/data/result/stopReason"), "agent_budget");
  EXPECT_NE(d3.str("/data/error").find("config.budget.maxOutputBytes (1000) reached with 1200"),
            std::string::npos)
      << d3.describe();
  auto audit = client_->get("/api/v1/audit?action=agent.task.stopped");
  EXPECT_NE(audit.body.find("agent_budget"), std::string::npos) << audit.describe();
  // Bad budgets are refused at create time.
  auto bad = client_->post("/api/v1/agents", json::serialize(json::object{
      {"name", "bad"}, {"type", "command"},
      {"config", json::object{{"command", "true"}, {"budget", json::object{{"maxTokens", -5}, {"pennies", 1}}}}}}));
  EXPECT_EQ(bad.status, 422u) << bad.describe();
  EXPECT_NE(bad.body.find("config.budget.maxTokens"), std::string::npos);
  EXPECT_NE(bad.body.find("config.budget.pennies"), std::string::npos);
}

// NUL bytes and bytes that are not UTF-8 (which PostgreSQL refuses in JSON) must not leave the
// task running forever: they are replaced in the result.
TEST_P(DevWorkTest, BinaryOutputIsRecordedAsText) {
  const std::string id = agent("binary", json::object{{"command", "printf 'a\\000b\\377c'"}});
  auto done = wait_done(id, submit(id, json::object{{"input", "x"}}));
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.str("/data/result/stdout"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c") << done.describe();
  EXPECT_EQ(done.num("/data/result/stdoutBytes"), 5);
}

// The docker runtime without an engine (none runs on these machines): the task fails naming
// the socket it could not reach, and a docker agent without an image is refused.
TEST_P(DevWorkTest, ADockerAgentWithoutAnEngineFailsItsTaskNamingTheSocket) {
  ASSERT_EQ(server_->process().stop(), 0);
  TempDir dir;
  const std::string sock = (dir.path() / "docker.sock").string();
  server_ = std::make_unique<TestServer>(GetParam(), std::vector<std::string>{},
                                         Env{{"DEVPLANE_DOCKER_SOCKET", sock}});
  ASSERT_EQ(server_->error(), "") << "server did not start";
  client_ = std::make_unique<HttpClient>(server_->port());
  auto bad = client_->post("/api/v1/agents", R"({"name": "d", "type": "command",
      "config": {"command": "true", "isolation": "docker"}})");
  EXPECT_EQ(bad.status, 422u) << bad.describe();
  EXPECT_NE(bad.body.find("config.image"), std::string::npos) << bad.describe();
  const std::string id = agent("boxed", json::object{{"command", "echo hi"}, {"isolation", "docker"},
                                                     {"image", "alpine:3.20"}});
  auto done = wait_done(id, submit(id, json::object{{"input", "x"}}));
  EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
  EXPECT_NE(done.str("/data/error").find("cannot reach the Docker engine at " + sock), std::string::npos)
      << done.describe();
  EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);
}

// The example agents (examples/agents/linter.json, test-runner.json) on a repository made here.
TEST_P(DevWorkTest, TheExampleLinterAndTestRunnerAgentsWork) {
  auto load = [&](const std::string& name) {
    std::ifstream in(source_dir() + "/examples/agents/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = client_->post("/api/v1/agents", ss.str());
    EXPECT_EQ(r.status, 201u) << name << ": " << r.describe();
    const std::string id = r.str("/data/id");
    EXPECT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
    return id;
  };
  const std::string linter = load("linter.json");
  const std::string runner = load("test-runner.json");
  const std::string repo = repo_->path().string();
  // The repository is clean: the linter passes.
  auto clean = wait_done(linter, submit(linter, json::object{{"input", "lint"}, {"repo", repo}}));
  EXPECT_EQ(clean.str("/data/status"), "succeeded") << clean.describe();
  EXPECT_NE(clean.str("/data/result/stdout").find("lint: 0 finding(s)"), std::string::npos) << clean.describe();
  // A branch with problems fails with each finding.
  const std::string git = "git -C " + repo + " -c user.name=t -c user.email=t@localhost ";
  sh(git + "checkout -q -b messy");
  std::ofstream(repo_->path() / "bad.txt") << "ok\ntrailing   \n\tindented\n" << std::string(130, 'x') << "\nno newline";
  std::ofstream(repo_->path() / "run-tests.sh") << "echo running 3 tests\necho 'test_b failed' >&2\nexit 1\n";
  sh(git + "add -A && " + git + "commit -q -m messy && " + git + "checkout -q main");
  auto messy = wait_done(linter, submit(linter, json::object{{"input", "lint"}, {"repo", repo}, {"baseRef", "messy"}}));
  EXPECT_EQ(messy.str("/data/status"), "failed") << messy.describe();
  const std::string out = messy.str("/data/result/stdout");
  for (const char* finding : {"bad.txt:2: trailing whitespace", "bad.txt:3: tab indentation",
                              "bad.txt:4: line longer than 120 characters (130)",
                              "bad.txt: no newline at end of file", "lint: 4 finding(s)"}) {
    EXPECT_NE(out.find(finding), std::string::npos) << finding << " in " << out;
  }
  // The test runner runs the repository's tests and reports them.
  auto tests = wait_done(runner, submit(runner, json::object{{"input", ""}, {"repo", repo}, {"baseRef", "messy"}}));
  EXPECT_EQ(tests.str("/data/status"), "failed") << tests.describe();
  EXPECT_EQ(tests.num("/data/result/exitCode"), 1);
  EXPECT_NE(tests.str("/data/result/stdout").find("running 3 tests"), std::string::npos) << tests.describe();
  EXPECT_NE(tests.str("/data/result/stdout").find("test_b failed"), std::string::npos) << tests.describe();
  bool report = false;
  for (const auto& o : tests.at("/data/result/outputs")->as_array()) {
    report = report || o.as_object().at("path") == "test-report.json";
  }
  EXPECT_TRUE(report) << tests.describe();
  auto passing = wait_done(runner, submit(runner, json::object{{"input", "echo all good"}, {"repo", repo}}));
  EXPECT_EQ(passing.str("/data/status"), "succeeded") << passing.describe();
  EXPECT_NE(passing.str("/data/result/stdout").find("tests: exit 0"), std::string::npos) << passing.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, DevWorkTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
