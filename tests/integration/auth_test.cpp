// Identity and access against the real binary, on SQLite and PostgreSQL: every attack of
// issue 3 must be refused, and every registered route must answer every role as the access
// table (and its copy in docs/security.md) says. Hostile tokens are minted here with
// OpenSSL, independently of the server's own JWT code.
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;

std::string b64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    const unsigned v = byte(i) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    for (int s = 18; s >= 6; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string mint(const json::object& header, const json::object& claims,
                 std::string_view key = kJwtSecret) {
  const std::string input = b64url(json::serialize(header)) + "." + b64url(json::serialize(claims));
  return input + "." + b64url(hmac(key, input));
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
const Headers kNoAuth = {{"Authorization", ""}};

std::string random_uuid() { return "0190aaaa-bbbb-7ccc-8ddd-" + std::to_string(100000000000 + std::rand() % 899999999999); }

class AuthTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(GetParam());
    ASSERT_EQ(server_->error(), "");
    http_ = std::make_unique<HttpClient>(server_->port());
    ASSERT_FALSE(admin_token(server_->port()).empty()) << "the harness could not sign in as admin";
    auto me = http_->get("/api/v1/auth/me");
    ASSERT_EQ(me.status, 200u) << me.describe();
    admin_id_ = me.str("/data/id");
  }

  // Creates a user with `role` and returns its access token.
  std::string user_token(const std::string& name, const std::string& role) {
    auto c = http_->post("/api/v1/users", json_str(json::object{{"username", name},
                                                                {"role", role},
                                                                {"password", "password-" + name}}));
    EXPECT_EQ(c.status, 201u) << c.describe();
    auto l = http_->post("/api/v1/auth/login",
                         json_str(json::object{{"username", name}, {"password", "password-" + name}}),
                         kNoAuth);
    EXPECT_EQ(l.status, 200u) << l.describe();
    return l.str("/data/accessToken");
  }
  json::object create_key(const std::string& name, const std::string& role,
                          const std::string& agent_id = "") {
    json::object body{{"name", name}, {"role", role}};
    if (!agent_id.empty()) body["agentId"] = agent_id;
    auto r = http_->post("/api/v1/api-keys", json_str(body));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.json ? r.json->at("data").as_object() : json::object{};
  }
  void expect_401(const HttpResponse& r, const std::string& why) {
    EXPECT_EQ(r.status, 401u) << why << ": " << r.describe();
    EXPECT_EQ(r.str("/error/code"), "unauthenticated") << why;
    EXPECT_TRUE(r.has_header("WWW-Authenticate")) << why;
  }
  json::object claims(std::int64_t exp_in = 600) {
    const auto t = now_s();
    return {{"iss", "devplane"}, {"aud", "devplane-api"}, {"sub", admin_id_}, {"role", "admin"},
            {"iat", t},          {"nbf", t},              {"exp", t + exp_in}};
  }
  // A WebSocket upgrade request on a fresh connection; returns the status line's code.
  unsigned upgrade(const std::string& extra_headers) {
    HttpClient raw(server_->port());
    auto r = raw.raw("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_->port()) +
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                     extra_headers + "\r\n");
    return r.status;
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> http_;
  std::string admin_id_;
};

TEST_P(AuthTest, ForgedAndMissingTokensAreRefused) {
  const std::string route = "/api/v1/agents";
  // Control: a token minted with the server's secret and right claims is accepted, so each
  // refusal below is about the one thing that case changes.
  auto ok = http_->get(route, bearer(mint({{"alg", "HS256"}, {"typ", "JWT"}}, claims())));
  ASSERT_EQ(ok.status, 200u) << ok.describe();

  expect_401(http_->get(route, kNoAuth), "no token");
  expect_401(http_->get(route, bearer("garbage")), "garbage token");
  expect_401(http_->get(route, {{"Authorization", "Basic YWRtaW46eA=="}}), "basic auth");
  const std::string body = b64url(json_str(claims()));
  expect_401(http_->get(route, bearer(b64url(R"({"alg":"none","typ":"JWT"})") + "." + body + ".")),
             "alg none");
  const std::string public_pem =
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEexample\n-----END PUBLIC KEY-----\n";
  expect_401(http_->get(route, bearer(mint({{"alg", "RS256"}, {"typ", "JWT"}}, claims(), public_pem))),
             "HS/RS confusion");
  expect_401(http_->get(route, bearer(mint({{"alg", "RS256"}}, claims()))), "RS256 header, HS key");
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, claims(), "not-the-server-secret-0123456789abcdef"))),
             "wrong signature");
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, claims(-120)))), "expired");
  auto future = claims();
  future["nbf"] = now_s() + 600;
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, future))), "not yet valid");
  auto aud = claims();
  aud["aud"] = "someone-else";
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, aud))), "wrong aud");
  auto iss = claims();
  iss["iss"] = "https://evil.example";
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, iss))), "wrong iss");
  auto ghost = claims();
  ghost["sub"] = random_uuid();
  expect_401(http_->get(route, bearer(mint({{"alg", "HS256"}}, ghost))), "unknown subject");
}

