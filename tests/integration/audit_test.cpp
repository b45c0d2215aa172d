// The audit log end to end: the real binary records mutating requests into the hash-chained
// audit_log, GET /api/v1/audit pages through them and reports the chain, and
// `devplane audit verify` finds a row altered directly in the database (SQLite through the
// sqlite3 C API, PostgreSQL through libpq). Also: the master key file for secrets at rest.
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

class AuditTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(GetParam());
    ASSERT_EQ(server_->error(), "") << "server did not start";
    client_ = std::make_unique<HttpClient>(server_->port());
  }

  void TearDown() override {
    client_.reset();
    if (server_ && server_->process().running()) {
      const int code = server_->process().stop();
      EXPECT_EQ(code, 0) << "devplane serve did not exit cleanly; stderr:\n"
                         << server_->process().stderr_text();
    }
    server_.reset();
  }

  // Runs one statement against the server's database, outside devplane.
  void tamper(const std::string& sql) {
    if (GetParam() == Backend::kPostgres) {
      ASSERT_EQ(server_->pg()->exec(sql), "");
      return;
    }
    const std::string path = server_->config().data_dir + "/devplane.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  ProcessResult cli(std::vector<std::string> args) {
    for (const auto& a : server_->store_args()) args.push_back(a);
    return run_devplane(args);
  }

  // Entries of the whole log (newest first), paging through it.
  std::vector<json::object> all_entries() {
    std::vector<json::object> out;
    std::string cursor;
    for (int guard = 0; guard < 100; ++guard) {
      auto r = client_->get("/api/v1/audit?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200u) << r.describe();
      if (r.status != 200) break;
      for (const auto& e : r.at("/data")->as_array()) out.push_back(e.as_object());
      const auto* next = r.at("/meta/next");
      if (next == nullptr || next->is_null()) break;
      cursor = std::string(next->as_string());
    }
    return out;
  }

  static const json::object* by_correlation(const std::vector<json::object>& entries,
                                            std::string_view id) {
    for (const auto& e : entries) {
      if (e.at("correlationId").as_string() == id) return &e;
    }
    return nullptr;
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_P(AuditTest, MutatingRequestsAreRecordedAndTamperingIsFound) {
  // Who the harness is (authenticated once the auth module is wired, else nobody).
  std::string me_id;
  if (auto me = client_->get("/api/v1/auth/me"); me.status == 200) {
    me_id = me.str("/data/id");
    if (me_id.empty()) me_id = me.str("/data/user/id");
  }

  const std::string body =
      R"({"name":"audited","type":"command","config":{"command":["echo","hi"]}})";
  auto created = client_->post("/api/v1/agents", body, {{"X-Request-Id", "audit-create-1"}});
  ASSERT_EQ(created.status, 201u) << created.describe();
  const std::string id = created.str("/data/id");
  auto refused = client_->post("/api/v1/agents", R"({"name":""})", {{"X-Request-Id", "audit-bad-2"}});
  ASSERT_EQ(refused.status, 422u) << refused.describe();
  auto gone = client_->del("/api/v1/agents/" + id + "?purge=true", {{"X-Request-Id", "audit-del-3"}});
  ASSERT_LT(gone.status, 300u) << gone.describe();
  auto read = client_->get("/api/v1/agents", {{"X-Request-Id", "audit-get-4"}});
  ASSERT_EQ(read.status, 200u);
  auto anon = client_->post("/api/v1/agents", body,
                            {{"Authorization", ""}, {"X-Request-Id", "audit-anon-5"}});
  ASSERT_EQ(anon.status, 401u) << anon.describe();
  auto guess = client_->post("/api/v1/auth/login", R"({"username":"admin","password":"wrong-guess"})",
                             {{"Authorization", ""}, {"X-Request-Id", "audit-login-6"}});
  ASSERT_EQ(guess.status, 401u) << guess.describe();

  const auto entries = all_entries();
  const auto* c = by_correlation(entries, "audit-create-1");
  ASSERT_NE(c, nullptr) << "no entry for the create";
  EXPECT_EQ(c->at("action").as_string(), "POST /api/v1/agents");
  EXPECT_EQ(c->at("target").as_string(), "agent:" + id);
  EXPECT_EQ(c->at("outcome").as_string(), "success");
  EXPECT_EQ(c->at("status").as_int64(), 201);
  EXPECT_EQ(c->at("sourceAddress").as_string(), "127.0.0.1");
  const auto& actor = c->at("actor").as_object();
  if (me_id.empty()) {
    EXPECT_EQ(actor.at("kind").as_string(), "anonymous");
  } else {
    EXPECT_EQ(actor.at("id").as_string(), me_id);
  }
  EXPECT_EQ(json::serialize(*c).find("echo"), std::string::npos) << "the body leaked";

  const auto* bad = by_correlation(entries, "audit-bad-2");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->at("outcome").as_string(), "failure");
  EXPECT_EQ(bad->at("status").as_int64(), 422);
  EXPECT_EQ(bad->at("details").as_object().at("error").as_string(), "validation_failed");

  const auto* del = by_correlation(entries, "audit-del-3");
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->at("action").as_string(), "DELETE /api/v1/agents/:id");
  EXPECT_EQ(del->at("target").as_string(), "agent:" + id);
  EXPECT_EQ(del->at("details").as_object().at("queryKeys").as_array(), json::array{"purge"});
  EXPECT_EQ(by_correlation(entries, "audit-get-4"), nullptr) << "reads are not audited";

  // Refused requests are recorded as denied, and a failed sign-in as the auth module's fact
  // too, never with the password that was tried.
  const auto* denied = by_correlation(entries, "audit-anon-5");
  ASSERT_NE(denied, nullptr);
  EXPECT_EQ(denied->at("outcome").as_string(), "denied");
  EXPECT_EQ(denied->at("status").as_int64(), 401);
  EXPECT_EQ(denied->at("actor").as_object().at("kind").as_string(), "anonymous");
  int login_facts = 0;
  for (const auto& e : entries) {
    if (e.at("correlationId").as_string() != "audit-login-6") continue;
    EXPECT_EQ(json::serialize(e).find("wrong-guess"), std::string::npos) << json::serialize(e);
    if (e.at("action").as_string() == "auth.login") {
      ++login_facts;
      EXPECT_EQ(e.at("outcome").as_string(), "failure");
      EXPECT_EQ(e.at("actor").as_object().at("name").as_string(), "admin");
    }
  }
  EXPECT_EQ(login_facts, 1) << "the failed sign-in was not recorded by the auth module";

  // Filters.
  auto failures = client_->get("/api/v1/audit?outcome=failure&action=POST%20/api/v1/agents");
  ASSERT_EQ(failures.status, 200u) << failures.describe();
  ASSERT_EQ(failures.at("/data")->as_array().size(), 1u) << failures.describe();
  EXPECT_EQ(failures.str("/data/0/correlationId"), "audit-bad-2");
  auto typo = client_->get("/api/v1/audit?outcome=maybe&colour=red");
  EXPECT_EQ(typo.status, 422u) << typo.describe();

  // The chain verifies: in the list's meta, on /verify and offline.
  auto listed = client_->get("/api/v1/audit");
  ASSERT_EQ(listed.status, 200u);
  EXPECT_TRUE(listed.at("/meta/chain/verified")->as_bool()) << listed.describe();
  const std::int64_t n = listed.num("/meta/total");
  EXPECT_GE(n, 3);
  EXPECT_EQ(listed.num("/meta/chain/checked"), n);
  auto full = client_->get("/api/v1/audit/verify");
  ASSERT_EQ(full.status, 200u) << full.describe();
  EXPECT_TRUE(full.at("/data/verified")->as_bool());
  EXPECT_EQ(full.num("/data/checked"), n);

  auto ok = cli({"audit", "verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("ok: audit chain verifies"), std::string::npos) << ok.out;
  auto lines = cli({"audit", "list", "--limit", "2"});
  EXPECT_EQ(lines.exit_code, 0) << lines.err;
  EXPECT_EQ(std::count(lines.out.begin(), lines.out.end(), '\n'), 2) << lines.out;

  // Someone with database access rewrites who did it.
  const std::int64_t seq = c->at("seq").as_int64();
  tamper("UPDATE audit_log SET actor_name = 'somebody-else' WHERE seq = " + std::to_string(seq));

  auto broken = cli({"audit", "verify"});
  EXPECT_EQ(broken.exit_code, 1) << broken.out << broken.err;
  EXPECT_NE(broken.out.find("BROKEN at seq " + std::to_string(seq)), std::string::npos)
      << broken.out;
  auto api = client_->get("/api/v1/audit");
  ASSERT_EQ(api.status, 200u);
  EXPECT_FALSE(api.at("/meta/chain/verified")->as_bool()) << api.describe();
  EXPECT_EQ(api.num("/meta/chain/brokenAt"), seq);
  EXPECT_NE(api.str("/meta/chain/reason").find("altered"), std::string::npos) << api.describe();
  auto api_full = client_->get("/api/v1/audit/verify");
  EXPECT_FALSE(api_full.at("/data/verified")->as_bool());
  EXPECT_EQ(api_full.num("/data/brokenAt"), seq);

  // Deleting the row instead is found too.
  tamper("DELETE FROM audit_log WHERE seq = " + std::to_string(seq));
  auto deleted = cli({"audit", "verify"});
  EXPECT_EQ(deleted.exit_code, 1) << deleted.out << deleted.err;
  EXPECT_NE(deleted.out.find("seq " + std::to_string(seq)), std::string::npos) << deleted.out;
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

// ----------------------------------------------------------------------- secrets at rest

TEST(MasterKeyTest, FirstRunCreatesA0600KeyFileAndAnOpenOneIsRefused) {
  TempDir dir;
  const std::string data = (dir.path() / "data").string();
  {
    ServerConfig cfg;
    cfg.data_dir = data;
    ServerProcess p;
    ASSERT_EQ(p.start(cfg), "");
    struct stat st {};
    ASSERT_EQ(::stat((data + "/master.key").c_str(), &st), 0) << "no master.key in " << data;
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(p.stop(), 0);
  }
  ASSERT_EQ(::chmod((data + "/master.key").c_str(), 0644), 0);
  ServerConfig cfg;
  cfg.data_dir = data;
  ServerProcess p;
  const std::string err = p.start(cfg);
  EXPECT_NE(err, "") << "started with a world-readable master key";
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;

  // A key in the environment needs no file; a malformed one stops the start.
  TempDir other;
  ServerConfig env_cfg;
  env_cfg.data_dir = (other.path() / "data").string();
  env_cfg.env = {{"DEVPLANE_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}};
  ServerProcess q;
  ASSERT_EQ(q.start(env_cfg), "");
  EXPECT_FALSE(std::filesystem::exists(other.path() / "data" / "master.key"));
  EXPECT_EQ(q.stop(), 0);
  auto printed = run_devplane({"serve", "--print-config"}, env_cfg.env);
  EXPECT_EQ(printed.exit_code, 0);
  EXPECT_EQ(printed.out.find("AAECAwQF"), std::string::npos) << "--print-config shows the key";
  EXPECT_NE(printed.out.find(R"("master_key":"***")"), std::string::npos) << printed.out;
  env_cfg.env = {{"DEVPLANE_MASTER_KEY", "bm90IDMyIGJ5dGVz"}};
  ServerProcess r;
  const std::string bad = r.start(env_cfg);
  EXPECT_NE(bad.find("DEVPLANE_MASTER_KEY"), std::string::npos) << bad;
}

}  // namespace
}  // namespace dp::it
