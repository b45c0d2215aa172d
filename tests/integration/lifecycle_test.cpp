// Process lifecycle of the real binary: graceful shutdown, migrations, configuration, CLI.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dp::it {
namespace {

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

using namespace std::chrono_literals;
namespace json = boost::json;

// A TCP listener on 127.0.0.1 that never accepts and never answers: a Redis "server" whose
// PING waits for the client's timeout, which makes /system/health naturally slow.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~BlackHole() { ::close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

double metric(const std::string& text, const std::string& name) {
  const auto p = text.find("\n" + name + " ");
  if (p == std::string::npos) return -1;
  const auto start = p + name.size() + 2;
  return std::stod(text.substr(start, text.find('\n', start) - start));
}

std::int64_t latest_migration(const std::string& dialect) {
  std::int64_t n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(source_dir() + "/src/store/migrations/" + dialect)) {
    if (e.path().extension() == ".sql") {
      n = std::max<std::int64_t>(n, std::stoll(e.path().filename().string().substr(0, 4)));
    }
  }
  return n;
}

std::string sqlite_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string e = sqlite3_errmsg(db);
    sqlite3_close(db);
    return e;
  }
  char* err = nullptr;
  std::string out;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    out = err != nullptr ? err : "error";
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return out;
}

// ------------------------------------------------------------------------------ shutdown

TEST(Shutdown, SigtermLetsASlowRequestFinishAndExitsZero) {
  BlackHole redis;
  TestServer server(Backend::kSqlite,
                    {"--redis-url", "redis://127.0.0.1:" + std::to_string(redis.port())});
  ASSERT_EQ(server.error(), "");

  // Health pings the silent Redis, which takes about its 1 s timeout: a slow request.
  auto slow = std::async(std::launch::async, [port = server.port()] {
    HttpClient c(port);
    auto r = c.get("/api/v1/system/health");
    return std::make_pair(r, c.error());
  });

  // Wait (bounded) until it is in flight: the scrape itself plus the health request.
  HttpClient probe(server.port());
  bool in_flight = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!in_flight && std::chrono::steady_clock::now() < deadline) {
    auto m = probe.get("/metrics");
    in_flight = metric(m.body, "devplane_http_requests_in_flight") >= 2;
    if (!in_flight) std::this_thread::sleep_for(5ms);
  }
  probe.close();
  ASSERT_TRUE(in_flight) << "the health request never showed as in flight";

  server.process().signal(SIGTERM);
  ASSERT_EQ(slow.wait_for(30s), std::future_status::ready);
  auto [r, err] = slow.get();
  EXPECT_EQ(r.status, 200u) << r.describe() << " " << err;
  EXPECT_EQ(r.str("/data/checks/bus/status"), "down") << r.describe();
  EXPECT_EQ(r.str("/data/status"), "degraded") << r.describe();
  EXPECT_FALSE(r.keep_alive) << "a response during shutdown closes the connection";
  EXPECT_EQ(server.process().wait(30s), 0) << server.process().stderr_text();
  EXPECT_NE(server.process().stderr_text().find("devplane stopped"), std::string::npos);
}

TEST(Shutdown, IdleKeepAliveConnectionsAreClosedAndExitIsQuick) {
  // A long grace period: exiting well before it shows idle connections do not hold it.
  TestServer server(Backend::kSqlite, {"--shutdown-timeout-ms", "60000"});
  ASSERT_EQ(server.error(), "");
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<HttpClient>(server.port()));
    ASSERT_EQ(clients.back()->get("/api/v1/agents").status, 200u);
  }
  const auto t0 = std::chrono::steady_clock::now();
  server.process().signal(SIGTERM);
  EXPECT_EQ(server.process().wait(45s), 0) << server.process().stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
  for (auto& c : clients) EXPECT_TRUE(c->server_closed(10s));
}

TEST(Shutdown, RefusesNewConnectionsAfterExit) {
  TestServer server(Backend::kSqlite);
  ASSERT_EQ(server.error(), "");
  const auto port = server.port();
  EXPECT_EQ(server.process().stop(), 0);
  HttpClient c(port, 5s);
  EXPECT_EQ(c.get("/api/v1/system/health").status, 0u);
}

