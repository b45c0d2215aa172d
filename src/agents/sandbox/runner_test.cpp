// The sandbox against real bubblewrap and real cgroups: each probe must fail from inside.
#include "agents/sandbox/runner.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "core/ids.hpp"

namespace dp::agents::sandbox {
namespace {

namespace fs = std::filesystem;

// Agents and MCP adapters read their limits from the same keys; what a config leaves out keeps
// the caller's default, and a key of the wrong type is not taken.
TEST(LimitsFromConfigTest, KeysSetTheirLimitAndTheRestKeepTheDefaults) {
  const CgroupLimits defaults{512LL * 1024 * 1024, 256, 1.0};
  const auto all = limits_from_config(
      boost::json::parse(R"({"memoryMb":64,"pids":16,"cpus":0.5})").as_object(), defaults);
  EXPECT_EQ(all.memory_bytes, 64LL * 1024 * 1024);
  EXPECT_EQ(all.pids, 16);
  EXPECT_DOUBLE_EQ(all.cpus, 0.5);

  const auto some = limits_from_config(boost::json::parse(R"({"pids":8,"cpus":0})").as_object(), defaults);
  EXPECT_EQ(some.memory_bytes, defaults.memory_bytes);
  EXPECT_EQ(some.pids, 8);
  EXPECT_DOUBLE_EQ(some.cpus, 0.0);

  const auto wrong = limits_from_config(
      boost::json::parse(R"({"memoryMb":"64","pids":2.5,"cpus":"1"})").as_object(), defaults);
  EXPECT_EQ(wrong.memory_bytes, defaults.memory_bytes);
  EXPECT_EQ(wrong.pids, defaults.pids);
  EXPECT_DOUBLE_EQ(wrong.cpus, defaults.cpus);
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("dp-sandbox-" + ids::uuid_v7());
    workspace_ = root_ / "workspace";
    fs::create_directories(workspace_);
    // The canary sits next to the workspace, on the host, where an agent must not see it.
    canary_ = root_ / "canary.txt";
    std::ofstream(canary_) << "canary-secret-" << ids::uuid_v7();
    ASSERT_TRUE(check_available(Isolation::kSandbox).ok())
        << "the sandbox needs bubblewrap and cgroups: "
        << check_available(Isolation::kSandbox).error().message;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  RunResult run_ok(RunSpec spec, RunControl* control = nullptr) {
    if (spec.workspace.empty()) spec.workspace = workspace_.string();
    auto r = run(spec, control);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : RunResult{};
  }
  RunResult bash(const std::string& script) {
    RunSpec s;
    s.argv = {"bash", "-c", script};
    s.timeout = std::chrono::seconds(60);
    return run_ok(s);
  }

  fs::path root_, workspace_, canary_;
};

TEST_F(SandboxTest, RunsAProgramAndCapturesItsOutputAndExitCode) {
  auto r = bash("echo out; echo err >&2; exit 3");
  EXPECT_TRUE(r.isolated);
  EXPECT_EQ(r.outcome, "exited");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");
}

TEST_F(SandboxTest, FeedsStdinAndCapsOutput) {
  RunSpec s;
  s.argv = {"cat"};
  s.stdin_data = std::string(10000, 'x');
  s.output_limit = 1024;
  auto r = run_ok(s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_bytes, 10000);
  EXPECT_EQ(r.stdout_text.size(), 1024U);
}

// RunSpec::stdout_fd: the program writes into the caller's pipe, which `run` closes on its
// side, so the caller reads everything and then end-of-file; only stderr is collected.
TEST_F(SandboxTest, StdoutCanGoToTheCallersOwnPipe) {
  for (auto isolation : {Isolation::kSandbox, Isolation::kNone}) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    RunSpec s;
    s.argv = {"bash", "-c", "echo one; echo err >&2; echo two"};
    s.isolation = isolation;
    s.timeout = std::chrono::seconds(60);
    s.stdout_fd = p[1];
    std::string seen;
    s.on_output = [&](std::string_view stream, std::string_view chunk) {
      EXPECT_EQ(stream, "stderr");
      seen.append(chunk);
    };
    auto r = run_ok(s);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.stdout_text, "");
    EXPECT_EQ(r.stderr_text, "err\n");
    EXPECT_EQ(seen, "err\n");
    std::string out;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    EXPECT_EQ(n, 0) << "end-of-file: no copy of the write end is left open";
    EXPECT_EQ(out, "one\ntwo\n");
    ::close(p[0]);
  }
  // Handed over even when the program never starts: the caller still sees end-of-file.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  RunSpec bad;
  bad.argv = {};
  bad.workspace = workspace_.string();
  bad.stdout_fd = p[1];
  EXPECT_FALSE(run(bad, nullptr).ok());
  char c = 0;
  EXPECT_EQ(::read(p[0], &c, 1), 0);
  ::close(p[0]);
}