TEST_P(AuthTest, RotatedRefreshTokenReusedRevokesTheWholeFamily) {
  const std::string login = json_str(json::object{{"username", "admin"}, {"password", kAdminPassword}});
  auto l = http_->post("/api/v1/auth/login", login, kNoAuth);
  ASSERT_EQ(l.status, 200u) << l.describe();
  EXPECT_EQ(l.str("/data/tokenType"), "Bearer");
  EXPECT_EQ(l.num("/data/expiresIn"), 900);
  EXPECT_EQ(l.body.find(kAdminPassword), std::string::npos);
  const std::string r1 = l.str("/data/refreshToken");
  auto f1 = http_->post("/api/v1/auth/refresh", json_str(json::object{{"refreshToken", r1}}), kNoAuth);
  ASSERT_EQ(f1.status, 200u) << f1.describe();
  const std::string r2 = f1.str("/data/refreshToken");
  ASSERT_NE(r1, r2);
  EXPECT_EQ(http_->get("/api/v1/auth/me", bearer(f1.str("/data/accessToken"))).status, 200u);
  // r1 again: refused, and r2 (same family) dies with it.
  expect_401(http_->post("/api/v1/auth/refresh", json_str(json::object{{"refreshToken", r1}}), kNoAuth),
             "reused refresh token");
  expect_401(http_->post("/api/v1/auth/refresh", json_str(json::object{{"refreshToken", r2}}), kNoAuth),
             "refresh token of a revoked family");
  // Logout ends a session.
  auto l2 = http_->post("/api/v1/auth/login", login, kNoAuth);
  ASSERT_EQ(l2.status, 200u);
  const std::string r3 = l2.str("/data/refreshToken");
  auto out = http_->post("/api/v1/auth/logout", json_str(json::object{{"refreshToken", r3}}),
                         bearer(l2.str("/data/accessToken")));
  EXPECT_EQ(out.status, 204u) << out.describe();
  expect_401(http_->post("/api/v1/auth/refresh", json_str(json::object{{"refreshToken", r3}}), kNoAuth),
             "refresh after logout");
}

TEST_P(AuthTest, RolesAndApiKeysAreEnforced) {
  const std::string viewer = user_token("vera", "viewer");
  auto read = http_->get("/api/v1/agents", bearer(viewer));
  EXPECT_EQ(read.status, 200u) << read.describe();
  auto act = http_->post("/api/v1/agents", R"({"name":"x","type":"command","config":{"command":"true"}})",
                         bearer(viewer));
  EXPECT_EQ(act.status, 403u) << act.describe();
  EXPECT_EQ(act.str("/error/code"), "permission_denied");

  auto agent = http_->post("/api/v1/agents", R"({"name":"bot","type":"command","config":{"command":"true"}})");
  ASSERT_EQ(agent.status, 201u) << agent.describe();
  const std::string agent_id = agent.str("/data/id");
  auto key = create_key("bot-key", "agent", agent_id);
  const std::string secret(key["key"].as_string());
  ASSERT_TRUE(secret.starts_with("dp_")) << secret;
  EXPECT_EQ(http_->get("/api/v1/users", bearer(secret)).status, 403u) << "agent key on an admin route";
  EXPECT_EQ(http_->get("/api/v1/agents/" + agent_id + "/messages", bearer(secret)).status, 200u);
  EXPECT_EQ(http_->get("/api/v1/agents/" + random_uuid() + "/messages", bearer(secret)).status, 403u)
      << "another agent's inbox";
  // Listings never show a secret again.
  auto list = http_->get("/api/v1/api-keys");
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(list.body.find(secret.substr(16)), std::string::npos);
  // Revoked: refused.
  auto del = http_->del("/api/v1/api-keys/" + std::string(key["id"].as_string()));
  EXPECT_EQ(del.status, 204u) << del.describe();
  expect_401(http_->get("/api/v1/agents/" + agent_id + "/messages", bearer(secret)), "revoked API key");
  // An operator may not mint an admin key; purge is for admins.
  const std::string op = user_token("otto", "operator");
  auto admin_key = http_->post("/api/v1/api-keys", R"({"name":"k","role":"admin"})", bearer(op));
  EXPECT_EQ(admin_key.status, 403u) << admin_key.describe();
  EXPECT_EQ(http_->del("/api/v1/agents/" + agent_id + "?purge=true", bearer(op)).status, 403u);
  EXPECT_EQ(http_->del("/api/v1/agents/" + agent_id + "?purge=true").status, 204u);
}

