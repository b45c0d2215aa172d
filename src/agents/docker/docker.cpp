#include "agents/docker/docker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::agents::docker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using local = asio::local::stream_protocol;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                       u == '-' || u == '_' || u == '.';
    if (plain) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string prefix() { return "/" + std::string(kApiVersion); }

// The engine's error message ({"message": "..."}), or the body itself.
std::string engine_message(const EngineResponse& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (auto* m = v.as_object().if_contains("message"); m != nullptr && m->is_string()) {
      return std::string(m->as_string());
    }
  }
  return r.body.substr(0, 500);
}

Status expect(const Result<EngineResponse>& r, std::initializer_list<unsigned> ok, std::string_view what) {
  if (!r.ok()) return r.error();
  for (unsigned s : ok) {
    if (r->status == s) return Ok{};
  }
  const std::string msg = std::string(what) + ": docker answered " + std::to_string(r->status) + ": " +
                          engine_message(*r);
  if (r->status == 404) return Error::not_found(msg);
  if (r->status == 409) return Error::failed_precondition("docker_conflict", msg);
  return Error::internal(msg);
}

}  // namespace

json::object create_body(const ContainerSpec& s) {
  json::array cmd;
  for (const auto& a : s.argv) cmd.emplace_back(a);
  json::array env;
  for (const auto& [k, v] : s.env) env.emplace_back(k + "=" + v);
  json::object labels{{"devplane", "agent"}};
  for (const auto& [k, v] : s.labels) labels[k] = v;
  json::object host{
      {"Memory", s.memory_bytes},
      // Equal to Memory: no swap beyond the limit.
      {"MemorySwap", s.memory_bytes},
      {"NanoCpus", static_cast<std::int64_t>(s.cpus * 1e9)},
      {"PidsLimit", s.pids},
      {"NetworkMode", s.network ? "bridge" : "none"},
      {"CapDrop", json::array{"ALL"}},
      {"SecurityOpt", json::array{"no-new-privileges"}},
      {"ReadonlyRootfs", true},
      {"Tmpfs", json::object{{"/tmp", "rw,nosuid,nodev,size=64m"}}},
      {"Binds", json::array{s.workspace + ":/workspace:rw"}},
      {"AutoRemove", false},
      {"Init", true},
  };
  return json::object{
      {"Image", s.image},
      {"Cmd", std::move(cmd)},
      {"Env", std::move(env)},
      {"WorkingDir", s.workdir.empty() ? std::string("/workspace") : "/workspace/" + s.workdir},
      {"Labels", std::move(labels)},
      {"NetworkDisabled", !s.network},
      {"AttachStdin", false},
      {"AttachStdout", true},
      {"AttachStderr", true},
      {"OpenStdin", s.open_stdin},
      {"StdinOnce", s.open_stdin},
      {"Tty", false},
      {"HostConfig", std::move(host)},
  };
}

std::string create_target(std::string_view name) {
  return prefix() + "/containers/create" + (name.empty() ? "" : "?name=" + encode(name));
}
std::string start_target(std::string_view id) { return prefix() + "/containers/" + encode(id) + "/start"; }
std::string wait_target(std::string_view id) {
  return prefix() + "/containers/" + encode(id) + "/wait?condition=not-running";
}
std::string logs_target(std::string_view id) {
  return prefix() + "/containers/" + encode(id) + "/logs?stdout=1&stderr=1";
}
std::string kill_target(std::string_view id, std::string_view signal) {
  return prefix() + "/containers/" + encode(id) + "/kill?signal=" + encode(signal);
}
std::string remove_target(std::string_view id) {
  return prefix() + "/containers/" + encode(id) + "?force=1&v=1";
}

Result<Logs> demux_logs(std::string_view raw, std::size_t limit) {
  Logs l;
  std::size_t i = 0;
  while (i + 8 <= raw.size()) {
    const auto stream = static_cast<unsigned char>(raw[i]);
    const std::size_t size = (static_cast<std::size_t>(static_cast<unsigned char>(raw[i + 4])) << 24) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(raw[i + 5])) << 16) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(raw[i + 6])) << 8) |
                             static_cast<std::size_t>(static_cast<unsigned char>(raw[i + 7]));
    if (stream > 2) {
      return Error::invalid_argument("bad_log_stream",
                                     "docker log frame names stream " + std::to_string(stream));
    }
    i += 8;
    const std::string_view payload = raw.substr(i, std::min(size, raw.size() - i));
    i += payload.size();
    std::string& dst = stream == 2 ? l.err : l.out;
    (stream == 2 ? l.err_bytes : l.out_bytes) += static_cast<std::int64_t>(payload.size());
    if (dst.size() < limit) dst.append(payload.substr(0, limit - dst.size()));
  }
  return l;
}

