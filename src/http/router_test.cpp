#include "http/router.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dp::http {
namespace {

// A handler that answers with its own name, so a test can tell which route matched.
Handler named(std::string name) {
  return [name = std::move(name)](Request&) {
    Response r;
    r.body = name;
    return r;
  };
}

std::string call(const Router::Match& m) {
  Request req;
  return (*m.handler)(req).body;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/api/v1/agents", named("list"));
    router_.add("POST", "/api/v1/agents", named("create"));
    router_.add("GET", "/api/v1/agents/:id", named("get"));
    router_.add("PATCH", "/api/v1/agents/:id", named("update"));
    router_.add("DELETE", "/api/v1/agents/:id", named("delete"));
    router_.add("POST", "/api/v1/agents/:id/start", named("start"));
    router_.add("GET", "/api/v1/workflows/:wid/executions/:eid", named("execution"));
    router_.add("GET", "/", named("root"));
  }
  Router router_;
  Fields params_;
};

TEST_F(RouterTest, MatchesLiteralRoute) {
  auto m = router_.match("GET", "/api/v1/agents", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(call(m), "list");
  EXPECT_EQ(m.pattern, "/api/v1/agents");
  EXPECT_TRUE(params_.empty());
}

TEST_F(RouterTest, SameSegmentsDifferentMethodPickTheirOwnHandler) {
  auto m = router_.match("POST", "/api/v1/agents", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "create");
  m = router_.match("DELETE", "/api/v1/agents/x", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "delete");
}

TEST_F(RouterTest, CapturesParameters) {
  auto m = router_.match("POST", "/api/v1/agents/abc-123/start", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "start");
  EXPECT_EQ(m.pattern, "/api/v1/agents/:id/start");
  ASSERT_EQ(params_.size(), 1u);
  EXPECT_EQ(params_[0].first, "id");
  EXPECT_EQ(params_[0].second, "abc-123");
}

TEST_F(RouterTest, CapturesSeveralParametersInOrder) {
  auto m = router_.match("GET", "/api/v1/workflows/w1/executions/e2", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "execution");
  const Fields want = {{"wid", "w1"}, {"eid", "e2"}};
  EXPECT_EQ(params_, want);
}

TEST_F(RouterTest, FoundReplacesStaleParams) {
  params_ = {{"stale", "value"}};
  auto m = router_.match("GET", "/api/v1/agents/7", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  const Fields want = {{"id", "7"}};
  EXPECT_EQ(params_, want);
}

TEST_F(RouterTest, TrailingSlashIsTolerated) {
  auto m = router_.match("GET", "/api/v1/agents/", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "list");
}

TEST_F(RouterTest, RootRoute) {
  auto m = router_.match("GET", "/", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "root");
}

TEST_F(RouterTest, UnknownPathsAreNotFound) {
  for (const char* path : {"/api/v1/agent", "/api/v1/agents/1/start/now", "/api/v2/agents",
                           "/api", "/API/V1/AGENTS", "/api/v1/agents/1/stop"}) {
    auto m = router_.match("GET", path, params_);
    EXPECT_EQ(m.outcome, Router::Outcome::kNotFound) << path;
    EXPECT_EQ(m.handler, nullptr) << path;
  }
}

TEST_F(RouterTest, MalformedPathsAreNotFound) {
  for (const char* path : {"", "api/v1/agents", "//api/v1/agents", "/api//v1/agents",
                           "/api/v1//agents/1", "/api/v1/agents//"}) {
    auto m = router_.match("GET", path, params_);
    EXPECT_EQ(m.outcome, Router::Outcome::kNotFound) << "'" << path << "'";
  }
}

TEST_F(RouterTest, EmptyParameterSegmentDoesNotMatch) {
  // "/api/v1/agents//start" has an empty segment where :id would be.
  auto m = router_.match("POST", "/api/v1/agents//start", params_);
  EXPECT_EQ(m.outcome, Router::Outcome::kNotFound);
}

TEST_F(RouterTest, WrongMethodIsMethodNotAllowedWithAllowList) {
  auto m = router_.match("PUT", "/api/v1/agents", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.allow, "GET, POST");

  m = router_.match("POST", "/api/v1/agents/1", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, PATCH, DELETE");

  m = router_.match("GET", "/api/v1/agents/1/start", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST_F(RouterTest, MethodsAreCaseSensitive) {
  auto m = router_.match("get", "/api/v1/agents", params_);
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
}

TEST_F(RouterTest, HeadIsServedByGet) {
  auto m = router_.match("HEAD", "/api/v1/agents/9", params_);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "get");
  // ...but not by other methods.
  m = router_.match("HEAD", "/api/v1/agents/9/start", params_);
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
}

TEST(RouterOrderTest, FirstRegisteredRouteWins) {
  Router r;
  r.add("GET", "/items/special", named("literal"));
  r.add("GET", "/items/:id", named("param"));
  Fields params;
  auto m = r.match("GET", "/items/special", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "literal");
  EXPECT_TRUE(params.empty());
  m = r.match("GET", "/items/other", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "param");
}

TEST(RouterOrderTest, AllowListHasNoDuplicates) {
  Router r;
  r.add("GET", "/a/:x", named("1"));
  r.add("GET", "/a/:y", named("2"));
  r.add("POST", "/a/b", named("3"));
  Fields params;
  auto m = r.match("PUT", "/a/b", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, POST");
}

TEST(RouterOrderTest, EmptyRouterFindsNothing) {
  Router r;
  Fields params;
  EXPECT_EQ(r.match("GET", "/", params).outcome, Router::Outcome::kNotFound);
  EXPECT_TRUE(r.routes().empty());
}

TEST_F(RouterTest, RoutesListsEveryRegistration) {
  const auto routes = router_.routes();
  ASSERT_EQ(routes.size(), 8u);
  EXPECT_EQ(routes[0], (std::pair<std::string, std::string>("GET", "/api/v1/agents")));
  EXPECT_EQ(routes[5], (std::pair<std::string, std::string>("POST", "/api/v1/agents/:id/start")));
}

TEST(SplitPathTest, Splits) {
  std::vector<std::string_view> segs;
  ASSERT_TRUE(split_path("/a/b/c", segs));
  EXPECT_EQ(segs, (std::vector<std::string_view>{"a", "b", "c"}));
  ASSERT_TRUE(split_path("/a/b/", segs));
  EXPECT_EQ(segs, (std::vector<std::string_view>{"a", "b"}));
  ASSERT_TRUE(split_path("/", segs));
  EXPECT_TRUE(segs.empty());
  ASSERT_TRUE(split_path("/%20x", segs));
  EXPECT_EQ(segs, (std::vector<std::string_view>{"%20x"}));
}

TEST(SplitPathTest, RejectsRelativeEmptyAndDoubleSlash) {
  std::vector<std::string_view> segs{"leftover"};
  EXPECT_FALSE(split_path("", segs));
  EXPECT_TRUE(segs.empty()) << "output is cleared on failure too";
  EXPECT_FALSE(split_path("a/b", segs));
  EXPECT_FALSE(split_path("//", segs));
  EXPECT_FALSE(split_path("/a//b", segs));
  EXPECT_FALSE(split_path("/a/b//", segs));
}

TEST(RouterCatchAllTest, MatchesOneOrMoreRemainingSegments) {
  Router router;
  router.add("GET", "/api/v1/agents/:id", named("agent"));
  router.add("GET", "/_astro/*", named("asset"));
  router.add("GET", "/files/:bucket/*", named("file"));
  Fields params;
  auto m = router.match("GET", "/_astro/index.Cx1.js", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "asset");
  EXPECT_EQ(m.pattern, "/_astro/*");
  EXPECT_EQ(params, (Fields{{"*", "index.Cx1.js"}}));

  m = router.match("GET", "/_astro/fonts/inter/x.woff2", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(params, (Fields{{"*", "fonts/inter/x.woff2"}}));

  m = router.match("HEAD", "/files/b1/a/b", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "file");
  EXPECT_EQ(params, (Fields{{"bucket", "b1"}, {"*", "a/b"}}));
}

TEST(RouterCatchAllTest, NeedsAtLeastOneSegmentAndAnExactPrefix) {
  Router router;
  router.add("GET", "/_astro/*", named("asset"));
  Fields params;
  EXPECT_EQ(router.match("GET", "/_astro", params).outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router.match("GET", "/_astro/", params).outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router.match("GET", "/_astroX/a.js", params).outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router.match("GET", "/other/_astro/a.js", params).outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router.match("GET", "/_astro//a.js", params).outcome, Router::Outcome::kNotFound);
  auto m = router.match("POST", "/_astro/a.js", params);
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET");
}

TEST(RouterCatchAllTest, EarlierExactRoutesWin) {
  Router router;
  router.add("GET", "/_astro/manifest", named("exact"));
  router.add("GET", "/_astro/*", named("asset"));
  Fields params;
  auto m = router.match("GET", "/_astro/manifest", params);
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(call(m), "exact");
  EXPECT_TRUE(params.empty());
}

}  // namespace
}  // namespace dp::http
