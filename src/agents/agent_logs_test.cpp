#include "agents/agent_logs.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace dp::agents {
namespace {

namespace fs = std::filesystem;

class AgentLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dp-agent-logs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  AgentLogOptions options(std::uint64_t max_bytes = 1 << 20, int keep = 2, std::size_t followers = 4) {
    return AgentLogOptions{dir_ + "/logs", max_bytes, keep, followers};
  }
  static std::vector<std::uint64_t> ids(const std::vector<AgentLogLine>& lines) {
    std::vector<std::uint64_t> out;
    for (const auto& l : lines) out.push_back(l.id);
    return out;
  }

  std::string dir_;
  const std::string agent_ = "01a217b7-0070-716d-ad26-85bd9f3e54b2";
};

TEST_F(AgentLogsTest, SplitsBatchesIntoNumberedLinesAndReadsTheTail) {
  AgentLogs logs(options());
  logs.append(agent_, "t1", "stdout", "a\nb\nc\n", "2026-11-26T12:00:00.000Z");
  logs.append(agent_, "t1", "stderr", "oops", "2026-11-26T12:00:00.001Z");
  logs.append(agent_, "t1", "stdout", "", "2026-11-26T12:00:00.002Z");  // nothing
  auto all = logs.open(agent_, 100, 0, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(all->lines), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(all->lines[0].json,
            R"({"id":1,"taskId":"t1","stream":"stdout","text":"a","timestamp":"2026-11-26T12:00:00.000Z"})");
  EXPECT_NE(all->lines[3].json.find(R"("stream":"stderr","text":"oops")"), std::string::npos);
  EXPECT_EQ(all->follower, nullptr);
  EXPECT_EQ(ids(logs.open(agent_, 2, 0, false)->lines), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_TRUE(logs.open(agent_, 0, 0, false)->lines.empty());
  auto after = logs.open(agent_, 100, 2, false);
  EXPECT_EQ(ids(after->lines), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(after->skipped, 0u);
  EXPECT_TRUE(logs.open("other", 100, 0, false)->lines.empty());
}

TEST_F(AgentLogsTest, RotatesBelowTheCapKeepsNFilesAndIdsSurviveARestart) {
  {
    AgentLogs logs(options(1024, 1));
    for (int i = 0; i < 100; ++i) {
      logs.append(agent_, "t", "stdout", "line " + std::to_string(i) + "\n", "ts");
    }
  }
  const std::string base = dir_ + "/logs/" + agent_ + ".log";
  ASSERT_TRUE(fs::exists(base));
  ASSERT_TRUE(fs::exists(base + ".1"));
  EXPECT_FALSE(fs::exists(base + ".2"));
  EXPECT_LE(fs::file_size(base), 1024u);
  EXPECT_LE(fs::file_size(base + ".1"), 1024u);
  AgentLogs again(options(1024, 1));
  auto kept = again.open(agent_, 10'000, 0, false);
  ASSERT_TRUE(kept.ok());
  ASSERT_FALSE(kept->lines.empty());
  EXPECT_EQ(kept->lines.back().id, 100u);
  for (std::size_t i = 1; i < kept->lines.size(); ++i) {
    EXPECT_EQ(kept->lines[i].id, kept->lines[i - 1].id + 1);
  }
  // Resuming from an id that rotated away says how many are lost.
  auto resumed = again.open(agent_, 10'000, 10, false);
  EXPECT_EQ(resumed->skipped, kept->lines.front().id - 11);
  again.append(agent_, "t", "stdout", "next", "ts");
  EXPECT_EQ(again.open(agent_, 1, 0, false)->lines.front().id, 101u);
}

// A follower's on_append callback runs once per append to its agent (a batch of lines is one
// append, and the lines are in the buffer by then), never for another agent's, and no longer
// once it is removed or the follower is gone.
TEST_F(AgentLogsTest, OnAppendFiresPerAppendToTheFollowersAgentOnly) {
  AgentLogs logs(options());
  auto opened = logs.open(agent_, 10, 0, true);
  ASSERT_TRUE(opened.ok());
  auto& follower = *opened->follower;
  int calls = 0;
  std::size_t seen_in_buffer = 0;
  follower.set_on_append([&] { ++calls; });
  logs.append(agent_, "t", "stdout", "a\nb\n", "ts");
  EXPECT_EQ(calls, 1);
  std::vector<AgentLogLine> lines;
  ASSERT_TRUE(follower.poll(lines, 1 << 20));
  seen_in_buffer = lines.size();
  EXPECT_EQ(seen_in_buffer, 2u);
  logs.append("01a217b7-0070-716d-ad26-000000000000", "t", "stdout", "other\n", "ts");
  logs.append(agent_, "t", "stdout", "", "ts");  // no line: nothing to say
  EXPECT_EQ(calls, 1);
  logs.append(agent_, "t", "stderr", "c", "ts");
  EXPECT_EQ(calls, 2);
  follower.set_on_append({});
  logs.append(agent_, "t", "stdout", "d", "ts");
  EXPECT_EQ(calls, 2);
  int later = 0;
  follower.set_on_append([&] { ++later; });
  opened->follower.reset();
  logs.append(agent_, "t", "stdout", "e", "ts");
  EXPECT_EQ(later, 0);
}

TEST_F(AgentLogsTest, AFollowerGetsEveryLaterLineOnceInOrder) {
  AgentLogs logs(options());
  logs.append(agent_, "t", "stdout", "old\n", "ts");
  auto opened = logs.open(agent_, 10, 0, true);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ids(opened->lines), (std::vector<std::uint64_t>{1}));
  ASSERT_NE(opened->follower, nullptr);
  EXPECT_EQ(logs.followers(), 1u);
  std::vector<AgentLogLine> got;
  EXPECT_TRUE(opened->follower->poll(got, 1 << 20));
  EXPECT_TRUE(got.empty());
  // Writers on two threads: the follower still sees 2..401 in order, each once.
  std::thread w1([&] { for (int i = 0; i < 100; ++i) logs.append(agent_, "a", "stdout", "x\ny\n", "ts"); });
  std::thread w2([&] { for (int i = 0; i < 100; ++i) logs.append(agent_, "b", "stderr", "z\nw\n", "ts"); });
  while (got.size() < 400) {
    ASSERT_TRUE(opened->follower->poll(got, 512));
    std::this_thread::yield();
    if (got.size() >= 400) break;
  }
  w1.join();
  w2.join();
  ASSERT_TRUE(opened->follower->poll(got, 1 << 20));
  ASSERT_EQ(got.size(), 400u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].id, i + 2);
  opened->follower.reset();
  EXPECT_EQ(logs.followers(), 0u);
}

TEST_F(AgentLogsTest, ASlowFollowerIsLaggedAndTheCapRefusesOneMore) {
  AgentLogs logs(options(1 << 30, 1, 2));
  auto a = logs.open(agent_, 0, 0, true);
  auto b = logs.open(agent_, 0, 0, true);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  auto c = logs.open(agent_, 0, 0, true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(c.error().reason, "too_many_followers");
  EXPECT_TRUE(logs.open(agent_, 10, 0, false).ok()) << "reading without following is not capped";
  // `a` reads as it goes, `b` never does: past the buffer, `b` is lagged and `a` is not.
  const std::string chunk(1000, 'x');
  std::vector<AgentLogLine> got;
  for (int i = 0; i < 2000; ++i) {
    logs.append(agent_, "t", "stdout", chunk, "ts");
    got.clear();
    ASSERT_TRUE(a->follower->poll(got, 1 << 20)) << i;
    ASSERT_EQ(got.size(), 1u);
  }
  got.clear();
  EXPECT_FALSE(b->follower->poll(got, 1 << 20));
  EXPECT_TRUE(got.empty());
  b->follower.reset();
  EXPECT_EQ(logs.followers(), 1u);
  EXPECT_TRUE(logs.open(agent_, 0, 0, true).ok()) << "a place was freed";
}

}  // namespace
}  // namespace dp::agents
