#include "child_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace dp::it {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string node_binary(const std::string& fallback) {
  if (const char* n = std::getenv("DEVPLANE_TEST_NODE"); n != nullptr && *n != '\0') return n;
  return fallback;
}

std::string ChildProcess::start(const std::vector<std::string>& argv, const Env& env,
                                const std::string& marker, std::chrono::milliseconds timeout) {
  dir_ = std::make_unique<TempDir>();
  exit_code_ = -1;
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("DEVPLANE_")) continue;
    envs.emplace_back(*e);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cargv;
  std::vector<char*> cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string out = (dir_->path() / "stdout").string();
  const std::string err = (dir_->path() / "stderr").string();
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  const int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    error_ = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return {};
  }
  if (marker.empty()) return {};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string text = stdout_text();
    if (auto p = text.find(marker); p != std::string::npos) {
      const auto eol = text.find('\n', p);
      if (eol != std::string::npos) return text.substr(p + marker.size(), eol - p - marker.size());
    }
    if (!running()) {
      error_ = argv[0] + " exited before it was ready; stderr:\n" + stderr_text();
      return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string state = describe_threads();
      stop();
      error_ = argv[0] + " was not ready in time; its threads:\n" + state + "stderr:\n" + stderr_text();
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string ChildProcess::describe_threads() const {
  if (pid_ <= 0) return "(not running)\n";
  std::string out;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid_) + "/task";
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    std::string stat = read_file(t.path() / "stat");
    // "tid (comm) S ...": the state letter follows the last ')'.
    const auto close = stat.rfind(')');
    const char state = close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
    std::string comm = read_file(t.path() / "comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    out += "  " + t.path().filename().string() + " " + comm + " state " + state + " wchan " +
           read_file(t.path() / "wchan") + "\n";
  }
  if (out.empty()) out = "  (no /proc entry)\n";
  return out;
}

bool ChildProcess::wait_for(const std::function<bool(const std::string&)>& pred,
                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred(stdout_text())) return true;
    if (!running()) {
      if (pred(stdout_text())) return true;
      error_ = "the process exited (code " + std::to_string(exit_code_) + "); stderr:\n" + stderr_text();
      return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      error_ = "timed out; stderr:\n" + stderr_text();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = decode(status);
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::stop() {
  if (!running()) return exit_code_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  exit_code_ = decode(status);
  pid_ = -1;
  return exit_code_;
}

void ChildProcess::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = decode(status);
  pid_ = -1;
}

std::string ChildProcess::stdout_text() const {
  return dir_ ? read_file(dir_->path() / "stdout") : std::string();
}

std::string ChildProcess::stderr_text() const {
  if (!dir_) return {};
  std::string t = read_file(dir_->path() / "stderr");
  return t.size() > 4000 ? t.substr(t.size() - 4000) : t;
}

}  // namespace dp::it
