// mcpbench: sequential tools/call latency of devplane's MCP client (src/mcp) against an MCP
// server, over stdio (the server is started through the sandbox runner, unsandboxed) or
// Streamable HTTP. Prints one JSON line: calls, seconds, callsPerSec, p50Ms, p99Ms, maxMs.
//
//   mcpbench --stdio node .../server-everything/dist/index.js stdio [--calls N] [--warmup W]
//   mcpbench --url http://127.0.0.1:3001/mcp [--calls N] [--warmup W]
#include <algorithm>
#include <ctime>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/json/serialize.hpp>

#include "mcp/client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int usage() {
  std::fprintf(stderr,
               "usage: mcpbench (--stdio CMD ARGS... | --url URL [--header 'Name: value']...) [--calls N] [--warmup W] "
               "[--tool NAME]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> command;
  std::string url, tool = "echo";
  dp::http::Fields headers;
  long calls = 5000, warmup = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      (void)usage();
      return 0;
    }
    if (a == "--calls" && i + 1 < argc) {
      calls = std::stol(argv[++i]);
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::stol(argv[++i]);
    } else if (a == "--tool" && i + 1 < argc) {
      tool = argv[++i];
    } else if (a == "--url" && i + 1 < argc) {
      url = argv[++i];
    } else if (a == "--header" && i + 1 < argc) {
      const std::string h = argv[++i];
      const auto colon = h.find(':');
      if (colon == std::string::npos) return usage();
      headers.emplace_back(h.substr(0, colon), h.substr(h.find_first_not_of(' ', colon + 1)));
    } else if (a == "--stdio") {
      for (++i; i < argc; ++i) {
        const std::string x = argv[i];
        if (x.rfind("--", 0) == 0 && (x == "--calls" || x == "--warmup" || x == "--tool" || x == "--url" || x == "--header")) {
          --i;
          break;
        }
        command.push_back(x);
      }
    } else {
      return usage();
    }
  }
  if (command.empty() == url.empty() || calls <= 0) return usage();

  std::unique_ptr<dp::mcp::Transport> transport;
  const auto work = std::filesystem::temp_directory_path() / "mcpbench";
  std::filesystem::create_directories(work);
  if (!command.empty()) {
    dp::mcp::StdioOptions o;
    o.argv = command;
    o.workspace = work.string();
    o.env = {{"HOME", work.string()}};
    o.log_name = "bench";
    transport = dp::mcp::make_stdio_transport(std::move(o));
  } else {
    dp::mcp::HttpOptions o;
    o.url = url;
    o.headers = headers;
    transport = dp::mcp::make_http_transport(std::move(o));
  }
  dp::mcp::ClientOptions co;
  co.log_name = "bench";
  dp::mcp::Client client(std::move(transport), co);
  if (auto s = client.connect(); !s.ok()) {
    std::fprintf(stderr, "connect: %s\n", s.error().message.c_str());
    return 1;
  }
  const boost::json::object args{{"message", "hi"}};
  for (long i = 0; i < warmup; ++i) {
    auto r = client.call_tool(tool, args);
    if (!r.ok()) {
      std::fprintf(stderr, "warmup call: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(calls));
  // This process's CPU time (every thread of the client), in µs.
  auto cpu_us = [] {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
  };
  const double cpu0 = cpu_us();
  const auto t0 = Clock::now();
  for (long i = 0; i < calls; ++i) {
    const auto c0 = Clock::now();
    auto r = client.call_tool(tool, args);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c0).count());
    if (!r.ok() || r->is_error) {
      std::fprintf(stderr, "call %ld failed: %s\n", i, r.ok() ? "isError" : r.error().message.c_str());
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_us() - cpu0;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))]; };
  client.close();
  boost::json::object out{{"client", "devplane"},
                          {"transport", command.empty() ? "http" : "stdio"},
                          {"calls", calls},
                          {"seconds", secs},
                          {"callsPerSec", static_cast<double>(calls) / secs},
                          {"p50Ms", pct(0.50)},
                          {"p99Ms", pct(0.99)},
                          {"maxMs", ms.back()},
                          {"cpuUsPerCall", cpu / static_cast<double>(calls)}};
  std::printf("%s\n", boost::json::serialize(out).c_str());
  return 0;
}