TEST_P(AuthTest, WebSocketUpgradeNeedsACredential) {
  EXPECT_EQ(upgrade(""), 401u);
  EXPECT_EQ(upgrade("Sec-WebSocket-Protocol: devplane.v1, bearer.garbage\r\n"), 401u);
  EXPECT_EQ(upgrade("Sec-WebSocket-Protocol: devplane.v1, bearer." + admin_token(server_->port()) + "\r\n"),
            101u);
  EXPECT_EQ(upgrade("Authorization: Bearer " + admin_token(server_->port()) + "\r\n"), 101u);
}

TEST_P(AuthTest, PasswordBruteForceHitsTheLimits) {
  user_token("victim", "viewer");
  const std::string wrong = json_str(json::object{{"username", "victim"}, {"password", "wrong-password"}});
  for (int i = 1; i <= 4; ++i) {
    auto r = http_->post("/api/v1/auth/login", wrong, kNoAuth);
    EXPECT_EQ(r.status, 401u) << i << ": " << r.describe();
  }
  auto locked = http_->post("/api/v1/auth/login", wrong, kNoAuth);
  EXPECT_EQ(locked.status, 429u) << locked.describe();
  EXPECT_EQ(locked.str("/error/code"), "account_locked");
  EXPECT_FALSE(locked.header("Retry-After").empty());
  auto right = http_->post("/api/v1/auth/login",
                           json_str(json::object{{"username", "victim"}, {"password", "password-victim"}}),
                           kNoAuth);
  EXPECT_EQ(right.status, 429u) << "locked even with the right password: " << right.describe();
  // Spraying many names from one address hits the per-address window.
  unsigned last = 0;
  std::string retry;
  for (int i = 0; i < 40 && last != 429; ++i) {
    auto r = http_->post("/api/v1/auth/login",
                         json_str(json::object{{"username", "spray" + std::to_string(i)}, {"password", "x"}}),
                         kNoAuth);
    last = r.status;
    retry = r.header("Retry-After");
    if (last == 429) {
      EXPECT_EQ(r.str("/error/code"), "rate_limited");
    }
  }
  EXPECT_EQ(last, 429u);
  EXPECT_FALSE(retry.empty());
}

// docs/security.md's access table: rows "| METHOD | `route` | who | note |".
std::map<std::string, std::string> docs_table() {
  std::ifstream in(source_dir() + "/docs/security.md");
  std::map<std::string, std::string> rows;
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.starts_with("<!-- access-table:begin")) in_table = true;
    if (line.starts_with("<!-- access-table:end")) in_table = false;
    if (!in_table || !line.starts_with("| ") || line.starts_with("| Method") || line.starts_with("| ---")) {
      continue;
    }
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    if (cells.size() < 3) continue;
    std::string route = cells[1];
    std::erase(route, '`');
    rows[cells[0] + " " + route] = cells[2];
  }
  return rows;
}

std::string who(const json::object& rule) {
  if (rule.at("public").as_bool()) return "public";
  std::string out;
  for (const auto& r : rule.at("roles").as_array()) out += (out.empty() ? "" : ", ") + std::string(r.as_string());
  return out;
}

