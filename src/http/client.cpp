#include "http/client.hpp"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace dp::http::internal {

// One connection with an io_context of its own, so that it can serve an exchange on whichever
// thread calls fetch next. The streams go before the context (members are destroyed in
// reverse order).
struct Connection {
  boost::asio::io_context io{1};
  std::optional<boost::beast::tcp_stream> plain;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls;
  std::chrono::steady_clock::time_point idle_until{};

  bool open() const {
    return (plain && plain->socket().is_open()) || (tls && tls->next_layer().socket().is_open());
  }
  // Between answers a server has nothing to say: a readable idle connection was closed by the
  // server (end of file) or is out of step; either way it is not reused.
  bool still_usable() {
    if (!open()) return false;
    pollfd p{};
    p.fd = plain ? plain->socket().native_handle() : tls->next_layer().socket().native_handle();
    p.events = POLLIN | POLLRDHUP;
    return ::poll(&p, 1, 0) == 0;
  }
};

void ConnectionDeleter::operator()(Connection* c) const noexcept { delete c; }

}  // namespace dp::http::internal

namespace dp::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Target {
  bool tls = false;
  std::string host;       // for resolving and certificate checks (no brackets)
  std::string port;
  std::string host_header;
  std::string path;       // origin-form request target
  std::string url;
};

// What one exchange learnt about its connection, for the keep-alive decisions in fetch_once.
struct ExchangeInfo {
  bool written = false;     // the whole request went out
  bool got_bytes = false;   // some of the answer came back
  bool reusable = false;    // a complete answer the server did not mark `Connection: close`
  std::chrono::milliseconds keep_for{std::chrono::milliseconds::max()};  // Keep-Alive: timeout
};

Error make_error(ErrorCode code, std::string reason, std::string message) {
  return Error{code, std::move(reason), std::move(message), nullptr};
}

Result<Target> parse_target(std::string_view text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) {
    return make_error(ErrorCode::kInvalidArgument, "bad_url",
                      "not an absolute URL: '" + std::string(text) + "'");
  }
  const boost::urls::url_view u = *parsed;
  Target t;
  t.url = std::string(text);
  const std::string scheme = u.scheme();
  if (scheme == "https") {
    t.tls = true;
  } else if (scheme != "http") {
    return make_error(ErrorCode::kInvalidArgument, "bad_url",
                      "unsupported URL scheme '" + scheme + "' (http or https)");
  }
  if (u.has_userinfo()) {
    return make_error(ErrorCode::kInvalidArgument, "bad_url", "credentials in URLs are refused");
  }
  t.host = u.host_address();
  if (t.host.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "bad_url", "URL has no host: '" + t.url + "'");
  }
  t.port = u.has_port() ? std::string(u.port()) : (t.tls ? "443" : "80");
  if (t.port.empty()) t.port = t.tls ? "443" : "80";
  t.host_header = u.encoded_host_and_port();
  t.path = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) t.path += "?" + std::string(u.encoded_query());
  return t;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

ssl::context make_context(const std::string& ca_file) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(ca_file);  // throws on a bad file; caught by the caller
  }
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

// The system-store context is built once; an SSL_CTX may be shared by threads once set up.
ssl::context& default_context() {
  static ssl::context ctx = make_context({});
  return ctx;
}

Error io_error(const error_code& ec, std::string_view stage, const Target& t) {
  const std::string where = t.host_header;
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted ||
      ec == asio::error::timed_out) {
    return make_error(ErrorCode::kDeadlineExceeded, "timeout",
                      std::string(stage) + " " + where + " timed out");
  }
  if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit ||
      ec == bhttp::error::buffer_overflow) {
    return make_error(ErrorCode::kResourceExhausted, "response_too_large",
                      "response from " + where + " exceeds the size limit");
  }
  if (stage == "TLS handshake with" || ec.category() == asio::error::get_ssl_category() ||
      ec.category() == ssl::error::get_stream_category()) {
    return make_error(ErrorCode::kUnavailable, "tls_failed",
                      std::string(stage) + " " + where + " failed: " + ec.message());
  }
  if (stage == "reading from" && ec.category() == make_error_code(bhttp::error::bad_version).category()) {
    return make_error(ErrorCode::kUnavailable, "bad_response",
                      "malformed response from " + where + ": " + ec.message());
  }
  if (stage == "reading from") {
    return make_error(ErrorCode::kUnavailable, "bad_response",
                      "no response from " + where + ": " + ec.message());
  }
  return make_error(ErrorCode::kUnavailable, "connect_failed",
                    std::string(stage) + " " + where + " failed: " + ec.message());
}

