#include "mcp/server.hpp"

#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::mcp {
namespace {

namespace json = boost::json;

// Offers "echo" to everybody and "admin_only" to admins; counts calls.
class FakeSource final : public ToolSource {
 public:
  Status list(const CallContext& ctx, std::vector<Tool>& out) override {
    if (fail_list) return Error::unavailable("down");
    Tool t;
    t.name = "echo";
    t.input_schema = json::object{{"type", "object"}};
    out.push_back(t);
    if (ctx.caller->role == "admin") {
      t.name = "admin_only";
      out.push_back(t);
    }
    return Ok{};
  }
  bool owns(std::string_view name) const override { return name == "echo" || name == "admin_only"; }
  Result<json::object> call(std::string_view name, const json::value& arguments, const CallContext&) override {
    ++calls;
    return json::object{{"content", json::array{json::object{{"type", "text"}, {"text", std::string(name)}}}},
                        {"structuredContent", arguments}};
  }
  int calls = 0;
  bool fail_list = false;
};

class McpServerTest : public ::testing::Test {
 protected:
  McpServerTest() {
    alice_.id = "a1";
    alice_.kind = "user";
    alice_.role = "admin";
    bob_.id = "b1";
    bob_.kind = "api_key";
    bob_.role = "viewer";
  }
  McpServer make(McpServerOptions o = {}) { return McpServer({&source_}, std::move(o)); }
  CallContext ctx(const http::Caller& c) {
    CallContext x;
    x.caller = &c;
    x.correlation_id = "corr";
    return x;
  }
  static jsonrpc::Message msg(std::string_view text) { return jsonrpc::decode(text).value().front(); }
  static jsonrpc::Message init(std::string_view version = "2025-11-25") {
    return jsonrpc::request(1, "initialize",
                            json::object{{"protocolVersion", version}, {"capabilities", json::object{}},
                                         {"clientInfo", json::object{{"name", "t"}, {"version", "1"}}}});
  }
  // initialize + notifications/initialized: the session id.
  std::string open(McpServer& s, const http::Caller& c) {
    auto r = s.handle(init(), "", ctx(c));
    EXPECT_TRUE(r.ok());
    const std::string id = r.ok() ? r->opened : "";
    EXPECT_TRUE(s.handle(jsonrpc::notification("notifications/initialized"), id, ctx(c)).ok());
    return id;
  }

  FakeSource source_;
  http::Caller alice_;
  http::Caller bob_;
};

TEST_F(McpServerTest, InitializeNegotiatesAndOpensRandomSessions) {
  auto s = make();
  auto a = s.handle(init("2024-11-05"), "", ctx(alice_));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->reply->result.at("protocolVersion"), json::value("2024-11-05"));
  auto b = s.handle(init("1999-01-01"), "", ctx(alice_));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->reply->result.at("protocolVersion"), json::value("2025-11-25"));
  EXPECT_EQ(a->opened.size(), 32u);
  EXPECT_NE(a->opened, b->opened);
  EXPECT_EQ(s.sessions(), 2u);
  EXPECT_EQ(s.session_version(a->opened, "user:a1"), "2024-11-05");
  EXPECT_EQ(s.session_version(a->opened, "api_key:b1"), "");  // not bob's
}

TEST_F(McpServerTest, RefusesMalformedInitialize) {
  auto s = make();
  for (const char* bad : {R"({"jsonrpc":"2.0","id":1,"method":"initialize"})",
                          R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":5}})",
                          R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":[]}})",
                          R"({"jsonrpc":"2.0","method":"initialize","params":{}})"}) {
    auto r = s.handle(msg(bad), "", ctx(alice_));
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(s.sessions(), 0u);
}

TEST_F(McpServerTest, OutOfOrderMessagesAreRefused) {
  auto s = make();
  // No session: only initialize.
  auto r = s.handle(msg(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})"), "", ctx(alice_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "session_required");
  EXPECT_TRUE(is_session_error(r.error()));
  auto opened = s.handle(init(), "", ctx(alice_));
  const std::string id = opened->opened;
  // Before notifications/initialized: ping yes, tools no.
  auto p = s.handle(msg(R"({"jsonrpc":"2.0","id":3,"method":"ping"})"), id, ctx(alice_));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reply->kind, jsonrpc::Kind::kResult);
  auto c = s.handle(msg(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo"}})"), id,
                    ctx(alice_));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->reply->kind, jsonrpc::Kind::kError);
  EXPECT_EQ(c->reply->error.code, jsonrpc::kInvalidRequest);
  EXPECT_EQ(source_.calls, 0);
  // initialize again on the session.
  auto again = s.handle(init(), id, ctx(alice_));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().reason, "already_initialized");
}

