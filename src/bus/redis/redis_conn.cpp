#include "bus/redis/redis_conn.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <charconv>
#include <utility>

#include <hiredis/hiredis.h>

#include <boost/url/parse.hpp>

namespace dp::bus::redis {
namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(d.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((d.count() % 1000) * 1000);
  return tv;
}

// Reply trees are shallow (streams nest four levels), but a hostile or corrupt byte stream
// fed through parse_resp could nest deeper; stop well before the stack minds.
constexpr int kMaxDepth = 32;

Value convert(const redisReply* r, int depth) {
  if (r == nullptr || depth > kMaxDepth) return Value::error("ERR reply nested too deeply");
  switch (r->type) {
    case REDIS_REPLY_STRING: return Value::string(std::string(r->str, r->len));
    case REDIS_REPLY_STATUS: return Value::status(std::string(r->str, r->len));
    case REDIS_REPLY_ERROR: return Value::error(std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER: return Value::integer_value(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Value> v;
      v.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.push_back(convert(r->element[i], depth + 1));
      return Value::array(std::move(v));
    }
    default: return Value::nil();
  }
}

// hiredis writes with write(2), and writing to a socket Redis has reset raises SIGPIPE,
// whose default action ends the process. Nothing else in devplane ignores SIGPIPE, and a
// library must not change process-wide dispositions, so each command blocks it on the
// calling thread and swallows one it raised (the technique libpq uses): the write then
// simply fails with EPIPE and the connection counts as lost.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    blocked_ = pthread_sigmask(SIG_BLOCK, &block, &old_) == 0;
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        const timespec zero{0, 0};
        sigtimedwait(&pipe, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_{};
  bool was_pending_ = false;
  bool blocked_ = false;
};

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

}  // namespace

Result<Endpoint> parse_redis_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Error::invalid_argument("bad_config",
                                   "redis url must look like redis://[:password@]host:port[/db]: " +
                                       std::string(why));
  };
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a URI");
  if (u->scheme() != "redis") return bad("scheme must be redis");
  Endpoint e;
  if (!u->host().empty()) e.host = u->host();
  if (u->has_port()) {
    if (u->port_number() == 0) return bad("bad port");
    e.port = u->port_number();
  }
  if (u->has_userinfo()) {
    e.user = u->user();
    if (u->has_password()) e.password = u->password();
  }
  std::string path = u->path();
  if (!path.empty() && path != "/") {
    std::string_view digits = std::string_view(path).substr(1);
    int db = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), db);
    if (ec != std::errc() || p != digits.data() + digits.size() || db < 0) {
      return bad("database must be a number");
    }
    e.db = db;
  }
  if (u->has_query() || u->has_fragment()) return bad("no query or fragment");
  return e;
}

Result<Value> parse_resp(std::string_view bytes) {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return Error::internal("redis: cannot allocate a reader");
  Result<Value> out = Error::invalid_argument("bad_reply", "incomplete RESP reply");
  if (redisReaderFeed(reader, bytes.data(), bytes.size()) == REDIS_OK) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
      out = Error::invalid_argument("bad_reply", std::string("malformed RESP: ") + reader->errstr);
    } else if (raw != nullptr) {
      ReplyPtr reply(raw);
      out = convert(static_cast<redisReply*>(raw), 0);
    }
  }
  redisReaderFree(reader);
  return out;
}

struct Connection::Impl {
  redisContext* ctx = nullptr;
  std::atomic<int> fd{-1};
  ~Impl() {
    if (ctx != nullptr) redisFree(ctx);
  }
};

Connection::Connection(std::unique_ptr<Impl> impl, std::chrono::milliseconds timeout)
    : impl_(std::move(impl)), timeout_(timeout), current_deadline_(timeout) {}

Connection::~Connection() = default;

Result<std::unique_ptr<Connection>> Connection::open(const Endpoint& endpoint,
                                                     std::chrono::milliseconds timeout) {
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  auto impl = std::make_unique<Impl>();
  impl->ctx = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(timeout));
  if (impl->ctx == nullptr) return Error::unavailable("redis: cannot allocate a context");
  if (impl->ctx->err != 0) {
    return Error::unavailable("redis at " + where + ": " + impl->ctx->errstr);
  }
  if (redisSetTimeout(impl->ctx, to_timeval(timeout)) != REDIS_OK) {
    return Error::unavailable("redis at " + where + ": cannot set timeouts");
  }
  impl->fd = impl->ctx->fd;
  std::unique_ptr<Connection> conn(new Connection(std::move(impl), timeout));
  if (!endpoint.password.empty()) {
    Command auth = endpoint.user.empty() ? Command{"AUTH", endpoint.password}
                                         : Command{"AUTH", endpoint.user, endpoint.password};
    DP_ASSIGN_OR_RETURN(Value r, conn->command(auth));
    // The reply text may echo nothing secret, but keep it out of the message anyway.
    if (r.is_error()) return Error::unavailable("redis at " + where + ": authentication failed");
  }
  if (endpoint.db != 0) {
    DP_ASSIGN_OR_RETURN(Value r, conn->command({"SELECT", std::to_string(endpoint.db)}));
    if (r.is_error()) return Error::unavailable("redis at " + where + ": SELECT: " + r.str);
  }
  return conn;
}

void Connection::set_read_deadline(std::chrono::milliseconds d) {
  if (d == current_deadline_) return;
  // A failed setsockopt leaves the old deadline, which is still a deadline.
  if (redisSetTimeout(impl_->ctx, to_timeval(d)) == REDIS_OK) current_deadline_ = d;
}

Result<Value> Connection::command(const Command& argv, std::chrono::milliseconds extra) {
  if (broken_) return Error::unavailable("redis: connection lost");
  SigpipeGuard no_sigpipe;
  set_read_deadline(timeout_ + extra);
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr reply(redisCommandArgv(impl_->ctx, static_cast<int>(args.size()), args.data(),
                                  lens.data()));
  if (!reply) {
    broken_ = true;
    return Error::unavailable(std::string("redis: ") +
                              (impl_->ctx->err != 0 ? impl_->ctx->errstr : "no reply"));
  }
  return convert(static_cast<redisReply*>(reply.get()), 0);
}

Result<std::vector<Value>> Connection::pipeline(const std::vector<Command>& commands) {
  if (broken_) return Error::unavailable("redis: connection lost");
  SigpipeGuard no_sigpipe;
  set_read_deadline(timeout_);
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(impl_->ctx, static_cast<int>(args.size()), args.data(),
                               lens.data()) != REDIS_OK) {
      broken_ = true;
      return Error::unavailable("redis: cannot buffer a command");
    }
  }
  std::vector<Value> out;
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(impl_->ctx, &raw) != REDIS_OK || raw == nullptr) {
      broken_ = true;
      return Error::unavailable(std::string("redis: ") +
                                (impl_->ctx->err != 0 ? impl_->ctx->errstr : "no reply"));
    }
    ReplyPtr reply(raw);
    out.push_back(convert(static_cast<redisReply*>(raw), 0));
  }
  return out;
}

void Connection::interrupt() noexcept {
  const int fd = impl_->fd.load();
  // shutdown, not close: the descriptor stays owned by hiredis (no reuse race), and a
  // blocked recv returns at once.
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace dp::bus::redis
