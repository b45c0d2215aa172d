// Single sign-on end to end: the real devplane binary against a real OpenID provider
// (`oidc-provider` from npm, tests/oidc/provider.mjs) on 127.0.0.1. The test plays the
// browser: it follows every redirect by hand, keeps the cookies, fills in the provider's
// sign-in and consent forms, and finally calls devplane's callback.
//
// The provider's test controls (see provider.mjs) make its token endpoint hand out altered
// ID tokens (a tampered claim, another issuer or audience, expired, wrong nonce, unsigned,
// HMAC-signed, signed by an unknown key) and rotate its signing keys.
//
// Needs node (DP_NODE_BINARY or DEVPLANE_TEST_NODE) and tests/oidc/node_modules
// (`npm ci` in tests/oidc; scripts/test does it).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <gtest/gtest.h>

#include "auth/oidc.hpp"
#include "child_process.hpp"
#include "harness.hpp"

extern char** environ;

namespace dp::it {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* kTestAdminPassword = "oidc-it-admin-password-01";
constexpr const char* kTestJwtSecret = "oidc-integration-test-jwt-secret-0123456789";

using Child = ChildProcess;

struct Provider {
  Child process;
  std::uint16_t port = 0;
  std::string issuer;
  std::unique_ptr<HttpClient> http;

  std::string start() {
    const std::string dir = DP_OIDC_PROVIDER_DIR;
    if (!std::filesystem::exists(dir + "/node_modules/oidc-provider")) {
      return "tests/oidc/node_modules is missing: run `npm ci` in " + dir + " (scripts/test does)";
    }
    const std::string node = node_binary(DP_NODE_BINARY);
    if (node.empty() || !std::filesystem::exists(node)) {
      return "node not found (" + node + "): install nodejs or set DEVPLANE_TEST_NODE";
    }
    // The provider starts in well under a second. Twice in CI runs it printed its runtime
    // warning and then nothing for 60 s, a hang not reproduced outside a full run: each try
    // is bounded, a hung one is replaced, and what its threads were doing is kept for the
    // report should every try hang.
    std::string url;
    std::string failures;
    for (int attempt = 1; attempt <= 3 && url.empty(); ++attempt) {
      url = process.start({node, dir + "/provider.mjs", "--port", "0"}, {},
                          "oidc-provider listening on ", 20s);
      if (url.empty()) {
        failures += "attempt " + std::to_string(attempt) + ": " + process.error() + "\n";
        if (process.error().find("exited before") != std::string::npos) break;
      }
    }
    if (url.empty()) return failures;
    if (!failures.empty()) std::cerr << "oidc provider start needed a retry:\n" << failures;
    issuer = url;
    port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
    http = std::make_unique<HttpClient>(port);
    return {};
  }
  std::string control(const std::string& path, const std::string& body) {
    auto r = http->post("/__test/" + path, body, {{"Content-Type", "application/json"}});
    return r.status == 200 ? std::string() : "provider control " + path + ": " + r.describe();
  }
  std::string mode(const std::string& m) { return control("mode", R"({"mode":")" + m + R"("})"); }
};

struct Devplane {
  Child process;
  std::unique_ptr<TempDir> data;
  std::uint16_t port = 0;
  std::unique_ptr<HttpClient> http;

  std::string callback_url() const {
    return "http://127.0.0.1:" + std::to_string(port) + "/api/v1/auth/oidc/callback";
  }