ClientResponse head_of(const bhttp::response_header<>& res, const Target& t) {
  ClientResponse out;
  out.status = res.result_int();
  out.url = t.url;
  for (const auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  return out;
}

// `Keep-Alive: timeout=N` (seconds) from a response, if the server sent one.
std::optional<std::chrono::milliseconds> keep_alive_timeout(const bhttp::response_header<>& res) {
  const auto it = res.find("keep-alive");
  if (it == res.end()) return std::nullopt;
  const std::string_view v = it->value();
  const auto at = v.find("timeout=");
  if (at == std::string_view::npos) return std::nullopt;
  long seconds = 0;
  const char* first = v.data() + at + 8;
  const auto [end, ec] = std::from_chars(first, v.data() + v.size(), seconds);
  if (ec != std::errc() || end == first || seconds < 0) return std::nullopt;
  return std::chrono::milliseconds(std::max(0L, seconds - 1) * 1000);
}

template <class Stream>
asio::awaitable<Result<ClientResponse>> send_and_read(Stream& stream, const Target& t,
                                                      const ClientRequest& req,
                                                      Clock::time_point deadline,
                                                      ExchangeInfo& info) {
  bhttp::request<bhttp::string_body> msg;
  msg.method_string(req.method);
  msg.target(t.path);
  msg.version(11);
  bool has_host = false, has_agent = false;
  for (const auto& [name, value] : req.headers) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    has_host = has_host || lower == "host";
    has_agent = has_agent || lower == "user-agent";
    if (lower == "content-length") continue;  // set from the body below
    msg.insert(name, value);
  }
  if (!has_host) msg.set(bhttp::field::host, t.host_header);
  if (!has_agent) msg.set(bhttp::field::user_agent, "devplane");
  if (req.pool == nullptr) msg.set(bhttp::field::connection, "close");
  msg.body() = req.body;
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    msg.prepare_payload();
  }

  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [wec, written] = co_await bhttp::async_write(stream, msg, kTuple);
  (void)written;
  if (wec) co_return io_error(wec, "writing to", t);
  info.written = true;

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(req.max_response_bytes);
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(req.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  beast::get_lowest_layer(stream).expires_at(deadline);
  if (req.on_body) {
    auto [hec, hread] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    (void)hread;
    info.got_bytes = parser.got_some();
    if (hec) co_return io_error(hec, "reading from", t);
  }
  const bool streaming = req.on_body && parser.get().result_int() / 100 == 2;
  if (streaming) {
    const ClientResponse head = head_of(parser.get().base(), t);
    // The string body appends at its current size, so emptying it after each hand-over keeps
    // memory flat while the parser's body limit still counts the whole stream.
    while (!parser.is_done()) {
      auto [sec, n] = co_await bhttp::async_read_some(stream, buffer, parser, kTuple);
      (void)n;
      if (sec) co_return io_error(sec, "reading from", t);
      std::string& piece = parser.get().body();
      if (!piece.empty()) {
        if (!req.on_body(head, piece)) {
          co_return make_error(ErrorCode::kAborted, "aborted",
                               "the reader of the response from " + t.host_header + " stopped");
        }
        piece.clear();
      }
    }
  } else {
    auto [rec, read] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
    (void)read;
    info.got_bytes = parser.got_some();
    if (rec) co_return io_error(rec, "reading from", t);
  }

  // Bytes past the answer (none from a well-behaved server) would be read as the next answer.
  info.reusable = parser.is_done() && parser.keep_alive() && buffer.size() == 0;
  if (auto k = keep_alive_timeout(parser.get().base())) info.keep_for = *k;
  auto res = parser.release();
  ClientResponse out = head_of(res.base(), t);
  out.body = std::move(res.body());
  co_return out;
}

