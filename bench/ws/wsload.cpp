// wsload: WebSocket fan-out load generator for bench/ws.
//
// Opens N WebSocket clients to ws://HOST:PORT/ws, subscribes each to every topic
// ({"op":"subscribe","topics":["*"]}) and waits for every ack. In load mode it then creates
// agents through POST /api/v1/agents at a steady rate, over a few keep-alive HTTP connections
// of its own, so that the moment a POST is sent and the moment each client reads the
// `agent.status.update` event it caused are read from the same clock (steady_clock). Each
// agent's name is "wsb-<tag>-<index>"; the index finds the send time. After the publishing
// phase it waits (bounded) for the remaining deliveries, then reports, over every
// (client, event) pair: latency p50/p90/p99/p99.9/max, lost (expected minus received),
// duplicates, out-of-order frames, the achieved publishing rate and the server's RSS.
// In idle mode (--idle) it only holds the subscribed connections and reports the server's RSS
// before connecting, with every connection open, and after closing them.
//
// One io_context run by --threads threads (1 by default, to leave the other core to the
// server); every connection is a coroutine, on its own strand when there are several threads.
// The publishers run on a second io_context with a thread of its own, so that a POST is sent on
// schedule and its answer read at once even while the clients' thread is busy reading frames.
// Everything is bounded: connect and handshake timeouts, the subscribe deadline, the
// publishing duration, the drain wait and the close.
//
// The receive timestamp is taken when the read completes, before the frame is parsed. With
// one thread, the clients that share a wake-up are served one after the other, so the
// figures include the load generator's own cost of reading N frames per event (a few
// microseconds each); that cost is the same for every server measured.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// ------------------------------------------------------------------ options

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/ws";
  std::string label = "server";
  std::size_t clients = 1000;
  double rate = 100;          // events per second
  double duration = 20;       // seconds of publishing
  double drain = 5;           // seconds to wait for late deliveries
  double connect_timeout = 60;  // seconds for all clients to connect and be acked
  double hold = 3;            // idle mode: seconds to hold the connections after settling
  double settle = 1;          // seconds between "all subscribed" and the RSS reading
  std::size_t concurrency = 200;  // handshakes in flight at once
  std::size_t publishers = 4;     // keep-alive HTTP connections for the POSTs
  int threads = 1;
  bool idle = false;
  int server_pid = 0;
  std::string json_path;
  std::string trace_path;
  std::string token;
};

[[noreturn]] void usage(int rc) {
  std::fprintf(rc == 0 ? stdout : stderr, "%s",
               R"(Usage: wsload --port PORT [options]

WebSocket fan-out load generator (bench/ws). Opens N clients to ws://HOST:PORT/ws, subscribes
each to "*" and waits for every ack; then creates agents (POST /api/v1/agents) at a steady rate
and measures, for every (client, event), the time from the POST being sent to the event frame
being read. With --idle it only holds the connections and reports the server's RSS.

Options:
  --host H               server address (default 127.0.0.1)
  --port P               server port (required)
  --path P               WebSocket path (default /ws)
  --label NAME           name printed with the figures (default server)
  --clients N            WebSocket clients (default 1000)
  --rate R               events per second (default 100)
  --duration S           seconds of publishing (default 20)
  --drain S              seconds to wait for outstanding deliveries afterwards (default 5)
  --connect-timeout S    deadline for all clients to be connected and acked (default 60)
  --concurrency N        handshakes in flight at once (default 200)
  --publishers N         keep-alive HTTP connections used for the POSTs (default 4)
  --threads N            io_context threads (default 1)
  --idle                 idle mode: connect, subscribe, hold, report RSS; no events
  --hold S               idle mode: seconds to hold after the RSS reading (default 3)
  --settle S             seconds between the last ack and the RSS reading (default 1)
  --server-pid PID       read the server's RSS from /proc/PID/status
  --token T              send "Authorization: Bearer T" on the upgrade and the POSTs
  --json FILE            also write the figures as JSON to FILE
  --trace FILE           write one line per event: index, POST send time (steady_clock ns),
                         POST round trip, and the first, median and last client receive time
  -h, --help             this text
)");
  std::exit(rc);
}

double to_double(const char* s, const char* what) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || v < 0) {
    std::fprintf(stderr, "wsload: %s wants a non-negative number, got '%s'\n", what, s);
    std::exit(2);
  }
  return v;
}

