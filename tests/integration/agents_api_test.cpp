// The agents API over real HTTP against the real binary, on SQLite and on PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dp::it {
namespace {

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

namespace json = boost::json;

class AgentsApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(GetParam());
    ASSERT_EQ(server_->error(), "") << "server did not start";
    client_ = std::make_unique<HttpClient>(server_->port());
  }

  void TearDown() override {
    client_.reset();
    if (server_ && server_->process().running()) {
      const int code = server_->process().stop();
      EXPECT_EQ(code, 0) << "devplane serve did not exit cleanly on SIGTERM; stderr:\n"
                         << server_->process().stderr_text();
    }
    server_.reset();
  }

  // POSTs an agent; asserts 201 and returns the response.
  HttpResponse create(const json::object& body) {
    auto r = client_->post("/api/v1/agents", json::serialize(body));
    EXPECT_EQ(r.status, 201u) << r.describe() << client_->error();
    return r;
  }

  std::string create_id(const std::string& name, const std::string& type = "command") {
    json::object body{{"name", name}, {"type", type}};
    if (type == "command") body["config"] = json::object{{"command", json::array{"echo", "hi"}}};
    if (type == "llm") body["config"] = json::object{{"provider", "openai"}, {"model", "m"}};
    return create(body).str("/data/id");
  }

  std::int64_t total(const std::string& query = "") {
    auto r = client_->get("/api/v1/agents" + query);
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r.num("/meta/total");
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> client_;
};

// ------------------------------------------------------------------------------ happy paths

TEST_P(AgentsApiTest, CreateReturns201LocationAndEtag) {
  auto r = create(json::object{{"name", "builder"},
                               {"type", "command"},
                               {"description", "runs the build"},
                               {"labels", json::object{{"team", "core"}}},
                               {"config", json::object{{"command", json::array{"make", "all"}},
                                                       {"timeoutSeconds", 60}}}});
  ASSERT_EQ(r.status, 201u);
  const std::string id = r.str("/data/id");
  ASSERT_EQ(id.size(), 36u) << r.describe();
  EXPECT_EQ(r.header("Location"), "/api/v1/agents/" + id);
  EXPECT_EQ(r.header("ETag"), "\"1\"");
  EXPECT_EQ(r.str("/data/name"), "builder");
  EXPECT_EQ(r.str("/data/type"), "command");
  EXPECT_EQ(r.str("/data/status"), "created");
  EXPECT_EQ(r.num("/data/version"), 1);
  EXPECT_EQ(r.str("/data/labels/team"), "core");
  EXPECT_EQ(r.num("/data/config/timeoutSeconds"), 60);
  EXPECT_TRUE(r.header("Content-Type").starts_with("application/json"));

  auto g = client_->get("/api/v1/agents/" + id);
  ASSERT_EQ(g.status, 200u) << g.describe();
  EXPECT_EQ(g.header("ETag"), "\"1\"");
  EXPECT_EQ(g.str("/data/description"), "runs the build");
  EXPECT_EQ(g.str("/data/config/command/1"), "all");

  auto h = client_->get("/api/v1/agents/" + id + "/states");
  ASSERT_EQ(h.status, 200u) << h.describe();
  ASSERT_TRUE(h.at("/data") && h.at("/data")->is_array());
  EXPECT_EQ(h.at("/data")->as_array().size(), 1u);
  EXPECT_EQ(h.str("/data/0/status"), "created");
}

// Agents are written into every answer as JSON text, not through a JSON library's tree
// (model::append_json): text that needs escaping must come back exactly as it was sent, from
// every route that answers with an agent, and every body must be valid JSON.
TEST_P(AgentsApiTest, TextThatNeedsEscapingComesBackUnchangedFromEveryAnswer) {
  const std::string description =
      "quote \" backslash \\ slash / newline \n tab \t cr \r bell \x07 esc \x1b "
      "UTF-8 \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80";
  const json::object labels{{"team", "core \"platform\""}, {"path", "C:\\work"}};
  const json::object config{{"command", json::array{"/bin/sh", "-c", "echo \"a\\b\"\n"}},
                            {"timeoutSeconds", 30}};
  auto created = create(json::object{{"name", "escape-check"},
                                     {"type", "command"},
                                     {"description", description},
                                     {"labels", labels},
                                     {"config", config}});
  ASSERT_EQ(created.status, 201u);
  const std::string id = created.str("/data/id");

  auto check = [&](const HttpResponse& r, std::string_view pointer, const std::string& what) {
    ASSERT_TRUE(r.json.has_value()) << what << ": the body is not JSON: " << r.body;
    const auto* agent = r.at(pointer);
    ASSERT_NE(agent, nullptr) << what << ": " << r.describe();
    ASSERT_TRUE(agent->is_object()) << what;
    const auto& o = agent->as_object();
    EXPECT_EQ(o.at("id").as_string(), id) << what;
    EXPECT_EQ(o.at("name").as_string(), "escape-check") << what;
    EXPECT_EQ(std::string(o.at("description").as_string()), description) << what;
    EXPECT_EQ(o.at("labels"), json::value(labels)) << what;
    EXPECT_EQ(o.at("config"), json::value(config)) << what;
    EXPECT_EQ(o.size(), 11u) << what << ": " << r.body;
  };
  check(created, "/data", "create");
  check(client_->get("/api/v1/agents/" + id), "/data", "get");
  auto list = client_->get("/api/v1/agents?q=escape-check");
  ASSERT_EQ(list.status, 200u) << list.describe();
  EXPECT_EQ(list.num("/meta/total"), 1);
  check(list, "/data/0", "list");
  auto started = client_->post("/api/v1/agents/" + id + "/start", "");
  ASSERT_EQ(started.status, 200u) << started.describe();
  check(started, "/data", "start");
  const std::string put_body =
      R"({"version":)" + std::to_string(started.num("/data/version")) + R"(,"name":"escape-check"})";
  auto updated = client_->put("/api/v1/agents/" + id, put_body);
  ASSERT_EQ(updated.status, 200u) << updated.describe();
  check(updated, "/data", "update");
  check(client_->post("/api/v1/agents/" + id + "/stop", ""), "/data", "stop");
  auto removed = client_->del("/api/v1/agents/" + id);
  ASSERT_EQ(removed.status, 200u) << removed.describe();
  check(removed, "/data", "decommission");
  EXPECT_EQ(removed.str("/data/status"), "decommissioned");
}

