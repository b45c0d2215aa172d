// mcpfloor: the fastest a client can call an MCP server's tool over stdio, for scale. It starts
// the server with plain pipes, initializes, then writes one prebuilt `tools/call` line at a time
// and waits for the line that answers it: no JSON parsing, no schema checks, no bookkeeping.
// What it measures is the server's own time per call plus the pipes; no real client can be
// faster, so `floor calls/s / SDK calls/s` is the most any client can lead the SDK by against
// this server. Prints one JSON line like mcpbench's, with "client":"floor".
//
//   mcpfloor [--calls N] [--warmup W] -- CMD ARGS...
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads lines from the server until one contains `needle` (the answer's id).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool until(const std::string& needle) {
    for (;;) {
      for (std::size_t nl; (nl = buf_.find('\n')) != std::string::npos;) {
        const bool hit = std::string_view(buf_).substr(0, nl).find(needle) != std::string_view::npos;
        buf_.erase(0, nl + 1);
        if (hit) return true;
      }
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

std::string call_line(long id) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}})" "\n";
}

}  // namespace

int main(int argc, char** argv) {
  long calls = 5000, warmup = 200;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("usage: mcpfloor [--calls N] [--warmup W] -- CMD ARGS...\n");
      return 0;
    }
    if (a == "--calls" && i + 1 < argc) {
      calls = std::stol(argv[++i]);
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::stol(argv[++i]);
    } else if (a == "--") {
      ++i;
      break;
    } else {
      std::fprintf(stderr, "usage: mcpfloor [--calls N] [--warmup W] -- CMD ARGS...\n");
      return 2;
    }
  }
  if (i >= argc || calls <= 0) {
    std::fprintf(stderr, "usage: mcpfloor [--calls N] [--warmup W] -- CMD ARGS...\n");
    return 2;
  }
  int to_server[2], from_server[2];
  if (::pipe2(to_server, O_CLOEXEC) != 0 || ::pipe2(from_server, O_CLOEXEC) != 0) return 1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to_server[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from_server[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[i], &fa, nullptr, argv + i, environ) != 0) {
    std::fprintf(stderr, "cannot start %s\n", argv[i]);
    return 1;
  }
  posix_spawn_file_actions_destroy(&fa);
  ::close(to_server[0]);
  ::close(from_server[1]);
  const int out = to_server[1];
  LineReader in(from_server[0]);
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "mcpfloor: %s\n", what);
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    return 1;
  };
  if (!write_all(out, R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpfloor","version":"1"}}})" "\n") ||
      !in.until(R"("id":0)") ||
      !write_all(out, R"({"jsonrpc":"2.0","method":"notifications/initialized"})" "\n")) {
    return fail("initialize failed");
  }
  long id = 1;
  for (long k = 0; k < warmup; ++k, ++id) {
    if (!write_all(out, call_line(id)) || !in.until("\"id\":" + std::to_string(id) + "}")) return fail("warm-up call failed");
  }
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(calls));
  const auto t0 = Clock::now();
  for (long k = 0; k < calls; ++k, ++id) {
    const std::string line = call_line(id);
    const std::string needle = "\"id\":" + std::to_string(id) + "}";
    const auto c0 = Clock::now();
    if (!write_all(out, line) || !in.until(needle)) return fail("call failed");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c0).count());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(out);
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))]; };
  std::printf(R"({"client":"floor","transport":"stdio","calls":%ld,"seconds":%.6f,"callsPerSec":%.3f,"p50Ms":%.6f,"p99Ms":%.6f,"maxMs":%.6f})" "\n",
              calls, secs, static_cast<double>(calls) / secs, pct(0.50), pct(0.99), ms.back());
  return 0;
}
