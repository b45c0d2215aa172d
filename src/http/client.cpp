#include "http/client.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>
#include <utility>

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

template <class Stream>
asio::awaitable<Result<ClientResponse>> send_and_read(Stream& stream, const Target& t,
                                                      const ClientRequest& req,
                                                      Clock::time_point deadline) {
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
  msg.set(bhttp::field::connection, "close");
  msg.body() = req.body;
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    msg.prepare_payload();
  }

  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [wec, written] = co_await bhttp::async_write(stream, msg, kTuple);
  (void)written;
  if (wec) co_return io_error(wec, "writing to", t);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(req.max_response_bytes);
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(req.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  beast::get_lowest_layer(stream).expires_at(deadline);
  if (req.on_body) {
    auto [hec, hread] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    (void)hread;
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
    if (rec) co_return io_error(rec, "reading from", t);
  }

  auto res = parser.release();
  ClientResponse out = head_of(res.base(), t);
  out.body = std::move(res.body());
  co_return out;
}

asio::awaitable<Result<ClientResponse>> exchange(const Target& t, const ClientRequest& req,
                                                 ssl::context* tls_ctx) {
  auto ex = co_await asio::this_coro::executor;
  const auto start = Clock::now();
  const auto deadline = start + req.timeout;
  const auto connect_deadline = std::min(deadline, start + req.connect_timeout);

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

  if (!t.tls) {
    co_return co_await send_and_read(tcp_stream, t, req, deadline);
  }

  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls_ctx);
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
  if (herr) co_return io_error(herr, "TLS handshake with", t);
  auto result = co_await send_and_read(stream, t, req, deadline);
  // The connection is closed without a TLS close_notify: the response is complete and
  // `Connection: close` was sent, so a truncation on our side harms nobody.
  co_return result;
}

// co_spawn wants a default-constructible result, so the outcome goes through `out`.
asio::awaitable<void> run_exchange(const Target& t, const ClientRequest& req,
                                   ssl::context* tls_ctx,
                                   std::optional<Result<ClientResponse>>& out) {
  out.emplace(co_await exchange(t, req, tls_ctx));
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
  asio::io_context io(1);
  std::optional<Result<ClientResponse>> out;
  asio::co_spawn(io, run_exchange(t, req, ctx, out), [&out](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace(Error::internal(std::string("HTTP client: ") + ex.what()));
    }
  });
  if (req.cancel == nullptr) {
    io.run();
  } else {
    // Stopping the context abandons the exchange; its coroutine frame (and socket) are
    // destroyed with `io`, and `out` is not touched again.
    while (!io.stopped()) {
      io.run_for(std::chrono::milliseconds(50));
      if (!out && req.cancel->load()) {
        io.stop();
        return make_error(ErrorCode::kAborted, "aborted",
                          "the request to " + t.host_header + " was cancelled");
      }
    }
  }
  if (!out) return Error::internal("HTTP client: exchange did not complete");
  return std::move(*out);
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
