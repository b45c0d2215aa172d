#include "agents/sandbox/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::agents::sandbox {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBwrap = "/usr/bin/bwrap";
constexpr const char* kSandboxPath = "/usr/local/bin:/usr/bin:/bin";

// System folders the sandbox sees read-only. Host homes, /work, /srv, /var, /opt and the
// devplane data folder are deliberately absent.
constexpr const char* kSystemDirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"};
constexpr const char* kEtcFiles[] = {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                                     "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates",
                                     "/etc/localtime", "/etc/nsswitch.conf", "/etc/hosts",
                                     "/etc/resolv.conf", "/etc/mime.types", "/etc/gitconfig"};

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

Status make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::unavailable(std::string("pipe: ") + std::strerror(errno));
  r = Fd(p[0]);
  w = Fd(p[1]);
  return Ok{};
}

// Everything the child needs between its start and exec, prepared by the parent: the child
// shares the parent's memory (CLONE_VM), so it reads this, makes system calls and nothing else:
// no allocation, no locks, no instrumented code.
struct ChildPlan {
  const char* const* procs = nullptr;  // cgroup.procs files to join, first of all
  std::size_t procs_count = 0;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  const char* chdir_to = nullptr;  // nullptr: stay (bubblewrap sets the folder itself)
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int error_fd = -1;  // close-on-exec; the child writes its errno here when it cannot exec
};

// The child of spawn(). Not instrumented: it runs on a stack of its own in the parent's
// address space, where a sanitizer's bookkeeping would write into the parent's.
#define DP_CHILD_CODE __attribute__((no_sanitize("address", "undefined")))

[[noreturn]] DP_CHILD_CODE void child_fail(const ChildPlan& plan, int code) {
  const int e = errno;
  if (::write(plan.error_fd, &e, sizeof e) < 0) {}
  ::_exit(code);
}

DP_CHILD_CODE int child_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  // Join the cgroup first so every descendant is accounted and killable.
  char digits[24];
  char pid_text[24];
  std::size_t n = 0;
  for (auto v = static_cast<unsigned long>(::getpid()); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  for (std::size_t i = 0; i < n; ++i) pid_text[i] = digits[n - 1 - i];
  for (std::size_t i = 0; i < plan.procs_count; ++i) {
    const int fd = ::open(plan.procs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, pid_text, n) < 0) child_fail(plan, 126);
    ::close(fd);
  }
  ::setsid();
  const rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  const rlimit files{1024, 1024};
  ::setrlimit(RLIMIT_NOFILE, &files);
  ::dup2(plan.stdin_fd, 0);
  ::dup2(plan.stdout_fd, 1);
  ::dup2(plan.stderr_fd, 2);
  if (plan.chdir_to != nullptr && ::chdir(plan.chdir_to) != 0) child_fail(plan, 126);
  // The parent's signal handlers are not the program's: a caught signal goes back to its
  // default (this changes the child's copy of the table only: no CLONE_SIGHAND). devplane
  // ignores SIGPIPE, and an ignored signal stays ignored across exec, while programs
  // (`producer | head`) expect the default.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (::sigaction(sig, nullptr, &sa) != 0) continue;
    if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGPIPE)) continue;
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  // The parent blocked every signal around the start (spawn()); the program starts with none.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.program, plan.argv, plan.envp);
  child_fail(plan, 127);
}

#undef DP_CHILD_CODE

// Starts the child like vfork: it shares this process's memory until it execs (or exits), and
// this thread waits for that. A fork would copy the page tables of the whole server (its cost
// grows with its memory) and make every other thread fault on its next write to each page.
pid_t spawn(const ChildPlan& plan) {
  constexpr std::size_t kStack = 256 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  // No signal handler of the parent may run in the child before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::clone(child_main, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                            const_cast<ChildPlan*>(&plan));
  const int e = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);  // the child has exec'd or exited: it no longer runs on it
  errno = e;
  return pid;
}

