#include "audit/audit_service.hpp"


#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "core/log.hpp"
#include "store/audit_chain.hpp"

namespace dp::audit {
namespace {

namespace fs = std::filesystem;

// A store that is down: every unit of work fails.
class DownStore final : public store::Store {
 public:
  Status write(const std::function<Status(store::Tx&)>&) override {
    ++writes;
    return Error::unavailable("database is down");
  }
  Status read(const std::function<Status(store::Tx&)>&) override {
    return Error::unavailable("database is down");
  }
  Status ping() override { return Error::unavailable("database is down"); }
  Result<std::int64_t> migrate() override { return Error::unavailable("database is down"); }
  store::StoreInfo info() override { return {}; }
  Status check_integrity() override { return Ok{}; }
  void close() override {}
  int writes = 0;
};

// A real store that counts which kind of write each unit asked for.
class CountingStore final : public store::Store {
 public:
  explicit CountingStore(store::Store& inner) : inner_(inner) {}
  Status write(const std::function<Status(store::Tx&)>& fn) override {
    ++durable;
    return inner_.write(fn);
  }
  Status write_relaxed(const std::function<Status(store::Tx&)>& fn) override {
    ++relaxed;
    return inner_.write_relaxed(fn);
  }
  Status read(const std::function<Status(store::Tx&)>& fn) override { return inner_.read(fn); }
  Status ping() override { return inner_.ping(); }
  Result<std::int64_t> migrate() override { return inner_.migrate(); }
  store::StoreInfo info() override { return inner_.info(); }
  Status check_integrity() override { return inner_.check_integrity(); }
  void close() override {}
  int durable = 0;
  int relaxed = 0;

 private:
  store::Store& inner_;
};

class AuditServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::configure(log::Level::kError, log::Format::kJson);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_audit_test_" + std::to_string(rd()) + std::to_string(rd()));
    Config c;
    c.data_dir = dir_.string();
    auto s = store::open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    auto m = store_->migrate();
    ASSERT_TRUE(m.ok()) << m.error().message;
    service_ = std::make_unique<AuditService>(*store_);
  }
  void TearDown() override {
    service_.reset();
    if (store_) store_->close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    log::configure(log::Level::kInfo, log::Format::kJson);
  }

  std::vector<model::AuditRecord> all() {
    store::AuditFilter f;
    f.limit = 500;
    auto p = service_->list(f);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? p->items : std::vector<model::AuditRecord>{};
  }