  // `oidc_env` is added to the environment (DEVPLANE_OIDC_*).
  std::string start(Env oidc_env) {
    data = std::make_unique<TempDir>();
    std::string last;
    for (int attempt = 0; attempt < 3; ++attempt) {  // the picked port may be taken meanwhile
      port = free_loopback_port();
      Env env = {{"DEVPLANE_ADMIN_PASSWORD", kTestAdminPassword},
                 {"DEVPLANE_JWT_SECRET", kTestJwtSecret},
                 {"DEVPLANE_PASSWORD_HASH_COST", "interactive"},
                 {"DEVPLANE_LOG_LEVEL", "debug"}};
      for (auto& kv : oidc_env) {
        if (kv.second == "@callback") kv.second = callback_url();
        env.push_back(kv);
      }
      const auto line = process.start({devplane_binary(), "serve", "--host", "127.0.0.1", "--port",
                                       std::to_string(port), "--data-dir", data->str()},
                                      env, "devplane listening on ");
      if (!line.empty()) {
        http = std::make_unique<HttpClient>(port);
        return {};
      }
      last = process.error();
      for (auto& kv : oidc_env) {
        if (kv.second == callback_url()) kv.second = "@callback";
      }
    }
    return last;
  }
};

Env oidc_env(const Provider& p, const std::string& client, const std::string& secret) {
  return {{"DEVPLANE_OIDC_ISSUER", p.issuer},
          {"DEVPLANE_OIDC_CLIENT_ID", client},
          {"DEVPLANE_OIDC_CLIENT_SECRET", secret},
          {"DEVPLANE_OIDC_REDIRECT_URL", "@callback"},
          {"DEVPLANE_OIDC_SCOPES", "openid profile email groups"},
          {"DEVPLANE_OIDC_ROLE_MAP", "devplane-admins=admin,devplane-ops=operator"},
          {"DEVPLANE_OIDC_DISPLAY_NAME", "Test IdP"},
          {"DEVPLANE_OIDC_JWKS_MIN_REFRESH_MS", "0"}};
}

struct Url {
  std::uint16_t port = 0;
  std::string target;  // path?query
  std::string query;
};

Url parse_url(const std::string& text, std::uint16_t default_port) {
  Url u;
  if (text.starts_with("/")) {
    u.port = default_port;
    u.target = text;
  } else {
    auto p = boost::urls::parse_absolute_uri(text);
    if (!p) return u;
    u.port = static_cast<std::uint16_t>(std::stoi(std::string(p->port())));
    u.target = std::string(p->encoded_path()) +
               (p->has_query() ? "?" + std::string(p->encoded_query()) : "");
  }
  if (auto q = u.target.find('?'); q != std::string::npos) u.query = u.target.substr(q + 1);
  return u;
}

std::string query_param(const std::string& url, const std::string& name) {
  const auto q = url.find('?');
  if (q == std::string::npos) return {};
  std::string_view rest = std::string_view(url).substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto item = rest.substr(0, amp);
    if (item.starts_with(name + "=")) return std::string(item.substr(name.size() + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

// The browser: a cookie jar per port and the two servers.
class Browser {
 public:
  Browser(Provider& p, Devplane& d) : provider_(p), devplane_(d) {}

  HttpResponse send(const std::string& method, const Url& url, const std::string& body = {},
                    Headers headers = {}) {
    HttpClient& c = url.port == devplane_.port ? *devplane_.http : *provider_.http;
    std::string cookie;
    for (const auto& [k, v] : jar_[url.port]) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
    if (!cookie.empty()) headers.emplace_back("Cookie", cookie);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    auto r = c.request(method, url.target, body, headers);
    for (const auto& [k, v] : r.headers) {
      if (k.size() != 10 || ::strncasecmp(k.c_str(), "set-cookie", 10) != 0) continue;
      const auto semi = v.find(';');
      const auto pair = v.substr(0, semi);
      const auto eq = pair.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = pair.substr(0, eq), value = pair.substr(eq + 1);
      if (value.empty() || v.find("Max-Age=0") != std::string::npos ||
          v.find("expires=Thu, 01 Jan 1970") != std::string::npos) {
        jar_[url.port].erase(name);
      } else {
        jar_[url.port][name] = value;
      }
    }
    return r;
  }

  // From devplane's login route through the provider's forms to the redirect back to
  // devplane's callback, which is returned (not followed). Empty on failure; see `error`.
  std::string sign_in_at_provider(const std::string& account) {
    auto r = send("GET", Url{devplane_.port, "/api/v1/auth/oidc/login", {}});
    if (r.status != 302) return fail("login route: " + r.describe());
    std::string location = r.header("Location");
    for (int hop = 0; hop < 12; ++hop) {
      Url u = parse_url(location, provider_.port);
      if (u.port == devplane_.port) return location;
      r = send("GET", u);
      if (r.status == 302 || r.status == 303) {
        location = r.header("Location");
        continue;
      }
      if (r.status != 200) return fail("provider " + u.target + ": " + r.describe());
      // A sign-in or consent form of oidc-provider's development interactions.
      std::string form;
      if (r.body.find("name=\"login\"") != std::string::npos) {
        form = "prompt=login&login=" + account + "&password=any-password";
      } else if (r.body.find("value=\"consent\"") != std::string::npos) {
        form = "prompt=consent";
      } else {
        return fail("unexpected provider page: " + r.body.substr(0, 400));
      }
      r = send("POST", u, form);
      if (r.status != 302 && r.status != 303) return fail("form post: " + r.describe());
      location = r.header("Location");
    }
    return fail("too many redirects");
  }

  // The callback as the dashboard's browser would call it, asking for JSON.
  HttpResponse callback(const std::string& location, bool json = true) {
    Headers h;
    if (json) h.emplace_back("Accept", "application/json");
    return send("GET", parse_url(location, devplane_.port), {}, h);
  }

  HttpResponse login(const std::string& account, bool json = true) {
    const auto location = sign_in_at_provider(account);
    if (location.empty()) {
      HttpResponse r;
      r.body = error;
      return r;
    }
    return callback(location, json);
  }

  void set_cookie(std::uint16_t port, const std::string& name, const std::string& value) {
    jar_[port][name] = value;
  }

  std::string error;

 private:
  std::string fail(std::string why) {
    error = std::move(why);
    return {};
  }
  Provider& provider_;
  Devplane& devplane_;
  std::map<std::uint16_t, std::map<std::string, std::string>> jar_;
};

class OidcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto e = provider_.start();
    ASSERT_TRUE(e.empty()) << e;
  }

  // Starts devplane for `client` and registers its callback URL with the provider.
  void start_devplane(Devplane& d, const std::string& client = "devplane",
                      const std::string& secret = "devplane-secret", Env extra = {}) {
    Env env = oidc_env(provider_, client, secret);
    for (auto& kv : extra) {
      bool replaced = false;
      for (auto& e : env) {
        if (e.first == kv.first) {
          e.second = kv.second;
          replaced = true;
        }
      }
      if (!replaced) env.push_back(kv);
    }
    const auto e = d.start(env);
    ASSERT_TRUE(e.empty()) << e;
    const auto c = provider_.control("redirects", R"({"uris":[")" + d.callback_url() + R"("]})");
    ASSERT_TRUE(c.empty()) << c;
  }

  // The role devplane gives the holder of `access_token`.
  std::string role_of(Devplane& d, const std::string& access_token) {
    auto me = d.http->get("/api/v1/auth/me", {{"Authorization", "Bearer " + access_token}});
    EXPECT_EQ(me.status, 200u) << me.describe();
    return me.str("/data/role");
  }

  // Signs `account` in while the provider alters ID tokens per `mode`; returns the response.
  HttpResponse login_with_mode(Devplane& d, const std::string& mode,
                               const std::string& account = "alice") {
    EXPECT_EQ(provider_.mode(mode), "");
    Browser b(provider_, d);
    auto r = b.login(account);
    EXPECT_EQ(provider_.mode("none"), "");
    EXPECT_TRUE(b.error.empty()) << b.error;
    return r;
  }

  Provider provider_;
};

TEST_F(OidcTest, AdminSignsInEndToEndAndGetsTheMappedRole) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));

  auto info = d.http->get("/api/v1/auth/oidc");
  ASSERT_EQ(info.status, 200u) << info.describe();
  EXPECT_EQ(info.at("/data/enabled")->as_bool(), true);
  EXPECT_EQ(info.str("/data/displayName"), "Test IdP");

  Browser b(provider_, d);
  // The login route sends the browser to the provider with state, nonce and PKCE (S256).
  auto start = b.send("GET", Url{d.port, "/api/v1/auth/oidc/login", {}});
  ASSERT_EQ(start.status, 302u) << start.describe();
  const std::string auth_url = start.header("Location");
  EXPECT_TRUE(auth_url.starts_with(provider_.issuer + "/auth?")) << auth_url;
  for (const char* p : {"state=", "nonce=", "code_challenge=", "code_challenge_method=S256",
                        "client_id=devplane", "response_type=code"}) {
    EXPECT_NE(auth_url.find(p), std::string::npos) << p << " missing in " << auth_url;
  }
  EXPECT_NE(start.header("Set-Cookie").find("dp_oidc_state="), std::string::npos);
  EXPECT_NE(start.header("Set-Cookie").find("HttpOnly"), std::string::npos);

  auto r = b.login("alice");
  ASSERT_EQ(r.status, 200u) << r.describe() << b.error;
  const std::string access = r.str("/data/accessToken");
  ASSERT_FALSE(access.empty()) << r.describe();
  EXPECT_FALSE(r.str("/data/refreshToken").empty()) << r.describe();
  EXPECT_EQ(role_of(d, access), "admin");

  // The refresh token is a real one: it rotates.
  auto refreshed = d.http->post(
      "/api/v1/auth/refresh",
      R"({"refreshToken":")" + r.str("/data/refreshToken") + R"("})",
      {{"Content-Type", "application/json"}});
  EXPECT_EQ(refreshed.status, 200u) << refreshed.describe();
}