// Accepts "20", "20s", "500ms", "2m".
double to_seconds(std::string s, const char* what) {
  double mult = 1;
  if (s.ends_with("ms")) {
    mult = 0.001;
    s.resize(s.size() - 2);
  } else if (s.ends_with("s")) {
    s.resize(s.size() - 1);
  } else if (s.ends_with("m")) {
    mult = 60;
    s.resize(s.size() - 1);
  }
  return to_double(s.c_str(), what) * mult;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wsload: %s wants a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") usage(0);
    else if (a == "--host") o.host = next();
    else if (a == "--port") o.port = static_cast<std::uint16_t>(to_double(next(), "--port"));
    else if (a == "--path") o.path = next();
    else if (a == "--label") o.label = next();
    else if (a == "--clients") o.clients = static_cast<std::size_t>(to_double(next(), "--clients"));
    else if (a == "--rate") o.rate = to_double(next(), "--rate");
    else if (a == "--duration") o.duration = to_seconds(next(), "--duration");
    else if (a == "--drain") o.drain = to_seconds(next(), "--drain");
    else if (a == "--connect-timeout") o.connect_timeout = to_seconds(next(), "--connect-timeout");
    else if (a == "--concurrency")
      o.concurrency = static_cast<std::size_t>(to_double(next(), "--concurrency"));
    else if (a == "--publishers")
      o.publishers = static_cast<std::size_t>(to_double(next(), "--publishers"));
    else if (a == "--threads") o.threads = static_cast<int>(to_double(next(), "--threads"));
    else if (a == "--idle") o.idle = true;
    else if (a == "--hold") o.hold = to_seconds(next(), "--hold");
    else if (a == "--settle") o.settle = to_seconds(next(), "--settle");
    else if (a == "--server-pid") o.server_pid = static_cast<int>(to_double(next(), "--server-pid"));
    else if (a == "--token") o.token = next();
    else if (a == "--json") o.json_path = next();
    else if (a == "--trace") o.trace_path = next();
    else {
      std::fprintf(stderr, "wsload: unknown option %s\n", argv[i]);
      usage(2);
    }
  }
  if (o.port == 0) {
    std::fprintf(stderr, "wsload: --port is required\n");
    usage(2);
  }
  if (o.clients == 0 || o.concurrency == 0 || o.publishers == 0 || o.threads < 1 ||
      o.threads > 16) {
    std::fprintf(stderr, "wsload: --clients, --concurrency, --publishers must be >= 1, "
                         "--threads 1..16\n");
    std::exit(2);
  }
  if (!o.idle && (o.rate <= 0 || o.rate > 100'000 || o.duration <= 0 || o.duration > 3600)) {
    std::fprintf(stderr, "wsload: --rate must be in (0, 100000], --duration in (0, 3600] s\n");
    std::exit(2);
  }
  return o;
}

// User + system CPU seconds a process has used so far, or -1 when it cannot be read.
double cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? double(utime + stime) / double(hz) : -1;
}

// VmRSS of a process in MiB, or -1 when it cannot be read.
double rss_mib(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return -1;
}

// ------------------------------------------------------------------ state

// One WebSocket client. Touched only by its own coroutine (on its strand) until the
// io_context has stopped; read by main() afterwards.
struct Client {
  explicit Client(asio::any_io_executor ex) : ws(ex) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buf;
  std::vector<std::pair<std::uint32_t, std::int64_t>> got;  // (event index, receive ns)
  std::int64_t last_event_id = -1;
  std::uint64_t out_of_order = 0;
  std::uint64_t foreign_events = 0;  // events that are not ours (health, ...)
  std::uint64_t errors = 0;          // error frames
  std::uint64_t resyncs = 0;         // resync_required frames: the server skipped events
  bool connected = false;
  bool subscribed = false;
  bool done = false;
  bool closed_by_server = false;  // while we still wanted it
  std::string failure;            // why it ended early
  int close_code = 0;
};

struct Shared {
  explicit Shared(Options o) : opt(std::move(o)) {}
  Options opt;
  tcp::endpoint endpoint;
  std::string prefix;  // "wsb-<tag>-"
  std::size_t planned = 0;
  std::vector<std::unique_ptr<Client>> clients;

  std::atomic<std::size_t> inflight{0};  // handshakes in progress
  std::atomic<std::size_t> subscribed{0};
  std::atomic<std::size_t> failed{0};  // connect, handshake or subscribe failed
  std::atomic<std::size_t> running{0};  // client coroutines alive
  std::atomic<std::size_t> dropped{0};  // closed by the server after subscribing
  std::atomic<std::uint64_t> received{0};  // our events read, duplicates included
  std::atomic<bool> stopping{false};

  // Publishing. Each index is written by the one publisher that took it.
  std::atomic<std::size_t> next_event{0};
  std::atomic<std::size_t> posted_ok{0};
  std::atomic<std::size_t> posted_failed{0};
  std::atomic<std::size_t> publishers_running{0};
  std::int64_t start_ns = 0;  // schedule origin
  std::vector<std::int64_t> send_ns;
  std::vector<std::int64_t> post_ns;  // POST round trip
  std::vector<std::int64_t> late_ns;  // send time minus scheduled time
  std::vector<std::uint8_t> ok;
  std::map<std::string, std::size_t> post_errors;  // guarded: only read after the run
  std::mutex post_errors_mu;
};

// ------------------------------------------------------------------ frames

// Value of a string field `"key":"..."` (first occurrence; no escapes in our names).
std::string_view string_field(std::string_view f, std::string_view quoted_key) {
  auto p = f.find(quoted_key);
  if (p == std::string_view::npos) return {};
  p += quoted_key.size();
  while (p < f.size() && (f[p] == ' ' || f[p] == ':')) ++p;
  if (p >= f.size() || f[p] != '"') return {};
  auto e = f.find('"', p + 1);
  if (e == std::string_view::npos) return {};
  return f.substr(p + 1, e - p - 1);
}

