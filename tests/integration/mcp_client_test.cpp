// devplane's MCP client against real MCP servers: @modelcontextprotocol/server-everything over
// stdio and Streamable HTTP, @modelcontextprotocol/server-filesystem over stdio inside the
// sandbox, and tests/mcp/fake_server.mjs, a real process that misbehaves on purpose.
//
// Needs node and tests/mcp/node_modules (`npm ci` in tests/mcp; scripts/test does both).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "child_process.hpp"
#include "harness.hpp"
#include "mcp/client.hpp"
#include "mcp/registry.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mcp::Client;
using mcp::ClientOptions;

std::string mcp_dir() { return DP_MCP_TEST_DIR; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string everything_js() {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
}

bool have_servers() { return fs::exists(everything_js()); }

#define REQUIRE_SERVERS()                                                                   \
  ASSERT_TRUE(have_servers()) << "tests/mcp/node_modules is missing: run `npm ci` in tests/mcp " \
                                 "(scripts/test does)"

std::string first_text(const mcp::CallToolResult& r) {
  for (const auto& c : r.content) {
    if (c.is_object() && c.at("type") == "text") return std::string(c.at("text").as_string());
  }
  return {};
}

std::unique_ptr<Client> stdio_client(std::vector<std::string> argv, const TempDir& dir,
                                     mcp::StdioOptions extra = {}, ClientOptions copt = {}) {
  extra.argv = std::move(argv);
  extra.workspace = dir.str();
  if (extra.env.empty()) extra.env = {{"HOME", dir.str()}};
  extra.log_name = "test";
  copt.log_name = "test";
  return std::make_unique<Client>(mcp::make_stdio_transport(std::move(extra)), std::move(copt));
}

std::unique_ptr<Client> fake(const std::string& mode, const TempDir& dir,
                             std::vector<std::pair<std::string, std::string>> env = {},
                             ClientOptions copt = {}) {
  mcp::StdioOptions o;
  o.env = std::move(env);
  o.env.emplace_back("HOME", dir.str());
  o.max_message_bytes = 1024 * 1024;
  copt.max_message_bytes = 1024 * 1024;
  return stdio_client({node_binary(DP_NODE_BINARY), mcp_dir() + "/fake_server.mjs", mode}, dir, o, copt);
}

// The checks every transport must pass against server-everything.
void exercise_everything(Client& c) {
  EXPECT_EQ(c.server().server_info.name, "mcp-servers/everything");
  EXPECT_EQ(c.server().protocol_version, "2025-11-25");
  auto tools = c.list_tools();
  ASSERT_TRUE(tools.ok()) << tools.error().message;
  std::set<std::string> names;
  for (const auto& t : *tools) names.insert(t.name);
  for (const char* n : {"echo", "get-sum", "get-structured-content", "get-tiny-image",
                        "trigger-long-running-operation"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }

  auto echo = c.call_tool("echo", json::object{{"message", "hi"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "Echo: hi");
  EXPECT_FALSE(echo->is_error);

  auto sum = c.call_tool("get-sum", json::object{{"a", 2}, {"b", 3}});
  ASSERT_TRUE(sum.ok()) << sum.error().message;
  EXPECT_NE(first_text(*sum).find("5"), std::string::npos) << first_text(*sum);

  auto structured = c.call_tool("get-structured-content", json::object{{"location", "Chicago"}});
  ASSERT_TRUE(structured.ok()) << structured.error().message;
  ASSERT_TRUE(structured->structured_content.is_object()) << json::serialize(structured->raw);
  EXPECT_TRUE(structured->structured_content.as_object().contains("temperature"));

  auto image = c.call_tool("get-tiny-image", json::object{});
  ASSERT_TRUE(image.ok()) << image.error().message;
  bool has_image = false;
  for (const auto& item : image->content) has_image = has_image || item.at("type") == "image";
  EXPECT_TRUE(has_image) << json::serialize(image->raw);

  // Wrong arguments: the server reports a tool error (isError), not a protocol error.
  auto bad = c.call_tool("get-sum", json::object{{"a", "two"}});
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  EXPECT_TRUE(bad->is_error) << json::serialize(bad->raw);

  std::mutex mu;
  std::vector<double> progress;
  mcp::CallOptions opts;
  opts.on_progress = [&](const json::object& p) {
    std::lock_guard lock(mu);
    progress.push_back(p.at("progress").to_number<double>());
  };
  auto longop = c.call_tool("trigger-long-running-operation",
                            json::object{{"duration", 1}, {"steps", 4}}, opts);
  ASSERT_TRUE(longop.ok()) << longop.error().message;
  std::lock_guard lock(mu);
  EXPECT_GE(progress.size(), 3u);
  for (std::size_t i = 1; i < progress.size(); ++i) EXPECT_GT(progress[i], progress[i - 1]);

  // Resources (paginated by the server) and prompts.
  auto resources = c.list_resources();
  ASSERT_TRUE(resources.ok()) << resources.error().message;
  ASSERT_FALSE(resources->empty());
  const std::string uri(resources->front().at("uri").as_string());
  auto content = c.read_resource(uri);
  ASSERT_TRUE(content.ok()) << content.error().message;
  EXPECT_EQ(content->at("contents").as_array().front().at("uri"), json::value(uri));
  auto prompts = c.list_prompts();
  ASSERT_TRUE(prompts.ok()) << prompts.error().message;
  bool simple = false;
  for (const auto& p : *prompts) simple = simple || p.at("name") == "simple-prompt";
  EXPECT_TRUE(simple) << json::serialize(*prompts);
  auto prompt = c.get_prompt("simple-prompt");
  ASSERT_TRUE(prompt.ok()) << prompt.error().message;
  EXPECT_FALSE(prompt->at("messages").as_array().empty());
  auto missing = c.read_resource("demo://no/such/resource");
  EXPECT_FALSE(missing.ok());

  auto rtt = c.ping();
  ASSERT_TRUE(rtt.ok()) << rtt.error().message;
  EXPECT_LT(rtt->count(), 1'000'000);
}

TEST(McpClientTest, StdioAgainstServerEverything) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = stdio_client({node_binary(DP_NODE_BINARY), everything_js(), "stdio"}, dir);
  ASSERT_TRUE(c->connect().ok());
  exercise_everything(*c);
  // Many threads at once share the connection; replies find their callers.
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string msg = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c->call_tool("echo", json::object{{"message", msg}});
        if (r.ok() && first_text(*r) == "Echo: " + msg) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 160);
  EXPECT_EQ(c->stray_responses(), 0u);
  c->close();
  EXPECT_FALSE(c->healthy());
  EXPECT_FALSE(c->call_tool("echo", json::object{{"message", "x"}}).ok());
}

std::string start_everything_http(ChildProcess& process, std::uint16_t port) {
  auto line = process.start({node_binary(DP_NODE_BINARY), "--require", mcp_dir() + "/localhost_only.cjs",
                             everything_js(), "streamableHttp"},
                            {{"PORT", std::to_string(port)}}, "Starting");
  if (line.empty() && !process.error().empty()) return process.error();
  return wait_for_port(port) ? std::string() : "server-everything did not listen on " + std::to_string(port) +
                                                   ": " + process.stderr_text();
}

struct HttpEverything {
  ChildProcess process;
  std::uint16_t port = 0;
  std::string url;
  std::string start() {
    port = free_loopback_port();
    url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
    return start_everything_http(process, port);
  }
};

// A client of `server` over Streamable HTTP, not connected yet.
std::unique_ptr<Client> http_client(const HttpEverything& server, const std::string& name) {
  mcp::HttpOptions ho;
  ho.url = server.url;
  ClientOptions co;
  co.log_name = name;
  return std::make_unique<Client>(mcp::make_http_transport(ho), co);
}

TEST(McpClientTest, StreamableHttpAgainstServerEverything) {
  REQUIRE_SERVERS();
  HttpEverything server;
  ASSERT_EQ(server.start(), "");
  auto client = http_client(server, "http-test");
  Client& c = *client;
  ASSERT_TRUE(c.connect().ok());
  exercise_everything(c);

  // The server restarts and forgets every session: the client initializes again by itself.
  server.process.stop();
  ChildProcess again;
  ASSERT_EQ(start_everything_http(again, server.port), "");
  auto echo = c.call_tool("echo", json::object{{"message", "after restart"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "Echo: after restart");
  c.close();
  // The DELETE ended the session on the server.
  std::this_thread::sleep_for(200ms);
  EXPECT_NE(again.stdout_text().find("session termination request"), std::string::npos)
      << again.stdout_text();
}

// Over Streamable HTTP the answer comes in the POST's own response: a cancel while the server
// is still working drops that request at once (not when the answer finally comes), tells the
// server, and the client goes on working.
TEST(McpClientTest, StreamableHttpCallIsCancelledMidCall) {
  REQUIRE_SERVERS();
  HttpEverything server;
  ASSERT_EQ(server.start(), "");
  auto client = http_client(server, "http-cancel");
  Client& c = *client;
  ASSERT_TRUE(c.connect().ok());
  std::atomic<bool> cancel{false};
  mcp::CallOptions opts;
  opts.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancel.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto longop = c.call_tool("trigger-long-running-operation",
                            json::object{{"duration", 10}, {"steps", 5}}, opts);
  const auto took = std::chrono::steady_clock::now() - t0;
  canceller.join();
  ASSERT_FALSE(longop.ok()) << "the 10 s operation was not cancelled";
  EXPECT_EQ(longop.error().code, ErrorCode::kAborted) << longop.error().message;
  EXPECT_EQ(longop.error().reason, "cancelled");
  EXPECT_LT(took, 3s) << "the cancel waited for the server's answer";
  auto echo = c.call_tool("echo", json::object{{"message", "still here"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "Echo: still here");
  c.close();
}

// The legacy HTTP+SSE transport against server-everything started in its `sse` mode.
TEST(McpClientTest, LegacySseAgainstServerEverything) {
  REQUIRE_SERVERS();
  ChildProcess process;
  const std::uint16_t port = free_loopback_port();
  process.start({node_binary(DP_NODE_BINARY), "--require", mcp_dir() + "/localhost_only.cjs", everything_js(), "sse"},
                {{"PORT", std::to_string(port)}}, "");
  ASSERT_TRUE(wait_for_port(port)) << process.stderr_text();
  mcp::HttpOptions ho;
  ho.url = "http://127.0.0.1:" + std::to_string(port) + "/sse";
  ClientOptions co;
  co.log_name = "sse-test";
  Client c(mcp::make_sse_transport(ho), co);
  auto s = c.connect();
  ASSERT_TRUE(s.ok()) << s.error().message;
  exercise_everything(c);
  // Concurrent calls share the stream; replies find their callers.
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string msg = "s" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c.call_tool("echo", json::object{{"message", msg}});
        if (r.ok() && first_text(*r) == "Echo: " + msg) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 40);
  // The server dies: the stream ends, the connection is unhealthy and calls fail clearly.
  process.stop();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (c.healthy() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(c.healthy());
  EXPECT_FALSE(c.call_tool("echo", json::object{{"message", "gone"}}).ok());
  c.close();
}

TEST(McpHostileServerTest, LegacySseEndpointsOnAnotherOriginOrNeverSentAreRefused) {
  REQUIRE_SERVERS();
  for (const std::string mode : {"foreign", "silent", "refuse"}) {
    SCOPED_TRACE(mode);
    ChildProcess process;
    const std::uint16_t port = free_loopback_port();
    process.start({node_binary(DP_NODE_BINARY), mcp_dir() + "/fake_sse_server.mjs", mode},
                  {{"PORT", std::to_string(port)}}, "");
    ASSERT_TRUE(wait_for_port(port)) << process.stderr_text();
    mcp::HttpOptions ho;
    ho.url = "http://127.0.0.1:" + std::to_string(port) + "/sse";
    ho.connect_timeout = 1s;
    Client c(mcp::make_sse_transport(ho), {});
    const auto t0 = std::chrono::steady_clock::now();
    auto s = c.connect();
    ASSERT_FALSE(s.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
    if (mode == "foreign") {
      EXPECT_NE(s.error().message.find("origin"), std::string::npos) << s.error().message;
    }
    if (mode == "silent") {
      EXPECT_EQ(s.error().reason, "timeout") << s.error().message;
    }
    if (mode == "refuse") {
      EXPECT_NE(s.error().message.find("403"), std::string::npos) << s.error().message;
    }
  }
}

// Server-initiated messages over Streamable HTTP arrive on the standalone GET stream:
// server-everything's simulated logging sends notifications/message outside any request.
TEST(McpClientTest, StreamableHttpGetStreamCarriesServerInitiatedMessages) {
  REQUIRE_SERVERS();
  HttpEverything server;
  ASSERT_EQ(server.start(), "");
  mcp::HttpOptions ho;
  ho.url = server.url;
  ClientOptions co;
  co.log_name = "http-get-stream";
  std::mutex mu;
  std::vector<std::string> logs;
  co.on_notification = [&](const std::string& method, const json::value& params) {
    if (method != "notifications/message") return;
    std::lock_guard lock(mu);
    logs.push_back(json::serialize(params));
  };
  Client c(mcp::make_http_transport(ho), co);
  ASSERT_TRUE(c.connect().ok());
  auto on = c.call_tool("toggle-simulated-logging", json::object{});
  ASSERT_TRUE(on.ok()) << on.error().message;
  const auto deadline = std::chrono::steady_clock::now() + 12s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (!logs.empty() || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  {
    std::lock_guard lock(mu);
    ASSERT_FALSE(logs.empty()) << "no server-initiated notification arrived";
    EXPECT_NE(logs[0].find("SessionId"), std::string::npos) << logs[0];
  }
  // Requests still work beside the stream, and close ends it without hanging.
  auto echo = c.call_tool("echo", json::object{{"message", "beside the stream"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  const auto t0 = std::chrono::steady_clock::now();
  c.close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(McpClientTest, HttpServerThatIsNotThereIsAClearError) {
  mcp::HttpOptions ho;
  ho.url = "http://127.0.0.1:" + std::to_string(free_loopback_port()) + "/mcp";
  Client c(mcp::make_http_transport(ho), {});
  auto s = c.connect();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "connect_failed");
}

TEST(McpClientTest, FilesystemServerInTheSandboxSeesOnlyItsFolder) {
  REQUIRE_SERVERS();
  TempDir dir;
  {
    std::ofstream(dir.path() / "hello.txt") << "hello from the workspace\n";
  }
  mcp::StdioOptions o;
  o.sandbox = true;
  o.ro_binds = {mcp_dir() + "/node_modules"};
  o.env = {{"HOME", "/workspace"}};
  auto c = stdio_client(
      {"node", mcp_dir() + "/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
       "/workspace"},
      dir, o);
  auto s = c->connect();
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto ok = c->call_tool("read_text_file", json::object{{"path", "/workspace/hello.txt"}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE(ok->is_error);
  EXPECT_EQ(first_text(*ok), "hello from the workspace\n");
  // Outside the granted folder: refused by the server...
  auto outside = c->call_tool("read_text_file", json::object{{"path", "/etc/hostname"}});
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  EXPECT_TRUE(outside->is_error);
}

TEST(McpClientTest, FilesystemServerInTheSandboxCannotSeeHostFiles) {
  REQUIRE_SERVERS();
  TempDir dir;
  {
    std::ofstream(dir.path() / "hello.txt") << "hi\n";
  }
  // The server itself would allow everything under "/": the sandbox is what stops it.
  mcp::StdioOptions o;
  o.sandbox = true;
  o.ro_binds = {mcp_dir() + "/node_modules"};
  o.env = {{"HOME", "/workspace"}};
  auto c = stdio_client(
      {"node", mcp_dir() + "/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", "/"},
      dir, o);
  auto s = c->connect();
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto inside = c->call_tool("read_text_file", json::object{{"path", "/workspace/hello.txt"}});
  ASSERT_TRUE(inside.ok()) << inside.error().message;
  EXPECT_EQ(first_text(*inside), "hi\n");
  for (const std::string& host_file : {source_dir() + "/README.md", std::string("/etc/hostname"),
                                       dir.str() + "/hello.txt"}) {
    auto r = c->call_tool("read_text_file", json::object{{"path", host_file}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->is_error) << host_file << ": " << first_text(*r);
  }
}

// --- hostile servers ---------------------------------------------------------------------

TEST(McpHostileServerTest, GarbageOnStdoutFailsTheConnectionWithAReason) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("garbage", dir);
  ASSERT_TRUE(c->connect().ok());
  auto r = c->call_tool("echo", json::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "protocol_error") << r.error().message;
  EXPECT_FALSE(c->healthy());
  EXPECT_NE(c->failure()->message.find("parse_error"), std::string::npos);
}

TEST(McpHostileServerTest, NoReplyTimesOutAndIsCancelled) {
  REQUIRE_SERVERS();
  TempDir dir;
  const std::string record = dir.str() + "/cancelled.jsonl";
  auto c = fake("silent", dir, {{"RECORD_FILE", record}});
  ASSERT_TRUE(c->connect().ok());
  mcp::CallOptions o;
  o.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->call_tool("echo", json::object{}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  // The server was told; the connection stays usable.
  std::string text;
  for (int i = 0; i < 50 && text.empty(); ++i) {
    std::this_thread::sleep_for(20ms);
    text = read_file(record);
  }
  auto note = json::parse(text);
  EXPECT_TRUE(note.as_object().contains("requestId")) << text;
  EXPECT_TRUE(c->healthy());
  EXPECT_TRUE(c->ping().ok());
}

TEST(McpHostileServerTest, CrashMidCallFailsPendingCallWithExitReason) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("crash", dir);
  ASSERT_TRUE(c->connect().ok());
  auto r = c->call_tool("echo", json::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "server_exited");
  EXPECT_NE(r.error().message.find("code 3"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("crashing on purpose"), std::string::npos) << r.error().message;
  EXPECT_FALSE(c->healthy());
}

TEST(McpHostileServerTest, OversizedMessageIsRefused) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("huge", dir);
  ASSERT_TRUE(c->connect().ok());
  auto r = c->list_tools();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "message_too_large") << r.error().message;
  EXPECT_FALSE(c->healthy());
}

TEST(McpHostileServerTest, WrongIdIsIgnoredAndTheCallTimesOut) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("wrong-id", dir);
  ASSERT_TRUE(c->connect().ok());
  mcp::CallOptions o;
  o.timeout = 300ms;
  auto r = c->call_tool("echo", json::object{}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(c->stray_responses(), 1u);
  EXPECT_TRUE(c->healthy());
}

TEST(McpHostileServerTest, NotificationFloodDoesNotBlockTheAnswer) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("flood", dir);
  ASSERT_TRUE(c->connect().ok());
  auto r = c->call_tool("echo", json::object{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(first_text(*r), "after the flood");
  EXPECT_GE(c->notifications_received(), 5000u);
}

TEST(McpRegistryTest, ACrashedServerIsRestartedOnlyAfterTheBackoff) {
  REQUIRE_SERVERS();
  TempDir dir;
  mcp::RegistryOptions ro;
  ro.work_dir = dir.str();
  ro.backoff_min = 400ms;
  mcp::Registry registry(ro);
  const json::object config{{"transport", "stdio"},
                            {"command", node_binary(DP_NODE_BINARY)},
                            {"args", json::array{mcp_dir() + "/fake_server.mjs", "crash"}},
                            {"sandbox", false}};
  auto c = registry.client("a1", "crashy", config);
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r = (*c)->call_tool("echo", json::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "server_exited");
  // Within the backoff: refused at once with the cause, no new process.
  const auto t0 = std::chrono::steady_clock::now();
  auto fast = registry.client("a1", "crashy", config);
  ASSERT_FALSE(fast.ok());
  EXPECT_EQ(fast.error().reason, "adapter_unhealthy");
  EXPECT_EQ(fast.error().details.at("cause"), "server_exited");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
  ASSERT_TRUE(registry.last_failure("a1").has_value());
  // After it: a fresh server, which answers until it is asked to crash again.
  std::this_thread::sleep_for(450ms);
  auto again = registry.client("a1", "crashy", config);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_NE(again->get(), c->get());
  EXPECT_TRUE((*again)->ping().ok());
  // A changed config replaces the connection at once.
  json::object other = config;
  other["timeoutMs"] = 1000;
  auto replaced = registry.client("a1", "crashy", other);
  ASSERT_TRUE(replaced.ok());
  EXPECT_NE(replaced->get(), again->get());
  EXPECT_FALSE((*again)->healthy());
  registry.forget("a1");
  EXPECT_FALSE((*replaced)->healthy());
}

TEST(McpClientTest, PaginatesToolsList) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("paged", dir);
  ASSERT_TRUE(c->connect().ok());
  auto tools = c->list_tools();
  ASSERT_TRUE(tools.ok()) << tools.error().message;
  ASSERT_EQ(tools->size(), 7u);
  EXPECT_EQ(tools->back().name, "tool-6");
}

TEST(McpClientTest, ListChangedRefreshesTheCatalogAndChangesThePinHash) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("mutating", dir, {{"MUTATE_FILE", dir.str() + "/mutated"}});
  ASSERT_TRUE(c->connect().ok());
  auto before = c->list_tools();
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(c->call_tool("mutate", json::object{}).ok());
  // The notification was written before the answer, so it has been handled by now.
  EXPECT_EQ(c->catalog_generation(), 1u);
  auto after = c->list_tools();
  ASSERT_TRUE(after.ok());
  EXPECT_NE(before->front().description, after->front().description);
  EXPECT_NE(before->front().pin_hash(), after->front().pin_hash());
  EXPECT_EQ(before->back().pin_hash(), after->back().pin_hash());
}

// Over stdio a caller waiting for its reply reads the server's output itself; when no call is
// waiting, a background reader still delivers what the server sends on its own.
TEST(McpClientTest, AMessageSentWhileNoCallIsWaitingIsDelivered) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("mutating", dir, {{"MUTATE_FILE", dir.str() + "/mutated"}});
  ASSERT_TRUE(c->connect().ok());
  auto r = c->call_tool("mutate-later", json::object{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(c->catalog_generation(), 0u) << "sent 300 ms after the answer";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (c->catalog_generation() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(c->catalog_generation(), 1u);
  // And the connection goes on: a caller reads its reply again.
  auto after = c->call_tool("echo", json::object{{"message", "x"}});
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(first_text(*after), "called echo");
}

TEST(McpClientTest, BatchesAreHandledIn20250326) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto c = fake("batch", dir);
  ASSERT_TRUE(c->connect().ok());
  EXPECT_EQ(c->server().protocol_version, "2025-03-26");
  auto r = c->call_tool("echo", json::object{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(first_text(*r), "batched");
}

TEST(McpClientTest, NegotiatesOlderVersionsAndRefusesUnknownOnes) {
  REQUIRE_SERVERS();
  TempDir dir;
  auto old = fake("version", dir, {{"VERSION", "2024-11-05"}});
  ASSERT_TRUE(old->connect().ok());
  EXPECT_EQ(old->server().protocol_version, "2024-11-05");
  auto unknown = fake("version", dir, {{"VERSION", "1999-01-01"}});
  auto s = unknown->connect();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "unsupported_protocol_version");
}

TEST(McpClientTest, MissingProgramIsAClearError) {
  TempDir dir;
  auto c = stdio_client({"/nonexistent/mcp-server"}, dir);
  auto s = c->connect();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("nonexistent"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace dp::it
