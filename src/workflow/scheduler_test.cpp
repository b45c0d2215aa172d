// The cron scheduler against a real SQLite store with a manual clock: on-time runs, the
// missed-run policies after downtime, one node at a time (the lease), definition changes.
#include "workflow/scheduler.hpp"

#include <filesystem>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "workflow/service.hpp"

namespace dp::workflow {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::int64_t at(const char* iso) { return clock::parse_timestamp(iso).value_or(0); }

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dp-sched-" + ids::uuid_v7());
    fs::create_directories(dir_);
    Config cfg;
    cfg.data_dir = dir_.string();
    auto s = store::open_store(cfg);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->migrate().ok());
    service_ = std::make_unique<WorkflowService>(*store_, nullptr);
    now_ = at("2026-03-01T10:00:30Z");
    service_->set_clock([this] { return now_; });
  }
  void TearDown() override {
    if (store_) store_->close();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Scheduler> scheduler(const std::string& node,
                                       std::chrono::milliseconds lease = std::chrono::minutes(2)) {
    SchedulerOptions o;
    o.node_id = node;
    o.lease = lease;
    o.now_ms = [this] { return now_; };
    return std::make_unique<Scheduler>(*store_, o);
  }
  std::string create(const std::string& triggers) {
    const std::string yaml =
        "name: nightly-" + ids::uuid_v7() +
        "\ninputs: {who: {type: string, default: nobody}}\n"
        "triggers:\n" + triggers +
        "steps:\n  - {id: w, type: wait, duration: 1s}\n";
    auto w = service_->create(yaml, Caller{});
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : json::serialize(w.error().details));
    return w.ok() ? w->id : "";
  }
  std::vector<model::Execution> executions(const std::string& workflow_id) {
    store::ExecutionFilter f;
    f.workflow_id = workflow_id;
    auto page = service_->executions(f);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->items : std::vector<model::Execution>{};
  }
  std::vector<std::string> tick(Scheduler& s) {
    auto r = s.tick();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : std::vector<std::string>{};
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WorkflowService> service_;
  std::int64_t now_ = 0;
};

TEST_F(SchedulerTest, FiresEachScheduledTimeOnceWithItsCause) {
  const auto wf = create("  - {cron: '*/5 * * * *', id: five, inputs: {who: cron}}\n");
  auto s = scheduler("a");
  EXPECT_TRUE(tick(*s).empty());  // 10:00:30: the next time is 10:05
  now_ = at("2026-03-01T10:04:59Z");
  EXPECT_TRUE(tick(*s).empty());
  now_ = at("2026-03-01T10:05:01Z");
  auto fired = tick(*s);
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_TRUE(tick(*s).empty());  // the same time never fires twice
  auto list = executions(wf);
  ASSERT_EQ(list.size(), 1U);
  const auto& e = list[0];
  EXPECT_EQ(e.cause, "schedule");
  EXPECT_EQ(e.cause_detail.at("trigger").as_string(), "five");
  EXPECT_EQ(e.cause_detail.at("scheduledAt").as_string(), "2026-03-01T10:05:00.000Z");
  EXPECT_FALSE(e.cause_detail.contains("missedRuns"));
  EXPECT_EQ(e.inputs.at("who").as_string(), "cron");
  EXPECT_EQ(e.created_by, "trigger:five");
  now_ = at("2026-03-01T10:10:00Z");
  EXPECT_EQ(tick(*s).size(), 1U);
  EXPECT_EQ(executions(wf).size(), 2U);
  // Filtering by cause.
  store::ExecutionFilter f;
  f.cause = "schedule";
  EXPECT_EQ(service_->executions(f)->items.size(), 2U);
  f.cause = "webhook";
  EXPECT_EQ(service_->executions(f)->items.size(), 0U);
}

TEST_F(SchedulerTest, MissedOnceRunsOnceForTheWindow) {
  const auto wf = create("  - {cron: '0 * * * *', id: hourly}\n");
  auto s = scheduler("a");
  now_ = at("2026-03-01T15:20:00Z");  // down from 10:00:30: 11:00 .. 15:00 were missed
  auto fired = tick(*s);
  ASSERT_EQ(fired.size(), 1U);
  auto list = executions(wf);
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0].cause_detail.at("scheduledAt").as_string(), "2026-03-01T15:00:00.000Z");
  EXPECT_EQ(list[0].cause_detail.at("missedRuns").as_int64(), 5);
  EXPECT_EQ(list[0].cause_detail.at("missedPolicy").as_string(), "once");
  EXPECT_TRUE(tick(*s).empty());
  now_ = at("2026-03-01T16:00:10Z");  // back on time
  EXPECT_EQ(tick(*s).size(), 1U);
}