TEST_P(AgentsApiTest, GetUnknownAgentIs404) {
  auto r = client_->get("/api/v1/agents/0190a0b0-0000-7000-8000-000000000000");
  EXPECT_EQ(r.status, 404u) << r.describe();
  EXPECT_EQ(r.str("/error/code"), "not_found");
}

TEST_P(AgentsApiTest, ListFiltersByStatusTypeAndName) {
  const auto a = create_id("alpha-build");
  create_id("beta-build");
  create_id("gamma-review", "llm");
  create_id("delta-remote", "remote");
  ASSERT_EQ(client_->post("/api/v1/agents/" + a + "/start", "").status, 200u);

  auto all = client_->get("/api/v1/agents");
  ASSERT_EQ(all.status, 200u) << all.describe();
  EXPECT_EQ(all.num("/meta/total"), 4);
  EXPECT_EQ(all.num("/meta/limit"), 50);
  EXPECT_EQ(all.at("/data")->as_array().size(), 4u);

  auto running = client_->get("/api/v1/agents?status=running");
  ASSERT_EQ(running.status, 200u) << running.describe();
  EXPECT_EQ(running.num("/meta/total"), 1);
  EXPECT_EQ(running.str("/data/0/id"), a);

  auto llm = client_->get("/api/v1/agents?type=llm");
  ASSERT_EQ(llm.status, 200u);
  EXPECT_EQ(llm.num("/meta/total"), 1);
  EXPECT_EQ(llm.str("/data/0/name"), "gamma-review");

  auto q = client_->get("/api/v1/agents?q=build");
  ASSERT_EQ(q.status, 200u);
  EXPECT_EQ(q.num("/meta/total"), 2);
  std::set<std::string> names;
  for (const auto& v : q.at("/data")->as_array()) {
    names.insert(std::string(v.at("name").as_string()));
  }
  EXPECT_EQ(names, (std::set<std::string>{"alpha-build", "beta-build"}));

  auto combined = client_->get("/api/v1/agents?q=build&status=created&type=command");
  ASSERT_EQ(combined.status, 200u);
  EXPECT_EQ(combined.num("/meta/total"), 1);
  EXPECT_EQ(combined.str("/data/0/name"), "beta-build");

  auto none = client_->get("/api/v1/agents?q=nothing-matches");
  ASSERT_EQ(none.status, 200u);
  EXPECT_EQ(none.num("/meta/total"), 0);
  EXPECT_EQ(none.at("/data")->as_array().size(), 0u);
}

// Counts per status in one answer, whatever the number of agents (the dashboard reads it).
TEST_P(AgentsApiTest, CountsByStatusFollowTransitionsAndFilters) {
  auto counts = [&](const std::string& query = "") {
    auto r = client_->get("/api/v1/agents/counts" + query);
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r;
  };
  auto empty = counts();
  EXPECT_EQ(empty.num("/data/total"), 0);
  ASSERT_NE(empty.at("/data/byStatus"), nullptr) << empty.describe();
  EXPECT_EQ(empty.at("/data/byStatus")->as_object().size(), 7u) << empty.describe();
  for (const auto& [k, v] : empty.at("/data/byStatus")->as_object()) EXPECT_EQ(v.as_int64(), 0) << k;

  const auto a = create_id("alpha-build");
  const auto b = create_id("beta-build");
  create_id("gamma-review", "llm");
  ASSERT_EQ(client_->post("/api/v1/agents/" + a + "/start", "").status, 200u);
  ASSERT_EQ(client_->request("DELETE", "/api/v1/agents/" + b, "", {}).status, 200u);

  auto all = counts();
  EXPECT_EQ(all.num("/data/total"), 2);  // the decommissioned one is not counted
  EXPECT_EQ(all.num("/data/byStatus/running"), 1);
  EXPECT_EQ(all.num("/data/byStatus/created"), 1);
  EXPECT_EQ(all.num("/data/byStatus/decommissioned"), 1);
  EXPECT_EQ(all.num("/data/byStatus/stopped"), 0);
  EXPECT_EQ(all.num("/data/total"), total());  // the same as the list's total

  auto llm = counts("?type=llm");
  EXPECT_EQ(llm.num("/data/total"), 1);
  EXPECT_EQ(llm.num("/data/byStatus/created"), 1);
  EXPECT_EQ(llm.num("/data/byStatus/running"), 0);
  auto build = counts("?q=BUILD");
  EXPECT_EQ(build.num("/data/total"), 1);
  EXPECT_EQ(build.num("/data/byStatus/decommissioned"), 1);
  // LIKE wildcards in q are literal.
  EXPECT_EQ(counts("?q=%25").num("/data/total"), 0);
  EXPECT_EQ(counts("?q=&type=command").num("/data/total"), 1);
}