void signal_group(const Cgroup* cg, pid_t pid, int sig) {
  if (cg != nullptr) {
    for (const auto& f : cg->procs_files()) {
      FILE* fp = std::fopen(f.c_str(), "r");
      if (fp == nullptr) continue;
      int p = 0;
      while (std::fscanf(fp, "%d", &p) == 1) {
        if (p > 0) ::kill(p, sig);
      }
      std::fclose(fp);
    }
  }
  // The child leads its own session; its process group reaches what the cgroup may not.
  ::kill(-pid, sig);
}

}  // namespace

std::vector<std::string> bwrap_args(const RunSpec& spec) {
  std::vector<std::string> a = {kBwrap, "--unshare-all"};
  if (spec.network) a.emplace_back("--share-net");
  for (const char* s : {"--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname",
                        "devplane-sandbox"}) {
    a.emplace_back(s);
  }
  // The host's layout of its system folders does not change while devplane runs: looked at
  // once, not on every start.
  static const std::vector<std::string> kSystemArgs = [] {
    std::vector<std::string> out;
    for (const char* d : kSystemDirs) {
      std::error_code ec;
      if (fs::is_symlink(d, ec)) {
        // Merged /usr: /bin -> usr/bin. Recreate the link rather than binding its target twice.
        out.insert(out.end(), {"--symlink", fs::read_symlink(d, ec).string(), d});
      } else if (fs::is_directory(d, ec)) {
        out.insert(out.end(), {"--ro-bind", d, d});
      }
    }
    return out;
  }();
  a.insert(a.end(), kSystemArgs.begin(), kSystemArgs.end());
  for (const char* f : kEtcFiles) a.insert(a.end(), {"--ro-bind-try", f, f});
  for (const auto& p : spec.ro_binds) a.insert(a.end(), {"--ro-bind", p, p});
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
                     spec.workspace, "/workspace", "--chdir",
                     spec.workdir.empty() ? std::string("/workspace") : "/workspace/" + spec.workdir,
                     "--setenv", "HOME",
                     "/workspace", "--"});
  return a;
}

Status check_available(Isolation isolation) {
  if (isolation == Isolation::kSandbox) {
    if (::access(kBwrap, X_OK) != 0) {
      return Error::unavailable(std::string("sandbox unavailable: bubblewrap (") + kBwrap +
                                ") is not installed; install the Debian package bubblewrap, or "
                                "choose isolation: none explicitly");
    }
  }
  auto v = Cgroup::detect();
  if (!v.ok() && isolation == Isolation::kSandbox) return std::move(v).error();
  return Ok{};
}

std::optional<CgroupUsage> RunControl::usage() const {
  // The group is read under the lock so that `run` cannot remove it mid-read.
  std::lock_guard lock(mu_);
  if (cgroup_ == nullptr) return std::nullopt;
  return cgroup_->usage();
}

void RunControl::attach(const Cgroup* cgroup) {
  std::lock_guard lock(mu_);
  cgroup_ = cgroup;
}

void RunControl::retire(std::unique_ptr<Cgroup> spent) {
  std::unique_ptr<Cgroup> older;  // removed outside the lock
  std::lock_guard lock(mu_);
  older = std::exchange(spent_, std::move(spent));
}