  static http::Request request(std::string method, std::string route, http::Fields params = {}) {
    http::Request r;
    r.method = std::move(method);
    r.route = std::move(route);
    r.path = r.route;
    r.params = std::move(params);
    r.request_id = "req-42";
    r.remote_address = "127.0.0.1";
    return r;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AuditService> service_;
};

TEST_F(AuditServiceTest, OutcomeFollowsTheStatus) {
  EXPECT_EQ(AuditService::outcome_for(200), "success");
  EXPECT_EQ(AuditService::outcome_for(201), "success");
  EXPECT_EQ(AuditService::outcome_for(204), "success");
  EXPECT_EQ(AuditService::outcome_for(302), "success");
  EXPECT_EQ(AuditService::outcome_for(401), "denied");
  EXPECT_EQ(AuditService::outcome_for(403), "denied");
  EXPECT_EQ(AuditService::outcome_for(400), "failure");
  EXPECT_EQ(AuditService::outcome_for(404), "failure");
  EXPECT_EQ(AuditService::outcome_for(409), "failure");
  EXPECT_EQ(AuditService::outcome_for(422), "failure");
  EXPECT_EQ(AuditService::outcome_for(429), "failure");
  EXPECT_EQ(AuditService::outcome_for(500), "failure");
}

TEST_F(AuditServiceTest, TargetComesFromTheRouteParameters) {
  const http::Response ok;
  EXPECT_EQ(AuditService::target_for(request("POST", "/api/v1/agents/:id/start", {{"id", "a1"}}), ok),
            "agent:a1");
  EXPECT_EQ(AuditService::target_for(
                request("DELETE", "/api/v1/agents/:id/messages/:mid", {{"id", "a1"}, {"mid", "m2"}}),
                ok),
            "agent:a1/message:m2");
  EXPECT_EQ(AuditService::target_for(request("DELETE", "/api/v1/api-keys/:id", {{"id", "k1"}}), ok),
            "api-key:k1");
  EXPECT_EQ(AuditService::target_for(request("POST", "/api/v1/auth/login"), ok), "auth/login");
  // A create names what it created.
  http::Response created;
  created.status = 201;
  created.body = R"({"data":{"id":"new-1","name":"x"},"meta":{}})";
  EXPECT_EQ(AuditService::target_for(request("POST", "/api/v1/agents"), created), "agent:new-1");
  http::Response refused;
  refused.status = 422;
  refused.body = R"({"error":{"code":"validation_failed","message":"bad"}})";
  EXPECT_EQ(AuditService::target_for(request("POST", "/api/v1/agents"), refused), "agents");
}

TEST_F(AuditServiceTest, HandledRequestLeavesAnEntryWithoutBodyOrQueryValues) {
  auto req = request("POST", "/api/v1/agents/:id/start", {{"id", "a1"}});
  req.caller = http::Caller{"u1", "alice", "user", "operator", ""};
  req.body = R"({"password":"hunter2"})";
  req.query = {{"token", "s3cr3t-value"}, {"force", "true"}};
  http::Response res;
  res.status = 409;
  res.body = R"({"error":{"code":"invalid_transition","message":"agent is running"}})";
  service_->on_handled(req, res);

  const auto entries = all();
  ASSERT_EQ(entries.size(), 1u);
  const auto& e = entries[0];
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(e.actor_id, "u1");
  EXPECT_EQ(e.actor_name, "alice");
  EXPECT_EQ(e.actor_kind, "user");
  EXPECT_EQ(e.action, "POST /api/v1/agents/:id/start");
  EXPECT_EQ(e.target, "agent:a1");
  EXPECT_EQ(e.outcome, "failure");
  EXPECT_EQ(e.status, 409);
  EXPECT_EQ(e.correlation_id, "req-42");
  EXPECT_EQ(e.source_address, "127.0.0.1");
  EXPECT_EQ(e.details,
            R"({"error":"invalid_transition","queryKeys":["token","force"],"role":"operator"})");
  for (const auto& stored : {e.details, e.action, e.target}) {
    EXPECT_EQ(stored.find("hunter2"), std::string::npos);
    EXPECT_EQ(stored.find("s3cr3t"), std::string::npos);
  }
  EXPECT_EQ(e.hash, store::audit_chain::compute_hash(e));
}

TEST_F(AuditServiceTest, RefusedAnonymousRequestIsDenied) {
  auto req = request("GET", "/api/v1/audit");
  http::Response res;
  res.status = 401;
  service_->on_handled(req, res);
  const auto entries = all();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].actor_kind, "anonymous");
  EXPECT_EQ(entries[0].actor_id, "");
  EXPECT_EQ(entries[0].outcome, "denied");
  EXPECT_EQ(entries[0].target, "audit");
}

TEST_F(AuditServiceTest, RecordKeepsFieldsStorableAndChainsThem) {
  Entry login;
  login.actor_name = std::string("mal\x01lory\xff", 9) + std::string(1000, 'x');
  login.action = "auth.login";
  login.outcome = "failure";
  login.details = {{"reason", "bad_password"}};
  login.at = 1'700'000'000'000;
  service_->record(login);
  Entry ok;
  ok.actor_id = "u1";
  ok.actor_name = "alice";
  ok.actor_kind = "user";
  ok.action = "auth.login";
  ok.outcome = "success";
  service_->record(ok);

  const auto entries = all();
  ASSERT_EQ(entries.size(), 2u);
  const auto& bad = entries[1];
  EXPECT_EQ(bad.actor_kind, "anonymous");
  EXPECT_EQ(bad.at, 1'700'000'000'000);
  EXPECT_TRUE(bad.actor_name.starts_with("mal?lory\xEF\xBF\xBD")) << bad.actor_name;
  EXPECT_LE(bad.actor_name.size(), 256u);
  EXPECT_EQ(bad.details, R"({"reason":"bad_password"})");
  EXPECT_EQ(entries[0].prev_hash, bad.hash);
  auto report = service_->verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->verified);
  EXPECT_EQ(report->checked, 2);
  EXPECT_EQ(service_->failures(), 0u);
}