TEST_P(AgentsApiTest, ListPagesWithLimitOffsetAndCursor) {
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) created.insert(create_id("page-" + std::to_string(i)));

  // offset paging
  std::set<std::string> seen;
  for (int offset = 0; offset < 7; offset += 3) {
    auto r = client_->get("/api/v1/agents?limit=3&offset=" + std::to_string(offset));
    ASSERT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(r.num("/meta/total"), 7);
    EXPECT_EQ(r.num("/meta/limit"), 3);
    const auto& items = r.at("/data")->as_array();
    EXPECT_EQ(items.size(), offset == 6 ? 1u : 3u);
    for (const auto& v : items) seen.insert(std::string(v.at("id").as_string()));
  }
  EXPECT_EQ(seen, created);

  // cursor paging: follow meta.next until it is null, bounded
  seen.clear();
  std::string target = "/api/v1/agents?limit=2";
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto r = client_->get(target);
    ASSERT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(r.num("/meta/total"), 7);
    EXPECT_EQ(r.num("/meta/limit"), 2);
    for (const auto& v : r.at("/data")->as_array()) {
      EXPECT_TRUE(seen.insert(std::string(v.at("id").as_string())).second)
          << "an agent appeared on two pages";
    }
    const auto* next = r.at("/meta/next");
    ASSERT_NE(next, nullptr) << "meta.next must be present (null on the last page)";
    if (next->is_null()) break;
    ASSERT_TRUE(next->is_string());
    target = "/api/v1/agents?limit=2&cursor=" + std::string(next->as_string());
  }
  EXPECT_EQ(pages, 3) << "7 agents in pages of 2 end on the 4th page";
  EXPECT_EQ(seen, created);
}

TEST_P(AgentsApiTest, UpdateWithVersionInBody) {
  const auto id = create_id("updatable");
  auto r = client_->put("/api/v1/agents/" + id,
                        R"({"version":1,"description":"new text","labels":{"env":"ci"}})");
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(r.num("/data/version"), 2);
  EXPECT_EQ(r.header("ETag"), "\"2\"");
  EXPECT_EQ(r.str("/data/description"), "new text");
  EXPECT_EQ(r.str("/data/name"), "updatable");

  auto g = client_->get("/api/v1/agents/" + id);
  EXPECT_EQ(g.num("/data/version"), 2);
  EXPECT_EQ(g.str("/data/labels/env"), "ci");
}

TEST_P(AgentsApiTest, UpdateWithIfMatch) {
  const auto id = create_id("etagged");
  auto g = client_->get("/api/v1/agents/" + id);
  const std::string etag = g.header("ETag");
  ASSERT_EQ(etag, "\"1\"");
  auto r = client_->put("/api/v1/agents/" + id, R"({"name":"etagged-renamed"})",
                        {{"If-Match", etag}});
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(r.str("/data/name"), "etagged-renamed");
  EXPECT_EQ(r.header("ETag"), "\"2\"");

  // The old ETag is stale now: 409 and nothing changes.
  auto stale = client_->put("/api/v1/agents/" + id, R"({"name":"third-name"})",
                            {{"If-Match", etag}});
  EXPECT_EQ(stale.status, 409u) << stale.describe();
  EXPECT_EQ(stale.str("/error/code"), "version_conflict");
  EXPECT_EQ(client_->get("/api/v1/agents/" + id).str("/data/name"), "etagged-renamed");
}

TEST_P(AgentsApiTest, StaleVersionIs409AndChangesNothing) {
  const auto id = create_id("contended");
  ASSERT_EQ(client_->put("/api/v1/agents/" + id, R"({"version":1,"description":"first"})").status,
            200u);
  auto before = client_->get("/api/v1/agents/" + id);
  auto r = client_->put("/api/v1/agents/" + id,
                        R"({"version":1,"description":"lost update","name":"other"})");
  EXPECT_EQ(r.status, 409u) << r.describe();
  EXPECT_EQ(r.str("/error/code"), "version_conflict");
  EXPECT_EQ(r.num("/error/details/currentVersion"), 2);
  auto after = client_->get("/api/v1/agents/" + id);
  ASSERT_TRUE(before.json && after.json);
  EXPECT_EQ(json_str(*before.at("/data")), json_str(*after.at("/data")));
}

