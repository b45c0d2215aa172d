#include "app/static_files.hpp"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace dp::app {
namespace {
namespace fs = std::filesystem;

std::string header(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    base_ = fs::temp_directory_path() / ("dp_static_test_" + std::to_string(rd()));
    root_ = base_ / "dist";
    fs::create_directories(root_ / "_astro");
    fs::create_directories(root_ / "agents");
    write(root_ / "index.html", "<!doctype html><title>home</title>");
    write(root_ / "agents" / "index.html", "<!doctype html><title>agents</title>");
    write(root_ / "_astro" / "client.Ab12.js", "console.log(1)");
    write(root_ / "_astro" / "style.Cd34.css", "body{}");
    write(root_ / "favicon.svg", "<svg/>");
    write(root_ / ".env", "SECRET=1");
    write(base_ / "secret.txt", "outside the root");
    fs::create_symlink(base_ / "secret.txt", root_ / "_astro" / "link.js");
    files_ = std::make_shared<StaticFiles>(root_);
    register_static_routes(router_, files_);
  }
  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

  http::Response get(const std::string& path, http::Fields headers = {}) {
    http::Request req;
    req.method = "GET";
    req.path = path;
    req.headers = std::move(headers);
    auto m = router_.match("GET", path, req.params);
    if (m.outcome != http::Router::Outcome::kFound) {
      http::Response r;
      r.status = 404;
      r.body = "unrouted";
      return r;
    }
    return (*m.handler)(req);
  }

  fs::path base_, root_;
  std::shared_ptr<StaticFiles> files_;
  http::Router router_;
};

TEST_F(StaticFilesTest, ServesPagesAsHtmlWithNoCacheAndAnEtag) {
  auto r = get("/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "<!doctype html><title>home</title>");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
  EXPECT_FALSE(header(r, "ETag").empty());

  r = get("/agents");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "<!doctype html><title>agents</title>");
  r = get("/agents/");  // a trailing slash is the same page
  EXPECT_EQ(r.status, 200u);
}

TEST_F(StaticFilesTest, RevalidationWithTheEtagIsA304WithoutBody) {
  const auto etag = header(get("/agents"), "ETag");
  auto r = get("/agents", {{"if-none-match", etag}});
  EXPECT_EQ(r.status, 304u);
  EXPECT_TRUE(r.body.empty());
  r = get("/agents", {{"if-none-match", "\"stale\""}});
  EXPECT_EQ(r.status, 200u);
}

TEST_F(StaticFilesTest, HashedAssetsAreImmutableWithTheirContentType) {
  auto r = get("/_astro/client.Ab12.js");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "console.log(1)");
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  r = get("/_astro/style.Cd34.css");
  EXPECT_EQ(r.content_type, "text/css; charset=utf-8");
  r = get("/favicon.svg");
  EXPECT_EQ(r.content_type, "image/svg+xml");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, MissingFilesAndPagesAre404) {
  auto r = get("/_astro/nope.js");
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("not_found"), std::string::npos);
  // A page of the dashboard that this build does not have.
  r = get("/workflows");
  EXPECT_EQ(r.status, 404u);
  // The router only knows the dashboard's pages: anything else is not a static route.
  EXPECT_EQ(get("/agents/123").body, "unrouted");
  EXPECT_EQ(get("/index.html").body, "unrouted");
}

TEST_F(StaticFilesTest, RefusesTraversalDotFilesAndSymlinksOutOfTheRoot) {
  for (const char* p : {"/_astro/../.env", "/_astro/../../secret.txt", "/_astro/..", "/_astro/./client.Ab12.js",
                        "/_astro/.hidden", "/_astro/a\\..\\b", "/_astro/link.js"}) {
    auto r = get(p);
    EXPECT_EQ(r.status, 404u) << p;
    EXPECT_EQ(r.body.find("outside the root"), std::string::npos) << p;
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << p;
  }
  http::Request req;
  req.path = "/x";
  EXPECT_EQ(files_->serve("../secret.txt", req).status, 404u);
  EXPECT_EQ(files_->serve(".env", req).status, 404u);
  EXPECT_EQ(files_->serve("_astro", req).status, 404u) << "a folder is not a file";
  EXPECT_EQ(files_->serve("", req).status, 404u);
}

TEST(StaticFilesPathTest, SafeRelativePath) {
  EXPECT_TRUE(StaticFiles::safe_relative_path("_astro/a.js"));
  EXPECT_TRUE(StaticFiles::safe_relative_path("agents/index.html"));
  EXPECT_FALSE(StaticFiles::safe_relative_path(""));
  EXPECT_FALSE(StaticFiles::safe_relative_path("a//b"));
  EXPECT_FALSE(StaticFiles::safe_relative_path("/etc/passwd"));
  EXPECT_FALSE(StaticFiles::safe_relative_path("a/../b"));
  EXPECT_FALSE(StaticFiles::safe_relative_path("a/."));
  EXPECT_FALSE(StaticFiles::safe_relative_path("a\\b"));
  EXPECT_FALSE(StaticFiles::safe_relative_path("c:x"));
  EXPECT_FALSE(StaticFiles::safe_relative_path(std::string("a\0b", 3)));
}

TEST(StaticFilesPathTest, ContentTypes) {
  EXPECT_EQ(StaticFiles::content_type_for("a/b.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(StaticFiles::content_type_for("x.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(StaticFiles::content_type_for("f.woff2"), "font/woff2");
  EXPECT_EQ(StaticFiles::content_type_for("noext"), "application/octet-stream");
  EXPECT_EQ(StaticFiles::content_type_for("dir.v1/noext"), "application/octet-stream");
}

TEST(FindWebDirTest, ConfiguredMustExistElseDefaultsInOrder) {
  std::random_device rd;
  const fs::path base = fs::temp_directory_path() / ("dp_webdir_test_" + std::to_string(rd()));
  fs::create_directories(base / "build" / "release" / "src");
  EXPECT_FALSE(find_web_dir((base / "missing").string(), base).ok());
  auto none = find_web_dir("", base / "build" / "release" / "src");
  ASSERT_TRUE(none.ok());
  // Nothing at <exe>/../../web/dist; the cwd fallback depends on where the test runs.
  if (!fs::exists(fs::current_path() / "web" / "dist")) {
    EXPECT_FALSE(none->has_value());
  }
  // web/dist two levels above the binary's folder is found when the source tree has none.
  fs::create_directories(base / "build" / "web" / "dist");
  auto found = find_web_dir("", base / "build" / "release" / "src");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, fs::weakly_canonical(base / "build" / "web" / "dist"));
  // The source tree's web/dist (build/<preset>/src/devplane) comes first.
  fs::create_directories(base / "web" / "dist");
  found = find_web_dir("", base / "build" / "release" / "src");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, fs::weakly_canonical(base / "web" / "dist"));
  auto configured = find_web_dir(base.string(), base);
  ASSERT_TRUE(configured.ok());
  EXPECT_EQ(**configured, base);
  EXPECT_FALSE(has_built_dashboard(base));
  fs::remove_all(base);
}

}  // namespace
}  // namespace dp::app