TEST_F(AuditServiceTest, VerifyWindowChecksOnlyTheNewestEntries) {
  for (int i = 0; i < 5; ++i) {
    Entry e;
    e.action = "system.test";
    e.outcome = "success";
    service_->record(e);
  }
  auto report = service_->verify(2);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->verified);
  EXPECT_EQ(report->checked, 2);
  EXPECT_EQ(report->first_seq, 4);
  EXPECT_EQ(report->last_seq, 5);
}

TEST(AuditServiceDownTest, StoreFailureIsCountedLoggedAndNeverThrown) {
  log::configure(log::Level::kError, log::Format::kJson);
  DownStore down;
  AuditService service(down);
  int hook = 0;
  service.set_on_failure([&hook] { ++hook; });
  Entry e;
  e.action = "auth.login";
  e.outcome = "success";
  EXPECT_NO_THROW(service.record(e));
  http::Request req;
  req.method = "POST";
  req.route = "/api/v1/agents";
  http::Response res;
  EXPECT_NO_THROW(service.on_handled(req, res));
  EXPECT_EQ(down.writes, 2);
  EXPECT_EQ(service.failures(), 2u);
  EXPECT_EQ(hook, 2);
  EXPECT_FALSE(service.list({}).ok());
  EXPECT_FALSE(service.verify().ok());
  log::configure(log::Level::kInfo, log::Format::kJson);
}

TEST(AuditJsonTest, EntryAndReportRenderForTheApi) {
  model::AuditRecord r;
  r.seq = 3;
  r.id = "id-3";
  r.at = 0;
  r.actor_name = "alice";
  r.actor_kind = "user";
  r.details = R"({"role":"admin"})";
  const auto o = to_json(r);
  EXPECT_EQ(o.at("seq").as_int64(), 3);
  EXPECT_TRUE(o.at("actor").as_object().at("id").is_null());
  EXPECT_EQ(o.at("actor").as_object().at("name").as_string(), "alice");
  EXPECT_EQ(o.at("at").as_string(), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(o.at("details").as_object().at("role").as_string(), "admin");

  store::ChainReport ok;
  ok.checked = 4;
  EXPECT_FALSE(to_json(ok).contains("brokenAt"));
  store::ChainReport bad;
  bad.verified = false;
  bad.broken_at = 2;
  bad.reason = "entry 2 does not match its hash: a field was altered";
  const auto b = to_json(bad);
  EXPECT_FALSE(b.at("verified").as_bool());
  EXPECT_EQ(b.at("brokenAt").as_int64(), 2);
  EXPECT_EQ(b.at("reason").as_string(), bad.reason);
}

TEST_F(AuditServiceTest, EntriesAreCommittedRelaxedByDefaultAndDurableWhenAsked) {
  http::Request req = request("POST", "/api/v1/agents");
  http::Response res;
  res.status = 201;
  CountingStore counting(*store_);
  {
    AuditService relaxed(counting);
    relaxed.on_handled(req, res);
    EXPECT_EQ(counting.relaxed, 1);
    EXPECT_EQ(counting.durable, 0);
  }
  {
    AuditService durable(counting, AuditService::Commit::kDurable);
    durable.on_handled(req, res);
    Entry login;
    login.action = "auth.login";
    login.outcome = "success";
    durable.record(login);
    EXPECT_EQ(counting.relaxed, 1);
    EXPECT_EQ(counting.durable, 2);
  }
  // Both kinds of commit extend the same chain.
  EXPECT_EQ(all().size(), 3u);
  auto report = service_->verify();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->verified);
  EXPECT_EQ(report->checked, 3);
}

}  // namespace
}  // namespace dp::audit