TEST_P(AgentsApiTest, LifecycleTransitionsAreRecorded) {
  const auto id = create_id("cycler");
  auto s1 = client_->post("/api/v1/agents/" + id + "/start", "");
  ASSERT_EQ(s1.status, 200u) << s1.describe();
  EXPECT_EQ(s1.str("/data/status"), "running");
  auto s2 = client_->post("/api/v1/agents/" + id + "/stop", "{}");
  ASSERT_EQ(s2.status, 200u) << s2.describe();
  EXPECT_EQ(s2.str("/data/status"), "stopped");
  auto s3 = client_->post("/api/v1/agents/" + id + "/start", "");
  ASSERT_EQ(s3.status, 200u) << s3.describe();
  EXPECT_EQ(s3.str("/data/status"), "running");
  // created(1) + 2 per start/stop.
  EXPECT_EQ(s3.num("/data/version"), 7);

  auto h = client_->get("/api/v1/agents/" + id + "/states");
  ASSERT_EQ(h.status, 200u) << h.describe();
  const auto& items = h.at("/data")->as_array();
  ASSERT_EQ(items.size(), 7u) << h.describe();
  // Newest first.
  std::vector<std::string> statuses;
  for (const auto& e : items) statuses.emplace_back(e.at("status").as_string());
  EXPECT_EQ(statuses, (std::vector<std::string>{"running", "starting", "stopped", "stopping",
                                                "running", "starting", "created"}));
  EXPECT_EQ(items[0].at("version").to_number<std::int64_t>(), 7);
}

TEST_P(AgentsApiTest, InvalidTransitionNamesCurrentState) {
  const auto id = create_id("idle-one");
  auto stop = client_->post("/api/v1/agents/" + id + "/stop", "");
  EXPECT_EQ(stop.status, 409u) << stop.describe();
  EXPECT_EQ(stop.str("/error/code"), "invalid_transition");
  EXPECT_NE(stop.str("/error/message").find("created"), std::string::npos) << stop.describe();
  EXPECT_EQ(stop.str("/error/details/currentStatus"), "created");

  ASSERT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
  auto again = client_->post("/api/v1/agents/" + id + "/start", "");
  EXPECT_EQ(again.status, 409u) << again.describe();
  EXPECT_EQ(again.str("/error/code"), "invalid_transition");
  EXPECT_NE(again.str("/error/message").find("running"), std::string::npos);
  EXPECT_EQ(again.str("/error/details/currentStatus"), "running");
  // Nothing changed.
  EXPECT_EQ(client_->get("/api/v1/agents/" + id).num("/data/version"), 3);
}

TEST_P(AgentsApiTest, DeleteDecommissionsAndPurgeRemoves) {
  const auto id = create_id("retiree");
  auto d = client_->del("/api/v1/agents/" + id);
  ASSERT_EQ(d.status, 200u) << d.describe();
  EXPECT_EQ(d.str("/data/status"), "decommissioned");

  // Still readable, with its history.
  auto g = client_->get("/api/v1/agents/" + id);
  ASSERT_EQ(g.status, 200u);
  EXPECT_EQ(g.str("/data/status"), "decommissioned");
  auto h = client_->get("/api/v1/agents/" + id + "/states");
  ASSERT_EQ(h.status, 200u);
  EXPECT_EQ(h.at("/data")->as_array().size(), 2u);
  EXPECT_EQ(h.str("/data/0/status"), "decommissioned");

  // Terminal: no start, no update, no second decommission.
  auto st = client_->post("/api/v1/agents/" + id + "/start", "");
  EXPECT_EQ(st.status, 409u);
  EXPECT_EQ(st.str("/error/code"), "invalid_transition");
  EXPECT_EQ(st.str("/error/details/currentStatus"), "decommissioned");
  auto up = client_->put("/api/v1/agents/" + id, R"({"version":2,"description":"x"})");
  EXPECT_EQ(up.status, 409u) << up.describe();
  EXPECT_EQ(up.str("/error/code"), "invalid_transition");
  EXPECT_EQ(client_->del("/api/v1/agents/" + id).status, 409u);

  // Purge removes it and its history.
  auto p = client_->del("/api/v1/agents/" + id + "?purge=true");
  EXPECT_EQ(p.status, 204u) << p.describe();
  EXPECT_EQ(client_->get("/api/v1/agents/" + id).status, 404u);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/states").status, 404u);
  EXPECT_EQ(client_->del("/api/v1/agents/" + id + "?purge=true").status, 404u);
}

// ------------------------------------------------------------------------------ bad inputs

struct BadCase {
  std::string name;
  std::string method;
  std::string target;  // "{id}" is replaced by the seeded agent's id
  std::string body;
  Headers headers;
  unsigned status;
  std::string code;
  std::string field;  // expected in error.details[].field, when not empty
};

std::string repeat(char c, std::size_t n) { return std::string(n, c); }

