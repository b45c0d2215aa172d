// The integration harness: starts the real `devplane` binary and talks to it over HTTP.
//
// - `TempDir`: a fresh folder under $TMPDIR, removed with everything in it.
// - `PgDatabase`: a fresh PostgreSQL database `dp_it_<random>` on the server named by
//   DEVPLANE_TEST_PG_URL, dropped (WITH (FORCE)) at destruction.
// - `run_devplane()`: runs a subcommand to completion (bounded) and captures its output.
// - `ServerProcess`: `devplane serve --port 0` started with posix_spawn; the port is read
//   from its stdout line `devplane listening on http://127.0.0.1:PORT/`; stderr goes to a file.
//   The destructor kills a process still running, so a failed assertion never leaks one.
// - `HttpClient`: a synchronous HTTP/1.1 client on Beast with keep-alive, custom methods,
//   headers and raw bytes. Every operation has a deadline.
//
// Authentication: every server starts with DEVPLANE_ADMIN_PASSWORD=kAdminPassword and
// DEVPLANE_JWT_SECRET=kJwtSecret (unless the test's env sets them), and `ServerProcess::start`
// signs in as `admin` once. An `HttpClient` then sends `Authorization: Bearer <that token>`
// on every request by default. To send another credential, pass an `Authorization` header
// or call `set_token()` (a `Host` header replaces the default one); to send none, pass `{"Authorization", ""}` or call `set_token("")`.
//
// Everything listens and connects on 127.0.0.1 only. Not thread-safe: one object per thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace dp::it {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The first-run admin's password and the HS256 key every test server gets by default.
inline constexpr const char* kAdminPassword = "it-admin-password-0001";
inline constexpr const char* kJwtSecret = "integration-test-jwt-secret-0123456789abcdef";

// The admin access token `ServerProcess::start` obtained for the server on `port` (empty
// when it could not sign in, e.g. the test changed the admin password).
std::string admin_token(std::uint16_t port);

// Path of the devplane binary under test (from the DP_DEVPLANE_BINARY compile definition).
std::string devplane_binary();
// Root of the source tree (from DP_SOURCE_DIR).
std::string source_dir();

enum class Backend { kSqlite, kPostgres };
std::string to_string(Backend b);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The PostgreSQL server tests use: the value of DEVPLANE_TEST_PG_URL, or empty when unset.
std::string pg_base_url();

class PgDatabase {
 public:
  // Creates the database. On failure `ok()` is false and `error()` says why (naming
  // DEVPLANE_TEST_PG_URL when it is unset).
  PgDatabase();
  ~PgDatabase();
  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  // postgres://.../dp_it_<random>
  const std::string& url() const { return url_; }
  // Runs one SQL statement on this database; returns an error message or empty.
  std::string exec(const std::string& sql) const;

 private:
  std::string name_;
  std::string url_;
  std::string error_;
};

struct ProcessResult {
  int exit_code = -1;  // valid when !signaled && !timed_out
  bool signaled = false;
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

using Env = std::vector<std::pair<std::string, std::string>>;

// Runs `devplane <args...>` to completion in `cwd` (a temp dir when empty) with the current
// environment minus every DEVPLANE_* variable, plus `env`. Killed after `timeout`.
ProcessResult run_devplane(const std::vector<std::string>& args, const Env& env = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(60),
                           const std::string& cwd = {});

struct ServerConfig {
  Backend backend = Backend::kSqlite;
  std::string data_dir;      // SQLite folder; a fresh temp dir when empty
  std::string database_url;  // required for kPostgres
  std::vector<std::string> extra_args;  // with "--port N" the server listens on N, else on a free port
  Env env;
  std::chrono::milliseconds ready_timeout{60'000};
};

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts `devplane serve` and waits (bounded) for the listening line. Returns an empty
  // string on success, else what went wrong (with the tail of stderr).
  std::string start(const ServerConfig& config);
  bool running() const { return pid_ > 0; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string stderr_text() const;
  std::string stdout_text() const;

  // SIGTERM, then waits up to `timeout`; returns the exit code, or 128+signal when
  // killed by a signal, or -1 when it did not exit in time (then it is killed with SIGKILL).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap.
  void kill9();
  // Sends a signal without waiting.
  void signal(int sig) const;
  // Waits (bounded) for the process to exit on its own; same return values as stop().
  int wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::unique_ptr<TempDir> own_dir_;   // logs, and the SQLite folder when none was given
  std::filesystem::path log_dir_;
  std::string data_dir_;
};

struct HttpResponse {
  unsigned status = 0;
  std::string reason;
  Headers headers;  // names as sent by the server
  std::string body;
  std::optional<boost::json::value> json;  // when the body parses as JSON
  bool keep_alive = false;