TEST_F(SandboxTest, WorkspaceIsWritableAndVisibleOnTheHost) {
  auto r = bash("mkdir -p outputs && echo result > outputs/r.txt && pwd");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "/workspace\n");
  std::ifstream f(workspace_ / "outputs" / "r.txt");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "result");
}

TEST_F(SandboxTest, CannotReadAHostFileOutsideTheWorkspace) {
  auto r = bash("cat " + canary_.string() + "; ls /root /work /home 2>&1; cat /etc/shadow");
  EXPECT_EQ(r.stdout_text.find("canary-secret"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("root:"), std::string::npos) << "saw /etc/shadow";
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(SandboxTest, CannotEscapeThroughASymlinkPlantedInTheWorkspace) {
  auto r = bash("ln -s " + canary_.string() + " leak && cat leak; ln -s / rootlink && ls rootlink/" +
                root_.filename().string());
  EXPECT_EQ(r.stdout_text.find("canary-secret"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(SandboxTest, CannotWriteOutsideTheWorkspace) {
  const fs::path victim = root_ / "written-from-inside";
  auto r = bash("echo x > " + victim.string() + "; echo x > /usr/dp-evil; touch /etc/dp-evil; echo done");
  EXPECT_FALSE(fs::exists(victim));
  EXPECT_FALSE(fs::exists("/usr/dp-evil"));
  EXPECT_FALSE(fs::exists("/etc/dp-evil"));
  EXPECT_EQ(r.stdout_text, "done\n");
}

TEST_F(SandboxTest, CannotReachHostLoopbackPortsOrOtherAddresses) {
  // A real listener on the host's 127.0.0.1: the sandbox has its own network namespace.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  // 192.0.2.1 is TEST-NET-1: inside the namespace there is no route, so nothing leaves.
  auto r = bash("(echo hi > /dev/tcp/127.0.0.1/" + std::to_string(port) +
                ") 2>/dev/null && echo reached-host; (echo hi > /dev/tcp/192.0.2.1/80) 2>/dev/null "
                "&& echo reached-other; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
  ::close(fd);
  EXPECT_EQ(r.stdout_text.find("reached"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text, "lo\n");
}

TEST_F(SandboxTest, CannotSeeHostProcesses) {
  auto r = bash("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done");
  // The host runs this test binary; inside, only bubblewrap's init and our own shell exist.
  EXPECT_EQ(r.stdout_text.find("runner_test"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("sandbox_tests"), std::string::npos) << r.stdout_text;
  auto count = bash("ls -d /proc/[0-9]* | wc -l");
  EXPECT_LE(std::stoi(count.stdout_text), 4) << count.stdout_text;
}

// True when a process whose command line contains `marker` runs on the host.
bool host_process_with(const std::string& marker) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream f(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(marker) != std::string::npos) return true;
  }
  return false;
}

TEST_F(SandboxTest, StopLeavesNoProcessBehind) {
  const std::string marker = "dpmark" + ids::uuid_v7().substr(24);
  RunSpec s;
  s.argv = {"bash", "-c",
            "(exec -a " + marker + " sleep 1000) & setsid bash -c 'exec -a " + marker +
                " sleep 1000' & trap '' TERM; echo started; wait"};
  s.stop_grace = std::chrono::milliseconds(300);
  s.workspace = workspace_.string();
  RunControl control;
  std::thread stopper([&] {
    for (int i = 0; i < 200 && !host_process_with(marker); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    control.stop();
  });
  auto r = run(s, &control);
  stopper.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, "stopped");
  EXPECT_FALSE(host_process_with(marker)) << "a child survived the stop";
}

// While a program runs, its cgroup's use can be read from another thread through the
// RunControl: memory it holds, the limit, and CPU time that grows; nothing before or after.
TEST_F(SandboxTest, ItsCurrentUseCanBeSampledWhileItRuns) {
  RunSpec s;
  s.argv = {"sh", "-c", "x=$(head -c 20971520 /dev/zero | tr '\\000' a); echo held; while :; do :; done"};
  s.limits.memory_bytes = 128LL * 1024 * 1024;
  s.workspace = workspace_.string();
  s.stop_grace = std::chrono::milliseconds(200);
  RunControl control;
  EXPECT_FALSE(control.usage().has_value());
  std::optional<CgroupUsage> seen;
  std::thread sampler([&] {
    for (int i = 0; i < 400; ++i) {
      auto u = control.usage();
      if (u && u->memory_bytes > 16 * 1024 * 1024 && u->cpu_usage_us > 200'000) {
        seen = u;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    control.stop();
  });
  auto r = run(s, &control);
  sampler.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, "stopped");
  ASSERT_TRUE(seen.has_value()) << "no sample showed the held memory and the busy CPU";
  EXPECT_EQ(seen->memory_limit_bytes, 128LL * 1024 * 1024);
  EXPECT_LT(seen->memory_bytes, 128LL * 1024 * 1024);
  EXPECT_GT(r->stats.cpu_usage_us, 200'000);
  EXPECT_FALSE(control.usage().has_value()) << "the group is gone after the run";
}

TEST_F(SandboxTest, TimeoutStopsTheProgram) {
  RunSpec s;
  s.argv = {"sleep", "1000"};
  s.timeout = std::chrono::milliseconds(300);
  s.stop_grace = std::chrono::milliseconds(200);
  auto r = run_ok(s);
  EXPECT_EQ(r.outcome, "timeout");
  EXPECT_LT(r.wall_ms, 20'000);
}

TEST_F(SandboxTest, MemoryHogIsKilledAtItsLimitAndReportedAsSuch) {
  RunSpec s;
  s.argv = {"tail", "/dev/zero"};  // buffers an endless line: memory grows until the limit
  s.limits.memory_bytes = 64LL * 1024 * 1024;
  s.timeout = std::chrono::seconds(60);
  auto r = run_ok(s);
  EXPECT_EQ(r.outcome, "memory_limit") << "exit " << r.exit_code << " signal " << r.signal;
  EXPECT_GT(r.stats.oom_kills, 0);
}

TEST_F(SandboxTest, ForkBombIsCappedByItsPidsLimit) {
  RunSpec s;
  s.argv = {"sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 2 & i=$((i+1)); done; wait; echo end"};
  s.limits.pids = 32;
  s.timeout = std::chrono::seconds(60);
  auto r = run_ok(s);
  EXPECT_GT(r.stats.pids_refused, 0) << r.stderr_text;
}

TEST_F(SandboxTest, CpuHogIsThrottled) {
  RunSpec s;
  s.argv = {"timeout", "1", "sh", "-c", "while :; do :; done"};
  s.limits.cpus = 0.2;
  s.timeout = std::chrono::seconds(30);
  auto r = run_ok(s);
  EXPECT_GT(r.stats.cpu_throttled, 0);
}

TEST_F(SandboxTest, MissingProgramIsReportedNotHung) {
  RunSpec s;
  s.argv = {"no-such-program-devplane"};
  s.timeout = std::chrono::seconds(30);
  auto r = run_ok(s);
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(SandboxTest, BadSpecsAreRefused) {
  RunSpec s;
  EXPECT_EQ(run(s).error().code, ErrorCode::kInvalidArgument);
  s.argv = {"true"};
  s.workspace = (root_ / "absent").string();
  EXPECT_EQ(run(s).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(SandboxTest, IsolationNoneRunsDirectlyInTheWorkspace) {
  RunSpec s;
  s.argv = {"sh", "-c", "pwd"};
  s.isolation = Isolation::kNone;
  auto r = run_ok(s);
  EXPECT_FALSE(r.isolated);
  EXPECT_EQ(r.stdout_text, fs::canonical(workspace_).string() + "\n");
}


// A run with a control leaves its emptied group to the control, which removes it when it is
// destroyed (off the way to the result); a run without one removes it before returning.
TEST_F(SandboxTest, TheGroupIsRemovedWithItsControlOrAtTheEndOfTheRun) {
  auto group_dir = [](const std::string& proc_cgroup) -> std::optional<fs::path> {
    // "N:pids:/path" on v1, "0::/path" on v2
    std::istringstream in(proc_cgroup);
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      const std::string ctl = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      if (path.find("/run-") == std::string::npos) continue;
      if (ctl == "pids") return fs::path("/sys/fs/cgroup/pids") / path.substr(1);
      if (ctl.empty()) return fs::path("/sys/fs/cgroup") / path.substr(1);
    }
    return std::nullopt;
  };
  RunSpec s;
  s.argv = {"cat", "/proc/self/cgroup"};
  s.isolation = Isolation::kNone;
  std::optional<fs::path> kept;
  {
    RunControl control;
    auto r = run_ok(s, &control);
    kept = group_dir(r.stdout_text);
    ASSERT_TRUE(kept) << r.stdout_text;
    EXPECT_TRUE(fs::exists(*kept)) << *kept;
    EXPECT_FALSE(control.usage()) << "an ended run's group is no longer sampled";
  }
  EXPECT_FALSE(fs::exists(*kept)) << *kept;
  auto r = run_ok(s);
  const auto gone = group_dir(r.stdout_text);
  ASSERT_TRUE(gone) << r.stdout_text;
  EXPECT_FALSE(fs::exists(*gone)) << *gone;
}

// The program is started vfork-style, sharing the server's memory until exec: it must still
// begin with nothing blocked or ignored, whatever the server's own signal set-up is.
TEST_F(SandboxTest, AProgramStartsWithDefaultSignalsWhateverTheServerSet) {
  struct sigaction ignore {}, old_pipe {}, catcher {}, old_usr1 {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);
  catcher.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(SIGUSR1, &catcher, &old_usr1), 0);
  sigset_t usr2, old_mask;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, &old_mask), 0);
  for (auto isolation : {Isolation::kSandbox, Isolation::kNone}) {
    RunSpec s;
    s.argv = {"cat", "/proc/self/status"};  // cat catches nothing itself
    s.isolation = isolation;
    auto r = run_ok(s);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    const char* name = isolation == Isolation::kNone ? "none" : "sandbox";
    for (const char* line : {"\nSigBlk:\t0000000000000000\n", "\nSigIgn:\t0000000000000000\n",
                             "\nSigCgt:\t0000000000000000\n"}) {
      EXPECT_NE(r.stdout_text.find(line), std::string::npos) << name << " lacks " << line << r.stdout_text;
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  // The caller's own signal state is as it was.
  sigset_t now;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_EQ(sigismember(&now, SIGUSR2), sigismember(&old_mask, SIGUSR2));
}

TEST_F(SandboxTest, AProgramThatCannotBeStartedIsAnErrorNamingIt) {
  RunSpec s;
  s.argv = {"/nonexistent/devplane-no-such-program"};
  s.isolation = Isolation::kNone;
  s.workspace = workspace_.string();
  auto r = run(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("devplane-no-such-program"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
}

// Threads start programs at once (tasks of different agents, MCP servers): each start shares
// the server's memory only with its own child.
TEST_F(SandboxTest, ManyThreadsStartProgramsAtOnce) {
  constexpr int kThreads = 6;
  constexpr int kEach = 15;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        RunSpec s;
        s.argv = {"sh", "-c", "echo $0", std::to_string(t * 100 + i)};
        s.isolation = Isolation::kNone;
        s.workspace = workspace_.string();
        auto r = run(s);
        if (r.ok() && r->exit_code == 0 && r->stdout_text == std::to_string(t * 100 + i) + "\n") ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
}

}  // namespace
}  // namespace dp::agents::sandbox