std::vector<BadCase> bad_cases() {
  const std::string cmd = R"("config":{"command":["true"]})";
  return {
      {"malformed JSON", "POST", "/api/v1/agents", R"({"name": "a", "type": )", {}, 400,
       "invalid_json", ""},
      {"empty body", "POST", "/api/v1/agents", "", {}, 400, "invalid_json", ""},
      {"trailing garbage", "POST", "/api/v1/agents", R"({"name":"x","type":"command"} {})", {},
       400, "invalid_json", ""},
      {"deeply nested JSON", "POST", "/api/v1/agents", repeat('[', 5000) + repeat(']', 5000), {},
       400, "invalid_json", ""},
      {"body is an array", "POST", "/api/v1/agents", R"([{"name":"x"}])", {}, 422,
       "validation_failed", ""},
      {"body is a string", "POST", "/api/v1/agents", R"("agent")", {}, 422, "validation_failed",
       ""},
      {"body is null", "POST", "/api/v1/agents", "null", {}, 422, "validation_failed", ""},
      {"name is a number", "POST", "/api/v1/agents", R"({"name":42,"type":"command",)" + cmd + "}",
       {}, 422, "validation_failed", "name"},
      {"type is a boolean", "POST", "/api/v1/agents", R"({"name":"t","type":true})", {}, 422,
       "validation_failed", "type"},
      {"description is an array", "POST", "/api/v1/agents",
       R"({"name":"d","type":"command","description":["x"],)" + cmd + "}", {}, 422,
       "validation_failed", "description"},
      {"labels is a string", "POST", "/api/v1/agents",
       R"({"name":"l","type":"command","labels":"x",)" + cmd + "}", {}, 422, "validation_failed",
       "labels"},
      {"label value is a number", "POST", "/api/v1/agents",
       R"({"name":"l","type":"command","labels":{"k":1},)" + cmd + "}", {}, 422,
       "validation_failed", "labels.k"},
      {"config is an array", "POST", "/api/v1/agents",
       R"({"name":"c","type":"command","config":[]})", {}, 422, "validation_failed", "config"},
      {"config value of the wrong type", "POST", "/api/v1/agents",
       R"({"name":"c","type":"command","config":{"command":["true"],"timeoutSeconds":"10"}})", {},
       422, "validation_failed", "config.timeoutSeconds"},
      {"config value out of range", "POST", "/api/v1/agents",
       R"({"name":"c","type":"llm","config":{"provider":"openai","model":"m","temperature":9}})",
       {}, 422, "validation_failed", "config.temperature"},
      {"config misses a required key", "POST", "/api/v1/agents",
       R"({"name":"c","type":"command","config":{}})", {}, 422, "validation_failed",
       "config.command"},
      {"empty name", "POST", "/api/v1/agents", R"({"name":"","type":"command",)" + cmd + "}", {},
       422, "validation_failed", "name"},
      {"missing name", "POST", "/api/v1/agents", R"({"type":"command",)" + cmd + "}", {}, 422,
       "validation_failed", "name"},
      {"name of 10k chars", "POST", "/api/v1/agents",
       R"({"name":")" + repeat('n', 10000) + R"(","type":"command",)" + cmd + "}", {}, 422,
       "validation_failed", "name"},
      {"huge description", "POST", "/api/v1/agents",
       R"({"name":"h","type":"command","description":")" + repeat('d', 200000) + R"(",)" + cmd +
           "}",
       {}, 422, "validation_failed", "description"},
      {"name with control characters", "POST", "/api/v1/agents",
       R"({"name":"bad\u0007name","type":"command",)" + cmd + "}", {}, 422, "validation_failed",
       "name"},
      {"name with a leading space", "POST", "/api/v1/agents",
       R"({"name":" spaced","type":"command",)" + cmd + "}", {}, 422, "validation_failed", "name"},
      {"unknown top-level field", "POST", "/api/v1/agents",
       R"({"name":"u","type":"command","colour":"red",)" + cmd + "}", {}, 422,
       "validation_failed", "colour"},
      {"unknown config field", "POST", "/api/v1/agents",
       R"({"name":"u","type":"command","config":{"command":["true"],"turbo":true}})", {}, 422,
       "validation_failed", "config.turbo"},
      {"unknown type", "POST", "/api/v1/agents", R"({"name":"u","type":"robot"})", {}, 422,
       "validation_failed", "type"},
      {"non-UTF-8 bytes in a string", "POST", "/api/v1/agents",
       "{\"name\":\"bad\xff\xfe\",\"type\":\"command\"," + cmd + "}", {}, 400, "invalid_json", ""},
      {"duplicate name", "POST", "/api/v1/agents",
       R"({"name":"seed","type":"command",)" + cmd + "}", {}, 409, "conflict", ""},
      {"id is not a UUID", "GET", "/api/v1/agents/not-a-uuid", "", {}, 400, "invalid_id", ""},
      {"id looks like path traversal", "GET", "/api/v1/agents/..%5C..%5Cetc%5Cpasswd", "", {},
       400, "invalid_id", ""},
      // The path is percent-decoded before routing, so an encoded '/' splits segments and no
      // route matches (as web servers commonly answer encoded slashes).
      {"id with encoded slashes", "GET", "/api/v1/agents/..%2F..%2Fetc%2Fpasswd", "", {}, 404,
       "not_found", ""},
      {"id with a NUL byte", "GET", "/api/v1/agents/%00", "", {}, 400, "invalid_id", ""},
      {"id with dot segments", "GET", "/api/v1/agents/..", "", {}, 400, "invalid_id", ""},
      {"very long id", "GET", "/api/v1/agents/" + repeat('a', 4000), "", {}, 400, "invalid_id",
       ""},
      {"bad id on update", "PUT", "/api/v1/agents/123", R"({"version":1})", {}, 400, "invalid_id",
       ""},
      {"bad id on start", "POST", "/api/v1/agents/zzz/start", "", {}, 400, "invalid_id", ""},
      {"unknown query parameter", "GET", "/api/v1/agents?colour=red", "", {}, 422,
       "validation_failed", "colour"},
      {"limit 0", "GET", "/api/v1/agents?limit=0", "", {}, 422, "validation_failed", "limit"},
      {"limit 501", "GET", "/api/v1/agents?limit=501", "", {}, 422, "validation_failed", "limit"},
      {"limit abc", "GET", "/api/v1/agents?limit=abc", "", {}, 422, "validation_failed", "limit"},
      {"negative offset", "GET", "/api/v1/agents?offset=-1", "", {}, 422, "validation_failed",
       "offset"},
      {"unknown status filter", "GET", "/api/v1/agents?status=sleeping", "", {}, 422,
       "validation_failed", "status"},
      {"garbage cursor", "GET", "/api/v1/agents?cursor=%27%20OR%201%3D1", "", {}, 422,
       "validation_failed", "cursor"},
      {"counts: unknown query parameter", "GET", "/api/v1/agents/counts?status=running", "", {},
       422, "validation_failed", "status"},
      {"counts: unknown type", "GET", "/api/v1/agents/counts?type=robot", "", {}, 422,
       "validation_failed", "type"},
      {"counts: q of 10k chars", "GET", "/api/v1/agents/counts?q=" + repeat('q', 10000), "", {},
       422, "validation_failed", "q"},
      {"counts: not writable", "POST", "/api/v1/agents/counts", "{}", {}, 405,
       "method_not_allowed", ""},
      {"purge not a boolean", "DELETE", "/api/v1/agents/{id}?purge=maybe", "", {}, 422,
       "validation_failed", "purge"},
      {"unknown query on delete", "DELETE", "/api/v1/agents/{id}?force=1", "", {}, 422,
       "validation_failed", "force"},
      {"stale version", "PUT", "/api/v1/agents/{id}", R"({"version":7,"description":"x"})", {},
       409, "version_conflict", ""},
      {"version missing", "PUT", "/api/v1/agents/{id}", R"({"description":"x"})", {}, 422,
       "validation_failed", "version"},
      {"version is a string", "PUT", "/api/v1/agents/{id}", R"({"version":"1"})", {}, 422,
       "validation_failed", "version"},
      {"If-Match garbage", "PUT", "/api/v1/agents/{id}", R"({"description":"x"})",
       {{"If-Match", "not-a-version"}}, 422, "validation_failed", "If-Match"},
      {"If-Match disagrees with the body", "PUT", "/api/v1/agents/{id}",
       R"({"version":1,"description":"x"})", {{"If-Match", "\"2\""}}, 422, "validation_failed",
       "version"},
      {"type cannot change", "PUT", "/api/v1/agents/{id}", R"({"version":1,"type":"llm"})", {},
       422, "validation_failed", "type"},
      {"unknown field on update", "PUT", "/api/v1/agents/{id}", R"({"version":1,"owner":"me"})",
       {}, 422, "validation_failed", "owner"},
      {"invalid transition: stop a created agent", "POST", "/api/v1/agents/{id}/stop", "", {}, 409,
       "invalid_transition", ""},
      {"start with unknown fields", "POST", "/api/v1/agents/{id}/start", R"({"now":true})", {},
       422, "validation_failed", "now"},
      {"start with malformed JSON", "POST", "/api/v1/agents/{id}/start", "{", {}, 400,
       "invalid_json", ""},
      {"unknown agent", "GET", "/api/v1/agents/0190a0b0-0000-7000-8000-000000000001", "", {}, 404,
       "not_found", ""},
      {"unknown route", "GET", "/api/v1/nothing-here", "", {}, 404, "not_found", ""},
      {"unknown action", "POST", "/api/v1/agents/{id}/explode", "", {}, 404, "not_found", ""},
      {"wrong method", "PATCH", "/api/v1/agents", "{}", {}, 405, "method_not_allowed", ""},
      {"wrong method on an agent", "POST", "/api/v1/agents/{id}", "{}", {}, 405,
       "method_not_allowed", ""},
  };
}