// ------------------------------------------------------------------------------ migrations

class MigrateTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      pg_ = std::make_unique<PgDatabase>();
      ASSERT_TRUE(pg_->ok()) << pg_->error();
      args_ = {"--database-url", pg_->url()};
    } else {
      dir_ = std::make_unique<TempDir>();
      args_ = {"--data-dir", (dir_->path() / "data").string()};
    }
  }
  std::vector<std::string> cmd(const std::string& sub) const {
    std::vector<std::string> v{sub};
    v.insert(v.end(), args_.begin(), args_.end());
    return v;
  }
  std::string exec(const std::string& sql) const {
    if (pg_) return pg_->exec(sql);
    return sqlite_exec((dir_->path() / "data" / "devplane.db").string(), sql);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PgDatabase> pg_;
  std::vector<std::string> args_;
};

TEST_P(MigrateTest, MigrateAppliesAndReportsTheVersion) {
  const auto latest = latest_migration(to_string(GetParam()));
  ASSERT_GE(latest, 1);
  const std::string expected =
      "schema at version " + std::to_string(latest) + " (" + to_string(GetParam()) + ")";
  auto first = run_devplane(cmd("migrate"));
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find(expected), std::string::npos) << first.out;
  // Idempotent.
  auto second = run_devplane(cmd("migrate"));
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find(expected), std::string::npos) << second.out;
  auto check = run_devplane(cmd("check"));
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("ok"), std::string::npos) << check.out;
}