std::optional<std::int64_t> int_field(std::string_view f, std::string_view quoted_key) {
  auto p = f.find(quoted_key);
  if (p == std::string_view::npos) return std::nullopt;
  p += quoted_key.size();
  while (p < f.size() && (f[p] == ' ' || f[p] == ':')) ++p;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(f.data() + p, f.data() + f.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

// Handles one frame read by client `c` at `t`. Event frames are scanned, not parsed: the
// load generator shares the machine with the server and must stay cheap.
void on_frame(Shared& s, Client& c, std::string_view f, std::int64_t t) {
  std::string_view type = string_field(f, "\"type\"");
  if (type == "event") {
    std::string_view name = string_field(f, "\"name\"");
    auto id = int_field(f, "\"id\"");
    if (id) {
      if (*id <= c.last_event_id) ++c.out_of_order;
      c.last_event_id = *id;
    }
    if (name.starts_with(s.prefix)) {
      std::uint32_t idx = 0;
      auto digits = name.substr(s.prefix.size());
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), idx);
      if (ec == std::errc() && end == digits.data() + digits.size() && idx < s.planned) {
        c.got.emplace_back(idx, t);
        s.received.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    ++c.foreign_events;
    return;
  }
  if (type == "ack") {
    if (!c.subscribed) {
      c.subscribed = true;
      s.subscribed.fetch_add(1);
    }
    return;
  }
  if (type == "error") {
    ++c.errors;
    if (c.errors <= 1) std::fprintf(stderr, "wsload: error frame: %.*s\n", int(f.size()), f.data());
  }
  if (type == "resync_required") {
    if (++c.resyncs <= 1) std::fprintf(stderr, "wsload: %.*s\n", int(f.size()), f.data());
  }
  // hello, pong: nothing to count.
}

// ------------------------------------------------------------------ clients

asio::awaitable<void> run_client(Shared& s, Client& c) {
  struct Guard {
    Shared& s;
    Client& c;
    ~Guard() {
      c.done = true;
      s.running.fetch_sub(1);
    }
  } guard{s, c};
  bool counted_inflight = true;
  auto end_handshake = [&] {
    if (counted_inflight) s.inflight.fetch_sub(1);
    counted_inflight = false;
  };
  auto fail = [&](std::string why) {
    end_handshake();
    c.failure = std::move(why);
    s.failed.fetch_add(1);
  };

  auto& tcp_layer = beast::get_lowest_layer(c.ws);
  tcp_layer.expires_after(10s);
  auto [cec] = co_await tcp_layer.async_connect(s.endpoint, kTuple);
  if (cec) co_return fail("connect: " + cec.message());
  c.connected = true;
  tcp_layer.socket().set_option(tcp::no_delay(true));
  // The websocket stream keeps its own timeouts from here on (Beast's advice).
  tcp_layer.expires_never();
  websocket::stream_base::timeout to{};
  to.handshake_timeout = 10s;
  to.idle_timeout = websocket::stream_base::none();
  to.keep_alive_pings = false;
  c.ws.set_option(to);
  c.ws.read_message_max(1 << 20);
  if (!s.opt.token.empty()) {
    c.ws.set_option(websocket::stream_base::decorator([tok = s.opt.token](websocket::request_type& r) {
      r.set(http::field::authorization, "Bearer " + tok);
    }));
  }
  const std::string host = s.opt.host + ":" + std::to_string(s.opt.port);
  auto [hec] = co_await c.ws.async_handshake(host, s.opt.path, kTuple);
  if (hec) co_return fail("handshake: " + hec.message());
  c.ws.text(true);
  auto [wec, wn] =
      co_await c.ws.async_write(asio::buffer(std::string_view(R"({"op":"subscribe","id":"1","topics":["*"]})")), kTuple);
  if (wec) co_return fail("subscribe: " + wec.message());

  for (;;) {
    auto [rec, n] = co_await c.ws.async_read(c.buf, kTuple);
    const std::int64_t t = now_ns();
    if (rec) {
      if (!s.stopping.load()) {
        if (rec == websocket::error::closed) {
          c.close_code = c.ws.reason().code;
          c.failure = "closed by server: " + std::to_string(c.ws.reason().code) + " " +
                      std::string(c.ws.reason().reason.data(), c.ws.reason().reason.size());
        } else {
          c.failure = "read: " + rec.message();
        }
        if (c.subscribed) {
          c.closed_by_server = true;
          s.dropped.fetch_add(1);
        } else {
          fail(c.failure);
        }
      }
      end_handshake();
      co_return;
    }
    const bool was_subscribed = c.subscribed;
    auto data = c.buf.cdata();
    on_frame(s, c, std::string_view(static_cast<const char*>(data.data()), data.size()), t);
    c.buf.consume(n);
    if (!was_subscribed && c.subscribed) end_handshake();
  }
}

// Closes a client from its own strand (Beast allows a close while a read is pending).
asio::awaitable<void> close_client(Client& c) {
  if (c.done) co_return;
  if (!c.connected) {
    beast::get_lowest_layer(c.ws).cancel();
    co_return;
  }
  websocket::stream_base::timeout to{};
  to.handshake_timeout = 3s;  // also bounds the close handshake
  to.idle_timeout = websocket::stream_base::none();
  to.keep_alive_pings = false;
  c.ws.set_option(to);
  if (c.ws.is_open()) {
    auto [ec] = co_await c.ws.async_close(websocket::close_code::normal, kTuple);
    if (ec) beast::get_lowest_layer(c.ws).close();
  } else {
    beast::get_lowest_layer(c.ws).close();
  }
}

// ------------------------------------------------------------------ publishers

asio::awaitable<void> run_publisher(Shared& s, asio::any_io_executor ex) {
  struct Guard {
    Shared& s;
    ~Guard() { s.publishers_running.fetch_sub(1); }
  } guard{s};
  beast::tcp_stream stream(ex);
  beast::flat_buffer buf;
  bool open = false;
  asio::steady_timer timer(ex);
  const double period_ns = 1e9 / s.opt.rate;
  const std::string host = s.opt.host + ":" + std::to_string(s.opt.port);
  auto note_error = [&](std::string what) {
    std::lock_guard lock(s.post_errors_mu);
    ++s.post_errors[std::move(what)];
  };

  for (;;) {
    const std::size_t i = s.next_event.fetch_add(1);
    if (i >= s.planned || s.stopping.load()) co_return;
    const std::int64_t due = s.start_ns + static_cast<std::int64_t>(period_ns * double(i));
    if (now_ns() < due) {
      timer.expires_at(Clock::time_point(std::chrono::nanoseconds(due)));
      co_await timer.async_wait(kTuple);
    }
    if (!open) {
      stream.expires_after(5s);
      auto [ec] = co_await stream.async_connect(s.endpoint, kTuple);
      if (ec) {
        s.posted_failed.fetch_add(1);
        note_error("connect: " + ec.message());
        continue;
      }
      stream.socket().set_option(tcp::no_delay(true));
      open = true;
    }
    http::request<http::string_body> req{http::verb::post, "/api/v1/agents", 11};
    req.set(http::field::host, host);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    if (!s.opt.token.empty()) req.set(http::field::authorization, "Bearer " + s.opt.token);
    req.body() = R"({"name":")" + s.prefix + std::to_string(i) +
                 R"(","type":"command","description":"created by the WebSocket benchmark",)"
                 R"("config":{"command":["/bin/echo","hello"],"timeoutSeconds":30}})";
    req.prepare_payload();

    stream.expires_after(10s);
    const std::int64_t sent = now_ns();
    s.send_ns[i] = sent;
    s.late_ns[i] = sent - due;
    auto [wec, wn] = co_await http::async_write(stream, req, kTuple);
    http::response<http::string_body> res;
    boost::system::error_code rec = wec;
    if (!wec) {
      auto [ec, rn] = co_await http::async_read(stream, buf, res, kTuple);
      rec = ec;
    }
    s.post_ns[i] = now_ns() - sent;
    if (rec) {
      s.posted_failed.fetch_add(1);
      note_error("http: " + rec.message());
      beast::error_code ignored;
      stream.socket().close(ignored);
      buf.clear();
      open = false;
      continue;
    }
    if (res.result_int() == 201) {
      s.ok[i] = 1;
      s.posted_ok.fetch_add(1);
    } else {
      s.posted_failed.fetch_add(1);
      note_error("status " + std::to_string(res.result_int()) + ": " + res.body().substr(0, 200));
    }
    if (!res.keep_alive()) {
      beast::error_code ignored;
      stream.socket().close(ignored);
      open = false;
    }
  }
}