TEST_F(McpServerTest, SessionsBelongToTheirCaller) {
  auto s = make();
  const std::string id = open(s, alice_);
  auto r = s.handle(msg(R"({"jsonrpc":"2.0","id":5,"method":"tools/list"})"), id, ctx(bob_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "unknown_session");
  EXPECT_FALSE(s.end(id, "api_key:b1").ok());
  EXPECT_TRUE(s.end(id, "user:a1").ok());
  EXPECT_FALSE(s.end(id, "user:a1").ok());
  r = s.handle(msg(R"({"jsonrpc":"2.0","id":5,"method":"ping"})"), id, ctx(alice_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST_F(McpServerTest, ListsAndCallsThroughSources) {
  auto s = make();
  const std::string a = open(s, alice_);
  const std::string b = open(s, bob_);
  auto la = s.handle(msg(R"({"jsonrpc":"2.0","id":6,"method":"tools/list"})"), a, ctx(alice_));
  auto lb = s.handle(msg(R"({"jsonrpc":"2.0","id":6,"method":"tools/list","params":{}})"), b, ctx(bob_));
  EXPECT_EQ(la->reply->result.at("tools").as_array().size(), 2u);
  EXPECT_EQ(lb->reply->result.at("tools").as_array().size(), 1u);
  auto cur = s.handle(msg(R"({"jsonrpc":"2.0","id":6,"method":"tools/list","params":{"cursor":"x"}})"), a, ctx(alice_));
  EXPECT_EQ(cur->reply->error.code, jsonrpc::kInvalidParams);
  auto c = s.handle(msg(R"({"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"echo","arguments":{"x":1}}})"),
                    a, ctx(alice_));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->reply->id, json::value("s"));
  EXPECT_EQ(c->reply->result.at("structuredContent").at("x"), json::value(1));
  for (const char* bad : {R"({"jsonrpc":"2.0","id":7,"method":"tools/call"})",
                          R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":""}})",
                          R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":[1]}})",
                          R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"nope"}})"}) {
    auto e = s.handle(msg(bad), a, ctx(alice_));
    ASSERT_TRUE(e.ok()) << bad;
    EXPECT_EQ(e->reply->error.code, jsonrpc::kInvalidParams) << bad;
  }
  auto unknown = s.handle(msg(R"({"jsonrpc":"2.0","id":8,"method":"sampling/createMessage"})"), a, ctx(alice_));
  EXPECT_EQ(unknown->reply->error.code, jsonrpc::kMethodNotFound);
  EXPECT_EQ(source_.calls, 1);
  // Every source failing fails the list.
  source_.fail_list = true;
  auto down = s.handle(msg(R"({"jsonrpc":"2.0","id":9,"method":"tools/list"})"), a, ctx(alice_));
  EXPECT_EQ(down->reply->kind, jsonrpc::Kind::kError);
}

TEST_F(McpServerTest, SessionsAreBoundedAndExpire) {
  McpServerOptions o;
  o.max_sessions = 3;
  o.max_sessions_per_caller = 2;
  o.idle_timeout = std::chrono::milliseconds(200);
  auto s = make(o);
  const std::string a1 = open(s, alice_);
  const std::string a2 = open(s, alice_);
  const std::string a3 = open(s, alice_);  // alice's oldest (a1) goes
  EXPECT_EQ(s.sessions(), 2u);
  EXPECT_EQ(s.session_version(a1, "user:a1"), "");
  EXPECT_NE(s.session_version(a3, "user:a1"), "");
  open(s, bob_);
  EXPECT_EQ(s.sessions(), 3u);
  http::Caller carol;
  carol.id = "c1";
  carol.kind = "user";
  carol.role = "operator";
  auto full = s.handle(init(), "", ctx(carol));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().reason, "too_many_sessions");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto late = s.handle(msg(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"), a2, ctx(alice_));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().reason, "unknown_session");
  EXPECT_TRUE(s.handle(init(), "", ctx(carol)).ok());  // expired ones made room
  EXPECT_EQ(s.sessions(), 1u);
}

}  // namespace
}  // namespace dp::mcp
