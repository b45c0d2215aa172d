#include "harness.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

extern char** environ;

namespace dp::it {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::string devplane_binary() {
  // DP_IT_BINARY overrides the built binary (e.g. to run these tests against a release build).
  if (const char* b = std::getenv("DP_IT_BINARY"); b != nullptr && *b != '\0') return b;
  return DP_DEVPLANE_BINARY;
}
std::string source_dir() { return DP_SOURCE_DIR; }

std::string to_string(Backend b) { return b == Backend::kSqlite ? "sqlite" : "postgres"; }

namespace {

std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<std::uint64_t>(::getpid())};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(kHex[rng() % 16]);
  return s;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, std::size_t n = 4000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// Environment for a child: ours minus DEVPLANE_* (tests must be hermetic), plus `extra`.
std::vector<std::string> child_env(const Env& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("DEVPLANE_")) continue;
    bool overridden = false;
    for (const auto& [k, v] : extra) {
      if (kv.starts_with(k + "=")) overridden = true;
    }
    if (!overridden) out.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

// posix_spawn of the devplane binary with stdout/stderr redirected to files.
pid_t spawn(const std::vector<std::string>& args, const Env& env, const std::string& cwd,
            const std::filesystem::path& out, const std::filesystem::path& err,
            std::string& error) {
  std::vector<std::string> argv_s;
  argv_s.push_back(devplane_binary());
  for (const auto& a : args) argv_s.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_s = child_env(env);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv_s[0].c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    error = "posix_spawn " + argv_s[0] + ": " + std::strerror(rc);
    return -1;
  }
  return pid;
}

// Waits for `pid` up to `timeout`. Returns true when it exited; fills `status`.
bool wait_for(pid_t pid, std::chrono::milliseconds timeout, int& status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // already reaped
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------- TempDir

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::filesystem::path root = base != nullptr && *base != '\0' ? base : "/tmp";
  for (int i = 0; i < 100; ++i) {
    auto p = root / ("dp-it-" + random_hex(12));
    std::error_code ec;
    if (std::filesystem::create_directory(p, ec)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory under " + root.string());
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---------------------------------------------------------------------------- PostgreSQL

std::string pg_base_url() {
  const char* v = std::getenv("DEVPLANE_TEST_PG_URL");
  return v != nullptr ? std::string(v) : std::string();
}

namespace {

std::string pg_exec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string e = std::string("cannot connect to PostgreSQL: ") + PQerrorMessage(c);
    PQfinish(c);
    return e;
  }
  PGresult* r = PQexec(c, sql.c_str());
  std::string e;
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    e = std::string("PostgreSQL: ") + sql + ": " + PQresultErrorMessage(r);
  }
  PQclear(r);
  PQfinish(c);
  return e;
}

}  // namespace

PgDatabase::PgDatabase() {
  const std::string base = pg_base_url();
  if (base.empty()) {
    error_ =
        "DEVPLANE_TEST_PG_URL is not set: the PostgreSQL integration tests need it "
        "(scripts/test sets it, e.g. postgres://postgres@127.0.0.1:55432/postgres)";
    return;
  }
  auto parsed = boost::urls::parse_uri(base);
  if (!parsed) {
    error_ = "DEVPLANE_TEST_PG_URL is not a URL: " + base;
    return;
  }
  name_ = "dp_it_" + random_hex(16);
  boost::urls::url u(*parsed);
  u.set_path("/" + name_);
  url_ = std::string(u.buffer());
  if (auto e = pg_exec(base, "CREATE DATABASE " + name_); !e.empty()) {
    error_ = e + " (DEVPLANE_TEST_PG_URL=" + base + ")";
    name_.clear();
  }
}

