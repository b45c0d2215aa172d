// devplane as an MCP server at /mcp, end to end: the real binary, the official MCP TypeScript
// SDK client (tests/mcp/devplane_client.mjs) and the MCP Inspector's CLI drive platform tools
// and a gatewayed tool (server-everything registered as an adapter over stdio); raw HTTP
// covers what a client library would never send: no credential, a foreign Origin, a rebinding
// Host, malformed and oversized JSON-RPC, unknown and foreign sessions, calls before
// initialize, and a viewer reaching for an operator's tool. Each refusal changes nothing.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "child_process.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string mcp_dir() { return DP_MCP_TEST_DIR; }
std::string everything_js() {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
}
std::string inspector_dir() {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/inspector-cli/build";
}

struct ToolRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs argv to its end (bounded) and returns its exit code and output.
ToolRun run(const std::vector<std::string>& argv, std::chrono::seconds limit = std::chrono::seconds(90)) {
  ChildProcess p;
  p.start(argv, {}, "");
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (p.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ToolRun r;
  if (p.running()) {
    p.kill9();
    r.code = -1;
  } else {
    r.code = p.exit_code();
  }
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

// The last line of `out` that parses as JSON (the tools print one).
json::value last_json(const std::string& out) {
  std::size_t end = out.size();
  while (end > 0) {
    const auto start = out.rfind('\n', end - 1);
    const auto b = start == std::string::npos ? 0 : start + 1;
    boost::system::error_code ec;
    auto v = json::parse(std::string_view(out).substr(b, end - b), ec);
    if (!ec) return v;
    if (start == std::string::npos) break;
    end = start;
  }
  return nullptr;
}

std::string text_of(const json::value& call_result) {
  const auto* c = call_result.as_object().if_contains("content");
  if (c == nullptr || !c->is_array() || c->as_array().empty()) return {};
  const auto& first = c->as_array().front().as_object();
  return first.contains("text") ? std::string(first.at("text").as_string()) : std::string();
}

// isError, which servers may leave out when false.
bool is_error(const json::value& call_result) {
  const auto* e = call_result.as_object().if_contains("isError");
  return e != nullptr && e->is_bool() && e->get_bool();
}

class McpServerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(everything_js())) << "run `npm ci` in tests/mcp (scripts/test does)";
    ASSERT_TRUE(fs::exists(inspector_dir() + "/cli.js")) << "run `npm ci` in tests/mcp (scripts/test does)";
    // Deferred tool-call records (not the default): the gateway's calls here read their
    // records back through the API, which waits for this node's queued records.
    server_ = std::make_unique<TestServer>(GetParam(), std::vector<std::string>{},
                                           Env{{"DEVPLANE_MCP_HEALTH_INTERVAL_MS", "500"},
                                               {"DEVPLANE_MCP_TOOL_RECORDS", "deferred"}});
    ASSERT_EQ(server_->error(), "") << "server did not start";
    http_ = std::make_unique<HttpClient>(server_->port());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port()) + "/mcp";
  }
  void TearDown() override {
    http_.reset();
    if (server_ && server_->process().running()) {
      EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
    }
    server_.reset();
  }

  // An API key with `role`: {id, key}.
  std::pair<std::string, std::string> key(const std::string& name, const std::string& role) {
    auto r = http_->post("/api/v1/api-keys", json::serialize(json::object{{"name", name}, {"role", role}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return {r.str("/data/id"), r.str("/data/key")};
  }

  // Registers server-everything over stdio as adapter "everything" and waits until healthy.
  std::string register_everything() {
    json::object config{{"transport", "stdio"},
                        {"command", node_binary(DP_NODE_BINARY)},
                        {"args", json::array{everything_js(), "stdio"}},
                        {"sandbox", false},
                        {"timeoutMs", 10'000}};
    auto r = http_->post("/api/v1/tools",
                         json::serialize(json::object{{"name", "everything"}, {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (http_->get("/api/v1/tools/" + id + "/health").str("/data/status") == "healthy") return id;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "adapter never became healthy";
    return id;
  }

  std::string agent(const std::string& name) {
    auto r = http_->post("/api/v1/agents",
                         json::serialize(json::object{{"name", name},
                                                      {"type", "command"},
                                                      {"config", json::object{{"command", "cat"}}}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }

  std::string agent_status(const std::string& id) { return http_->get("/api/v1/agents/" + id).str("/data/status"); }

  // The SDK client: opens a session with `token`, lists tools, makes `calls`, ends the session.
  json::value sdk(const std::string& token, const json::array& calls) {
    auto r = run({node_binary(DP_NODE_BINARY), mcp_dir() + "/devplane_client.mjs", url_, token,
                  json::serialize(calls)});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    auto v = last_json(r.out);
    EXPECT_TRUE(v.is_object()) << r.out << r.err;
    return v;
  }

  // The MCP Inspector CLI (it must run from its build folder: it reads ../package.json).
  ToolRun inspector(const std::string& token, const std::string& args) {
    return run({"/bin/sh", "-c",
                "cd '" + inspector_dir() + "' && exec '" + node_binary(DP_NODE_BINARY) + "' cli.js --cli " + url_ +
                    " --transport http --header 'Authorization: Bearer " + token + "' " + args});
  }

  // Raw JSON-RPC over POST /mcp.
  HttpResponse post(const json::value& msg, Headers extra = {}) {
    return post_raw(json::serialize(msg), std::move(extra));
  }
  HttpResponse post_raw(const std::string& body, Headers extra = {}) {
    bool has_type = false;
    for (const auto& [k, v] : extra) has_type = has_type || k == "Content-Type";
    if (!has_type) extra.emplace_back("Content-Type", "application/json");
    extra.emplace_back("Accept", "application/json, text/event-stream");
    return http_->post("/mcp", body, extra);
  }
  static json::object initialize_msg(const std::string& version = "2025-11-25") {
    return json::object{{"jsonrpc", "2.0"},
                        {"id", 1},
                        {"method", "initialize"},
                        {"params", json::object{{"protocolVersion", version},
                                                {"capabilities", json::object{}},
                                                {"clientInfo", json::object{{"name", "raw"}, {"version", "1"}}}}}};
  }
  // initialize (+ notifications/initialized when `ready`): the session id.
  std::string open_session(Headers auth = {}, bool ready = true) {
    auto r = post(initialize_msg(), auth);
    EXPECT_EQ(r.status, 200u) << r.describe();
    const std::string sid = r.header("Mcp-Session-Id");
    EXPECT_GE(sid.size(), 32u);
    if (ready) {
      auth.emplace_back("Mcp-Session-Id", sid);
      auto n = post(json::object{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, auth);
      EXPECT_EQ(n.status, 202u) << n.describe();
      EXPECT_EQ(n.body, "");
    }
    return sid;
  }
  static json::object call_msg(const std::string& tool, json::object args, std::int64_t id = 7) {
    return json::object{{"jsonrpc", "2.0"},
                        {"id", id},
                        {"method", "tools/call"},
                        {"params", json::object{{"name", tool}, {"arguments", std::move(args)}}}};
  }

  std::int64_t count_executions(const std::string& adapter_id) {
    return http_->get("/api/v1/tools/" + adapter_id + "/executions").num("/meta/total");
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> http_;
  std::string url_;
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

TEST_P(McpServerTest, SdkClientCallsPlatformToolsAndAGatewayedTool) {
  const std::string adapter = register_everything();
  const std::string agent_id = agent("worker");
  const auto [op_id, op_key] = key("mcp-operator", "operator");
  json::array calls{
      json::object{{"name", "list_agents"}, {"arguments", json::object{{"limit", 10}}}},
      json::object{{"name", "start_agent"}, {"arguments", json::object{{"agentId", agent_id}}}},
      json::object{{"name", "create_task"},
                   {"arguments", json::object{{"agentId", agent_id}, {"input", "hello from mcp"}}}},
      json::object{{"name", "everything__echo"}, {"arguments", json::object{{"message", "hi"}}}},
      json::object{{"name", "everything__get-sum"}, {"arguments", json::object{{"a", 2}, {"b", 3}}}},
      json::object{{"name", "everything__echo"}, {"arguments", json::object{{"nope", 1}}}},
      json::object{{"name", "no_such_tool"}, {"arguments", json::object{}}},
  };
  auto out = sdk(op_key, calls);
  ASSERT_TRUE(out.is_object());
  SCOPED_TRACE(json::serialize(out));
  const auto& o = out.as_object();
  EXPECT_EQ(o.at("protocolVersion"), json::value("2025-11-25"));
  EXPECT_EQ(o.at("server").at("name"), json::value("devplane"));
  EXPECT_EQ(o.at("sessionEnded"), json::value(true));  // DELETE /mcp answered 2xx
  std::vector<std::string> tools;
  for (const auto& t : o.at("tools").as_array()) tools.emplace_back(t.as_string());
  for (const char* want : {"list_agents", "get_agent", "start_agent", "stop_agent", "create_task", "get_task",
                           "list_workflows", "get_workflow", "execute_workflow", "get_execution",
                           "approve_step", "reject_step", "everything__echo", "everything__get-sum"}) {
    EXPECT_NE(std::find(tools.begin(), tools.end(), want), tools.end()) << want;
  }
  const auto& c = o.at("calls").as_array();
  ASSERT_EQ(c.size(), calls.size()) << out;
  // list_agents: the REST envelope as structured content.
  const auto& listed = c[0].at("result");
  EXPECT_FALSE(is_error(listed)) << listed;
  EXPECT_EQ(listed.at("structuredContent").at("meta").at("total"), json::value(1));
  // start_agent went through and the agent runs.
  EXPECT_FALSE(is_error(c[1].at("result"))) << c[1];
  EXPECT_EQ(agent_status(agent_id), "running");
  // create_task: a task that the REST API shows.
  const auto& task = c[2].at("result").at("structuredContent").at("data");
  const std::string task_id(task.at("id").as_string());
  EXPECT_EQ(http_->get("/api/v1/agents/" + agent_id + "/tasks/" + task_id).status, 200u);
  // The gatewayed echo: server-everything's own result, passed through.
  EXPECT_FALSE(is_error(c[3].at("result"))) << c[3];
  EXPECT_EQ(text_of(c[3].at("result")), "Echo: hi");
  EXPECT_NE(text_of(c[4].at("result")).find('5'), std::string::npos) << c[4];
  // Arguments that fail the adapter's schema: a tool error, refused before the call.
  EXPECT_TRUE(is_error(c[5].at("result"))) << c[5];
  EXPECT_EQ(c[5].at("result").at("structuredContent").at("error").at("code"), json::value("validation_failed"));
  // An unknown tool is a protocol error (-32602).
  EXPECT_EQ(c[6].at("code"), json::value(-32602)) << c[6];

  // Every gatewayed call is in the adapter's record with the caller (the operator's key).
  auto execs = http_->get("/api/v1/tools/" + adapter + "/executions");
  ASSERT_EQ(execs.status, 200u) << execs.describe();
  int from_key = 0;
  for (const auto& e : execs.at("/data")->as_array()) {
    if (e.at("caller") == json::value("api_key:" + op_id)) ++from_key;
  }
  EXPECT_EQ(from_key, 2) << execs.body;
  // The platform tool that changed state is in the audit trail like its REST route.
  auto audit = http_->get("/api/v1/audit?action=POST%20/api/v1/agents/:id/start");
  ASSERT_EQ(audit.status, 200u) << audit.describe();
  EXPECT_GE(audit.num("/meta/total"), 1) << audit.body;
  // The /mcp messages themselves (initialize, tools/list, calls) add no entries of their own.
  auto mcp_posts = http_->get("/api/v1/audit?action=POST%20/mcp");
  EXPECT_EQ(mcp_posts.num("/meta/total"), 0) << mcp_posts.body;
}

TEST_P(McpServerTest, InspectorCliListsAndCallsTools) {
  register_everything();
  const auto [op_id, op_key] = key("inspector", "operator");
  auto list = inspector(op_key, "--method tools/list");
  ASSERT_EQ(list.code, 0) << list.out << list.err;
  auto tools = json::parse(list.out.substr(list.out.find('{')));
  ASSERT_TRUE(tools.is_object()) << list.out;
  std::vector<std::string> names;
  for (const auto& t : tools.at("tools").as_array()) names.emplace_back(t.at("name").as_string());
  EXPECT_NE(std::find(names.begin(), names.end(), "list_workflows"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "everything__echo"), names.end());

  auto echo = inspector(op_key, "--method tools/call --tool-name everything__echo --tool-arg message=inspected");
  ASSERT_EQ(echo.code, 0) << echo.out << echo.err;
  auto er = json::parse(echo.out.substr(echo.out.find('{')));
  EXPECT_FALSE(is_error(er)) << er;
  EXPECT_EQ(text_of(er), "Echo: inspected");

  auto wf = inspector(op_key, "--method tools/call --tool-name list_workflows --tool-arg limit=5");
  ASSERT_EQ(wf.code, 0) << wf.out << wf.err;
  auto wr = json::parse(wf.out.substr(wf.out.find('{')));
  EXPECT_FALSE(is_error(wr)) << wr;
  EXPECT_EQ(wr.at("structuredContent").at("meta").at("limit"), json::value(5)) << wr;
}

TEST_P(McpServerTest, ViewerReadsButCannotActAndNothingChanges) {
  const std::string adapter = register_everything();
  const std::string agent_id = agent("watched");
  const auto [viewer_id, viewer_key] = key("mcp-viewer", "viewer");
  auto out = sdk(viewer_key, json::array{
                                 json::object{{"name", "get_agent"}, {"arguments", json::object{{"agentId", agent_id}}}},
                                 json::object{{"name", "start_agent"}, {"arguments", json::object{{"agentId", agent_id}}}},
                                 json::object{{"name", "everything__echo"}, {"arguments", json::object{{"message", "x"}}}},
                             });
  ASSERT_TRUE(out.is_object());
  std::vector<std::string> tools;
  for (const auto& t : out.at("tools").as_array()) tools.emplace_back(t.as_string());
  // Only what the viewer may call is listed.
  EXPECT_NE(std::find(tools.begin(), tools.end(), "get_agent"), tools.end());
  EXPECT_EQ(std::find(tools.begin(), tools.end(), "start_agent"), tools.end());
  EXPECT_EQ(std::find(tools.begin(), tools.end(), "everything__echo"), tools.end());
  const auto& c = out.at("calls").as_array();
  EXPECT_FALSE(is_error(c[0].at("result"))) << c[0];
  EXPECT_TRUE(is_error(c[1].at("result"))) << c[1];
  EXPECT_EQ(c[1].at("result").at("structuredContent").at("error").at("code"), json::value("permission_denied"));
  EXPECT_EQ(c[2].at("result").at("structuredContent").at("error").at("code"), json::value("permission_denied"));
  EXPECT_EQ(agent_status(agent_id), "created");
  EXPECT_EQ(count_executions(adapter), 0);
}

// A gatewayed call with a progress token from the SDK client (which reads SSE): the adapter's
// progress reaches its onprogress callback before the result.
TEST_P(McpServerTest, SdkClientGetsTheProgressOfAGatewayedCall) {
  const std::string adapter = register_everything();
  const auto [op_id, op_key] = key("mcp-progress", "operator");
  auto r = run({node_binary(DP_NODE_BINARY), mcp_dir() + "/devplane_stream_client.mjs", url_, op_key, "progress",
                "everything__trigger-long-running-operation",
                json::serialize(json::object{{"duration", 2}, {"steps", 4}})});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto out = last_json(r.out);
  ASSERT_TRUE(out.is_object()) << r.out << r.err;
  SCOPED_TRACE(json::serialize(out));
  ASSERT_TRUE(out.as_object().contains("result"));
  EXPECT_FALSE(is_error(out.at("result")));
  const auto& progress = out.at("progress").as_array();
  ASSERT_EQ(progress.size(), 4u);
  for (std::size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].at("progress").to_number<double>(), static_cast<double>(i + 1));
    EXPECT_EQ(progress[i].at("total").to_number<double>(), 4.0);
  }
  // Audited as any gatewayed call.
  EXPECT_EQ(count_executions(adapter), 1);
}

// The session's GET stream tells the SDK client when an adapter is registered; its next
// tools/list shows the new tools.
TEST_P(McpServerTest, SdkClientIsToldWhenTheToolsChange) {
  const auto [op_id, op_key] = key("mcp-watcher", "operator");
  ChildProcess p;
  p.start({node_binary(DP_NODE_BINARY), mcp_dir() + "/devplane_stream_client.mjs", url_, op_key, "list_changed"},
          {}, "READY");
  ASSERT_TRUE(p.running()) << p.stdout_text() << p.stderr_text();
  // The SDK opens its GET stream right after initialize, without waiting for it: give it time.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  register_everything();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(70);
  while (p.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(p.running());
  EXPECT_EQ(p.exit_code(), 0) << p.stdout_text() << p.stderr_text();
  auto out = last_json(p.stdout_text());
  ASSERT_TRUE(out.is_object()) << p.stdout_text() << p.stderr_text();
  SCOPED_TRACE(json::serialize(out));
  EXPECT_GE(out.at("notified").to_number<double>(), 1.0);
  auto has = [](const json::value& names, std::string_view n) {
    for (const auto& t : names.as_array()) {
      if (t.as_string() == n) return true;
    }
    return false;
  };
  EXPECT_FALSE(has(out.at("before"), "everything__echo"));
  EXPECT_TRUE(has(out.at("before"), "list_agents"));
  EXPECT_TRUE(has(out.at("after"), "everything__echo"));
}

// The SDK client aborts a gatewayed call in flight: devplane cancels the adapter's call
// (notifications/cancelled over stdio), records it as cancelled, and the adapter serves the
// next call.
TEST_P(McpServerTest, SdkClientCancelsAGatewayedCallInFlight) {
  const std::string adapter = register_everything();
  const auto [op_id, op_key] = key("mcp-canceller", "operator");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run({node_binary(DP_NODE_BINARY), mcp_dir() + "/devplane_stream_client.mjs", url_, op_key, "cancel",
                "everything__trigger-long-running-operation",
                json::serialize(json::object{{"duration", 30}, {"steps", 30}})});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto out = last_json(r.out);
  ASSERT_TRUE(out.is_object()) << r.out << r.err;
  SCOPED_TRACE(json::serialize(out));
  EXPECT_TRUE(out.as_object().contains("error"));
  EXPECT_FALSE(out.as_object().contains("result"));
  EXPECT_GE(out.at("progress").to_number<double>(), 1.0);
  // The record says cancelled, well before the 30 s the operation would have taken.
  std::string status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (status.empty() && std::chrono::steady_clock::now() < deadline) {
    auto execs = http_->get("/api/v1/tools/" + adapter + "/executions");
    if (execs.num("/meta/total") == 1) status = execs.str("/data/0/status");
    if (status.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, "cancelled") << http_->get("/api/v1/tools/" + adapter + "/executions").body << "\n"
                                 << [&] {
                                   std::string picked, all = server_->process().stdout_text() + server_->process().stderr_text();
                                   std::size_t b = 0;
                                   while (b < all.size()) {
                                     const auto e = std::min(all.find('\n', b), all.size());
                                     const auto line = all.substr(b, e - b);
                                     if (line.find("cancel") != std::string::npos || line.find("/mcp") != std::string::npos) picked += line + "\n";
                                     b = e + 1;
                                   }
                                   return picked;
                                 }();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  auto again = sdk(op_key, json::array{json::object{{"name", "everything__echo"}, {"arguments", json::object{{"message", "after"}}}}});
  ASSERT_TRUE(again.is_object());
  EXPECT_EQ(text_of(again.at("calls").at(0).at("result")), "Echo: after") << again;
}

// search_memory: the SDK client searches notes added through the REST API, as a viewer (the
// route's rule: viewers read); bad arguments come back as the route's 422; an agent key is not
// offered the tool and is refused it.
TEST_P(McpServerTest, SdkClientSearchesMemory) {
  for (const char* text : {"The nightly build breaks when the npm cache is cold; run npm ci twice.",
                           "Our on-call rotation changes every Monday at 09:00 UTC."}) {
    auto r = http_->post("/api/v1/memory", json::serialize(json::object{{"text", text}}));
    ASSERT_EQ(r.status, 201u) << r.describe();
  }
  const auto [viewer_id, viewer_key] = key("mcp-viewer", "viewer");
  json::array calls{
      json::object{{"name", "search_memory"},
                   {"arguments", json::object{{"query", "why is the nightly build broken?"}, {"k", 1}}}},
      json::object{{"name", "search_memory"}, {"arguments", json::object{{"query", "build"}, {"k", 0}}}},
      json::object{{"name", "search_memory"},
                   {"arguments", json::object{{"query", "build"}, {"kind", "task_outcome"}}}},
  };
  auto out = sdk(viewer_key, calls);
  ASSERT_TRUE(out.is_object());
  SCOPED_TRACE(json::serialize(out));
  std::vector<std::string> tools;
  for (const auto& t : out.at("tools").as_array()) tools.emplace_back(t.as_string());
  EXPECT_NE(std::find(tools.begin(), tools.end(), "search_memory"), tools.end());
  const auto& c = out.at("calls").as_array();
  ASSERT_EQ(c.size(), calls.size());
  const auto& found = c[0].at("result");
  ASSERT_FALSE(is_error(found)) << found;
  const auto& hits = found.at("structuredContent").at("data").as_array();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NE(std::string(hits[0].at("text").as_string()).find("nightly build"), std::string::npos);
  EXPECT_GT(hits[0].at("score").to_number<double>(), 0.0);
  // k = 0: refused by the tool's schema or by the route, never a search.
  EXPECT_TRUE(is_error(c[1].at("result")) || c[1].as_object().contains("error")) << c[1];
  // A filter nothing matches: an empty result, not an error.
  ASSERT_FALSE(is_error(c[2].at("result"))) << c[2];
  EXPECT_TRUE(c[2].at("result").at("structuredContent").at("data").as_array().empty());

  const auto [agent_key_id, agent_key] = key("mcp-agent", "agent");
  auto as_agent = sdk(agent_key, json::array{json::object{
                                     {"name", "search_memory"}, {"arguments", json::object{{"query", "build"}}}}});
  ASSERT_TRUE(as_agent.is_object());
  std::vector<std::string> agent_tools;
  for (const auto& t : as_agent.at("tools").as_array()) agent_tools.emplace_back(t.as_string());
  EXPECT_EQ(std::find(agent_tools.begin(), agent_tools.end(), "search_memory"), agent_tools.end());
  const auto& refused = as_agent.at("calls").as_array().at(0);
  const bool denied = refused.as_object().contains("error") ||
                      (is_error(refused.at("result")) &&
                       refused.at("result").at("structuredContent").at("error").at("code") ==
                           json::value("permission_denied"));
  EXPECT_TRUE(denied) << refused;
}

INSTANTIATE_TEST_SUITE_P(Backends, McpServerTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

// The protocol edges, on SQLite (they do not touch the store's dialect).
class McpProtocolTest : public McpServerTest {};

TEST_P(McpProtocolTest, RefusesWhatItMustAndChangesNothing) {
  const std::string agent_id = agent("target");
  const std::string port = std::to_string(server_->port());

  // No credential: 401 before anything else.
  auto r = post(initialize_msg(), {{"Authorization", ""}});
  EXPECT_EQ(r.status, 401u) << r.describe();
  EXPECT_FALSE(r.has_header("Mcp-Session-Id"));
  r = post(initialize_msg(), {{"Authorization", "Bearer dpk_not-a-real-key"}});
  EXPECT_EQ(r.status, 401u) << r.describe();

  // A foreign Origin (a web page elsewhere) and a rebinding Host are refused, no session made.
  r = post(initialize_msg(), {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403u) << r.describe();
  EXPECT_EQ(r.str("/error/data/reason"), "origin_not_allowed");
  EXPECT_FALSE(r.has_header("Mcp-Session-Id"));
  r = post(initialize_msg(), {{"Host", "evil.example:" + port}});
  EXPECT_EQ(r.status, 403u) << r.describe();
  EXPECT_EQ(r.str("/error/data/reason"), "host_not_allowed");
  r = post(initialize_msg(), {{"Host", "evil.example:" + port}, {"Origin", "http://evil.example:" + port}});
  EXPECT_EQ(r.status, 403u) << r.describe();
  r = http_->del("/mcp", {{"Host", "attacker.test"}, {"Mcp-Session-Id", "x"}});
  EXPECT_EQ(r.status, 403u) << r.describe();
  // Its own origin and the loopback names are fine.
  r = post(initialize_msg(), {{"Origin", "http://127.0.0.1:" + port}});
  EXPECT_EQ(r.status, 200u) << r.describe();
  r = post(initialize_msg(), {{"Host", "localhost:" + port}});
  EXPECT_EQ(r.status, 200u) << r.describe();

  // Malformed JSON, not JSON-RPC, a batch, the wrong media type, an unacceptable Accept.
  r = post_raw("{\"jsonrpc\":\"2.0\",");
  EXPECT_EQ(r.status, 400u) << r.describe();
  EXPECT_EQ(r.num("/error/code", 0), -32700);
  EXPECT_TRUE(r.at("/id") != nullptr && r.at("/id")->is_null());
  r = post_raw(R"({"id":1,"method":"initialize"})");
  EXPECT_EQ(r.status, 400u) << r.describe();
  EXPECT_EQ(r.num("/error/code", 0), -32600);
  r = post_raw(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = post(initialize_msg(), {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415u) << r.describe();
  r = http_->post("/mcp", json::serialize(initialize_msg()), {{"Accept", "text/html"}});
  EXPECT_EQ(r.status, 406u) << r.describe();
  // initialize without params, or with a version that is not a string.
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  EXPECT_EQ(r.num("/error/code", 0), -32602);
  EXPECT_FALSE(r.has_header("Mcp-Session-Id"));

  // Oversized: more than the 1 MiB limit, refused unread.
  std::string big = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")" + std::string(1100 * 1024, 'a') + "\"}}";
  r = post_raw(big);
  EXPECT_EQ(r.status, 413u) << r.status;

  // Out of order: a call without a session, and on a session not yet initialized.
  r = post(call_msg("start_agent", json::object{{"agentId", agent_id}}));
  EXPECT_EQ(r.status, 400u) << r.describe();
  EXPECT_EQ(r.str("/error/data/reason"), "session_required");
  const std::string early = open_session({}, false);
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}}, {{"Mcp-Session-Id", early}});
  EXPECT_EQ(r.status, 200u) << r.describe();  // ping is allowed before initialized
  r = post(call_msg("start_agent", json::object{{"agentId", agent_id}}), {{"Mcp-Session-Id", early}});
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(r.num("/error/code", 0), -32600);
  EXPECT_EQ(r.str("/error/data/reason"), "not_initialized");
  EXPECT_EQ(agent_status(agent_id), "created");
  // initialize twice on one session.
  r = post(initialize_msg(), {{"Mcp-Session-Id", early}});
  EXPECT_EQ(r.status, 400u) << r.describe();

  // Sessions: unknown ids, another caller's session, DELETE, and the ids are random.
  const std::string sid = open_session();
  EXPECT_NE(sid, early);
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/list"}},
           {{"Mcp-Session-Id", "0000000000000000000000000000dead"}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  EXPECT_EQ(r.num("/error/code", 0), -32600);
  EXPECT_EQ(r.num("/id", 0), 3);
  EXPECT_EQ(r.str("/error/data/reason"), "unknown_session");
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/list"}}, {{"Mcp-Session-Id", std::string(200, 'x')}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  const auto [op_id, op_key] = key("other", "operator");
  r = post(call_msg("start_agent", json::object{{"agentId", agent_id}}),
           {{"Mcp-Session-Id", sid}, {"Authorization", "Bearer " + op_key}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  EXPECT_EQ(agent_status(agent_id), "created");
  // MCP-Protocol-Version: unsupported, or not the session's.
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 4}, {"method", "tools/list"}},
           {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "1999-01-01"}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 4}, {"method", "tools/list"}},
           {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2024-11-05"}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 4}, {"method", "tools/list"}},
           {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2025-11-25"}});
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_TRUE(r.at("/result/tools") != nullptr) << r.describe();
  // An unknown method, and a response to nothing (accepted, ignored).
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "sampling/whatever"}}, {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.num("/error/code", 0), -32601) << r.describe();
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 99}, {"result", json::object{}}}, {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.status, 202u) << r.describe();
  // tools/call with bad params.
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 6}, {"method", "tools/call"}, {"params", json::object{{"name", 5}}}},
           {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.num("/error/code", 0), -32602) << r.describe();
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 6}, {"method", "tools/call"},
                        {"params", json::object{{"name", "get_agent"}, {"arguments", json::array{}}}}},
           {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.num("/error/code", 0), -32602) << r.describe();
  // A path argument cannot leave its segment to reach another route.
  r = post(call_msg("start_agent", json::object{{"agentId", agent_id + "/../x"}}), {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.at("/result/isError") != nullptr && r.at("/result/isError")->as_bool(), true) << r.describe();
  EXPECT_EQ(agent_status(agent_id), "created");
  // GET is the session's event stream (the SDK tests read it): refused without Accept
  // text/event-stream, without a session, for another caller's or an unknown one, and with a
  // malformed id.
  r = http_->get("/mcp", {{"Mcp-Session-Id", sid}, {"Accept", "application/json"}});
  EXPECT_EQ(r.status, 406u) << r.describe();
  r = http_->get("/mcp", {{"Accept", "text/event-stream"}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  EXPECT_EQ(r.str("/error/data/reason"), "session_required");
  r = http_->get("/mcp", {{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}, {"Authorization", "Bearer " + op_key}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  r = http_->get("/mcp", {{"Mcp-Session-Id", std::string(40, 'z')}, {"Accept", "text/event-stream"}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  r = http_->get("/mcp", {{"Mcp-Session-Id", std::string(200, 'z')}, {"Accept", "text/event-stream"}});
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = http_->get("/mcp", {{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}, {"Host", "evil.example"}});
  EXPECT_EQ(r.status, 403u) << r.describe();
  // A progress token the client cannot read SSE for, or of the wrong type: a plain JSON answer.
  {
    json::object call = call_msg("get_agent", json::object{{"agentId", agent_id}}, 21);
    call["params"].as_object()["_meta"] = json::object{{"progressToken", "p1"}};
    r = http_->post("/mcp", json::serialize(call),
                    {{"Content-Type", "application/json"}, {"Accept", "application/json"}, {"Mcp-Session-Id", sid}});
    EXPECT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.num("/id", 0), 21) << r.describe();
    call["params"].as_object()["_meta"] = json::object{{"progressToken", json::object{}}};
    r = post(call, {{"Mcp-Session-Id", sid}});
    EXPECT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(r.header("Content-Type"), "application/json");
  }
  // A cancellation for no call in flight, or malformed: accepted, changes nothing.
  for (const auto& params : {json::value(json::object{{"requestId", 999}}), json::value(json::object{{"requestId", json::object{}}}),
                             json::value(json::array{})}) {
    r = post(json::object{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", params}},
             {{"Mcp-Session-Id", sid}});
    EXPECT_EQ(r.status, 202u) << r.describe();
  }
  // DELETE: without an id, another caller's, then its own; the id is dead afterwards.
  r = http_->del("/mcp");
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = http_->del("/mcp", {{"Mcp-Session-Id", sid}, {"Authorization", "Bearer " + op_key}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  r = http_->del("/mcp", {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.status, 204u) << r.describe();
  r = post(json::object{{"jsonrpc", "2.0"}, {"id", 8}, {"method", "ping"}}, {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.status, 404u) << r.describe();
  r = http_->del("/mcp", {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.status, 404u) << r.describe();

  // Version negotiation: an old supported version is kept, an unknown one gets the latest.
  r = post(initialize_msg("2024-11-05"));
  EXPECT_EQ(r.str("/result/protocolVersion"), "2024-11-05");
  r = post(initialize_msg("2099-01-01"));
  EXPECT_EQ(r.str("/result/protocolVersion"), "2025-11-25");

  // Refusals are in the audit log (the successes are not: they are audited by their effect).
  auto refused = http_->get("/api/v1/audit?action=POST%20/mcp");
  ASSERT_EQ(refused.status, 200u) << refused.describe();
  EXPECT_GE(refused.num("/meta/total"), 10) << refused.body;
  for (const auto& e : refused.at("/data")->as_array()) {
    EXPECT_NE(e.at("outcome"), json::value("success")) << e;
  }
  // After all that, the server still serves, and the agent was never touched.
  EXPECT_EQ(http_->get("/api/v1/system/health").status, 200u);
  EXPECT_EQ(agent_status(agent_id), "created");
}

INSTANTIATE_TEST_SUITE_P(Sqlite, McpProtocolTest, ::testing::Values(Backend::kSqlite), backend_name);

}  // namespace
}  // namespace dp::it