TEST_F(OidcTest, BrowserGetsTheTokensInTheFragmentAndOperatorRole) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));
  Browser b(provider_, d);
  auto r = b.login("bob", /*json=*/false);
  ASSERT_EQ(r.status, 200u) << r.describe() << b.error;
  EXPECT_NE(r.header("Content-Type").find("text/html"), std::string::npos);
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  const auto p = r.body.find("/#oidc=");
  ASSERT_NE(p, std::string::npos) << r.body;
  const auto end = r.body.find('"', p);
  const auto decoded = auth::oidc::base64url_decode(r.body.substr(p + 7, end - p - 7));
  ASSERT_TRUE(decoded.has_value());
  const auto tokens = parse_json(*decoded);
  ASSERT_TRUE(tokens.is_object()) << *decoded;
  EXPECT_EQ(role_of(d, std::string(tokens.at("accessToken").as_string())), "operator");
}

TEST_F(OidcTest, Es256ClientSignsIn) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d, "devplane-es", "devplane-es-secret"));
  Browser b(provider_, d);
  auto r = b.login("alice");
  ASSERT_EQ(r.status, 200u) << r.describe() << b.error;
  EXPECT_EQ(role_of(d, r.str("/data/accessToken")), "admin");
}

TEST_F(OidcTest, UnmappedAccountIsRefused) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));
  Browser b(provider_, d);
  auto r = b.login("carol");
  EXPECT_EQ(r.status, 403u) << r.describe() << b.error;
  EXPECT_EQ(r.str("/error/code"), "no_role");
}