PgDatabase::~PgDatabase() {
  if (name_.empty()) return;
  (void)pg_exec(pg_base_url(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::string PgDatabase::exec(const std::string& sql) const { return pg_exec(url_, sql); }

// ---------------------------------------------------------------------------- processes

ProcessResult run_devplane(const std::vector<std::string>& args, const Env& env,
                           std::chrono::milliseconds timeout, const std::string& cwd) {
  ProcessResult r;
  TempDir tmp;
  const auto out = tmp.path() / "stdout";
  const auto err = tmp.path() / "stderr";
  std::string error;
  const pid_t pid = spawn(args, env, cwd.empty() ? tmp.str() : cwd, out, err, error);
  if (pid < 0) {
    r.err = error;
    return r;
  }
  int status = 0;
  if (!wait_for(pid, timeout, status)) {
    ::kill(pid, SIGKILL);
    (void)wait_for(pid, 10s, status);
    r.timed_out = true;
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signaled = true;
    r.signal = WTERMSIG(status);
  }
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) kill9();
}

namespace {

std::mutex g_tokens_mu;
std::map<std::uint16_t, std::string> g_tokens;  // guarded by g_tokens_mu

// Signs in as the first-run admin and remembers the token for clients of this port.
void sign_in_admin(std::uint16_t port) {
  HttpClient c(port, 30s);
  c.set_token("");
  const std::string body =
      std::string(R"({"username":"admin","password":")") + kAdminPassword + R"("})";
  auto r = c.post("/api/v1/auth/login", body);
  std::lock_guard lock(g_tokens_mu);
  if (r.status == 200) {
    g_tokens[port] = r.str("/data/accessToken");
  } else {
    g_tokens.erase(port);
  }
}

}  // namespace

std::string admin_token(std::uint16_t port) {
  std::lock_guard lock(g_tokens_mu);
  auto it = g_tokens.find(port);
  return it == g_tokens.end() ? std::string() : it->second;
}

std::string ServerProcess::start(const ServerConfig& given) {
  if (pid_ > 0) return "already running";
  ServerConfig config = given;
  auto set_default = [&](const char* name, const char* value) {
    for (const auto& [k, v] : config.env) {
      if (k == name) return;
    }
    config.env.emplace_back(name, value);
  };
  set_default("DEVPLANE_ADMIN_PASSWORD", kAdminPassword);
  set_default("DEVPLANE_JWT_SECRET", kJwtSecret);
  // Argon2id at its interactive cost keeps sign-ins fast under the sanitizers.
  set_default("DEVPLANE_PASSWORD_HASH_COST", "interactive");
  own_dir_ = std::make_unique<TempDir>();
  log_dir_ = own_dir_->path();
  std::vector<std::string> args = {"serve", "--host", "127.0.0.1"};
  // A test that restarts a server its clients reconnect to names a fixed port.
  if (std::find(config.extra_args.begin(), config.extra_args.end(), "--port") ==
      config.extra_args.end()) {
    args.insert(args.end(), {"--port", "0"});
  }
  if (config.backend == Backend::kPostgres) {
    if (config.database_url.empty()) return "no database url for a PostgreSQL server";
    args.insert(args.end(), {"--database-url", config.database_url});
    data_dir_.clear();
  } else {
    data_dir_ = config.data_dir.empty() ? (own_dir_->path() / "data").string() : config.data_dir;
    args.insert(args.end(), {"--data-dir", data_dir_});
  }
  for (const auto& a : config.extra_args) args.push_back(a);
  std::string error;
  pid_ = spawn(args, config.env, own_dir_->str(), log_dir_ / "stdout", log_dir_ / "stderr", error);
  if (pid_ < 0) return error;

  const auto deadline = std::chrono::steady_clock::now() + config.ready_timeout;
  const std::string marker = "devplane listening on http://127.0.0.1:";
  for (;;) {
    const std::string out = stdout_text();
    if (auto p = out.find(marker); p != std::string::npos) {
      const auto start = p + marker.size();
      const auto end = out.find('/', start);
      if (end != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::stoi(out.substr(start, end - start)));
        sign_in_admin(port_);
        return {};
      }
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return "devplane serve exited with status " + std::to_string(decode_status(status)) +
             " before listening; stderr:\n" + tail(stderr_text());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill9();
      return "devplane serve did not print its listening line within " +
             std::to_string(config.ready_timeout.count()) + " ms; stderr:\n" +
             tail(stderr_text());
    }
    std::this_thread::sleep_for(10ms);
  }
}

std::string ServerProcess::stderr_text() const {
  return log_dir_.empty() ? std::string() : read_file(log_dir_ / "stderr");
}

std::string ServerProcess::stdout_text() const {
  return log_dir_.empty() ? std::string() : read_file(log_dir_ / "stdout");
}

void ServerProcess::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ServerProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  if (!wait_for(pid_, timeout, status)) {
    kill9();
    return -1;
  }
  pid_ = -1;
  return decode_status(status);
}

int ServerProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return wait(timeout);
}

void ServerProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  (void)wait_for(pid_, 30s, status);
  pid_ = -1;
}

// ---------------------------------------------------------------------------- TestServer

TestServer::TestServer(Backend backend, std::vector<std::string> extra_args, Env env)
    : backend_(backend) {
  config_.backend = backend;
  config_.extra_args = std::move(extra_args);
  config_.env = std::move(env);
  if (backend == Backend::kPostgres) {
    pg_ = std::make_unique<PgDatabase>();
    if (!pg_->ok()) {
      error_ = pg_->error();
      return;
    }
    config_.database_url = pg_->url();
  } else {
    data_ = std::make_unique<TempDir>();
    config_.data_dir = (data_->path() / "data").string();
  }
  error_ = process_.start(config_);
}

TestServer::~TestServer() {
  // Stop the server before its database is dropped.
  process_.kill9();
}

std::string TestServer::restart() {
  if (process_.running()) return "still running";
  return process_.start(config_);
}

std::vector<std::string> TestServer::store_args() const {
  if (backend_ == Backend::kPostgres) return {"--database-url", config_.database_url};
  return {"--data-dir", config_.data_dir};
}

// ---------------------------------------------------------------------------- HTTP

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

const boost::json::value* HttpResponse::at(std::string_view pointer) const {
  if (!json) return nullptr;
  boost::system::error_code ec;
  const auto* v = json->find_pointer(pointer, ec);
  return ec ? nullptr : v;
}

std::string HttpResponse::str(std::string_view pointer) const {
  const auto* v = at(pointer);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t HttpResponse::num(std::string_view pointer, std::int64_t fallback) const {
  const auto* v = at(pointer);
  if (v == nullptr) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return fallback;
}

std::string HttpResponse::describe() const {
  std::string b = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return "status=" + std::to_string(status) + " body=" + b;
}

std::string json_str(const boost::json::value& v) { return boost::json::serialize(v); }

boost::json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) return nullptr;
  return v;
}

struct HttpClient::Impl {
  asio::io_context io;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::uint16_t port;
  std::chrono::milliseconds timeout;

  // Runs the io_context until the pending operation completes (the stream deadline bounds it).
  void run(const bool& done) {
    io.restart();
    while (!done && io.run_one() > 0) {
    }
  }