TEST_F(SchedulerTest, MissedSkipWaitsForTheNextTime) {
  const auto wf = create("  - {cron: '0 * * * *', missed: skip}\n");
  auto s = scheduler("a");
  now_ = at("2026-03-01T15:20:00Z");
  EXPECT_TRUE(tick(*s).empty());
  EXPECT_TRUE(executions(wf).empty());
  now_ = at("2026-03-01T16:00:20Z");
  ASSERT_EQ(tick(*s).size(), 1U);
  auto list = executions(wf);
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0].cause_detail.at("trigger").as_string(), "cron-0");
  EXPECT_EQ(list[0].cause_detail.at("scheduledAt").as_string(), "2026-03-01T16:00:00.000Z");
}

TEST_F(SchedulerTest, OnlyTheLeaseHolderFires) {
  const auto wf = create("  - {cron: '* * * * *'}\n");
  auto a = scheduler("a");
  auto b = scheduler("b");
  now_ = at("2026-03-01T10:01:05Z");
  EXPECT_EQ(tick(*a).size(), 1U);
  now_ = at("2026-03-01T10:02:05Z");
  EXPECT_TRUE(tick(*b).empty());  // a holds the lease
  EXPECT_EQ(tick(*a).size(), 1U);
  // a stops; b takes over once a's lease (2 minutes) lapsed and runs the missed minutes once.
  now_ = at("2026-03-01T10:03:05Z");
  EXPECT_TRUE(tick(*b).empty());
  now_ = at("2026-03-01T10:05:05Z");
  EXPECT_EQ(tick(*b).size(), 1U);
  EXPECT_EQ(executions(wf).size(), 3U);
}

TEST_F(SchedulerTest, DefinitionChangesAndArchivingAreFollowed) {
  const auto wf = create("  - {cron: '0 12 * * *', timezone: Europe/Berlin, id: noon}\n");
  auto s = scheduler("a");
  // A new schedule from 10:00:30: 12:00 Berlin is 11:00 UTC.
  now_ = at("2026-03-01T11:00:01Z");
  EXPECT_EQ(tick(*s).size(), 1U);
  // Changing the schedule recomputes the next time from now.
  auto w = service_->get(wf);
  std::string text = w->definition;
  text.replace(text.find("0 12 * * *"), 10, "30 11 * * *");
  ASSERT_TRUE(service_->update(wf, text, std::nullopt, Caller{}).ok());
  now_ = at("2026-03-02T10:30:05Z");
  ASSERT_EQ(tick(*s).size(), 1U);
  // Removing the trigger removes its row.
  text = service_->get(wf)->definition;
  const auto from = text.find("triggers:");
  const auto to = text.find("steps:");
  text = text.substr(0, from) + text.substr(to);
  ASSERT_TRUE(service_->update(wf, text, std::nullopt, Caller{}).ok());
  now_ = at("2026-03-03T10:30:05Z");
  EXPECT_TRUE(tick(*s).empty());
  // Archived workflows do not fire.
  const auto wf2 = create("  - {cron: '* * * * *'}\n");
  ASSERT_TRUE(service_->archive(wf2, Caller{}).ok());
  now_ = at("2026-03-03T10:35:05Z");
  EXPECT_TRUE(tick(*s).empty());
  EXPECT_EQ(executions(wf).size(), 2U);
}

TEST_F(SchedulerTest, BadInputsSkipTheRunButKeepTheSchedule) {
  const std::string yaml =
      "name: needs-input\ninputs: {who: {type: string, required: true}}\n"
      "triggers:\n  - {cron: '* * * * *'}\nsteps:\n  - {id: w, type: wait, duration: 1s}\n";
  auto w = service_->create(yaml, Caller{});
  ASSERT_TRUE(w.ok());
  auto s = scheduler("a");
  now_ = at("2026-03-01T10:01:05Z");
  EXPECT_TRUE(tick(*s).empty());
  EXPECT_TRUE(executions(w->id).empty());
  now_ = at("2026-03-01T10:02:05Z");
  EXPECT_TRUE(tick(*s).empty());
}

}  // namespace
}  // namespace dp::workflow