TEST_F(OidcTest, DefaultRoleFromWildcard) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(
      d, "devplane", "devplane-secret",
      {{"DEVPLANE_OIDC_ROLE_MAP", "devplane-admins=admin,*=viewer"}}));
  Browser b(provider_, d);
  auto r = b.login("carol");
  ASSERT_EQ(r.status, 200u) << r.describe() << b.error;
  EXPECT_EQ(role_of(d, r.str("/data/accessToken")), "viewer");
}

TEST_F(OidcTest, StateIsSingleUseAndBoundToTheBrowser) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));
  Browser b(provider_, d);
  const auto location = b.sign_in_at_provider("alice");
  ASSERT_FALSE(location.empty()) << b.error;

  // Another browser (no state cookie, or someone else's) cannot finish this login.
  Browser other(provider_, d);
  auto foreign = other.callback(location);
  EXPECT_EQ(foreign.status, 401u) << foreign.describe();
  EXPECT_EQ(foreign.str("/error/code"), "state_mismatch");

  // The state was consumed by that attempt: even the right browser now gets invalid_state.
  auto replay = b.callback(location);
  EXPECT_EQ(replay.status, 401u) << replay.describe();
  EXPECT_EQ(replay.str("/error/code"), "invalid_state");

  // A fresh login that succeeds cannot be replayed.
  const auto second = b.sign_in_at_provider("alice");
  ASSERT_FALSE(second.empty()) << b.error;
  auto ok = b.callback(second);
  ASSERT_EQ(ok.status, 200u) << ok.describe();
  b.set_cookie(d.port, "dp_oidc_state", query_param(second, "state"));
  auto again = b.callback(second);
  EXPECT_EQ(again.status, 401u) << again.describe();
  EXPECT_EQ(again.str("/error/code"), "invalid_state");

  // A state devplane never issued.
  b.set_cookie(d.port, "dp_oidc_state", "made-up");
  auto unknown = b.callback("/api/v1/auth/oidc/callback?code=abc&state=made-up");
  EXPECT_EQ(unknown.status, 401u) << unknown.describe();
  EXPECT_EQ(unknown.str("/error/code"), "invalid_state");
  auto none = b.callback("/api/v1/auth/oidc/callback?code=abc");
  EXPECT_EQ(none.status, 401u) << none.describe();
}