  beast::error_code connect() {
    stream = std::make_unique<beast::tcp_stream>(io);
    buffer.clear();
    beast::error_code ec;
    bool done = false;
    stream->expires_after(timeout);
    stream->async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code e) {
                            ec = e;
                            done = true;
                          });
    run(done);
    if (ec) stream.reset();
    return ec;
  }

  beast::error_code write(bhttp::request<bhttp::string_body>& req) {
    beast::error_code ec;
    bool done = false;
    stream->expires_after(timeout);
    bhttp::async_write(*stream, req, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    run(done);
    return ec;
  }

  beast::error_code write_raw(std::string_view bytes) {
    beast::error_code ec;
    bool done = false;
    stream->expires_after(timeout);
    asio::async_write(*stream, asio::buffer(bytes.data(), bytes.size()),
                      [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    run(done);
    return ec;
  }

  beast::error_code read(HttpResponse& out, bool head) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(head);
    beast::error_code ec;
    bool done = false;
    stream->expires_after(timeout);
    bhttp::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    run(done);
    if (ec) return ec;
    auto res = parser.release();
    out.status = res.result_int();
    out.reason = std::string(res.reason());
    for (const auto& f : res) out.headers.emplace_back(f.name_string(), f.value());
    out.body = std::move(res.body());
    out.keep_alive = res.keep_alive();
    if (!out.body.empty()) {
      boost::system::error_code jec;
      auto v = boost::json::parse(out.body, jec);
      if (!jec) out.json = std::move(v);
    }
    return ec;
  }
};

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
  if (impl_->stream) {
    beast::error_code ec;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->stream->close();
    impl_->stream.reset();
  }
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers& headers) {
  error_.clear();
  bhttp::request<bhttp::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.set(bhttp::field::user_agent, "devplane-integration-tests");
  bool has_length = false;
  bool has_type = false;
  bool has_auth = false;
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, "host")) {  // replaces the default (DNS-rebinding tests)
      req.set(bhttp::field::host, v);
      continue;
    }
    if (beast::iequals(k, "authorization")) {
      has_auth = true;
      if (v.empty()) continue;  // {"Authorization", ""}: send no credential
    }
    req.insert(k, v);
    if (beast::iequals(k, "content-length") || beast::iequals(k, "transfer-encoding")) {
      has_length = true;
    }
    if (beast::iequals(k, "content-type")) has_type = true;
  }
  if (!has_auth) {
    const std::string token = token_ ? *token_ : admin_token(impl_->port);
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  }
  req.body() = std::string(body);
  if (!body.empty() && !has_type) req.set(bhttp::field::content_type, "application/json");
  if (!has_length && (!body.empty() || method == "POST" || method == "PUT")) {
    req.content_length(body.size());
  }

  HttpResponse out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !impl_->stream;
    if (fresh) {
      if (auto ec = impl_->connect()) {
        error_ = "connect: " + ec.message();
        return out;
      }
      ++connects_;
    }
    // A server may answer and close before it has read the whole request (413): a failed
    // write still leaves that answer to read, as `raw` does.
    const auto wec = impl_->write(req);
    auto ec = impl_->read(out, method == "HEAD");
    if (!ec) {
      if (!out.keep_alive) close();
      return out;
    }
    if (wec) ec = wec;
    close();
    out = HttpResponse{};
    error_ = std::string(method) + " " + std::string(target) + ": " + ec.message();
    // A kept-alive connection the server closed while idle: retry once on a fresh one.
    const bool stale = !fresh && (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                                  ec == asio::error::connection_reset ||
                                  ec == asio::error::broken_pipe);
    if (!stale) return out;
  }
  return out;
}

HttpResponse HttpClient::post(std::string_view target, std::string_view body,
                              const Headers& headers) {
  return request("POST", target, body, headers);
}

HttpResponse HttpClient::put(std::string_view target, std::string_view body,
                             const Headers& headers) {
  return request("PUT", target, body, headers);
}

HttpResponse HttpClient::raw(std::string_view bytes) {
  error_.clear();
  close();
  HttpResponse out;
  if (auto ec = impl_->connect()) {
    error_ = "connect: " + ec.message();
    return out;
  }
  ++connects_;
  // The server may answer and close before reading everything (413, 431): a failed write is
  // expected then, and the answer is still in our receive buffer.
  const auto wec = impl_->write_raw(bytes);
  if (auto ec = impl_->read(out, false)) {
    out = HttpResponse{};
    error_ = "read: " + ec.message() + (wec ? " (write: " + wec.message() + ")" : "");
  }
  close();
  return out;
}

bool HttpClient::server_closed(std::chrono::milliseconds wait) {
  if (!impl_->stream) return true;
  char c = 0;
  beast::error_code ec;
  bool done = false;
  impl_->stream->expires_after(wait);
  impl_->stream->async_read_some(asio::buffer(&c, 1),
                                 [&](beast::error_code e, std::size_t) {
                                   ec = e;
                                   done = true;
                                 });
  impl_->run(done);
  const bool closed = ec == asio::error::eof || ec == asio::error::connection_reset;
  close();
  return closed;
}

}  // namespace dp::it