// Resolves, connects and (https) shakes hands, leaving the stream in `c`.
asio::awaitable<Status> connect(internal::Connection& c, const Target& t, ssl::context* tls_ctx,
                                Clock::time_point connect_deadline) {
  auto ex = co_await asio::this_coro::executor;
  // Name resolution has no socket to time out, so a timer cancels it.
  tcp::resolver resolver(ex);
  asio::steady_timer guard(ex);
  guard.expires_at(connect_deadline);
  guard.async_wait([&resolver](const error_code& ec) {
    if (!ec) resolver.cancel();
  });
  auto [rerr, endpoints] = co_await resolver.async_resolve(t.host, t.port, kTuple);
  guard.cancel();
  if (rerr) co_return io_error(rerr, "resolving", t);

  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_at(connect_deadline);
  auto [cerr, ep] = co_await tcp_stream.async_connect(endpoints, kTuple);
  (void)ep;
  if (cerr) co_return io_error(cerr, "connecting to", t);
  error_code nodelay_ec;  // a request is one write; no reason to wait for an ACK
  tcp_stream.socket().set_option(tcp::no_delay(true), nodelay_ec);

  if (!t.tls) {
    c.plain.emplace(std::move(tcp_stream));
    co_return Ok{};
  }
  auto& stream = c.tls.emplace(std::move(tcp_stream), *tls_ctx);
  SSL* handle = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(handle);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(t.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, t.host.c_str(), 0);
    // SNI: SSL_set_tlsext_host_name spelled out, as the macro casts in the old style.
    SSL_ctrl(handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             static_cast<void*>(const_cast<char*>(t.host.c_str())));  // NOLINT: OpenSSL's API
  }
  beast::get_lowest_layer(stream).expires_at(connect_deadline);
  auto [herr] = co_await stream.async_handshake(ssl::stream_base::client, kTuple);
  if (herr) {
    c.tls.reset();
    co_return io_error(herr, "TLS handshake with", t);
  }
  co_return Ok{};
}

asio::awaitable<Result<ClientResponse>> exchange(internal::Connection& c, const Target& t,
                                                 const ClientRequest& req, ssl::context* tls_ctx,
                                                 ExchangeInfo& info) {
  const auto start = Clock::now();
  const auto deadline = start + req.timeout;
  if (!c.open()) {
    Status connected = co_await connect(c, t, tls_ctx, std::min(deadline, start + req.connect_timeout));
    if (!connected.ok()) co_return std::move(connected).error();
  }
  // Without a pool the connection is closed after the answer (`Connection: close` was sent),
  // without a TLS close_notify: the response is complete, so a truncation harms nobody.
  if (c.plain) co_return co_await send_and_read(*c.plain, t, req, deadline, info);
  co_return co_await send_and_read(*c.tls, t, req, deadline, info);
}

// co_spawn wants a default-constructible result, so the outcome goes through `out`.
asio::awaitable<void> run_exchange(internal::Connection& c, const Target& t, const ClientRequest& req,
                                   ssl::context* tls_ctx, ExchangeInfo& info,
                                   std::optional<Result<ClientResponse>>& out) {
  out.emplace(co_await exchange(c, t, req, tls_ctx, info));
}

// Runs one exchange on `c`'s own io_context, on the calling thread.
Result<ClientResponse> run_on(internal::Connection& c, const Target& t, const ClientRequest& req,
                              ssl::context* ctx, ExchangeInfo& info) {
  c.io.restart();
  std::optional<Result<ClientResponse>> out;
  asio::co_spawn(c.io, run_exchange(c, t, req, ctx, info, out), [&out](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace(Error::internal(std::string("HTTP client: ") + ex.what()));
    }
  });
  if (req.cancel == nullptr) {
    c.io.run();
  } else {
    // Stopping the context abandons the exchange; its coroutine frame is destroyed with the
    // connection (never reused after this), and `out` is not touched again.
    while (!c.io.stopped()) {
      c.io.run_for(std::chrono::milliseconds(50));
      if (!out && req.cancel->load()) {
        c.io.stop();
        return make_error(ErrorCode::kAborted, "aborted",
                          "the request to " + t.host_header + " was cancelled");
      }
    }
  }
  if (!out) return Error::internal("HTTP client: exchange did not complete");
  return std::move(*out);
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

Result<ClientResponse> fetch_once(const ClientRequest& req) {
  DP_ASSIGN_OR_RETURN(Target t, parse_target(req.url));
  std::unique_ptr<ssl::context> own_ctx;
  ssl::context* ctx = nullptr;
  if (t.tls) {
    try {
      if (req.ca_file.empty()) {
        ctx = &default_context();
      } else {
        own_ctx = std::make_unique<ssl::context>(make_context(req.ca_file));
        ctx = own_ctx.get();
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kUnavailable, "tls_failed",
                        std::string("cannot set up TLS: ") + e.what());
    }
  }
  if (req.pool == nullptr) {
    internal::Connection c;
    ExchangeInfo info;
    return run_on(c, t, req, ctx, info);
  }
  const std::string origin =
      std::string(t.tls ? "https://" : "http://") + t.host + ":" + t.port + " " + req.ca_file;
  internal::ConnectionPtr c = req.pool->take(origin);
  const bool reused = c != nullptr;
  if (!reused) c.reset(new internal::Connection);
  ExchangeInfo info;
  auto r = run_on(*c, t, req, ctx, info);
  if (r.ok()) {
    if (info.reusable) req.pool->give(origin, std::move(c), info.keep_for);
    return r;
  }
  const bool cancelled = r.error().code == ErrorCode::kAborted;
  const bool timed_out = r.error().code == ErrorCode::kDeadlineExceeded;
  if (!reused || cancelled || timed_out) return r;
  if (info.written && (info.got_bytes || !idempotent(req.method))) return r;
  // The server closed the idle connection as we used it: once more on a fresh one.
  internal::ConnectionPtr fresh(new internal::Connection);
  ExchangeInfo again;
  auto second = run_on(*fresh, t, req, ctx, again);
  if (second.ok() && again.reusable) req.pool->give(origin, std::move(fresh), again.keep_for);
  return second;
}