void expect_error_envelope(const HttpResponse& r, const BadCase& c) {
  EXPECT_EQ(r.status, c.status) << r.describe();
  ASSERT_TRUE(r.json.has_value()) << "error body is not JSON: " << r.describe();
  EXPECT_EQ(r.str("/error/code"), c.code) << r.describe();
  EXPECT_FALSE(r.str("/error/message").empty()) << r.describe();
  EXPECT_TRUE(r.header("Content-Type").starts_with("application/json")) << r.describe();
  if (!c.field.empty()) {
    const auto* details = r.at("/error/details");
    ASSERT_TRUE(details != nullptr && details->is_array()) << r.describe();
    bool found = false;
    for (const auto& d : details->as_array()) {
      if (d.is_object() && d.as_object().contains("field") && d.at("field") == json::value(c.field)) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << "details[].field should name '" << c.field << "': " << r.describe();
  }
}

TEST_P(AgentsApiTest, BadInputsGetTheRightErrorAndChangeNothing) {
  const auto id = create_id("seed");
  auto seed_before = client_->get("/api/v1/agents/" + id);
  ASSERT_EQ(seed_before.status, 200u);
  const auto cases = bad_cases();
  ASSERT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string target = c.target;
    if (auto p = target.find("{id}"); p != std::string::npos) target.replace(p, 4, id);
    auto r = client_->request(c.method, target, c.body, c.headers);
    ASSERT_NE(r.status, 0u) << "no response: " << client_->error();
    expect_error_envelope(r, c);
    if (c.status == 405) {
      EXPECT_FALSE(r.header("Allow").empty()) << "405 needs an Allow header";
    }
    if (c.code == "invalid_json" && !c.body.empty()) {
      EXPECT_NE(r.at("/error/details/position"), nullptr) << r.describe();
    }
  }
  // Specific details worth pinning down.
  auto bad = client_->post("/api/v1/agents", "{\"name\": \"a\",\n \"type\": ]");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.num("/error/details/line"), 2) << bad.describe();
  EXPECT_EQ(bad.num("/error/details/position"), 23) << bad.describe();
  auto wrong = client_->request("PATCH", "/api/v1/agents", "{}");
  EXPECT_EQ(wrong.header("Allow"), "GET, POST");

  // The server is healthy and nothing changed.
  auto health = client_->get("/api/v1/system/health");
  EXPECT_EQ(health.status, 200u) << health.describe();
  EXPECT_EQ(total(), 1);
  auto seed_after = client_->get("/api/v1/agents/" + id);
  EXPECT_EQ(json_str(*seed_before.at("/data")), json_str(*seed_after.at("/data")));
  auto states = client_->get("/api/v1/agents/" + id + "/states");
  EXPECT_EQ(states.at("/data")->as_array().size(), 1u);
}

