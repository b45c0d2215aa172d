#include "model/agent.hpp"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "model/agent_json.hpp"

namespace dp::model {
namespace {

using S = AgentStatus;

const std::vector<AgentStatus> kAll = {S::kCreated, S::kStarting, S::kRunning,       S::kStopping,
                                       S::kStopped, S::kError,    S::kDecommissioned};

// The lifecycle, written out edge by edge (agent.hpp):
//   created -> starting -> running -> stopping -> stopped -> starting ...
//   starting may be cancelled (-> stopping); any live state -> error; error -> starting | stopped
//   any state but decommissioned -> decommissioned (terminal)
const std::set<std::pair<AgentStatus, AgentStatus>> kAllowed = {
    {S::kCreated, S::kStarting},   {S::kCreated, S::kDecommissioned},
    {S::kStarting, S::kRunning},   {S::kStarting, S::kStopping},
    {S::kStarting, S::kError},     {S::kStarting, S::kDecommissioned},
    {S::kRunning, S::kStopping},   {S::kRunning, S::kError},
    {S::kRunning, S::kDecommissioned},
    {S::kStopping, S::kStopped},   {S::kStopping, S::kError},
    {S::kStopping, S::kDecommissioned},
    {S::kStopped, S::kStarting},   {S::kStopped, S::kDecommissioned},
    {S::kError, S::kStarting},     {S::kError, S::kStopped},
    {S::kError, S::kDecommissioned},
};

struct Edge {
  AgentStatus from;
  AgentStatus to;
};

std::vector<Edge> every_pair() {
  std::vector<Edge> out;
  for (auto f : kAll) {
    for (auto t : kAll) out.push_back({f, t});
  }
  return out;
}

class TransitionTest : public ::testing::TestWithParam<Edge> {};

TEST_P(TransitionTest, AllowedExactlyWhenTheLifecycleSaysSo) {
  const Edge e = GetParam();
  const bool want = kAllowed.count({e.from, e.to}) == 1;
  EXPECT_EQ(can_transition(e.from, e.to), want)
      << to_string(e.from) << " -> " << to_string(e.to) << " should be "
      << (want ? "allowed" : "forbidden");
}

INSTANTIATE_TEST_SUITE_P(EveryPair, TransitionTest, ::testing::ValuesIn(every_pair()),
                         [](const ::testing::TestParamInfo<Edge>& param_info) {
                           return std::string(to_string(param_info.param.from)) + "_to_" +
                                  std::string(to_string(param_info.param.to));
                         });

TEST(AgentStatusTest, AllowedTableCoversSeventeenEdges) {
  // Guards the table above against accidental edits: 49 pairs, 17 allowed.
  int allowed = 0;
  for (const auto& e : every_pair()) allowed += can_transition(e.from, e.to) ? 1 : 0;
  EXPECT_EQ(allowed, 17);
}

TEST(AgentStatusTest, NoSelfTransitions) {
  for (auto s : kAll) EXPECT_FALSE(can_transition(s, s)) << to_string(s);
}

TEST(AgentStatusTest, DecommissionedIsTerminalAndReachableFromEveryOtherState) {
  for (auto s : kAll) {
    EXPECT_FALSE(can_transition(S::kDecommissioned, s)) << to_string(s);
    if (s != S::kDecommissioned) {
      EXPECT_TRUE(can_transition(s, S::kDecommissioned)) << to_string(s);
    }
  }
}

TEST(AgentStatusTest, EveryStateCanReachRunningUnlessDecommissioned) {
  // Breadth-first search over allowed edges: no live state is a dead end.
  for (auto start : kAll) {
    std::set<AgentStatus> seen{start};
    std::vector<AgentStatus> frontier{start};
    while (!frontier.empty()) {
      const auto cur = frontier.back();
      frontier.pop_back();
      for (auto next : kAll) {
        if (can_transition(cur, next) && seen.insert(next).second) frontier.push_back(next);
      }
    }
    EXPECT_EQ(seen.count(S::kRunning) == 1, start != S::kDecommissioned) << to_string(start);
  }
}

TEST(AgentStatusTest, NamesRoundTripInDeclarationOrder) {
  const auto& names = agent_statuses();
  ASSERT_EQ(names.size(), kAll.size());
  for (std::size_t i = 0; i < kAll.size(); ++i) {
    EXPECT_EQ(to_string(kAll[i]), names[i]);
    const auto parsed = parse_agent_status(names[i]);
    ASSERT_TRUE(parsed.has_value()) << names[i];
    EXPECT_EQ(*parsed, kAll[i]);
  }
}

TEST(AgentStatusTest, ParseRejectsUnknownNames) {
  for (const char* bad : {"", "Running", "RUNNING", "run", "running ", "deleted", "paused"}) {
    EXPECT_FALSE(parse_agent_status(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(AgentKindTest, KnownKinds) {
  EXPECT_EQ(agent_kinds(), (std::vector<std::string_view>{"command", "llm", "remote"}));
  for (auto k : agent_kinds()) EXPECT_TRUE(is_agent_kind(k));
  for (const char* bad : {"", "Command", "docker", "shell", "llm "}) {
    EXPECT_FALSE(is_agent_kind(bad)) << bad;
  }
}

TEST(AgentJsonTest, AgentIsCamelCase) {
  Agent a;
  a.id = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
  a.name = "builder";
  a.type = "command";
  a.status = S::kRunning;
  a.status_reason = "started";
  a.description = "builds";
  a.labels = {{"team", "core"}};
  a.config = {{"command", "make"}};
  a.version = 4;
  a.created_at = 1'700'000'000'123;
  a.updated_at = 1'700'000'060'000;
  const auto o = to_json(a);
  EXPECT_EQ(o.size(), 11u);
  EXPECT_EQ(o.at("id").as_string(), a.id);
  EXPECT_EQ(o.at("name").as_string(), "builder");
  EXPECT_EQ(o.at("type").as_string(), "command");
  EXPECT_EQ(o.at("status").as_string(), "running");
  EXPECT_EQ(o.at("statusReason").as_string(), "started");
  EXPECT_EQ(o.at("description").as_string(), "builds");
  EXPECT_EQ(o.at("labels").at("team").as_string(), "core");
  EXPECT_EQ(o.at("config").at("command").as_string(), "make");
  EXPECT_EQ(o.at("version").as_int64(), 4);
  EXPECT_EQ(o.at("createdAt").as_string(), clock::format_iso8601(a.created_at));
  EXPECT_EQ(o.at("updatedAt").as_string(), "2023-11-14T22:14:20.000Z");
}

TEST(AgentJsonTest, EmptyStatusReasonIsNull) {
  Agent a;
  EXPECT_TRUE(to_json(a).at("statusReason").is_null());
}

TEST(AgentJsonTest, StateEntry) {
  AgentStateEntry e{7, "a1", "", "created", "created", 1, 0};
  auto o = to_json(e);
  EXPECT_EQ(o.at("id").as_int64(), 7);
  EXPECT_EQ(o.at("agentId").as_string(), "a1");
  EXPECT_TRUE(o.at("from").is_null());
  EXPECT_EQ(o.at("status").as_string(), "created");
  EXPECT_EQ(o.at("version").as_int64(), 1);
  EXPECT_EQ(o.at("timestamp").as_string(), "1970-01-01T00:00:00.000Z");
  e.from_status = "created";
  e.status = "starting";
  o = to_json(e);
  EXPECT_EQ(o.at("from").as_string(), "created");
}

// append_json writes the text of to_json without the tree: the same value, byte for byte
// what boost::json would write, for every kind of string the escaping has to handle.
TEST(AgentJsonTest, AppendedTextIsTheSameValueAsTheTree) {
  Agent a;
  a.id = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
  a.name = "quote \" backslash \\ slash / tab \t newline \n";
  a.type = "command";
  a.status = S::kError;
  static constexpr char kControls[] = "nul \0 bell \x07 escape \x1b del \x7f";
  a.status_reason = std::string(kControls, sizeof kControls - 1);
  a.description = "UTF-8: \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80, cr \r, ff \f, bs \b";
  a.labels = {{"team", "core"}, {"odd\"key", "v\\al"}};
  a.config = {{"command", boost::json::array{"/bin/sh", "-c", "echo \"hi\""}},
              {"timeoutSeconds", 30},
              {"nested", {{"ok", true}, {"none", nullptr}, {"ratio", 0.5}}}};
  a.version = 9'007'199'254'740'993;  // above 2^53: still an exact integer
  a.created_at = 1'700'000'000'123;
  a.updated_at = 1'700'000'060'000;
  std::string text = "prefix:";
  append_json(text, a);
  ASSERT_TRUE(text.starts_with("prefix:"));
  const std::string_view appended = std::string_view(text).substr(7);
  EXPECT_EQ(boost::json::parse(appended), boost::json::value(to_json(a)));
  EXPECT_EQ(appended, boost::json::serialize(to_json(a)));

  Agent empty;  // empty strings, no labels or config, null statusReason
  std::string e;
  append_json(e, empty);
  EXPECT_EQ(e, boost::json::serialize(to_json(empty)));
  EXPECT_TRUE(boost::json::parse(e).at("statusReason").is_null());
}

}  // namespace
}  // namespace dp::model