bool unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view text, bool plus_for_space) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else if (c == ' ' && plus_for_space) {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

struct ConnectionPool::Impl {
  Options options;
  mutable std::mutex mu;
  std::map<std::string, std::vector<internal::ConnectionPtr>, std::less<>> idle;  // oldest first
};

ConnectionPool::ConnectionPool() : ConnectionPool(Options{}) {}
ConnectionPool::ConnectionPool(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
ConnectionPool::~ConnectionPool() = default;

std::size_t ConnectionPool::idle() const {
  std::lock_guard lock(impl_->mu);
  std::size_t n = 0;
  for (const auto& [origin, list] : impl_->idle) n += list.size();
  return n;
}

void ConnectionPool::clear() {
  std::map<std::string, std::vector<internal::ConnectionPtr>, std::less<>> closing;
  {
    std::lock_guard lock(impl_->mu);
    closing.swap(impl_->idle);
  }
}

internal::ConnectionPtr ConnectionPool::take(const std::string& origin) {
  std::vector<internal::ConnectionPtr> stale;  // closed outside the lock
  internal::ConnectionPtr found;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->idle.find(origin);
    if (it == impl_->idle.end()) return nullptr;
    const auto now = Clock::now();
    auto& list = it->second;
    while (!list.empty() && !found) {
      internal::ConnectionPtr c = std::move(list.back());  // the newest: least likely closed
      list.pop_back();
      if (c->idle_until > now && c->still_usable()) {
        found = std::move(c);
      } else {
        stale.push_back(std::move(c));
      }
    }
    if (list.empty()) impl_->idle.erase(it);
  }
  if (found) reused_.fetch_add(1);
  return found;
}

void ConnectionPool::give(const std::string& origin, internal::ConnectionPtr connection,
                          std::chrono::milliseconds keep_for) {
  const auto keep = std::min(keep_for, impl_->options.max_idle);
  if (keep.count() <= 0 || impl_->options.max_idle_per_origin == 0) return;
  const auto now = Clock::now();
  connection->idle_until = now + keep;
  std::vector<internal::ConnectionPtr> dropped;  // closed outside the lock
  std::lock_guard lock(impl_->mu);
  auto& list = impl_->idle[origin];
  for (auto& c : list) {
    if (c->idle_until <= now) dropped.push_back(std::move(c));
  }
  std::erase(list, nullptr);
  if (list.size() >= impl_->options.max_idle_per_origin) {
    dropped.push_back(std::move(list.front()));
    list.erase(list.begin());
  }
  list.push_back(std::move(connection));
}

std::optional<std::string_view> ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return std::string_view(v);
  }
  return std::nullopt;
}

Result<ClientResponse> fetch(const ClientRequest& request) {
  ClientRequest req = request;
  for (int hop = 0;; ++hop) {
    auto r = fetch_once(req);
    if (!r.ok()) return r;
    const unsigned s = r->status;
    const bool redirect = s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
    if (!redirect || hop >= req.max_redirects || (req.method != "GET" && req.method != "HEAD")) {
      return r;
    }
    auto location = r->header("location");
    if (!location) return r;
    auto base = boost::urls::parse_absolute_uri(req.url);
    auto ref = boost::urls::parse_uri_reference(*location);
    if (!base || !ref) return r;
    boost::urls::url next;
    if (boost::urls::resolve(*base, *ref, next).has_error()) return r;
    if (base->scheme() == "https" && next.scheme() != "https") {
      return make_error(ErrorCode::kUnavailable, "bad_response",
                        "refusing a redirect from https to " + std::string(next.buffer()));
    }
    req.url = std::string(next.buffer());
  }
}

Result<ClientResponse> fetch_get(std::string_view url, Fields headers) {
  ClientRequest req;
  req.url = std::string(url);
  req.headers = std::move(headers);
  return fetch(req);
}

std::string form_encode(std::string_view text) { return percent_encode(text, true); }
std::string url_encode(std::string_view text) { return percent_encode(text, false); }

}  // namespace dp::http