TEST_P(AgentsApiTest, ProtocolAbuseGetsAnErrorAndTheServerStaysUp) {
  const auto id = create_id("survivor");
  HttpClient raw(server_->port());

  {
    SCOPED_TRACE("body over 1 MiB with Content-Length");
    const std::string big = R"({"name":"big","type":"command","description":")" +
                            std::string(1024 * 1024 + 10, 'x') + "\"}";
    auto r = raw.raw("POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     "\r\nContent-Length: " +
                     std::to_string(big.size()) + "\r\n\r\n" + big);
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 413u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "payload_too_large") << r.describe();
  }
  {
    SCOPED_TRACE("chunked body over 1 MiB");
    std::string req = "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(64 * 1024, 'y');
    for (int i = 0; i < 20; ++i) req += "10000\r\n" + chunk + "\r\n";
    req += "0\r\n\r\n";
    auto r = raw.raw(req);
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 413u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "payload_too_large") << r.describe();
  }
  {
    SCOPED_TRACE("oversized headers");
    auto r = raw.raw("GET /api/v1/agents HTTP/1.1\r\nHost: x\r\nX-Big: " +
                     std::string(64 * 1024, 'h') + "\r\n\r\n");
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 431u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "headers_too_large") << r.describe();
  }
  {
    SCOPED_TRACE("not HTTP at all");
    static const char kTls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n";
    auto r = raw.raw(std::string(kTls, sizeof kTls - 1));
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 400u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "bad_request") << r.describe();
  }
  {
    SCOPED_TRACE("a text line that is not a request");
    auto r = raw.raw("HELLO THERE\r\n\r\n");
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 400u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "bad_request") << r.describe();
  }
  {
    SCOPED_TRACE("a request target that is not a path");
    auto r = raw.raw("GET http//:bad HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(r.status, 0u) << raw.error();
    EXPECT_EQ(r.status, 400u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "bad_request") << r.describe();
  }

  auto health = client_->get("/api/v1/system/health");
  EXPECT_EQ(health.status, 200u) << health.describe();
  EXPECT_EQ(total(), 1);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id).num("/data/version"), 1);
}

// ------------------------------------------------------------------------------ cross-cutting