Result<EngineResponse> DockerClient::request(std::string_view method, const std::string& target,
                                             const std::string& body,
                                             std::chrono::milliseconds timeout) const {
  asio::io_context ioc;
  Result<EngineResponse> out = Error::unavailable("docker request did not run");
  const auto limit = timeout.count() > 0 ? timeout : timeout_;
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "devplane");
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        beast::basic_stream<local> stream(co_await asio::this_coro::executor);
        stream.expires_after(limit);
        auto [cec] = co_await stream.async_connect(local::endpoint(socket_), kTuple);
        if (cec) {
          out = Error::unavailable("cannot reach the Docker engine at " + socket_ + ": " + cec.message());
          co_return;
        }
        auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
        if (wec) {
          out = Error::unavailable("docker request failed: " + wec.message());
          co_return;
        }
        beast::flat_buffer buf;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        auto [rec, rn] = co_await bhttp::async_read(stream, buf, parser, kTuple);
        if (rec) {
          out = rec == beast::error::timeout
                    ? Error{ErrorCode::kDeadlineExceeded, "timeout", "docker request timed out", nullptr}
                    : Error::unavailable("docker answer unreadable: " + rec.message());
          co_return;
        }
        out = EngineResponse{parser.get().result_int(), std::move(parser.get().body())};
        beast::error_code ignored;
        stream.socket().shutdown(local::socket::shutdown_both, ignored);
      },
      asio::detached);
  ioc.run();
  return out;
}

Status DockerClient::ping() const {
  return expect(request("GET", prefix() + "/_ping"), {200}, "ping");
}

Result<std::string> DockerClient::create(const ContainerSpec& spec) const {
  auto r = request("POST", create_target(spec.name), json::serialize(create_body(spec)));
  DP_TRY(expect(r, {201}, "create container"));
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("Id") || !v.as_object().at("Id").is_string()) {
    return Error::internal("create container: docker answered without an Id");
  }
  return std::string(v.as_object().at("Id").as_string());
}

Status DockerClient::start(const std::string& id) const {
  return expect(request("POST", start_target(id)), {204, 304}, "start container");
}

Result<int> DockerClient::wait(const std::string& id, std::chrono::milliseconds timeout) const {
  auto r = request("POST", wait_target(id), {}, timeout);
  DP_TRY(expect(r, {200}, "wait for container"));
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("StatusCode") ||
      !v.as_object().at("StatusCode").is_number()) {
    return Error::internal("wait for container: docker answered without a StatusCode");
  }
  return static_cast<int>(v.as_object().at("StatusCode").to_number<std::int64_t>());
}

Result<Logs> DockerClient::logs(const std::string& id, std::size_t limit) const {
  auto r = request("GET", logs_target(id));
  DP_TRY(expect(r, {200}, "read container logs"));
  return demux_logs(r->body, limit);
}

Status DockerClient::kill(const std::string& id, std::string_view signal) const {
  // 409: it is not running any more, which is what was wanted.
  return expect(request("POST", kill_target(id, signal)), {204, 409}, "kill container");
}

Status DockerClient::remove(const std::string& id) const {
  return expect(request("DELETE", remove_target(id)), {204, 404}, "remove container");
}

Result<sandbox::RunResult> run(const DockerClient& client, const ContainerSpec& spec,
                               std::chrono::milliseconds timeout, std::size_t output_limit,
                               sandbox::RunControl* control) {
  if (spec.image.empty()) return Error::invalid_argument("invalid_config", "the docker runtime needs config.image");
  const auto started = std::chrono::steady_clock::now();
  DP_ASSIGN_OR_RETURN(std::string id, client.create(spec));
  sandbox::RunResult res;
  res.isolated = true;
  auto finish = [&](Status s) -> Result<sandbox::RunResult> {
    client.remove(id).ignore_error();  // best effort: a leftover is labelled devplane=agent
    res.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
    res.wall_ms = res.wall_us / 1000;
    if (!s.ok()) return s.error();
    return res;
  };
  if (Status s = client.start(id); !s.ok()) return finish(s);
  // Wait in short rounds so a stop or the deadline is seen within half a second.
  for (;;) {
    auto w = client.wait(id, std::chrono::milliseconds(500));
    if (w.ok()) {
      res.outcome = "exited";
      res.exit_code = *w;
      if (*w >= 128) {
        res.outcome = "signaled";
        res.signal = *w - 128;
      }
      break;
    }
    if (w.error().code != ErrorCode::kDeadlineExceeded) return finish(w.error());
    const bool stop = control != nullptr && control->stop_requested();
    const bool late = timeout.count() > 0 && std::chrono::steady_clock::now() - started >= timeout;
    if (stop || late) {
      client.kill(id, "SIGKILL").ignore_error();
      res.outcome = stop ? "stopped" : "timeout";
      res.signal = 9;
      break;
    }
  }
  if (auto l = client.logs(id, output_limit); l.ok()) {
    res.stdout_text = std::move(l->out);
    res.stderr_text = std::move(l->err);
    res.stdout_bytes = l->out_bytes;
    res.stderr_bytes = l->err_bytes;
  }
  return finish(Ok{});
}

}  // namespace dp::agents::docker
