#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace dp::it {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string node_binary() {
  if (const char* n = std::getenv("DEVPLANE_TEST_NODE"); n != nullptr && *n != '\0') return n;
  return DP_NODE_BINARY;
}

std::string ChildProcess::start(const std::vector<std::string>& argv, const Env& env,
                                const std::string& marker, std::chrono::milliseconds timeout) {
  dir_ = std::make_unique<TempDir>();
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("DEVPLANE_")) continue;
    envs.emplace_back(*e);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
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
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string text = read_file(dir_->path() / "stdout");
    if (auto p = text.find(marker); p != std::string::npos) {
      const auto eol = text.find('\n', p);
      if (eol != std::string::npos) return text.substr(p + marker.size(), eol - p - marker.size());
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = argv[0] + " exited before it was ready; stderr:\n" + stderr_text();
      return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stop();
      error_ = argv[0] + " was not ready in time; stderr:\n" + stderr_text();
      return {};
    }
    std::this_thread::sleep_for(50ms);
  }
}

void ChildProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  pid_ = -1;
}

std::string ChildProcess::stderr_text() const {
  if (!dir_) return {};
  std::string t = read_file(dir_->path() / "stderr");
  return t.size() > 4000 ? t.substr(t.size() - 4000) : t;
}

}  // namespace dp::it
