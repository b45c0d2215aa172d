// mcpfloor: the fastest a client can call an MCP server's tool, for scale. Over stdio it starts
// the server with plain pipes, initializes, then writes one prebuilt `tools/call` line at a time
// and waits for the line that answers it: no JSON parsing, no schema checks, no bookkeeping.
// Over Streamable HTTP (--url, loopback only) it keeps one TCP connection, sends each prebuilt
// POST and reads the answer's HTTP message to its end (Content-Length or chunked, JSON or SSE)
// without looking inside. What it measures is the server's own time per call plus the pipe or
// socket; no real client can be faster, so `floor calls/s / SDK calls/s` is the most any
// client can lead the SDK by against this server. Prints one JSON line like mcpbench's, with
// "client":"floor". It speaks protocol version 2025-11-25, the one devplane's client and the
// SDK's negotiate with server-everything: the server does more per call under it than under
// 2025-06-18 (about twice the time over HTTP), so a floor on an older version would not bound
// the clients.
//
//   mcpfloor [--calls N] [--warmup W] -- CMD ARGS...
//   mcpfloor [--calls N] [--warmup W] --url http://127.0.0.1:PORT/PATH
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
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

// One HTTP/1.1 connection to 127.0.0.1: writes a request, reads its response to the end.
class HttpConn {
 public:
  ~HttpConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connect(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  // Sends a POST of `body`; false on any failure or a status other than 200/202.
  bool post(const std::string& head, const std::string& body) {
    const std::string req = head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return write_all(fd_, req) && read_response();
  }
  const std::string& session() const { return session_; }

 private:
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  bool need(std::size_t n) {
    while (buf_.size() < n) {
      if (!fill()) return false;
    }
    return true;
  }
  bool line(std::string& out) {
    std::size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    out = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    return true;
  }
  bool read_response() {
    std::string status;
    if (!line(status)) return false;
    const bool ok = status.find(" 200 ") != std::string::npos || status.find(" 202 ") != std::string::npos;
    long length = -1;
    bool chunked = false;
    for (std::string h; line(h) && !h.empty();) {
      std::string lower = h;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lower.rfind("content-length:", 0) == 0) length = std::stol(h.substr(15));
      if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
      if (lower.rfind("mcp-session-id:", 0) == 0) {
        session_ = h.substr(15);
        session_.erase(0, session_.find_first_not_of(' '));
      }
    }
    if (chunked) {
      for (;;) {
        std::string size_line;
        if (!line(size_line)) return false;
        const std::size_t size = std::stoul(size_line, nullptr, 16);
        if (!need(size + 2)) return false;
        buf_.erase(0, size + 2);
        if (size == 0) break;
      }
    } else if (length > 0) {
      if (!need(static_cast<std::size_t>(length))) return false;
      buf_.erase(0, static_cast<std::size_t>(length));
    }
    return ok;
  }

  int fd_ = -1;
  std::string buf_;
  std::string session_;
};

// 127.0.0.1's port and the path of `url`, or port 0 when it is not http://127.0.0.1:PORT/...
std::pair<int, std::string> loopback_url(const std::string& url) {
  const std::string prefix = "http://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0) return {0, ""};
  const std::size_t slash = url.find('/', prefix.size());
  const int port = std::atoi(url.substr(prefix.size(), slash - prefix.size()).c_str());
  return {port, slash == std::string::npos ? "/" : url.substr(slash)};
}

std::string call_line(long id) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}})" "\n";
}

}  // namespace

constexpr const char* kUsage =
    "usage: mcpfloor [--calls N] [--warmup W] -- CMD ARGS...\n"
    "       mcpfloor [--calls N] [--warmup W] --url http://127.0.0.1:PORT/PATH\n";

// This process's CPU time (all its threads), in µs.
double cpu_us() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

void print_result(const char* transport, long calls, double secs, double cpu, std::vector<double>& ms) {
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))]; };
  std::printf(R"({"client":"floor","transport":"%s","calls":%ld,"seconds":%.6f,"callsPerSec":%.3f,"p50Ms":%.6f,"p99Ms":%.6f,"maxMs":%.6f,"cpuUsPerCall":%.3f})" "\n",
              transport, calls, secs, static_cast<double>(calls) / secs, pct(0.50), pct(0.99), ms.back(),
              cpu / static_cast<double>(calls));
}

int http_floor(const std::string& url, long calls, long warmup) {
  const auto [port, path] = loopback_url(url);
  if (port <= 0) {
    std::fprintf(stderr, "mcpfloor: --url must be http://127.0.0.1:PORT/PATH (loopback only)\n");
    return 2;
  }
  HttpConn conn;
  if (!conn.connect(port)) {
    std::fprintf(stderr, "mcpfloor: cannot connect to 127.0.0.1:%d\n", port);
    return 1;
  }
  const std::string base = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                           "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
  if (!conn.post(base, R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpfloor","version":"1"}}})")) {
    std::fprintf(stderr, "mcpfloor: initialize failed\n");
    return 1;
  }
  const std::string head = base + "Mcp-Session-Id: " + conn.session() + "\r\nMCP-Protocol-Version: 2025-11-25\r\n";
  if (!conn.post(head, R"({"jsonrpc":"2.0","method":"notifications/initialized"})")) {
    std::fprintf(stderr, "mcpfloor: notifications/initialized failed\n");
    return 1;
  }
  long id = 1;
  for (long k = 0; k < warmup; ++k, ++id) {
    if (!conn.post(head, call_line(id))) {
      std::fprintf(stderr, "mcpfloor: warm-up call failed\n");
      return 1;
    }
  }
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(calls));
  const auto t0 = Clock::now();
  const double cpu0 = cpu_us();
  for (long k = 0; k < calls; ++k, ++id) {
    const std::string body = call_line(id);
    const auto c0 = Clock::now();
    if (!conn.post(head, body)) {
      std::fprintf(stderr, "mcpfloor: call failed\n");
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c0).count());
  }
  print_result("http", calls, std::chrono::duration<double>(Clock::now() - t0).count(), cpu_us() - cpu0, ms);
  return 0;
}

int main(int argc, char** argv) {
  long calls = 5000, warmup = 200;
  std::string url;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--calls" && i + 1 < argc) {
      calls = std::stol(argv[++i]);
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::stol(argv[++i]);
    } else if (a == "--url" && i + 1 < argc) {
      url = argv[++i];
    } else if (a == "--") {
      ++i;
      break;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return 2;
    }
  }
  if (calls <= 0 || (url.empty() && i >= argc)) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  if (!url.empty()) return http_floor(url, calls, warmup);
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
  if (!write_all(out, R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpfloor","version":"1"}}})" "\n") ||
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
  const double cpu0 = cpu_us();
  for (long k = 0; k < calls; ++k, ++id) {
    const std::string line = call_line(id);
    const std::string needle = "\"id\":" + std::to_string(id) + "}";
    const auto c0 = Clock::now();
    if (!write_all(out, line) || !in.until(needle)) return fail("call failed");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c0).count());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_us() - cpu0;
  ::close(out);
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  print_result("stdio", calls, secs, cpu, ms);
  return 0;
}