  // Case-insensitive header lookup; empty when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // json->at_pointer(ptr) as a string / int, or a fallback.
  std::string str(std::string_view pointer) const;
  std::int64_t num(std::string_view pointer, std::int64_t fallback = -1) const;
  const boost::json::value* at(std::string_view pointer) const;
  // "status=400 body=..." for failure messages.
  std::string describe() const;
};

struct HttpError {
  std::string message;  // empty when the exchange succeeded
};

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request on the kept-alive connection (reconnects once when the server has closed
  // an idle connection). `Content-Length` is set from the body unless `headers` has one.
  // On a transport failure `status` is 0 and `error()` says why.
  HttpResponse request(std::string_view method, std::string_view target,
                       std::string_view body = {}, const Headers& headers = {});
  HttpResponse get(std::string_view target, const Headers& headers = {}) {
    return request("GET", target, {}, headers);
  }
  HttpResponse post(std::string_view target, std::string_view body, const Headers& headers = {});
  HttpResponse put(std::string_view target, std::string_view body, const Headers& headers = {});
  HttpResponse del(std::string_view target, const Headers& headers = {}) {
    return request("DELETE", target, {}, headers);
  }

  // Sends raw bytes on a fresh connection (tolerating the server closing it early) and
  // reads one HTTP response. status 0 when none could be read.
  HttpResponse raw(std::string_view bytes);

  // The bearer token sent when a request has no Authorization header: by default the
  // server's admin token; "" sends none; reset_token() goes back to the default.
  void set_token(std::string token) { token_ = std::move(token); }
  void reset_token() { token_.reset(); }

  // Number of TCP connections opened so far (keep-alive check).
  int connects() const { return connects_; }
  const std::string& error() const { return error_; }
  void close();
  // True when the server has closed the kept-alive connection (reads EOF within `wait`).
  bool server_closed(std::chrono::milliseconds wait);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int connects_ = 0;
  std::string error_;
  std::optional<std::string> token_;
};

// JSON helpers.
std::string json_str(const boost::json::value& v);
boost::json::value parse_json(std::string_view text);  // null on error

// Starts a server of the given backend with its own fresh database; owns both.
// `error()` is non-empty when anything failed (for ASSERT messages).
class TestServer {
 public:
  explicit TestServer(Backend backend, std::vector<std::string> extra_args = {}, Env env = {});
  ~TestServer();
  const std::string& error() const { return error_; }
  ServerProcess& process() { return process_; }
  std::uint16_t port() const { return process_.port(); }
  Backend backend() const { return backend_; }
  // The data dir (SQLite) or database url (PostgreSQL) to restart on the same data.
  ServerConfig config() const { return config_; }
  // Restarts on the same data (after stop() or kill9()).
  std::string restart();
  PgDatabase* pg() { return pg_.get(); }
  // Arguments naming this server's store for a subcommand (`--data-dir X` or `--database-url U`).
  std::vector<std::string> store_args() const;

 private:
  Backend backend_;
  std::unique_ptr<TempDir> data_;
  std::unique_ptr<PgDatabase> pg_;
  ServerConfig config_;
  ServerProcess process_;
  std::string error_;
};

}  // namespace dp::it