TEST_P(MigrateTest, ADatabaseNewerThanTheBinaryIsRefused) {
  auto m = run_devplane(cmd("migrate"));
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_EQ(exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                 "(9999, 'from_the_future', '2030-01-01T00:00:00Z')"),
            "");

  auto again = run_devplane(cmd("migrate"));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_FALSE(again.timed_out);
  EXPECT_NE(again.err.find("9999"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("newer than this binary"), std::string::npos) << again.err;

  auto serve_args = cmd("serve");
  serve_args.insert(serve_args.end(), {"--port", "0"});
  auto serve = run_devplane(serve_args, {}, 60s);
  EXPECT_FALSE(serve.timed_out) << "serve must refuse to start, not hang";
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_EQ(serve.out.find("listening"), std::string::npos) << serve.out;
  EXPECT_NE(serve.err.find("newer than this binary"), std::string::npos) << serve.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, MigrateTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

// ------------------------------------------------------------------------------ configuration

TEST(Config, PrintConfigMasksThePostgresPassword) {
  auto r = run_devplane({"serve", "--print-config", "--database-url",
                         "postgres://alice:s3cr3t-pw@127.0.0.1:5432/devplane"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("s3cr3t-pw"), std::string::npos) << r.out;
  auto v = parse_json(r.out);
  ASSERT_TRUE(v.is_object()) << r.out;
  EXPECT_EQ(v.at("database_url"), "postgres://alice:***@127.0.0.1:5432/devplane");
  EXPECT_EQ(v.at("mode"), "distributed");

  // Also the libpq ?password= form, and a password coming from the environment.
  auto q = run_devplane({"serve", "--print-config"},
                        {{"DEVPLANE_DATABASE_URL",
                          "postgresql://127.0.0.1/devplane?user=bob&password=hunter2&sslmode=disable"}});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.out.find("hunter2"), std::string::npos) << q.out;
}

TEST(Config, FlagBeatsEnvironmentBeatsConfigFile) {
  TempDir dir;
  const auto file = dir.path() / "devplane.yaml";
  {
    std::ofstream f(file);
    f << "port: 1111\nlog_level: debug\nlog_format: text\ndata_dir: /from/file\n"
         "io_threads: 3\n";
  }
  auto r = run_devplane({"serve", "--print-config", "--config", file.string(), "--port", "3333"},
                        {{"DEVPLANE_PORT", "2222"},
                         {"DEVPLANE_LOG_LEVEL", "warn"},
                         {"DEVPLANE_IO_THREADS", "5"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto v = parse_json(r.out);
  ASSERT_TRUE(v.is_object()) << r.out;
  EXPECT_EQ(v.at("port").to_number<int>(), 3333) << "flag beats env and file";
  EXPECT_EQ(v.at("log_level"), "warn") << "env beats file";
  EXPECT_EQ(v.at("io_threads").to_number<int>(), 5) << "env beats file";
  EXPECT_EQ(v.at("log_format"), "text") << "file beats default";
  EXPECT_EQ(v.at("data_dir"), "/from/file") << "file beats default";
  EXPECT_EQ(v.at("host"), "127.0.0.1") << "default";
  EXPECT_EQ(v.at("config_file"), json::value(file.string()));

  // The file may also be named by DEVPLANE_CONFIG.
  auto e = run_devplane({"serve", "--print-config"}, {{"DEVPLANE_CONFIG", file.string()}});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto ev = parse_json(e.out);
  ASSERT_TRUE(ev.is_object()) << e.out;
  EXPECT_EQ(ev.at("port").to_number<int>(), 1111);
}

TEST(Cli, HelpWorksOnEverySubcommand) {
  auto top = run_devplane({"--help"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  for (const char* sub : {"serve", "migrate", "check", "version"}) {
    EXPECT_NE(top.out.find(sub), std::string::npos) << "top-level help lists " << sub;
    auto r = run_devplane({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
  auto serve = run_devplane({"serve", "--help"});
  for (const char* flag : {"--port", "--data-dir", "--database-url", "--log-level",
                           "--log-format", "--print-config"}) {
    EXPECT_NE(serve.out.find(flag), std::string::npos) << "serve --help mentions " << flag;
  }
  auto version = run_devplane({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(version.out.starts_with("devplane ")) << version.out;
  auto none = run_devplane({});
  EXPECT_NE(none.exit_code, 0) << "a subcommand is required";
}

TEST(Cli, BadFlagValuesExitNonZeroNamingTheKey) {
  struct Case {
    std::vector<std::string> args;
    Env env;
    std::string must_mention;
  };
  TempDir dir;
  const auto bad_file = dir.path() / "bad.yaml";
  {
    std::ofstream f(bad_file);
    f << "port: 8080\nturbo_mode: on\n";
  }
  const std::vector<Case> cases = {
      {{"serve", "--port", "abc"}, {}, "port"},
      {{"serve", "--port", "70000"}, {}, "port"},
      {{"serve", "--log-level", "loud"}, {}, "log_level"},
      {{"serve", "--log-format", "xml"}, {}, "log_format"},
      {{"serve", "--max-body-bytes", "-5"}, {}, "max_body_bytes"},
      {{"serve", "--database-url", "mysql://x"}, {}, "database_url"},
      {{"migrate", "--io-threads", "many"}, {}, "io_threads"},
      {{"check", "--shutdown-timeout-ms", "1e9"}, {}, "shutdown_timeout_ms"},
      {{"serve"}, {{"DEVPLANE_PORT", "eighty"}}, "DEVPLANE_PORT"},
      {{"serve", "--config", bad_file.string()}, {}, "turbo_mode"},
      {{"serve", "--config", (dir.path() / "missing.yaml").string()}, {}, "missing.yaml"},
      {{"serve", "--no-such-flag"}, {}, "--no-such-flag"},
  };
  for (const auto& c : cases) {
    std::string label;
    for (const auto& a : c.args) label += a + " ";
    SCOPED_TRACE(label);
    auto r = run_devplane(c.args, c.env, 30s, dir.str());
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.find("listening"), std::string::npos);
    EXPECT_NE((r.err + r.out).find(c.must_mention), std::string::npos) << r.err << r.out;
  }
}

// Every route but health and sign-in needs a token now, so other hosts are allowed; a host
// that is not an IP address is still refused before anything opens.
TEST(Cli, RefusesAHostThatIsNotAnAddress) {
  TempDir dir;
  auto r = run_devplane({"serve", "--host", "not-an-address", "--port", "0", "--data-dir",
                         (dir.path() / "d").string()},
                        {}, 60s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not-an-address"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dp::it
