#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <iterator>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "http/internal/ws_session.hpp"

namespace dp::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

Response plain_error(unsigned status_hint, std::string reason, std::string message,
                     std::string_view request_id) {
  Error e{ErrorCode::kInvalidArgument, std::move(reason), std::move(message), nullptr};
  if (status_hint == 404) e.code = ErrorCode::kNotFound;
  return error_response(e, request_id);
}

bool is_mutating(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

// Runs `fn` (which must not throw) on `pool` and resumes the awaiting coroutine on its own
// executor with the result. One post to the pool and one back, with no coroutine frame of
// its own: co_spawn onto the pool (what this replaced) made and ran a second coroutine per
// request, which showed in a GET's profile.
template <class T, class Fn>
asio::awaitable<T> on_pool(asio::thread_pool& pool, Fn fn) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [&pool](auto handler, Fn f) {
        // Keeps the session's io_context running until the answer is back.
        auto back = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [h = std::move(handler), f = std::move(f), back = std::move(back)]() mutable {
          T result = f();
          auto ex = back.get_executor();
          asio::dispatch(ex, [h = std::move(h), result = std::move(result),
                              back = std::move(back)]() mutable { std::move(h)(std::move(result)); });
        });
      },
      asio::use_awaitable, std::move(fn));
}

}  // namespace

struct SessionState {
  explicit SessionState(tcp::socket&& s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::atomic<bool> idle{true};
  std::uint64_t id = 0;
  std::string remote;  // the peer's address, read once per connection
  // Set when the connection became a WebSocket: its own coroutine then ends the session,
  // so the HTTP coroutine's frame (parser, buffers) is freed for the connection's lifetime.
  std::atomic<bool> upgraded{false};
  // A request was refused before its body was read: drain before closing (drain_before_close).
  bool linger = false;
};

struct WsEndpoint {
  std::string path;
  WsHandler* handler = nullptr;
  WsOptions options;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl>, internal::WsRegistry {
  Impl(asio::io_context& io_, asio::thread_pool& blocking_, const Router& router_,
       ServerOptions options_, RequestObserver* observer_)
      : io(io_),
        blocking(blocking_),
        router(router_),
        options(std::move(options_)),
        observer(observer_),
        acceptor(asio::make_strand(io_)),
        drain_timer(io_) {
    std::size_t shards = options.ws_shards;
    if (shards == 0) shards = std::max(1U, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < shards; ++i) {
      ws_shards.push_back(std::make_shared<internal::WsShard>(io_));
    }
  }

  asio::io_context& io;
  asio::thread_pool& blocking;
  asio::thread_pool* writes = &blocking;  // set before start(), then read-only
  const Router& router;
  const ServerOptions options;
  RequestObserver* observer;
  tcp::acceptor acceptor;
  asio::steady_timer drain_timer;
  std::atomic<bool> stopping{false};
  std::uint16_t bound_port = 0;

  std::mutex mu;
  std::unordered_map<std::uint64_t, std::shared_ptr<SessionState>> sessions;  // guarded by mu
  std::uint64_t next_session = 0;                                              // guarded by mu
  std::function<void()> on_drained;                                            // guarded by mu
  std::unordered_map<const WsConnection*, std::weak_ptr<WsConnection>> ws_open;  // guarded by mu
  std::vector<WsEndpoint> ws_endpoints;  // set before start(), then read-only
  std::vector<std::shared_ptr<internal::WsShard>> ws_shards;  // fixed at construction
  std::atomic<std::size_t> next_shard{0};
  Authenticator* authenticator = nullptr;  // set before start(), then read-only
  RequestAuditor* auditor = nullptr;       // set before start(), then read-only

  // Blocking: who calls, and may they? Fills req.caller. Ok for public routes.
  Status check_access(Request& req) {
    if (authenticator == nullptr || authenticator->is_public(req.method, req.route)) return Ok{};
    DP_ASSIGN_OR_RETURN(req.caller, authenticator->authenticate(req));
    return authenticator->authorize(req.caller, req.method, req.route);
  }

  // Blocking: the access check, the handler, and the audit of the outcome.
  Response handle(const Handler& h, Request& req) {
    Response r;
    Status access = check_access(req);
    if (!access.ok()) {
      r = error_response(access.error(), req.request_id);
      if (access.error().code == ErrorCode::kUnauthenticated) {
        r.set_header("WWW-Authenticate", "Bearer realm=\"devplane\"");
      }
    } else {
      try {
        r = h(req);
      } catch (const std::exception& e) {
        req.log.error("handler threw", {{"error", e.what()}, {"route", req.route}});
        r = error_response(Error::internal(e.what()), req.request_id);
      }
    }
    const bool mutating = is_mutating(req.method);
    const bool refused = r.status == 401 || r.status == 403;
    if (auditor != nullptr && (refused || (mutating && !(r.audited_by_handler && r.status < 400)))) {
      try {
        auditor->on_handled(req, r);
      } catch (const std::exception& e) {
        req.log.error("audit failed", {{"error", e.what()}, {"route", req.route}});
      }
    }
    return r;
  }

  // internal::WsRegistry
  void opened(const std::shared_ptr<WsConnection>& c) override {
    bool late = false;
    {
      std::lock_guard lock(mu);
      ws_open.emplace(c.get(), c);
      late = stopping.load();
    }
    if (late) c->close(1001, "server shutting down");
  }
  void closed(const WsConnection& c) override {
    std::lock_guard lock(mu);
    ws_open.erase(&c);
  }

  // The endpoint whose path pattern matches `target`'s path; a `:name` segment matches any
  // one non-empty segment and lands in `params` (when given).
  const WsEndpoint* ws_endpoint(std::string_view target, Fields* params = nullptr) const {
    const auto q = target.find('?');
    const auto path = target.substr(0, q);
    for (const auto& e : ws_endpoints) {
      Fields found;
      if (ws_path_matches(e.path, path, found)) {
        if (params != nullptr) *params = std::move(found);
        return &e;
      }
    }
    return nullptr;
  }

  static bool ws_path_matches(std::string_view pattern, std::string_view path, Fields& params) {
    while (!pattern.empty() || !path.empty()) {
      if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') {
        return false;
      }
      pattern.remove_prefix(1);
      path.remove_prefix(1);
      const auto pe = pattern.find('/');
      const auto se = path.find('/');
      const std::string_view pseg = pattern.substr(0, pe);
      const std::string_view seg = path.substr(0, se);
      if (!pseg.empty() && pseg.front() == ':') {
        if (seg.empty()) return false;
        params.emplace_back(std::string(pseg.substr(1)), std::string(seg));
      } else if (pseg != seg) {
        return false;
      }
      pattern.remove_prefix(pseg.size());
      path.remove_prefix(seg.size());
    }
    return true;
  }

