// /api/v1/tools end to end: the real devplane binary registers real MCP servers
// (server-everything over stdio, and tests/mcp/fake_server.mjs for pinning and crashes),
// calls their tools, records every call, and holds a tool whose description changed until an
// admin approves it. On SQLite and PostgreSQL.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "child_process.hpp"
#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string mcp_dir() { return DP_MCP_TEST_DIR; }
std::string everything_js() {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
}

class ToolsApiTest : public BackendServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(everything_js())) << "run `npm ci` in tests/mcp (scripts/test does)";
    // Durable records (the default, named here because these tests read tool_executions and
    // the outbox with SQL right after a call; mcp_server_test runs deferred).
    start({}, Env{{"DEVPLANE_MCP_HEALTH_INTERVAL_MS", "500"}, {"DEVPLANE_MCP_TOOL_RECORDS", "durable"}});
  }

  HttpResponse register_adapter(const std::string& name, json::object config) {
    return client_->post("/api/v1/tools",
                         json::serialize(json::object{{"name", name}, {"config", std::move(config)}}));
  }

  json::object everything_config() {
    return json::object{{"transport", "stdio"},
                        {"command", node_binary(DP_NODE_BINARY)},
                        {"args", json::array{everything_js(), "stdio"}},
                        {"env", json::object{{"API_TOKEN", "s3cret-token-value"}}},
                        {"sandbox", false},
                        {"timeoutMs", 10'000}};
  }

  json::object fake_config(const std::string& mode, json::object env = {}) {
    return json::object{{"transport", "stdio"},
                        {"command", node_binary(DP_NODE_BINARY)},
                        {"args", json::array{mcp_dir() + "/fake_server.mjs", mode}},
                        {"env", std::move(env)},
                        {"sandbox", false},
                        {"timeoutMs", 5'000}};
  }

  HttpResponse execute(const std::string& id, const std::string& tool, json::object args = {}) {
    return client_->post("/api/v1/tools/" + id + "/execute",
                         json::serialize(json::object{{"tool", tool}, {"arguments", std::move(args)}}));
  }

  // The first column of every row `sql` returns, read straight from the database.
  std::vector<std::string> query(const std::string& sql) {
    std::vector<std::string> out;
    if (GetParam() == Backend::kPostgres) {
      PGconn* c = PQconnectdb(server_->pg()->url().c_str());
      PGresult* r = PQexec(c, sql.c_str());
      for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
      PQclear(r);
      PQfinish(c);
      return out;
    }
    sqlite3* db = nullptr;
    const std::string path = server_->config().data_dir + "/devplane.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
      while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
        const auto* t = sqlite3_column_text(st, 0);
        out.emplace_back(t != nullptr ? reinterpret_cast<const char*>(t) : "");
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
  }

};


TEST_P(ToolsApiTest, RegistersCallsAndRecordsEveryCall) {
  auto created = register_adapter("everything", everything_config());
  ASSERT_EQ(created.status, 201u) << created.describe();
  const std::string id = created.str("/data/id");
  EXPECT_EQ(created.header("Location"), "/api/v1/tools/" + id);
  EXPECT_EQ(created.str("/data/status"), "healthy") << created.describe();
  EXPECT_GE(created.num("/data/pinnedTools"), 10);
  EXPECT_EQ(created.str("/data/config/env/API_TOKEN"), "***");
  EXPECT_EQ(created.str("/data/approvedBy"), "registration");

  // The secret is sealed at rest, and opened only for the server's environment.
  for (const auto& config : query("SELECT config FROM mcp_adapters")) {
    EXPECT_EQ(config.find("s3cret-token-value"), std::string::npos) << config;
    EXPECT_NE(config.find("dpsec:v1:"), std::string::npos) << config;
  }
  auto env = execute(id, "get-env");
  ASSERT_EQ(env.status, 200u) << env.describe();
  EXPECT_NE(env.body.find("s3cret-token-value"), std::string::npos);

  auto listed = client_->get("/api/v1/tools");
  ASSERT_EQ(listed.status, 200u);
  EXPECT_EQ(listed.num("/meta/total"), 1);
  EXPECT_EQ(listed.str("/data/0/name"), "everything");

  auto catalog = client_->get("/api/v1/tools/" + id + "/tools");
  ASSERT_EQ(catalog.status, 200u) << catalog.describe();
  EXPECT_EQ(catalog.num("/meta/held"), 0);
  EXPECT_EQ(catalog.str("/meta/protocolVersion"), "2025-11-25");
  bool has_echo = false;
  for (const auto& t : catalog.at("/data")->as_array()) {
    if (t.at("name") == "echo") {
      has_echo = true;
      EXPECT_EQ(t.at("pinHash"), t.at("pinnedHash"));
      EXPECT_FALSE(t.at("held").as_bool());
    }
  }
  EXPECT_TRUE(has_echo);

  auto health = client_->get("/api/v1/tools/" + id + "/health");
  ASSERT_EQ(health.status, 200u) << health.describe();
  EXPECT_EQ(health.str("/data/status"), "healthy");
  ASSERT_NE(health.at("/data/latencyMs"), nullptr);
  EXPECT_TRUE(health.at("/data/latencyMs")->is_number());
  EXPECT_NE(health.str("/data/lastHealthCheck"), "");

  auto echo = client_->post("/api/v1/tools/" + id + "/execute",
                            R"({"tool":"echo","arguments":{"message":"hi","password":"hunter2"}})",
                            {{"X-Request-Id", "req-echo-1"}});
  ASSERT_EQ(echo.status, 200u) << echo.describe();
  EXPECT_EQ(echo.str("/data/status"), "succeeded");
  EXPECT_EQ(echo.str("/data/result/content/0/text"), "Echo: hi");
  EXPECT_EQ(echo.str("/data/arguments/password"), "***");
  EXPECT_EQ(echo.str("/data/correlationId"), "req-echo-1");
  EXPECT_EQ(echo.str("/data/caller").rfind("user:", 0), 0u) << echo.str("/data/caller");

  auto structured = execute(id, "get-structured-content", {{"location", "Chicago"}});
  ASSERT_EQ(structured.status, 200u) << structured.describe();
  EXPECT_NE(structured.at("/data/result/structuredContent/temperature"), nullptr);

  // Refused before sending: nothing recorded.
  auto bad = execute(id, "get-sum", {{"a", "two"}, {"b", 1}});
  EXPECT_EQ(bad.status, 422u) << bad.describe();
  EXPECT_EQ(bad.str("/error/code"), "validation_failed");
  EXPECT_EQ(bad.str("/error/details/0/field"), "arguments.a");
  auto unknown = execute(id, "no-such-tool");
  EXPECT_EQ(unknown.status, 404u) << unknown.describe();
  EXPECT_EQ(unknown.str("/error/code"), "tool_not_found");

  // Progress reported by the server during a call becomes events.
  auto longop = execute(id, "trigger-long-running-operation", {{"duration", 1}, {"steps", 4}});
  ASSERT_EQ(longop.status, 200u) << longop.describe();
  const auto progress = query("SELECT payload FROM outbox WHERE topic = 'tool.execution.progress'");
  ASSERT_GE(progress.size(), 2u);
  EXPECT_EQ(json::parse(progress.back()).at("executionId"), json::value(longop.str("/data/id")));

  auto execs = client_->get("/api/v1/tools/" + id + "/executions");
  ASSERT_EQ(execs.status, 200u) << execs.describe();
  EXPECT_EQ(execs.num("/meta/total"), 4);  // get-env, echo, get-structured-content, long op
  EXPECT_EQ(execs.str("/data/1/tool"), "get-structured-content");
  EXPECT_EQ(execs.str("/data/2/arguments/password"), "***");

  // Each call's event was committed with it.
  std::vector<std::string> events;
  for (int i = 0; i < 50 && events.size() < 4; ++i) {
    events = query("SELECT payload FROM outbox WHERE topic = 'tool.execution.result' ORDER BY id");
    if (events.size() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(events.size(), 4u);
  auto ev = json::parse(events[1]);
  EXPECT_EQ(ev.at("tool"), "echo");
  EXPECT_EQ(ev.at("status"), "succeeded");
  EXPECT_EQ(ev.at("adapterName"), "everything");
  EXPECT_EQ(events[1].find("hunter2"), std::string::npos);
  EXPECT_EQ(query("SELECT parameters FROM tool_executions WHERE tool_name = 'echo'").at(0).find("hunter2"),
            std::string::npos);

  auto del = client_->del("/api/v1/tools/" + id);
  EXPECT_EQ(del.status, 204u) << del.describe();
  EXPECT_EQ(client_->get("/api/v1/tools/" + id).status, 404u);
  EXPECT_EQ(query("SELECT count(*) FROM tool_executions").at(0), "4");  // the records stay
}

TEST_P(ToolsApiTest, BadInputGetsAClearErrorAndChangesNothing) {
  auto r = client_->post("/api/v1/tools", "{not json");
  EXPECT_EQ(r.status, 400u) << r.describe();
  r = register_adapter("bad name!", everything_config());
  EXPECT_EQ(r.status, 422u) << r.describe();
  r = register_adapter("x", json::object{{"transport", "ftp"}});
  EXPECT_EQ(r.status, 422u) << r.describe();
  EXPECT_EQ(r.str("/error/details/0/field"), "config.transport");
  r = register_adapter("x", json::object{{"transport", "stdio"}});
  EXPECT_EQ(r.status, 422u) << r.describe();
  r = register_adapter("x", json::object{{"transport", "http"}, {"url", "ftp://x"}, {"command", "y"}});
  EXPECT_EQ(r.status, 422u) << r.describe();
  EXPECT_EQ(r.at("/error/details")->as_array().size(), 2u) << r.describe();
  r = register_adapter("x", json::object{{"transport", "stdio"}, {"command", "node"}, {"cwd", "relative"},
                                         {"timeoutMs", 1}});
  EXPECT_EQ(r.status, 422u) << r.describe();
  r = client_->post("/api/v1/tools", json::serialize(json::object{{"name", std::string(100'000, 'a')}}));
  EXPECT_EQ(r.status, 422u) << r.describe();
  EXPECT_EQ(client_->get("/api/v1/tools/not-a-uuid").status, 400u);
  EXPECT_EQ(client_->get("/api/v1/tools/0190a0c0-0000-7000-8000-000000000000").status, 404u);
  EXPECT_EQ(client_->get("/api/v1/tools?x=1").status, 422u);
  client_->set_token("");
  EXPECT_EQ(client_->get("/api/v1/tools").status, 401u);
  EXPECT_EQ(register_adapter("anon", everything_config()).status, 401u);
  client_->reset_token();
  EXPECT_EQ(query("SELECT count(*) FROM mcp_adapters").at(0), "0");

  auto ok = register_adapter("dup", everything_config());
  ASSERT_EQ(ok.status, 201u) << ok.describe();
  const std::string id = ok.str("/data/id");
  EXPECT_EQ(register_adapter("dup", everything_config()).status, 409u);
  auto e = client_->post("/api/v1/tools/" + id + "/execute", R"({"tool":"echo","arguments":[1]})");
  EXPECT_EQ(e.status, 422u) << e.describe();
  e = client_->post("/api/v1/tools/" + id + "/execute", R"({"arguments":{}})");
  EXPECT_EQ(e.status, 422u) << e.describe();
  e = client_->post("/api/v1/tools/" + id + "/execute", R"({"tool":"echo","extra":1})");
  EXPECT_EQ(e.status, 422u) << e.describe();
  // PUT with a stale version changes nothing; "***" keeps the stored secret.
  auto put = client_->put("/api/v1/tools/" + id,
                          json::serialize(json::object{{"name", "dup"}, {"config", everything_config()}, {"version", 99}}));
  EXPECT_EQ(put.status, 409u) << put.describe();
  auto cfg = everything_config();
  cfg["env"] = json::object{{"API_TOKEN", "***"}};
  put = client_->put("/api/v1/tools/" + id, json::serialize(json::object{{"name", "renamed"}, {"config", cfg}}));
  ASSERT_EQ(put.status, 200u) << put.describe();
  EXPECT_EQ(put.str("/data/name"), "renamed");
  auto env = execute(id, "get-env");
  ASSERT_EQ(env.status, 200u) << env.describe();
  EXPECT_NE(env.body.find("s3cret-token-value"), std::string::npos);
  EXPECT_EQ(query("SELECT count(*) FROM tool_executions").at(0), "1");
}

// A stdio server runs in a cgroup with the limits its adapter's config names, and with the
// defaults (512 MiB, 256 processes, no CPU quota) when it names none: read back from the
// kernel through server-filesystem, given /proc and the cgroup tree.
TEST_P(ToolsApiTest, AStdioServerRunsWithinItsAdaptersLimits) {
  const std::string fs_js = mcp_dir() + "/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js";
  auto config = [&](json::object limits) {
    json::object c{{"transport", "stdio"},
                   {"command", node_binary(DP_NODE_BINARY)},
                   {"args", json::array{fs_js, "/proc", "/sys/fs/cgroup"}},
                   {"sandbox", false},
                   {"timeoutMs", 10'000}};
    for (const auto& kv : limits) c[kv.key()] = kv.value();
    return c;
  };
  auto read = [&](const std::string& id, const std::string& path) {
    auto r = execute(id, "read_text_file", json::object{{"path", path}});
    EXPECT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(r.str("/data/status"), "succeeded") << r.describe();
    std::string text = r.str("/data/result/content/0/text");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  };
  // controller -> folder of the server's own group, from its /proc/self/cgroup
  auto groups = [&](const std::string& id) {
    std::map<std::string, std::string> out;
    std::istringstream in(read(id, "/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::stringstream ctls(line.substr(a + 1, b - a - 1));
      const std::string path = line.substr(b + 1);
      std::string ctl;
      if (line.substr(a + 1, b - a - 1).empty()) out[""] = "/sys/fs/cgroup" + path;
      while (std::getline(ctls, ctl, ',')) out[ctl] = "/sys/fs/cgroup/" + line.substr(a + 1, b - a - 1) + path;
    }
    return out;
  };
  struct Want {
    std::string memory, pids, cpu;  // as the kernel shows them
  };
  auto check = [&](const std::string& name, json::object limits, const Want& want) {
    auto created = register_adapter(name, config(std::move(limits)));
    ASSERT_EQ(created.status, 201u) << created.describe();
    ASSERT_EQ(created.str("/data/status"), "healthy") << created.describe();
    const std::string id = created.str("/data/id");
    const std::string first = read(id, "/proc/self/cgroup");
    const auto g = groups(id);
    if (g.contains("memory")) {  // cgroup v1: one group per controller
      ASSERT_NE(g.at("memory").find("/run-"), std::string::npos) << g.at("memory");
      EXPECT_EQ(read(id, g.at("memory") + "/memory.limit_in_bytes"), want.memory) << name;
      EXPECT_EQ(read(id, g.at("pids") + "/pids.max"), want.pids) << name;
      EXPECT_EQ(read(id, g.at("cpu") + "/cpu.cfs_quota_us"), want.cpu.empty() ? "-1" : want.cpu) << name;
    } else {
      ASSERT_TRUE(g.contains("")) << "no cgroup line for the server";
      const std::string d = g.at("");
      ASSERT_NE(d.find("/run-"), std::string::npos) << d;
      EXPECT_EQ(read(id, d + "/memory.max"), want.memory) << name;
      EXPECT_EQ(read(id, d + "/pids.max"), want.pids) << name;
      EXPECT_EQ(read(id, d + "/cpu.max").substr(0, read(id, d + "/cpu.max").find(' ')),
                want.cpu.empty() ? "max" : want.cpu)
          << name;
    }
    // One server answered every call: the connection was not remade in between (the config
    // reads back from PostgreSQL in another key order, which once counted as a change).
    EXPECT_EQ(read(id, "/proc/self/cgroup"), first) << name;
  };
  check("limited", json::object{{"memoryMb", 96}, {"pids", 32}, {"cpus", 0.5}},
        Want{std::to_string(96 * 1024 * 1024), "32", "50000"});
  check("defaults", json::object{}, Want{std::to_string(512 * 1024 * 1024), "256", ""});

  for (const auto& [key, bad] : std::vector<std::pair<std::string, json::value>>{
           {"memoryMb", 8}, {"memoryMb", "lots"}, {"pids", 0}, {"cpus", -1}, {"cpus", 2000}}) {
    auto r = register_adapter("bad-limits", config(json::object{{key, bad}}));
    EXPECT_EQ(r.status, 422u) << key << " " << json::serialize(bad) << " " << r.describe();
    EXPECT_EQ(r.str("/error/details/0/field"), "config." + key) << r.describe();
  }
}

TEST_P(ToolsApiTest, AnAdapterOverTheLegacySseTransport) {
  ChildProcess sse;
  const std::uint16_t port = free_loopback_port();
  sse.start({node_binary(DP_NODE_BINARY), "--require", mcp_dir() + "/localhost_only.cjs", everything_js(), "sse"},
            {{"PORT", std::to_string(port)}}, "");
  ASSERT_TRUE(wait_for_port(port)) << sse.stderr_text();
  auto created = register_adapter(
      "legacy", json::object{{"transport", "sse"}, {"url", "http://127.0.0.1:" + std::to_string(port) + "/sse"},
                             {"headers", json::object{{"X-Api-Key", "sse-secret-value"}}}});
  ASSERT_EQ(created.status, 201u) << created.describe();
  EXPECT_EQ(created.str("/data/status"), "healthy") << created.describe();
  EXPECT_EQ(created.str("/data/config/transport"), "sse");
  EXPECT_EQ(created.body.find("sse-secret-value"), std::string::npos);
  const std::string id = created.str("/data/id");
  auto echo = execute(id, "echo", {{"message", "over sse"}});
  ASSERT_EQ(echo.status, 200u) << echo.describe();
  EXPECT_NE(echo.body.find("Echo: over sse"), std::string::npos) << echo.describe();
  auto health = client_->get("/api/v1/tools/" + id + "/health");
  ASSERT_EQ(health.status, 200u) << health.describe();
  // An sse adapter takes the http keys only.
  auto bad = register_adapter("legacy2", json::object{{"transport", "sse"}, {"command", "node"}});
  ASSERT_EQ(bad.status, 422u) << bad.describe();
}

TEST_P(ToolsApiTest, AChangedToolIsHeldUntilApproved) {
  TempDir dir;
  const std::string flag = dir.str() + "/mutated";
  auto created = register_adapter("mutating", fake_config("mutating", json::object{{"MUTATE_FILE", flag}}));
  ASSERT_EQ(created.status, 201u) << created.describe();
  const std::string id = created.str("/data/id");
  EXPECT_EQ(created.num("/data/pinnedTools"), 2);
  ASSERT_EQ(execute(id, "echo", {{"message", "before"}}).status, 200u);
  // The server changes echo's description (a poisoning attempt) and announces it.
  ASSERT_EQ(execute(id, "mutate").status, 200u);
  auto held = execute(id, "echo", {{"message", "after"}});
  ASSERT_EQ(held.status, 409u) << held.describe();
  EXPECT_EQ(held.str("/error/code"), "tool_held");
  EXPECT_NE(held.str("/error/details/executionId"), "");
  auto catalog = client_->get("/api/v1/tools/" + id + "/tools");
  ASSERT_EQ(catalog.status, 200u);
  EXPECT_EQ(catalog.num("/meta/held"), 1);
  auto adapter = client_->get("/api/v1/tools/" + id);
  EXPECT_EQ(adapter.str("/data/heldTools/0"), "echo");
  // The other tool is unaffected.
  EXPECT_EQ(execute(id, "mutate").status, 200u);

  auto bad = client_->post("/api/v1/tools/" + id + "/approve", R"({"tools":["nope"]})");
  EXPECT_EQ(bad.status, 404u) << bad.describe();
  auto approved = client_->post("/api/v1/tools/" + id + "/approve", R"({"tools":["echo"]})");
  ASSERT_EQ(approved.status, 200u) << approved.describe();
  EXPECT_EQ(approved.at("/data/heldTools")->as_array().size(), 0u);
  EXPECT_NE(approved.str("/data/approvedBy"), "registration");
  auto after = execute(id, "echo", {{"message", "approved"}});
  EXPECT_EQ(after.status, 200u) << after.describe();
  EXPECT_EQ(query("SELECT count(*) FROM tool_executions WHERE status = 'refused'").at(0), "1");
  EXPECT_EQ(query("SELECT count(*) FROM outbox WHERE topic = 'tool.catalog.changed'").at(0), "1");
}

TEST_P(ToolsApiTest, ACrashingServerIsUnhealthyAndRestartedWithBackoff) {
  auto created = register_adapter("crashy", fake_config("crash"));
  ASSERT_EQ(created.status, 201u) << created.describe();
  EXPECT_EQ(created.str("/data/status"), "healthy");
  const std::string id = created.str("/data/id");
  auto r = execute(id, "echo");
  EXPECT_EQ(r.status, 503u) << r.describe();
  EXPECT_NE(r.str("/error/message").find("code 3"), std::string::npos) << r.describe();
  // Within the backoff the call fails fast (adapter_unhealthy); on a slow machine the backoff
  // (0.5 s) may have passed, and the restarted server crashes again. Either way: 503, recorded.
  auto again = execute(id, "echo");
  EXPECT_EQ(again.status, 503u) << again.describe();
  const std::string code = again.str("/error/code");
  EXPECT_TRUE(code == "adapter_unhealthy" || code == "server_exited") << again.describe();
  EXPECT_EQ(query("SELECT count(*) FROM tool_executions WHERE status = 'failed'").at(0), "2");
  // The periodic checker reconnects after the backoff: the restarted server answers pings.
  std::string status;
  for (int i = 0; i < 100 && status != "healthy"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = client_->get("/api/v1/tools/" + id).str("/data/status");
  }
  EXPECT_EQ(status, "healthy");
  EXPECT_GE(std::stoi(query("SELECT count(*) FROM outbox WHERE topic = 'tool.adapter.status'").at(0)), 1);
  EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);

  // An adapter whose program does not exist is created, unhealthy, with the reason.
  auto missing = register_adapter("missing", json::object{{"transport", "stdio"},
                                                          {"command", "/nonexistent/server"},
                                                          {"sandbox", false}});
  ASSERT_EQ(missing.status, 201u) << missing.describe();
  EXPECT_EQ(missing.str("/data/status"), "unhealthy");
  EXPECT_NE(missing.str("/data/statusReason").find("nonexistent"), std::string::npos) << missing.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, ToolsApiTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