// ------------------------------------------------------------------ orchestration

struct Phase {
  double rss_before = -1, rss_connected = -1, rss_peak = -1, rss_after_publish = -1,
         rss_closed = -1;
  double cpu_publish = -1;  // server CPU seconds from the first POST to the end of the drain
  double cpu_self = -1;     // the load generator's own CPU seconds over the same window
  double connect_seconds = 0;
  double publish_seconds = 0;
  double drain_seconds = 0;
  bool connect_timed_out = false;
  bool drain_timed_out = false;
};

asio::awaitable<void> sleep_for(std::chrono::nanoseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(kTuple);
}

std::chrono::nanoseconds secs(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

asio::awaitable<void> orchestrate(asio::io_context& ioc, asio::io_context& pub_ioc, Shared& s,
                                  Phase& ph) {
  const Options& o = s.opt;
  auto strand_or_plain = [&]() -> asio::any_io_executor {
    if (o.threads > 1) return asio::make_strand(ioc);
    return ioc.get_executor();
  };
  ph.rss_before = rss_mib(o.server_pid);

  // Connect and subscribe everyone, `concurrency` handshakes at a time.
  const auto t_connect = Clock::now();
  const auto connect_deadline = t_connect + secs(o.connect_timeout);
  s.clients.reserve(o.clients);
  for (std::size_t i = 0; i < o.clients; ++i) {
    auto ex = strand_or_plain();
    s.clients.push_back(std::make_unique<Client>(ex));
    if (!o.idle) s.clients.back()->got.reserve(s.planned);
  }
  for (std::size_t i = 0; i < o.clients; ++i) {
    while (s.inflight.load() >= o.concurrency && Clock::now() < connect_deadline) {
      co_await sleep_for(1ms);
    }
    if (Clock::now() >= connect_deadline) break;
    s.inflight.fetch_add(1);
    s.running.fetch_add(1);
    Client& c = *s.clients[i];
    asio::co_spawn(c.ws.get_executor(), run_client(s, c), asio::detached);
  }
  while (s.subscribed.load() + s.failed.load() < o.clients && Clock::now() < connect_deadline) {
    co_await sleep_for(5ms);
  }
  ph.connect_timed_out = s.subscribed.load() + s.failed.load() < o.clients;
  ph.connect_seconds = std::chrono::duration<double>(Clock::now() - t_connect).count();
  std::fprintf(stderr, "wsload[%s]: %zu/%zu clients subscribed in %.2f s (%zu failed%s)\n",
               o.label.c_str(), s.subscribed.load(), o.clients, ph.connect_seconds,
               s.failed.load(), ph.connect_timed_out ? ", deadline passed" : "");
  co_await sleep_for(secs(o.settle));
  ph.rss_connected = rss_mib(o.server_pid);
  ph.rss_peak = ph.rss_connected;

  if (o.idle) {
    std::fprintf(stderr, "wsload[%s]: holding %zu idle connections for %.1f s; server RSS %.1f MiB\n",
                 o.label.c_str(), s.subscribed.load(), o.hold, ph.rss_connected);
    const auto until = Clock::now() + secs(o.hold);
    while (Clock::now() < until) {
      co_await sleep_for(250ms);
      ph.rss_peak = std::max(ph.rss_peak, rss_mib(o.server_pid));
    }
  } else if (s.subscribed.load() > 0) {
    // Publish on a fixed schedule; sample the server's RSS meanwhile.
    s.start_ns = now_ns() + 50'000'000;  // 50 ms from now
    const double cpu_start = cpu_seconds(o.server_pid);
    const double self_start = cpu_seconds(static_cast<int>(getpid()));
    const auto t_pub = Clock::now();
    for (std::size_t k = 0; k < o.publishers; ++k) {
      s.publishers_running.fetch_add(1);
      asio::co_spawn(pub_ioc, run_publisher(s, pub_ioc.get_executor()), asio::detached);
    }
    const auto pub_deadline = t_pub + secs(o.duration + 30);
    while (s.publishers_running.load() > 0 && Clock::now() < pub_deadline) {
      co_await sleep_for(100ms);
      ph.rss_peak = std::max(ph.rss_peak, rss_mib(o.server_pid));
    }
    if (s.publishers_running.load() > 0) {
      std::fprintf(stderr, "wsload[%s]: publishers still busy 30 s past the schedule; stopping\n",
                   o.label.c_str());
      // No new POSTs; let those in flight end (each has a 10 s deadline) before the drain,
      // or an event created after the drain would be counted as lost.
      s.stopping.store(true);
      const auto stop_deadline = Clock::now() + 12s;
      while (s.publishers_running.load() > 0 && Clock::now() < stop_deadline) {
        co_await sleep_for(50ms);
      }
    }
    ph.publish_seconds = std::chrono::duration<double>(Clock::now() - t_pub).count();
    // Drain: wait until every subscribed client has every created event, bounded.
    const auto t_drain = Clock::now();
    const auto drain_deadline = t_drain + secs(o.drain);
    auto expected = [&] {
      return std::uint64_t(s.subscribed.load() - s.dropped.load()) * s.posted_ok.load();
    };
    while (s.received.load() < expected() && Clock::now() < drain_deadline) {
      co_await sleep_for(5ms);
    }
    ph.drain_timed_out = s.received.load() < expected();
    ph.drain_seconds = std::chrono::duration<double>(Clock::now() - t_drain).count();
    if (const double cpu_end = cpu_seconds(o.server_pid); cpu_start >= 0 && cpu_end >= 0) {
      ph.cpu_publish = cpu_end - cpu_start;
    }
    if (const double self_end = cpu_seconds(static_cast<int>(getpid())); self_start >= 0) {
      ph.cpu_self = self_end - self_start;
    }
    ph.rss_after_publish = rss_mib(o.server_pid);
    ph.rss_peak = std::max(ph.rss_peak, ph.rss_after_publish);
  }

  // Close everyone, bounded.
  s.stopping.store(true);
  for (auto& c : s.clients) {
    asio::co_spawn(c->ws.get_executor(), close_client(*c), asio::detached);
  }
  const auto close_deadline = Clock::now() + 10s;
  while (s.running.load() > 0 && Clock::now() < close_deadline) co_await sleep_for(10ms);
  if (s.running.load() > 0) {
    std::fprintf(stderr, "wsload[%s]: %zu clients did not close within 10 s\n", o.label.c_str(),
                 s.running.load());
  }
  co_await sleep_for(500ms);
  ph.rss_closed = rss_mib(o.server_pid);
  ioc.stop();
}

// ------------------------------------------------------------------ report

struct Dist {
  std::size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  // milliseconds
};

Dist distribution(std::vector<std::int64_t>& v) {
  Dist d;
  d.n = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    // nearest rank
    std::size_t k = static_cast<std::size_t>(std::ceil(q * double(v.size())));
    k = std::clamp<std::size_t>(k, 1, v.size());
    return double(v[k - 1]) / 1e6;
  };
  d.p50 = at(0.50);
  d.p90 = at(0.90);
  d.p99 = at(0.99);
  d.p999 = at(0.999);
  d.max = double(v.back()) / 1e6;
  long double sum = 0;
  for (auto x : v) sum += x;
  d.mean = double(sum / v.size()) / 1e6;
  return d;
}

