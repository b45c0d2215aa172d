// Crash safety: kill -9 during a burst of writes; every acknowledged write survives and the
// database passes its integrity check.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dp::it {
namespace {

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

using namespace std::chrono_literals;

struct Acked {
  std::string id;
  std::string name;
};

class CrashTest : public ::testing::TestWithParam<Backend> {};

TEST_P(CrashTest, AcknowledgedWritesSurviveKill9) {
  TestServer server(GetParam());
  ASSERT_EQ(server.error(), "");

  constexpr int kThreads = 4;
  constexpr int kMaxPerThread = 20'000;  // bound; the kill ends the loop long before
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<int> attempted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c(server.port(), 10s);
      for (int i = 0; i < kMaxPerThread && !stop.load(); ++i) {
        const std::string name = "crash-" + std::to_string(t) + "-" + std::to_string(i);
        attempted.fetch_add(1);
        auto r = c.post("/api/v1/agents",
                        R"({"name":")" + name +
                            R"(","type":"command","labels":{"burst":"yes"},"config":{"command":["true"]}})");
        if (r.status == 0) break;  // the server is gone
        if (r.status >= 200 && r.status < 300) {
          std::lock_guard lock(mu);
          acked.push_back({r.str("/data/id"), name});
        }
      }
    });
  }
  // Let the burst run for about a second (and at least until some writes were acknowledged).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::this_thread::sleep_for(1s);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (acked.size() >= 20 || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  server.process().kill9();
  stop.store(true);
  for (auto& t : threads) t.join();

  ASSERT_FALSE(acked.empty()) << "no write was acknowledged before the kill";
  std::printf("acknowledged %zu of %d attempted creates before kill -9\n", acked.size(),
              attempted.load());

  ASSERT_EQ(server.restart(), "");
  HttpClient c(server.port());
  int missing = 0;
  for (const auto& a : acked) {
    auto r = c.get("/api/v1/agents/" + a.id);
    if (r.status != 200 || r.str("/data/name") != a.name) {
      ++missing;
      if (missing <= 5) ADD_FAILURE() << "acknowledged agent " << a.id << " (" << a.name
                                      << ") is not there: " << r.describe();
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acked.size() << " acknowledged creates";
  // Every acknowledged create is counted; unacknowledged ones may or may not have landed.
  auto list = c.get("/api/v1/agents?limit=1");
  ASSERT_EQ(list.status, 200u) << list.describe();
  EXPECT_GE(list.num("/meta/total"), static_cast<std::int64_t>(acked.size()));
  EXPECT_LE(list.num("/meta/total"), static_cast<std::int64_t>(attempted.load()));
  // The restarted server still takes writes.
  auto more = c.post("/api/v1/agents", R"({"name":"after-crash","type":"remote"})");
  EXPECT_EQ(more.status, 201u) << more.describe();
  c.close();
  EXPECT_EQ(server.process().stop(), 0) << server.process().stderr_text();

  std::vector<std::string> args{"check"};
  for (auto& a : server.store_args()) args.push_back(a);
  auto check = run_devplane(args);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("passes its integrity check"), std::string::npos) << check.out;
}

TEST(IntegrityCheck, DetectsACorruptSqliteFile) {
  // The integrity check must be able to fail, or the test above proves nothing.
  TestServer server(Backend::kSqlite);
  ASSERT_EQ(server.error(), "");
  {
    HttpClient c(server.port());
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(c.post("/api/v1/agents", R"({"name":"row-)" + std::to_string(i) +
                                             R"(","type":"remote","description":")" +
                                             std::string(300, 'x') + R"("})")
                    .status,
                201u);
    }
  }
  ASSERT_EQ(server.process().stop(), 0);
  const auto db = std::filesystem::path(server.config().data_dir) / "devplane.db";
  ASSERT_TRUE(std::filesystem::exists(db));
  const auto size = std::filesystem::file_size(db);
  ASSERT_GT(size, 16u * 4096u);
  {
    // Scribble over a few pages in the middle (not the header), keeping the file size.
    std::FILE* f = std::fopen(db.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(size / 2 / 4096 * 4096), SEEK_SET);
    const std::string junk(3 * 4096, '\x5a');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto check = run_devplane({"check", "--data-dir", server.config().data_dir});
  EXPECT_NE(check.exit_code, 0) << check.out << check.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, CrashTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