  void fire_drained_locked(std::unique_lock<std::mutex>& lock) {
    if (!on_drained) return;
    auto cb = std::move(on_drained);
    on_drained = nullptr;
    lock.unlock();
    cb();
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping.load()) co_return;
        // Out of descriptors and the like: back off briefly instead of spinning.
        log::global().warn("accept failed", {{"error", ec.message()}});
        asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(kUseTuple);
        continue;
      }
      auto state = std::make_shared<SessionState>(std::move(socket));
      std::uint64_t id = 0;
      {
        std::lock_guard lock(mu);
        id = next_session++;
        sessions.emplace(id, state);
      }
      state->id = id;
      beast::error_code ep_ec;
      const auto ep = state->stream.socket().remote_endpoint(ep_ec);
      if (!ep_ec) state->remote = ep.address().to_string();
      if (observer != nullptr) observer->on_connection(+1);
      auto ex = state->stream.get_executor();
      asio::co_spawn(ex, run_session(state), [self, state, id](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& err) {
            log::global().error("session failed", {{"session", id}, {"error", err.what()}});
          }
        }
        if (!state->upgraded.load()) self->end_session(id);
      });
    }
  }

  void end_session(std::uint64_t id) {
    if (observer != nullptr) observer->on_connection(-1);
    std::unique_lock lock(mu);
    sessions.erase(id);
    if (stopping.load() && sessions.empty()) fire_drained_locked(lock);
  }

  asio::awaitable<void> write(SessionState& s, bhttp::response<bhttp::string_body>& res) {
    s.stream.expires_after(options.request_timeout);
    co_await bhttp::async_write(s.stream, res, kUseTuple);
  }

  // Answers with `r` and closes: for requests refused before they reach a handler.
  asio::awaitable<void> write_error(SessionState& s, unsigned version, Response r,
                                    std::string_view request_id) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "devplane");
    res.set(bhttp::field::content_type, r.content_type);
    res.set("X-Request-Id", request_id);
    res.set("X-Content-Type-Options", "nosniff");
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(false);
    res.body() = std::move(r.body);
    res.prepare_payload();
    co_await write(s, res);
    s.linger = true;
  }

  // Half-closes, then reads and drops what the client still sends, until it closes its side,
  // `linger_timeout` passes or shutdown cancels the read (the session counts as idle here).
  asio::awaitable<void> drain_before_close(SessionState& s) {
    beast::error_code ignored;
    s.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    s.idle.store(true);
    if (stopping.load()) co_return;
    s.stream.expires_after(options.linger_timeout);
    std::array<char, 16 * 1024> sink;
    for (;;) {
      auto [ec, n] = co_await s.stream.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
    }
  }

  asio::awaitable<void> run_session(std::shared_ptr<SessionState> state) {
    SessionState& s = *state;
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      parser.header_limit(options.max_header_bytes);
      // Mark idle before checking `stopping`: shutdown sets `stopping` and then closes idle
      // sessions, so either we see the flag here or shutdown sees us idle.
      s.idle.store(true);
      if (stopping.load()) break;
      s.stream.expires_after(first ? options.header_timeout : options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(s.stream, buffer, parser, kUseTuple);
      if (ec) {
        const std::string rid = ids::uuid_v7();
        if (ec == bhttp::error::header_limit) {
          co_await write_error(s, 11, plain_error(431, "headers_too_large",
                                                  "request headers exceed the limit", rid), rid);
        } else if (ec == bhttp::error::body_limit) {
          // Beast checks Content-Length against the body limit while it parses the header,
          // so the header is not complete here: answer without reading any of it.
          Error e{ErrorCode::kResourceExhausted, "payload_too_large",
                  "request body exceeds the limit of " + std::to_string(options.max_body_bytes) +
                      " bytes",
                  nullptr};
          co_await write_error(s, 11, error_response(e, rid), rid);
        } else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                   ec != asio::error::operation_aborted && ec != asio::error::eof &&
                   ec != asio::error::connection_reset && (n > 0 || buffer.size() > 0)) {
          // `n` counts only what the parser accepted; bytes it choked on at once (a TLS
          // hello on the plain port) are still in `buffer` and deserve an answer too.
          co_await write_error(s, 11, plain_error(400, "bad_request",
                                                  "malformed HTTP request: " + ec.message(), rid),
                               rid);
        }
        break;
      }
      s.idle.store(false);
      first = false;
      const auto& head = parser.get();
      const unsigned version = head.version();
      if (parser.content_length() && *parser.content_length() > options.max_body_bytes) {
        Error e{ErrorCode::kResourceExhausted, "payload_too_large",
                "request body of " + std::to_string(*parser.content_length()) +
                    " bytes exceeds the limit of " + std::to_string(options.max_body_bytes),
                nullptr};
        const std::string id = request_id_of(head).value_or(ids::uuid_v7());
        co_await write_error(s, version, error_response(e, id), id);
        break;
      }
      if (beast::websocket::is_upgrade(head)) {
        if (const WsEndpoint* ep = ws_endpoint(head.target()); ep != nullptr) {
          co_await upgrade(state, parser.release(), *ep);
          co_return;
        }
      }
      if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
        s.stream.expires_after(options.request_timeout);
        co_await bhttp::async_write(s.stream, cont, kUseTuple);
      }
      if (!parser.is_done()) {
        s.stream.expires_after(options.request_timeout);
        auto [ec2, n2] = co_await bhttp::async_read(s.stream, buffer, parser, kUseTuple);
        if (ec2) {
          if (ec2 == bhttp::error::body_limit) {
            Error e{ErrorCode::kResourceExhausted, "payload_too_large",
                    "request body exceeds the limit of " + std::to_string(options.max_body_bytes) +
                        " bytes",
                    nullptr};
            const std::string id = request_id_of(parser.get()).value_or(ids::uuid_v7());
            co_await write_error(s, version, error_response(e, id), id);
          }
          break;
        }
      }
      auto breq = parser.release();
      const bool keep_alive = breq.keep_alive();
      Request req = make_request(s, breq);
      req.body = std::move(breq.body());

      Response r = co_await dispatch(req);
      if (r.stream && req.method != "HEAD") {
        co_await stream_response(s, version, req.request_id, std::move(r));
        break;
      }

      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
      res.set(bhttp::field::server, "devplane");
      res.set(bhttp::field::content_type, r.content_type);
      res.set("X-Request-Id", req.request_id);
      res.set("X-Content-Type-Options", "nosniff");
      for (auto& [k, v] : r.headers) res.set(k, v);
      const bool keep = keep_alive && !stopping.load();
      res.keep_alive(keep);
      if (req.method == "HEAD") {
        res.content_length(r.body.size());
      } else {
        res.body() = std::move(r.body);
        res.prepare_payload();
      }
      co_await write(s, res);
      if (!keep) break;
    }
    if (s.linger) {
      co_await drain_before_close(s);
    } else {
      beast::error_code ignored;
      s.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    s.stream.close();
  }

  // Sends `r` chunked (Response::stream): its body, then what `stream` produces, until that
  // ends, the client closes its side, a write fails or times out, or the server shuts down
  // (seen within `stream_poll`). The connection closes after it. Kept apart from the normal
  // response path, which only tests `r.stream`.
  asio::awaitable<void> stream_response(SessionState& s, unsigned version,
                                        std::string_view request_id, Response r) {
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "devplane");
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Request-Id", request_id);
    res.set("X-Content-Type-Options", "nosniff");
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(false);
    // HTTP/1.0 knows no chunks: its body ends when the connection closes.
    const bool chunked = version >= 11;
    res.chunked(chunked);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    s.stream.expires_after(options.request_timeout);
    auto [hec, hn] = co_await bhttp::async_write_header(s.stream, sr, kUseTuple);
    if (hec) co_return;
    auto send = [&s, this, chunked](const std::string& data) -> asio::awaitable<bool> {
      if (data.empty()) co_return true;
      s.stream.expires_after(options.request_timeout);
      auto [ec, n] = chunked ? co_await asio::async_write(
                                   s.stream, bhttp::make_chunk(asio::buffer(data)), kUseTuple)
                             : co_await asio::async_write(s.stream, asio::buffer(data), kUseTuple);
      co_return !ec;
    };
    if (!co_await send(r.body)) co_return;
    // The timer and the flag are touched only on this session's strand: a wake() posts there,
    // so it either finds the wait below pending and ends it, or sets the flag before it starts.
    struct Wait {
      explicit Wait(const asio::any_io_executor& ex) : timer(ex) {}
      asio::steady_timer timer;
      bool woken = false;
    };
    auto wait = std::make_shared<Wait>(s.stream.get_executor());
    if (r.stream_waker) {
      r.stream_waker->attach([wait, ex = s.stream.get_executor()] {
        asio::post(ex, [wait] {
          wait->woken = true;
          wait->timer.cancel();
        });
      });
    }
    struct Detach {
      StreamWaker* waker;
      ~Detach() {
        if (waker != nullptr) waker->detach();
      }
    } detach{r.stream_waker.get()};
    bool client_left = false;
    while (!stopping.load() && !client_left) {
      std::optional<std::string> next = r.stream();
      if (!next) break;
      if (!next->empty()) {
        if (!co_await send(*next)) co_return;
        continue;
      }
      if (!wait->woken) {
        wait->timer.expires_after(r.stream_poll);
        co_await wait->timer.async_wait(kUseTuple);
      }
      wait->woken = false;
      client_left = peer_closed(s.stream.socket());
    }
    if (client_left || !chunked) co_return;
    s.stream.expires_after(options.request_timeout);
    co_await asio::async_write(s.stream, bhttp::make_chunk_last(), kUseTuple);
  }

  // Whether the client closed its side of a streaming connection (or it failed): a
  // non-blocking read, once per poll, which also drops bytes the client sent meanwhile. (Waiting
  // for readability instead can miss the end of stream: it is one edge of an edge-triggered
  // epoll, which may pass while no wait is pending.)
  static bool peer_closed(tcp::socket& sock) {
    std::array<char, 1024> sink{};
    beast::error_code ec;
    sock.non_blocking(true, ec);
    if (ec) return true;
    for (int i = 0; i < 16; ++i) {
      sock.receive(asio::buffer(sink), 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return false;
      if (ec) return true;  // end of stream, reset
    }
    return false;
  }

  static std::optional<std::string> request_id_of(const bhttp::request<bhttp::string_body>& head) {
    auto it = head.find("x-request-id");
    if (it == head.end() || !sane_request_id(it->value())) return std::nullopt;
    return std::string(it->value());
  }

  static Request make_request(SessionState& s, const bhttp::request<bhttp::string_body>& breq) {
    Request req;
    req.method = std::string(breq.method_string());
    req.target = std::string(breq.target());
    req.headers.reserve(static_cast<std::size_t>(std::distance(breq.begin(), breq.end())));
    for (const auto& f : breq) {
      std::string name(f.name_string());
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.remote_address = s.remote;
    auto incoming_id = req.header("x-request-id");
    req.request_id = incoming_id && sane_request_id(*incoming_id) ? std::string(*incoming_id)
                                                                    : ids::uuid_v7();
    req.log = log::Logger(req.request_id);
    return req;
  }

  // Hands the connection to the WebSocket endpoint if its handler accepts the upgrade;
  // otherwise answers with the handler's error and closes.
  asio::awaitable<void> upgrade(std::shared_ptr<SessionState> state,
                                bhttp::request<bhttp::string_body> breq, const WsEndpoint& ep) {
    SessionState& s = *state;
    Request req = make_request(s, breq);
    auto parsed = boost::urls::parse_origin_form(req.target);
    if (parsed) {
      req.path = parsed->path();
      for (auto p : parsed->params()) req.query.emplace_back(p.key, p.value);
    }
    req.route = ep.path;
    if (parsed) ws_endpoint(req.path, &req.params);
    Status verdict = Ok{};
    if (stopping.load()) {
      verdict = Error::unavailable("server is shutting down");
    } else if (!parsed) {
      verdict = Error::invalid_argument("bad_request", "malformed request target");
    } else {
      // Credentials and accept() may need the store: keep them off the I/O thread.
      WsHandler* h = ep.handler;
      verdict = co_await asio::co_spawn(
          blocking,
          [this, h, &req]() -> asio::awaitable<Status> {
            try {
              DP_CO_TRY(check_access(req));
              co_return h->accept(req);
            } catch (const std::exception& e) {
              co_return Error::internal(e.what());
            }
          },
          asio::use_awaitable);
    }
    if (!verdict.ok()) {
      req.log.info("websocket upgrade refused",
                   {{"path", req.path}, {"error", verdict.error().message}});
      co_await write_error(s, breq.version(), error_response(verdict.error(), req.request_id),
                           req.request_id);
      beast::error_code ignored;
      s.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      s.stream.close();
      co_return;
    }
    // The WebSocket gets a coroutine of its own, so this one (and the HTTP session's parser
    // and buffers) can end: an idle connection then costs only what the WebSocket needs.
    state->upgraded.store(true);
    auto self = shared_from_this();
    const std::uint64_t id = state->id;
    auto shard = ws_shards[next_shard.fetch_add(1) % ws_shards.size()];
    const auto shard_ex = shard->executor();
    asio::co_spawn(shard_ex,
                   internal::run_websocket(s.stream.release_socket(), std::move(shard),
                                           std::move(breq), std::move(req), *ep.handler,
                                           ep.options, *this),
                   [self, state, id](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& err) {
                         log::global().error("websocket failed", {{"session", id}, {"error", err.what()}});
                       }
                     }
                     self->end_session(id);
                   });
  }

  asio::awaitable<Response> dispatch(Request& req) {
    const auto started = std::chrono::steady_clock::now();
    if (observer != nullptr) observer->on_start();
    Response r;
    std::string_view route = "unmatched";
    auto parsed = boost::urls::parse_origin_form(req.target);
    if (!parsed) {
      r = plain_error(400, "bad_request", "malformed request target", req.request_id);
    } else {
      req.path = parsed->path();
      for (auto p : parsed->params()) req.query.emplace_back(p.key, p.value);
      auto m = router.match(req.method, req.path, req.params);
      if (m.outcome == Router::Outcome::kNotFound) {
        r = plain_error(404, "not_found", "no route for " + req.method + " " + req.path,
                        req.request_id);
      } else if (m.outcome == Router::Outcome::kMethodNotAllowed) {
        Error e{ErrorCode::kInvalidArgument, "method_not_allowed",
                req.method + " is not allowed on " + req.path + "; allowed: " + m.allow, nullptr};
        r = error_response(e, req.request_id);
        r.set_header("Allow", m.allow);
        route = m.pattern;
      } else {
        route = m.pattern;
        req.route = std::string(m.pattern);
        const Handler* h = m.handler;
        // Authentication, the handler and the audit may block (store calls): run them on a
        // pool and await the answer. A mutating request mostly sleeps on its commit's disk
        // sync: it goes to the write pool, whose many threads let one sync carry many
        // commits, while reads keep the blocking pool's threads.
        asio::thread_pool& pool = is_mutating(req.method) ? *writes : blocking;
        r = co_await on_pool<Response>(pool, [this, h, &req] {
          try {
            return handle(*h, req);
          } catch (const std::exception& e) {  // from the authenticator or the auditor
            req.log.error("request failed", {{"error", e.what()}, {"route", req.route}});
            return error_response(Error::internal(e.what()), req.request_id);
          }
        });
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (observer != nullptr) observer->on_finish(route, req.method, r.status, secs);
    // The log line's fields are built only when the line is written.
    auto ctx = [&] {
      return boost::json::object{{"method", req.method},
                                 {"path", req.path},
                                 {"status", r.status},
                                 {"durationMs", secs * 1000.0},
                                 {"remote", req.remote_address}};
    };
    if (r.status >= 500) {
      req.log.error("request failed", ctx());
    } else if (r.status >= 400 || secs > 0.5) {
      req.log.info("request", ctx());
    } else if (log::enabled(log::Level::kDebug)) {
      req.log.debug("request", ctx());
    }
    co_return r;
  }
};

Server::Server(asio::io_context& io, asio::thread_pool& blocking, const Router& router,
               ServerOptions options, RequestObserver* observer)
    : impl_(std::make_shared<Impl>(io, blocking, router, std::move(options), observer)) {}

Server::~Server() = default;

Status Server::listen() {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return Error::invalid_argument("bad_config", "host '" + impl_->options.host + "' is not an IP address");
  tcp::endpoint ep(addr, impl_->options.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::unavailable("cannot listen on " + impl_->options.host + ":" +
                              std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->bound_port = a.local_endpoint().port();
  return Ok{};
}

std::uint16_t Server::port() const noexcept { return impl_->bound_port; }

void Server::set_authenticator(Authenticator& authenticator) {
  impl_->authenticator = &authenticator;
}

void Server::set_auditor(RequestAuditor& auditor) { impl_->auditor = &auditor; }

void Server::set_write_pool(asio::thread_pool& writes) { impl_->writes = &writes; }

void Server::add_websocket(std::string path, WsHandler& handler, WsOptions options) {
  impl_->ws_endpoints.push_back(WsEndpoint{std::move(path), &handler, options});
}

std::size_t Server::websocket_connections() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->ws_open.size();
}

void Server::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
}

void Server::shutdown(std::chrono::milliseconds deadline, std::function<void()> on_drained) {
  auto impl = impl_;
  impl->stopping.store(true);
  asio::post(impl->acceptor.get_executor(), [impl] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<SessionState>> idle;
  {
    std::unique_lock lock(impl->mu);
    impl->on_drained = std::move(on_drained);
    for (auto& [id, s] : impl->sessions) {
      if (s->idle.load()) idle.push_back(s);
    }
    if (impl->sessions.empty()) {
      impl->fire_drained_locked(lock);
      return;
    }
  }
  for (auto& s : idle) {
    asio::post(s->stream.get_executor(), [s] { s->stream.cancel(); });
  }
  std::vector<std::shared_ptr<WsConnection>> sockets;
  {
    std::lock_guard lock(impl->mu);
    for (auto& [ptr, weak] : impl->ws_open) {
      if (auto c = weak.lock()) sockets.push_back(std::move(c));
    }
  }
  for (auto& c : sockets) c->close(1001, "server shutting down");
  impl->drain_timer.expires_after(deadline);
  impl->drain_timer.async_wait([impl](beast::error_code ec) {
    if (ec) return;
    std::unique_lock lock(impl->mu);
    if (!impl->sessions.empty()) {
      log::global().warn("shutdown deadline passed with requests in flight",
                         {{"sessions", impl->sessions.size()}});
    }
    impl->fire_drained_locked(lock);
  });
}

std::size_t Server::active_connections() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace dp::http