json::object dist_json(const Dist& d) {
  return json::object{{"n", d.n},     {"p50", d.p50}, {"p90", d.p90},  {"p99", d.p99},
                      {"p999", d.p999}, {"max", d.max}, {"mean", d.mean}};
}

json::value num_or_null(double v) { return v < 0 ? json::value(nullptr) : json::value(v); }

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_options(argc, argv);

  // Every connection is a descriptor: take what the hard limit allows.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < opt.clients + opt.publishers + 64) {
    std::fprintf(stderr,
                 "wsload: RLIMIT_NOFILE is %llu, too low for %zu clients; raise `ulimit -n`\n",
                 static_cast<unsigned long long>(rl.rlim_cur), opt.clients);
    return 2;
  }

  // Declared before `s`, so destroyed after it: the clients' sockets deregister from this
  // io_context's reactor when they are destroyed.
  asio::io_context ioc(opt.threads);
  Shared s(opt);
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(opt.host, aec);
  if (aec) {
    std::fprintf(stderr, "wsload: --host must be an IP address: %s\n", aec.message().c_str());
    return 2;
  }
  s.endpoint = tcp::endpoint(addr, opt.port);
  {
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", rd());
    s.prefix = std::string("wsb-") + tag + "-";
  }
  if (!opt.idle) {
    s.planned = static_cast<std::size_t>(std::llround(opt.rate * opt.duration));
    if (s.planned == 0) s.planned = 1;
    s.send_ns.assign(s.planned, 0);
    s.post_ns.assign(s.planned, 0);
    s.late_ns.assign(s.planned, 0);
    s.ok.assign(s.planned, 0);
  }

  Phase ph;
  // The publishers have a thread of their own: on the clients' thread a POST would be sent
  // late, and its answer read late, whenever that thread is still reading the frames of
  // earlier events, which would couple the publishing schedule to the receiving backlog.
  asio::io_context pub_ioc(1);
  auto pub_work = asio::make_work_guard(pub_ioc);
  std::thread pub_thread([&pub_ioc] { pub_ioc.run(); });
  asio::co_spawn(ioc, orchestrate(ioc, pub_ioc, s, ph), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "wsload: orchestration failed: %s\n", ex.what());
      std::exit(1);
    }
  });
  // A backstop against anything unbounded: the whole run has a hard ceiling.
  const double ceiling = opt.connect_timeout + opt.settle + opt.hold + opt.duration + 30 + 12 +
                         opt.drain + 30;
  std::atomic<bool> finished{false};
  std::atomic<bool> aborted{false};
  std::thread watchdog([&] {
    const auto until = Clock::now() + secs(ceiling);
    while (!finished.load() && Clock::now() < until) std::this_thread::sleep_for(100ms);
    if (!finished.load()) {
      aborted.store(true);
      std::fprintf(stderr, "wsload: run exceeded its %.0f s ceiling; stopping\n", ceiling);
      ioc.stop();
    }
  });
  std::vector<std::thread> pool;
  for (int i = 1; i < opt.threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  pub_work.reset();
  pub_ioc.stop();  // the publishers have ended by now, unless the run was cut short
  pub_thread.join();
  finished.store(true);
  watchdog.join();

  // ---- analysis (single-threaded from here on)
  const std::size_t subscribed = s.subscribed.load();
  std::size_t live_clients = 0;  // subscribed and not closed by the server
  std::uint64_t unique = 0, duplicates = 0, out_of_order = 0, foreign = 0, error_frames = 0,
                resyncs = 0;
  std::uint64_t clients_missing = 0, missing_worst = 0;
  std::vector<std::int64_t> lat;
  std::vector<std::int64_t> last_per_event(s.planned, -1);
  std::map<std::string, std::size_t> failures;
  std::vector<std::uint8_t> seen(s.planned);
  // --trace: every receive time per event, to break the latency down against server-side
  // timestamps taken from the same (system-wide, monotonic) clock.
  std::vector<std::vector<std::int64_t>> recv_per_event(opt.trace_path.empty() ? 0 : s.planned);
  if (!opt.idle) lat.reserve(s.received.load());
  for (auto& cp : s.clients) {
    Client& c = *cp;
    if (!c.failure.empty()) {
      std::string key = c.failure.substr(0, 80);
      ++failures[key];
    }
    out_of_order += c.out_of_order;
    foreign += c.foreign_events;
    error_frames += c.errors;
    resyncs += c.resyncs;
    if (!c.subscribed) continue;
    if (!c.closed_by_server) ++live_clients;
    std::fill(seen.begin(), seen.end(), 0);
    std::uint64_t mine = 0;
    for (auto [idx, t] : c.got) {
      if (seen[idx]) {
        ++duplicates;
        continue;
      }
      seen[idx] = 1;
      ++mine;
      const std::int64_t l = t - s.send_ns[idx];
      lat.push_back(l);
      last_per_event[idx] = std::max(last_per_event[idx], l);
      if (!recv_per_event.empty()) recv_per_event[idx].push_back(t);
    }
    unique += mine;
    if (!opt.idle && !c.closed_by_server && mine < s.posted_ok.load()) {
      ++clients_missing;
      missing_worst = std::max<std::uint64_t>(missing_worst, s.posted_ok.load() - mine);
    }
  }
  const std::size_t ok_posts = s.posted_ok.load();
  // Every subscribed client should have every created event; a client the server closed
  // counts its missing events as lost too (it was never asked to leave).
  const std::uint64_t expected = std::uint64_t(subscribed) * ok_posts;
  const std::uint64_t lost = expected > unique ? expected - unique : 0;
  Dist dl = distribution(lat);
  std::vector<std::int64_t> fan;
  for (std::size_t i = 0; i < s.planned; ++i) {
    if (s.ok[i] && last_per_event[i] >= 0) fan.push_back(last_per_event[i]);
  }
  Dist df = distribution(fan);
  if (!opt.trace_path.empty()) {
    if (FILE* f = std::fopen(opt.trace_path.c_str(), "w")) {
      std::fprintf(f, "# index send_ns post_rtt_ns first_recv_ns median_recv_ns last_recv_ns receivers\n");
      for (std::size_t i = 0; i < s.planned; ++i) {
        auto& r = recv_per_event[i];
        if (s.send_ns[i] == 0 || r.empty()) continue;
        std::sort(r.begin(), r.end());
        std::fprintf(f, "%zu %lld %lld %lld %lld %lld %zu\n", i,
                     static_cast<long long>(s.send_ns[i]), static_cast<long long>(s.post_ns[i]),
                     static_cast<long long>(r.front()), static_cast<long long>(r[r.size() / 2]),
                     static_cast<long long>(r.back()), r.size());
      }
      std::fclose(f);
    } else {
      std::fprintf(stderr, "wsload: cannot write %s\n", opt.trace_path.c_str());
    }
  }
  std::vector<std::int64_t> posts, late;
  std::int64_t first_send = 0, last_send = 0;
  std::size_t sent = 0;
  for (std::size_t i = 0; i < s.planned; ++i) {
    if (s.send_ns[i] == 0) continue;
    ++sent;
    posts.push_back(s.post_ns[i]);
    late.push_back(std::max<std::int64_t>(0, s.late_ns[i]));
    if (first_send == 0 || s.send_ns[i] < first_send) first_send = s.send_ns[i];
    last_send = std::max(last_send, s.send_ns[i]);
  }
  Dist dp = distribution(posts);
  Dist dlate = distribution(late);
  const double achieved =
      sent > 1 && last_send > first_send ? double(sent - 1) / (double(last_send - first_send) / 1e9) : 0;

  // ---- text
  std::printf("wsload %s  127.0.0.1:%u%s  %zu clients, %d thread(s)\n", opt.label.c_str(),
              unsigned(opt.port), opt.path.c_str(), opt.clients, opt.threads);
  std::printf("  connections: %zu subscribed (acked) in %.2f s, %zu failed, %zu closed by the "
              "server during the run\n",
              subscribed, ph.connect_seconds, s.failed.load(), s.dropped.load());
  for (auto& [why, n] : failures) std::printf("    %zu x %s\n", n, why.c_str());
  if (!opt.idle) {
    std::printf("  publishing: %zu planned at %.1f/s for %.1f s; sent %zu, created %zu, failed %zu;"
                " achieved %.2f/s; send lateness p99 %.2f ms, max %.2f ms\n",
                s.planned, opt.rate, opt.duration, sent, ok_posts, s.posted_failed.load(), achieved,
                dlate.p99, dlate.max);
    for (auto& [why, n] : s.post_errors) std::printf("    %zu x %s\n", n, why.c_str());
    std::printf("  POST round trip: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", dp.p50, dp.p99, dp.max);
    std::printf("  deliveries: expected %llu (%zu clients x %zu events), received %llu, lost %llu, "
                "duplicates %llu, out of order %llu; drain %.2f s%s\n",
                (unsigned long long)expected, subscribed, ok_posts, (unsigned long long)unique,
                (unsigned long long)lost, (unsigned long long)duplicates,
                (unsigned long long)out_of_order, ph.drain_seconds,
                ph.drain_timed_out ? " (timed out)" : "");
    if (clients_missing > 0) {
      std::printf("    %llu live clients missed events (worst: %llu missing)\n",
                  (unsigned long long)clients_missing, (unsigned long long)missing_worst);
    }
    std::printf("  latency POST sent -> event read, every delivery: p50 %.3f ms, p90 %.3f ms, "
                "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (n=%zu)\n",
                dl.p50, dl.p90, dl.p99, dl.p999, dl.max, dl.n);
    std::printf("  latency to the last client, per event: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
                df.p50, df.p99, df.max);
    std::printf("  other frames: %llu events not ours (e.g. system.health.status), %llu error "
                "frames, %llu resync_required\n",
                (unsigned long long)foreign, (unsigned long long)error_frames,
                (unsigned long long)resyncs);
  }
  auto rss = [](double v) {
    if (v < 0) return std::string("?");
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return std::string(b);
  };
  if (opt.server_pid > 0) {
    std::printf("  server RSS MiB: before connecting %s, all connected %s, peak %s, %s %s, after "
                "closing %s\n",
                rss(ph.rss_before).c_str(), rss(ph.rss_connected).c_str(), rss(ph.rss_peak).c_str(),
                opt.idle ? "held" : "after publishing",
                rss(opt.idle ? ph.rss_peak : ph.rss_after_publish).c_str(), rss(ph.rss_closed).c_str());
    if (ph.rss_before >= 0 && ph.rss_connected >= 0 && subscribed > 0) {
      std::printf("  server RSS per connection: %.1f KiB\n",
                  (ph.rss_connected - ph.rss_before) * 1024.0 / double(subscribed));
    }
    if (!opt.idle && ph.cpu_publish >= 0) {
      std::printf("  server CPU (user+system) from the first POST to the end of the drain: %.2f s"
                  ", %.2f us per delivery\n",
                  ph.cpu_publish, unique > 0 ? ph.cpu_publish * 1e6 / double(unique) : 0.0);
    }
    if (!opt.idle && ph.cpu_self >= 0) {
      // The two processes share the cores: what the load generator spends is CPU the server
      // cannot have, so a server that makes its clients work harder pays for it in latency.
      std::printf("  load generator CPU over the same window: %.2f s, %.2f us per delivery\n",
                  ph.cpu_self, unique > 0 ? ph.cpu_self * 1e6 / double(unique) : 0.0);
    }
  }
  std::fflush(stdout);

  if (!opt.json_path.empty()) {
    json::object out{
        {"label", opt.label},
        {"mode", opt.idle ? "idle" : "load"},
        {"clients", opt.clients},
        {"threads", opt.threads},
        {"subscribed", subscribed},
        {"connectFailed", s.failed.load()},
        {"closedByServer", s.dropped.load()},
        {"connectSeconds", ph.connect_seconds},
        {"rssMiB", json::object{{"before", num_or_null(ph.rss_before)},
                                {"connected", num_or_null(ph.rss_connected)},
                                {"peak", num_or_null(ph.rss_peak)},
                                {"afterPublish", num_or_null(ph.rss_after_publish)},
                                {"closed", num_or_null(ph.rss_closed)}}},
        {"serverCpuSeconds", num_or_null(ph.cpu_publish)},
        {"loadGeneratorCpuSeconds", num_or_null(ph.cpu_self)},
    };
    if (!opt.idle) {
      json::object errs;
      for (auto& [why, n] : s.post_errors) errs[why] = n;
      out["publish"] = json::object{{"planned", s.planned},
                                    {"rateTarget", opt.rate},
                                    {"durationSeconds", opt.duration},
                                    {"sent", sent},
                                    {"created", ok_posts},
                                    {"failed", s.posted_failed.load()},
                                    {"errors", std::move(errs)},
                                    {"rateAchieved", achieved},
                                    {"lateMs", dist_json(dlate)},
                                    {"postMs", dist_json(dp)}};
      out["deliveries"] = json::object{{"expected", expected},
                                       {"received", unique},
                                       {"lost", lost},
                                       {"duplicates", duplicates},
                                       {"outOfOrder", out_of_order},
                                       {"clientsMissing", clients_missing},
                                       {"drainSeconds", ph.drain_seconds},
                                       {"drainTimedOut", ph.drain_timed_out},
                                       {"foreignEvents", foreign},
                                       {"errorFrames", error_frames},
                                       {"resyncRequired", resyncs}};
      out["latencyMs"] = dist_json(dl);
      out["lastClientMs"] = dist_json(df);
    }
    std::ofstream f(opt.json_path);
    f << json::serialize(out) << "\n";
    if (!f) {
      std::fprintf(stderr, "wsload: cannot write %s\n", opt.json_path.c_str());
      return 1;
    }
  }
  if (aborted.load() || s.running.load() > 0 || s.publishers_running.load() > 0) {
    // Coroutines are still suspended on sockets: their frames would outlive the clients they
    // refer to during teardown. The figures are out; leave without tearing down.
    std::fflush(nullptr);
    std::_Exit(aborted.load() ? 3 : 0);
  }
  return 0;
}