TEST_P(AuthTest, EveryRouteAnswersEveryRoleAsTheTableAndItsDocsSay) {
  TempDir dir;
  auto p = run_devplane({"serve", "--print-routes", "--data-dir", dir.str()},
                        {{"DEVPLANE_ADMIN_PASSWORD", kAdminPassword}, {"DEVPLANE_PASSWORD_HASH_COST", "interactive"}});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto printed = parse_json(p.out.substr(0, p.out.find('\n')));
  ASSERT_TRUE(printed.is_object()) << p.out;
  // The docs reproduce the table exactly.
  std::map<std::string, std::string> code;
  for (const auto& r : printed.at("rules").as_array()) {
    const auto& o = r.as_object();
    code[std::string(o.at("method").as_string()) + " " + std::string(o.at("route").as_string())] = who(o);
  }
  EXPECT_EQ(docs_table(), code) << "docs/security.md's access table differs from src/auth/policy.cpp";

  // Credentials of every role; ids in routes name a real agent the agent key is bound to.
  auto agent = http_->post("/api/v1/agents", R"({"name":"walker","type":"command","config":{"command":"true"}})");
  ASSERT_EQ(agent.status, 201u) << agent.describe();
  const std::string id = agent.str("/data/id");
  std::map<std::string, std::string> creds = {
      {"admin", admin_token(server_->port())},
      {"operator", user_token("op-walk", "operator")},
      {"viewer", user_token("viewer-walk", "viewer")},
      {"agent", std::string(create_key("walk-agent", "agent", id)["key"].as_string())}};
  int walked = 0;
  for (const auto& r : printed.at("routes").as_array()) {
    const auto& o = r.as_object();
    const std::string method(o.at("method").as_string());
    std::string route(o.at("route").as_string());
    ASSERT_TRUE(o.at("rule").as_bool()) << method << " " << route << " has no access rule";
    const bool is_public = o.at("public").as_bool();
    std::set<std::string> allowed;
    for (const auto& x : o.at("roles").as_array()) allowed.insert(std::string(x.as_string()));
    std::string target = route;
    if (auto k = target.find(":id"); k != std::string::npos) target.replace(k, 3, id);
    auto call = [&](const std::string& token) -> unsigned {
      if (route == "/ws") {
        return upgrade(token.empty() ? "" : "Authorization: Bearer " + token + "\r\n");
      }
      HttpClient c(server_->port());
      return c.request(method, target, "", token.empty() ? kNoAuth : bearer(token)).status;
    };
    const unsigned anon = call("");
    if (is_public) {
      EXPECT_NE(anon, 401u) << method << " " << route << " is public";
    } else {
      EXPECT_EQ(anon, 401u) << method << " " << route << " without a token";
    }
    for (const auto& [role, token] : creds) {
      const unsigned s = call(token);
      if (is_public || allowed.contains(role)) {
        EXPECT_TRUE(s != 401u && s != 403u) << role << " on " << method << " " << route << ": " << s;
      } else {
        EXPECT_EQ(s, 403u) << role << " on " << method << " " << route;
      }
    }
    ++walked;
  }
  EXPECT_GT(walked, 20);
}

// Not per backend: the key file lives in the data dir, which an SQLite server always has.
TEST(AuthFirstRun, JwtKeyFileIsMadePrivateOnFirstRun) {
  TempDir dir;
  ServerProcess p;
  ServerConfig c;
  c.data_dir = dir.str() + "/data";
  c.env = {{"DEVPLANE_JWT_SECRET", ""}, {"DEVPLANE_ADMIN_PASSWORD", ""}};
  ASSERT_EQ(p.start(c), "");
  const std::string out = p.stdout_text();
  EXPECT_NE(out.find("devplane admin password: "), std::string::npos) << out;
  struct stat st {};
  ASSERT_EQ(::stat((c.data_dir + "/jwt.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(p.stderr_text().find(out.substr(out.find("password: ") + 10, 24)), std::string::npos)
      << "the first-run password must not reach the log";
  p.stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, AuthTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& param_info) {
                           return to_string(param_info.param);
                         });

}  // namespace
}  // namespace dp::it