Result<RunResult> run(const RunSpec& spec, RunControl* control) {
  Fd stdout_given(spec.stdout_fd);  // ours now (RunSpec::stdout_fd)
  if (spec.argv.empty()) return Error::invalid_argument("invalid_spec", "argv is empty");
  if (spec.workspace.empty() || !fs::is_directory(spec.workspace)) {
    return Error::invalid_argument("invalid_spec", "workspace '" + spec.workspace + "' is not a folder");
  }
  DP_TRY(check_available(spec.isolation));
  std::unique_ptr<Cgroup> cg;
  {
    auto c = Cgroup::create("run-" + ids::uuid_v7(), spec.limits);
    if (c.ok()) {
      cg = std::move(*c);
    } else if (spec.isolation == Isolation::kSandbox) {
      return std::move(c).error();
    }
  }
  // Detached on every way out, before `cg` (declared earlier) is destroyed.
  struct Detach {
    RunControl* control;
    ~Detach() {
      if (control != nullptr) control->attach(nullptr);
    }
  } detach{cg && control != nullptr ? control : nullptr};
  if (detach.control != nullptr) detach.control->attach(cg.get());

  // Everything the child needs is prepared before it starts (ChildPlan): it only makes system calls.
  std::vector<std::string> args;
  if (spec.isolation == Isolation::kSandbox) args = bwrap_args(spec);
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> envs;
  bool has_path = false;
  for (const auto& [k, v] : spec.env) {
    envs.push_back(k + "=" + v);
    has_path = has_path || k == "PATH";
  }
  if (!has_path) envs.push_back(std::string("PATH=") + kSandboxPath);
  std::vector<char*> envp;
  for (auto& s : envs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<const char*> procs;
  if (cg) {
    for (const auto& f : cg->procs_files()) procs.push_back(f.c_str());
  }
  // Resolve the program for kNone here (execvpe is not async-signal-safe in every libc).
  std::string program = args.front();
  if (spec.isolation == Isolation::kNone && program.find('/') == std::string::npos) {
    for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
      if (::access((std::string(dir) + "/" + program).c_str(), X_OK) == 0) {
        program = std::string(dir) + "/" + program;
        break;
      }
    }
  }
  const std::string workdir =
      spec.workdir.empty() ? spec.workspace : (fs::path(spec.workspace) / spec.workdir).string();

  Fd in_r, in_w, out_r, out_w, err_r, err_w, exec_r, exec_w;
  DP_TRY(make_pipe(in_r, in_w));
  DP_TRY(make_pipe(out_r, out_w));
  DP_TRY(make_pipe(err_r, err_w));
  DP_TRY(make_pipe(exec_r, exec_w));

  if (spec.before_start && !spec.before_start()) {
    return Error::aborted("the program was not started: its caller called it off");
  }
  ChildPlan plan;
  plan.procs = procs.data();
  plan.procs_count = procs.size();
  plan.stdin_fd = spec.stdin_fd >= 0 ? spec.stdin_fd : in_r.fd;
  plan.stdout_fd = stdout_given.fd >= 0 ? stdout_given.fd : out_w.fd;
  plan.stderr_fd = err_w.fd;
  plan.chdir_to = spec.isolation == Isolation::kNone ? workdir.c_str() : nullptr;
  plan.program = program.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.error_fd = exec_w.fd;
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = spawn(plan);
  if (pid < 0) return Error::unavailable(std::string("cannot start a process: ") + std::strerror(errno));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  exec_w.reset();
  stdout_given.reset();
  // The caller reads the program's stdout itself: there is none to collect here.
  if (spec.stdout_fd >= 0) out_r.reset();
  {
    int e = 0;
    const ssize_t r = ::read(exec_r.fd, &e, sizeof e);
    if (r == static_cast<ssize_t>(sizeof e)) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      return Error::unavailable("cannot start " + spec.argv.front() + ": " + std::strerror(e));
    }
  }

  RunResult result;
  result.isolated = spec.isolation == Isolation::kSandbox;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  Fd pidfd_guard(pidfd);
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  std::size_t stdin_off = 0;
  if (spec.stdin_data.empty() || spec.stdin_fd >= 0) in_w.reset();

  auto collect = [&](Fd& fd, std::string& text, std::int64_t& total, std::string_view name) {
    char chunk[16384];
    const ssize_t r = ::read(fd.fd, chunk, sizeof chunk);
    if (r <= 0) {
      if (r == 0 || (errno != EAGAIN && errno != EINTR)) fd.reset();
      return;
    }
    total += r;
    const std::size_t room = spec.output_limit > text.size() ? spec.output_limit - text.size() : 0;
    text.append(chunk, std::min(room, static_cast<std::size_t>(r)));
    if (spec.on_output) spec.on_output(name, std::string_view(chunk, static_cast<std::size_t>(r)));
  };

  bool exited = false;
  int status = 0;
  bool stopping = false, timed_out = false;
  std::chrono::steady_clock::time_point kill_at{};
  const auto deadline = spec.timeout.count() > 0 ? started + spec.timeout
                                                 : std::chrono::steady_clock::time_point::max();
  while (!exited || out_r.fd >= 0 || err_r.fd >= 0) {
    const auto now = std::chrono::steady_clock::now();
    if (!stopping && !exited) {
      const bool stop = control != nullptr && control->stop_requested();
      if (stop || now >= deadline) {
        stopping = true;
        timed_out = !stop;
        signal_group(cg.get(), pid, SIGTERM);
        kill_at = now + spec.stop_grace;
      }
    }
    if (stopping && !exited && now >= kill_at) {
      signal_group(cg.get(), pid, SIGKILL);
      if (cg) cg->kill_all();
    }
    if (exited && !(out_r.fd >= 0 || err_r.fd >= 0)) break;
    pollfd fds[4];
    nfds_t n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1, idx_pid = -1;
    if (out_r.fd >= 0) { idx_out = static_cast<int>(n); fds[n++] = {out_r.fd, POLLIN, 0}; }
    if (err_r.fd >= 0) { idx_err = static_cast<int>(n); fds[n++] = {err_r.fd, POLLIN, 0}; }
    if (in_w.fd >= 0) { idx_in = static_cast<int>(n); fds[n++] = {in_w.fd, POLLOUT, 0}; }
    if (!exited && pidfd >= 0) { idx_pid = static_cast<int>(n); fds[n++] = {pidfd, POLLIN, 0}; }
    // Wake at least every 50 ms to check stop requests and deadlines.
    const int rc = ::poll(fds, n, 50);
    if (rc < 0 && errno != EINTR) break;
    if (idx_out >= 0 && (fds[idx_out].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      collect(out_r, result.stdout_text, result.stdout_bytes, "stdout");
    }
    if (idx_err >= 0 && (fds[idx_err].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      collect(err_r, result.stderr_text, result.stderr_bytes, "stderr");
    }
    if (idx_in >= 0 && (fds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t w = ::write(in_w.fd, spec.stdin_data.data() + stdin_off,
                                spec.stdin_data.size() - stdin_off);
      if (w > 0) stdin_off += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) stdin_off = spec.stdin_data.size();
      if (stdin_off >= spec.stdin_data.size()) in_w.reset();
    }
    if (!exited && (pidfd < 0 || (idx_pid >= 0 && (fds[idx_pid].revents & POLLIN) != 0))) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        // The program is gone; kill what it left behind so pipes close and nothing survives.
        if (cg) cg->kill_all();
        signal_group(nullptr, pid, SIGKILL);
      }
    }
  }
  if (!exited) {
    signal_group(cg.get(), pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  if (cg) {
    cg->kill_all();
    result.stats = cg->stats();
    if (control != nullptr) {
      control->attach(nullptr);
      control->retire(std::move(cg));
    }
  }
  result.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count();
  result.wall_ms = result.wall_us / 1000;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    // bubblewrap reports a child killed by signal N as exit 128+N.
    if (result.isolated && result.exit_code > 128 && result.exit_code < 128 + 65) {
      result.signal = result.exit_code - 128;
    }
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  if (stopping) {
    result.outcome = timed_out ? "timeout" : "stopped";
  } else if (result.stats.oom_kills > 0) {
    result.outcome = "memory_limit";
  } else if (result.signal != 0 && !WIFEXITED(status)) {
    result.outcome = "signaled";
  } else if (result.signal == SIGKILL && result.isolated) {
    result.outcome = "signaled";
  } else {
    result.outcome = "exited";
  }
  return result;
}

}  // namespace dp::agents::sandbox