TEST_F(OidcTest, AlteredIdTokensAreRefused) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tamper", "signature"}, {"iss", "iss"},     {"aud", "aud"},       {"aud_multi", "azp"},
      {"azp", "azp"},          {"exp", "exp"},     {"nonce", "nonce"},   {"alg_none", "alg"},
      {"hs256", "alg"},        {"unknown_kid", "kid"}};
  for (const auto& [mode, check] : cases) {
    SCOPED_TRACE("mode " + mode);
    auto r = login_with_mode(d, mode);
    EXPECT_EQ(r.status, 401u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "invalid_id_token") << r.describe();
    EXPECT_EQ(r.str("/error/details/check"), check) << r.describe();
  }
  // The same provider, unaltered: accepted.
  auto ok = login_with_mode(d, "none");
  EXPECT_EQ(ok.status, 200u) << ok.describe();
}

TEST_F(OidcTest, KeyRotationIsAcceptedAfterAJwksRefetch) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d));
  Browser b(provider_, d);
  auto first = b.login("alice");
  ASSERT_EQ(first.status, 200u) << first.describe() << b.error;  // devplane caches rsa-1
  ASSERT_EQ(provider_.control("rotate", "{}"), "");
  auto keys = provider_.http->get("/__test/keys");
  ASSERT_EQ(keys.str("/kids/0"), "rsa-2") << keys.describe();
  Browser fresh(provider_, d);
  auto second = fresh.login("bob");  // signed with rsa-2, unknown to devplane's cache
  ASSERT_EQ(second.status, 200u) << second.describe() << fresh.error;
  EXPECT_EQ(role_of(d, second.str("/data/accessToken")), "operator");
}

TEST_F(OidcTest, IssuerMismatchInDiscoveryIsRefused) {
  Devplane d;
  // The provider's discovery says "http://127.0.0.1:P"; devplane expects a trailing slash.
  ASSERT_NO_FATAL_FAILURE(start_devplane(d, "devplane", "devplane-secret",
                                         {{"DEVPLANE_OIDC_ISSUER", provider_.issuer + "/"}}));
  auto r = d.http->get("/api/v1/auth/oidc/login");
  EXPECT_EQ(r.status, 503u) << r.describe();
  EXPECT_EQ(r.str("/error/code"), "oidc_provider_unavailable");
}

TEST_F(OidcTest, WrongClientSecretIsRefusedByTheProvider) {
  Devplane d;
  ASSERT_NO_FATAL_FAILURE(start_devplane(d, "devplane", "not-the-secret"));
  Browser b(provider_, d);
  auto r = b.login("alice");
  EXPECT_EQ(r.status, 401u) << r.describe() << b.error;
  EXPECT_EQ(r.str("/error/code"), "token_exchange_failed");
}

TEST(OidcOffTest, NotConfiguredSaysSo) {
  Devplane d;
  const auto e = d.start({});
  ASSERT_TRUE(e.empty()) << e;
  auto info = d.http->get("/api/v1/auth/oidc");
  ASSERT_EQ(info.status, 200u) << info.describe();
  EXPECT_EQ(info.at("/data/enabled")->as_bool(), false);
  auto login = d.http->get("/api/v1/auth/oidc/login");
  EXPECT_EQ(login.status, 404u) << login.describe();
  EXPECT_EQ(login.str("/error/code"), "oidc_not_configured");
}

}  // namespace
}  // namespace dp::it