TEST_P(AgentsApiTest, RequestIdIsEchoedWhenSaneAndReplacedOtherwise) {
  auto sane = client_->get("/api/v1/agents", {{"X-Request-Id", "trace-abc_123.4:5"}});
  EXPECT_EQ(sane.header("X-Request-Id"), "trace-abc_123.4:5");
  EXPECT_EQ(sane.str("/meta/requestId"), "trace-abc_123.4:5");

  for (const std::string& bad : {std::string("has space"), std::string(300, 'a'),
                                std::string("semi;colon<script>"), std::string("")}) {
    SCOPED_TRACE("X-Request-Id: '" + bad.substr(0, 40) + "'");
    auto r = client_->get("/api/v1/agents", {{"X-Request-Id", bad}});
    ASSERT_EQ(r.status, 200u) << r.describe();
    const std::string got = r.header("X-Request-Id");
    EXPECT_NE(got, bad);
    EXPECT_EQ(got.size(), 36u) << "a fresh UUID replaces it: " << got;
    EXPECT_EQ(r.str("/meta/requestId"), got);
  }

  // Made when absent, and present in errors too.
  auto none = client_->get("/api/v1/agents/not-a-uuid");
  EXPECT_EQ(none.header("X-Request-Id").size(), 36u);
  EXPECT_EQ(none.str("/error/requestId"), none.header("X-Request-Id"));

  // The request id reaches the log lines of that request.
  auto logged = client_->get("/api/v1/agents/not-a-uuid", {{"X-Request-Id", "find-me-in-logs"}});
  EXPECT_EQ(logged.status, 400u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->process().stderr_text().find("find-me-in-logs") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(server_->process().stderr_text().find("\"correlationId\":\"find-me-in-logs\""),
            std::string::npos)
      << server_->process().stderr_text();
}

TEST_P(AgentsApiTest, SystemHealthAndInfo) {
  const std::string backend = to_string(GetParam());
  auto h = client_->get("/api/v1/system/health");
  ASSERT_EQ(h.status, 200u) << h.describe();
  EXPECT_EQ(h.str("/data/status"), "ok");
  EXPECT_FALSE(h.str("/data/version").empty());
  ASSERT_NE(h.at("/data/uptimeSeconds"), nullptr);
  EXPECT_TRUE(h.at("/data/uptimeSeconds")->is_number());
  EXPECT_EQ(h.str("/data/checks/store/status"), "up");
  EXPECT_EQ(h.str("/data/checks/store/backend"), backend);
  EXPECT_EQ(h.str("/data/checks/bus/status"), "up");
  EXPECT_EQ(h.str("/data/checks/bus/backend"), "in-process");

  auto i = client_->get("/api/v1/system/info");
  ASSERT_EQ(i.status, 200u) << i.describe();
  EXPECT_EQ(i.str("/data/name"), "devplane");
  EXPECT_EQ(i.str("/data/mode"), GetParam() == Backend::kSqlite ? "embedded" : "distributed");
  EXPECT_EQ(i.str("/data/store/backend"), backend);
  EXPECT_GE(i.num("/data/store/schemaVersion"), 1);
  EXPECT_EQ(i.str("/data/bus/backend"), "in-process");
  EXPECT_FALSE(i.str("/data/build/gitCommit").empty());
  EXPECT_FALSE(i.str("/data/build/compiler").empty());
  if (GetParam() == Backend::kPostgres) {
    // The store location is the masked URL: never a password.
    EXPECT_EQ(i.str("/data/store/location").find("secret"), std::string::npos);
    EXPECT_NE(i.str("/data/store/location").find(server_->pg()->name()), std::string::npos);
  } else {
    EXPECT_NE(i.str("/data/store/location").find("devplane.db"), std::string::npos);
  }
}

// The sample value of the first metric line containing every one of `parts`; -1 when none.
double metric_value(const std::string& text, const std::vector<std::string>& parts) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    bool all = true;
    for (const auto& p : parts) {
      if (line.find(p) == std::string::npos) all = false;
    }
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

TEST_P(AgentsApiTest, MetricsCountRequestsByRouteAndStatus) {
  const auto id = create_id("measured-1");
  create_id("measured-2");
  create_id("measured-3");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(client_->get("/api/v1/agents/" + id).status, 200u);
  ASSERT_EQ(client_->get("/api/v1/agents/nope").status, 400u);
  ASSERT_EQ(client_->get("/no/such/route").status, 404u);

  auto m = client_->get("/metrics");
  ASSERT_EQ(m.status, 200u);
  EXPECT_TRUE(m.header("Content-Type").starts_with("text/plain")) << m.header("Content-Type");
  const std::string& t = m.body;
  EXPECT_EQ(metric_value(t, {"devplane_http_requests_total{", "method=\"POST\"",
                             "route=\"/api/v1/agents\"", "status=\"201\""}),
            3)
      << t;
  EXPECT_EQ(metric_value(t, {"devplane_http_requests_total{", "method=\"GET\"",
                             "route=\"/api/v1/agents/:id\"", "status=\"200\""}),
            4)
      << t;
  EXPECT_EQ(metric_value(t, {"devplane_http_requests_total{", "method=\"GET\"",
                             "route=\"/api/v1/agents/:id\"", "status=\"400\""}),
            1)
      << t;
  EXPECT_EQ(metric_value(t, {"devplane_http_requests_total{", "route=\"unmatched\"",
                             "status=\"404\""}),
            1)
      << t;
  EXPECT_EQ(metric_value(t, {"devplane_http_request_duration_seconds_count{", "method=\"GET\"",
                             "route=\"/api/v1/agents/:id\""}),
            5)
      << t;
  EXPECT_GE(metric_value(t, {"devplane_http_request_duration_seconds_bucket{", "method=\"POST\"",
                             "route=\"/api/v1/agents\"", "le=\"+Inf\""}),
            3)
      << t;
  // The scrape itself is in flight while it is rendered.
  EXPECT_GE(metric_value(t, {"devplane_http_requests_in_flight"}), 1) << t;
  EXPECT_GE(metric_value(t, {"devplane_store_operation_duration_seconds_count{"}), 1) << t;
}

TEST_P(AgentsApiTest, KeepAliveReusesOneConnection) {
  for (int i = 0; i < 20; ++i) {
    auto r = client_->get(i % 2 == 0 ? "/api/v1/agents" : "/api/v1/system/health");
    ASSERT_EQ(r.status, 200u) << r.describe();
    EXPECT_TRUE(r.keep_alive);
  }
  // Errors keep the connection too.
  EXPECT_EQ(client_->get("/api/v1/agents/x").status, 400u);
  EXPECT_EQ(client_->post("/api/v1/agents", "{").status, 400u);
  EXPECT_EQ(client_->get("/api/v1/agents").status, 200u);
  EXPECT_EQ(client_->connects(), 1);

  // HTTP/1.0 without keep-alive gets a closed connection.
  HttpClient other(server_->port());
  auto r = other.raw("GET /api/v1/system/health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.status, 200u) << r.describe() << other.error();
  EXPECT_FALSE(r.keep_alive);
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentsApiTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
