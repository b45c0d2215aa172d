// The built-in tools on a real folder: what they do, and that no path (absolute, `..`, a
// symbolic link planted on the way or at the end, a FIFO) leads a read or a write outside the
// workspace or hangs the agent.
#include "agents/tools.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("dp_tools_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(root_ / "ws" / "sub");
    fs::create_directories(root_ / "outside");
    std::ofstream(root_ / "ws" / "notes.md") << "hello notes";
    std::ofstream(root_ / "ws" / "sub" / "deep.txt") << "deep";
    std::ofstream(root_ / "outside" / "canary.txt") << "CANARY";
    ctx_.workspace = (root_ / "ws").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  ToolOutput call(std::string_view tool, const char* args) {
    auto t = builtin_tools().find(tool);
    EXPECT_NE(t, nullptr) << tool;
    return t->call(json::parse(args).as_object(), ctx_);
  }

  fs::path root_;
  ToolContext ctx_;
};

TEST_F(ToolsTest, ListsReadsAndWrites) {
  auto l = call("workspace.list", "{}");
  ASSERT_FALSE(l.is_error) << l.text;
  auto v = json::parse(l.text);
  ASSERT_EQ(v.at("entries").as_array().size(), 2u);
  EXPECT_EQ(v.at("entries").at(0).at("name"), "notes.md");
  EXPECT_EQ(v.at("entries").at(0).at("size"), 11);
  EXPECT_EQ(v.at("entries").at(1).at("type"), "directory");
  EXPECT_EQ(call("workspace.read_file", R"({"path":"sub/deep.txt"})").text, "deep");
  EXPECT_EQ(call("workspace.read_file", R"({"path":"./notes.md","maxBytes":5})").text,
            "hello\n[truncated: the file has 11 bytes]");
  auto w = call("workspace.write_file", R"({"path":"out/new/a.txt","content":"written"})");
  ASSERT_FALSE(w.is_error) << w.text;
  std::ifstream in(root_ / "ws" / "out" / "new" / "a.txt");
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "written");
  auto c = call("clock.now", "{}");
  EXPECT_FALSE(c.is_error);
  EXPECT_TRUE(json::parse(c.text).as_object().contains("epochMs"));
}

TEST_F(ToolsTest, RefusesPathsThatLeaveTheWorkspace) {
  const std::string abs = R"({"path":")" + (root_ / "outside" / "canary.txt").string() + R"("})";
  for (const std::string& args : {abs, std::string(R"({"path":"../outside/canary.txt"})"),
                                  std::string(R"({"path":"sub/../../outside/canary.txt"})")}) {
    auto r = call("workspace.read_file", args.c_str());
    EXPECT_TRUE(r.is_error) << args;
    EXPECT_EQ(r.text.find("CANARY"), std::string::npos);
  }
  EXPECT_TRUE(call("workspace.list", R"({"path":".."})").is_error);
  EXPECT_TRUE(call("workspace.write_file", R"({"path":"../outside/x","content":"x"})").is_error);
  EXPECT_FALSE(fs::exists(root_ / "outside" / "x"));
}

TEST_F(ToolsTest, NeverFollowsAPlantedSymlink) {
  fs::create_symlink(root_ / "outside" / "canary.txt", root_ / "ws" / "link.txt");
  fs::create_directory_symlink(root_ / "outside", root_ / "ws" / "dirlink");
  auto r = call("workspace.read_file", R"({"path":"link.txt"})");
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.text.find("CANARY"), std::string::npos);
  r = call("workspace.read_file", R"({"path":"dirlink/canary.txt"})");
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.text.find("symbolic link"), std::string::npos) << r.text;
  EXPECT_TRUE(call("workspace.list", R"({"path":"dirlink"})").is_error);
  // Writing through either link changes nothing outside.
  EXPECT_TRUE(call("workspace.write_file", R"({"path":"link.txt","content":"pwned"})").is_error);
  EXPECT_TRUE(call("workspace.write_file", R"({"path":"dirlink/new.txt","content":"pwned"})").is_error);
  std::ifstream in(root_ / "outside" / "canary.txt");
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "CANARY");
  EXPECT_FALSE(fs::exists(root_ / "outside" / "new.txt"));
  // The listing shows links as links.
  auto l = json::parse(call("workspace.list", "{}").text);
  bool seen = false;
  for (const auto& e : l.at("entries").as_array()) {
    if (e.at("name") == "link.txt") seen = e.at("type") == "symlink";
  }
  EXPECT_TRUE(seen);
}

TEST_F(ToolsTest, AFifoDoesNotHangARead) {
  ASSERT_EQ(::mkfifo((root_ / "ws" / "pipe").c_str(), 0600), 0);
  auto r = call("workspace.read_file", R"({"path":"pipe"})");
  EXPECT_TRUE(r.is_error);
  EXPECT_NE(r.text.find("not a regular file"), std::string::npos);
}

TEST_F(ToolsTest, BadArgumentsAreErrorsTheModelCanRead) {
  EXPECT_TRUE(call("workspace.read_file", "{}").is_error);
  EXPECT_TRUE(call("workspace.read_file", R"({"path":7})").is_error);
  EXPECT_TRUE(call("workspace.read_file", R"({"path":"notes.md","maxBytes":0})").is_error);
  EXPECT_TRUE(call("workspace.read_file", R"({"path":"missing.txt"})").is_error);
  EXPECT_TRUE(call("workspace.read_file", R"({"path":"sub"})").is_error);
  EXPECT_TRUE(call("workspace.write_file", R"({"path":"a.txt"})").is_error);
  EXPECT_TRUE(call("workspace.list", R"({"path":false})").is_error);
  const std::string big = R"({"path":"big.txt","content":")" + std::string(1024 * 1024 + 1, 'x') + "\"}";
  EXPECT_TRUE(call("workspace.write_file", big.c_str()).is_error);
  EXPECT_EQ(builtin_tools().find("workspace.delete"), nullptr);
  EXPECT_TRUE(is_builtin_namespace("workspace.delete"));
  EXPECT_FALSE(is_builtin_namespace("github.search"));
}

}  // namespace
}  // namespace dp::agents
