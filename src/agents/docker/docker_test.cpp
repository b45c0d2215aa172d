// The docker runtime without a Docker engine: request bodies and URLs, the log stream
// decoding, and the HTTP exchange over a unix socket against a small engine made here that
// answers as the Engine API does (and records what it was sent).
#include "agents/docker/docker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace dp::agents::docker {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using local = asio::local::stream_protocol;

ContainerSpec spec() {
  ContainerSpec s;
  s.name = "devplane-task-1";
  s.image = "alpine:3.20";
  s.argv = {"sh", "-c", "echo hi"};
  s.env = {{"DEVPLANE_TASK_ID", "t1"}};
  s.workspace = "/var/lib/devplane/workspaces/a/t1";
  s.memory_bytes = 64LL * 1024 * 1024;
  s.cpus = 0.5;
  s.pids = 32;
  return s;
}

TEST(DockerRequestTest, CreateBodyLocksTheContainerDown) {
  const auto b = create_body(spec());
  EXPECT_EQ(b.at("Image"), "alpine:3.20");
  EXPECT_EQ(b.at("Cmd"), (json::array{"sh", "-c", "echo hi"}));
  EXPECT_EQ(b.at("Env"), (json::array{"DEVPLANE_TASK_ID=t1"}));
  EXPECT_EQ(b.at("WorkingDir"), "/workspace");
  EXPECT_EQ(b.at("NetworkDisabled"), true);
  EXPECT_EQ(b.at("Tty"), false);
  const auto& h = b.at("HostConfig").as_object();
  EXPECT_EQ(h.at("Memory").as_int64(), 64LL * 1024 * 1024);
  EXPECT_EQ(h.at("MemorySwap").as_int64(), 64LL * 1024 * 1024);
  EXPECT_EQ(h.at("NanoCpus").as_int64(), 500'000'000);
  EXPECT_EQ(h.at("PidsLimit").as_int64(), 32);
  EXPECT_EQ(h.at("NetworkMode"), "none");
  EXPECT_EQ(h.at("CapDrop"), (json::array{"ALL"}));
  EXPECT_EQ(h.at("SecurityOpt"), (json::array{"no-new-privileges"}));
  EXPECT_EQ(h.at("ReadonlyRootfs"), true);
  EXPECT_EQ(h.at("Binds"), (json::array{"/var/lib/devplane/workspaces/a/t1:/workspace:rw"}));
  EXPECT_TRUE(h.at("Tmpfs").as_object().contains("/tmp"));
  EXPECT_EQ(b.at("Labels").as_object().at("devplane"), "agent");
}

TEST(DockerRequestTest, NetworkAndWorkdirWhenGranted) {
  auto s = spec();
  s.network = true;
  s.workdir = "repo";
  const auto b = create_body(s);
  EXPECT_EQ(b.at("NetworkDisabled"), false);
  EXPECT_EQ(b.at("HostConfig").as_object().at("NetworkMode"), "bridge");
  EXPECT_EQ(b.at("WorkingDir"), "/workspace/repo");
}

TEST(DockerRequestTest, TargetsCarryTheVersionAndEncodeIds) {
  EXPECT_EQ(create_target("devplane-t1"), "/v1.43/containers/create?name=devplane-t1");
  EXPECT_EQ(create_target(""), "/v1.43/containers/create");
  EXPECT_EQ(start_target("abc"), "/v1.43/containers/abc/start");
  EXPECT_EQ(wait_target("abc"), "/v1.43/containers/abc/wait?condition=not-running");
  EXPECT_EQ(logs_target("abc"), "/v1.43/containers/abc/logs?stdout=1&stderr=1");
  EXPECT_EQ(kill_target("abc", "SIGKILL"), "/v1.43/containers/abc/kill?signal=SIGKILL");
  EXPECT_EQ(remove_target("abc"), "/v1.43/containers/abc?force=1&v=1");
  // A hostile id cannot reach another endpoint.
  EXPECT_EQ(start_target("../../images/x?y=1"), "/v1.43/containers/..%2F..%2Fimages%2Fx%3Fy%3D1/start");
}

std::string frame(unsigned char stream, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  const auto n = payload.size();
  f[4] = static_cast<char>((n >> 24) & 0xff);
  f[5] = static_cast<char>((n >> 16) & 0xff);
  f[6] = static_cast<char>((n >> 8) & 0xff);
  f[7] = static_cast<char>(n & 0xff);
  return f + std::string(payload);
}

TEST(DockerLogsTest, DemuxesCapsAndSurvivesTruncation) {
  const std::string raw = frame(1, "hello ") + frame(2, "oops\n") + frame(1, "world\n");
  auto l = demux_logs(raw, 1024);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->out, "hello world\n");
  EXPECT_EQ(l->err, "oops\n");
  EXPECT_EQ(l->out_bytes, 12);
  auto capped = demux_logs(raw, 4);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->out, "hell");
  EXPECT_EQ(capped->out_bytes, 12);
  // A frame cut short keeps what arrived; a header cut short is dropped.
  auto cut = demux_logs(raw.substr(0, raw.size() - 3) , 1024);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->out, "hello wor");
  EXPECT_TRUE(demux_logs(std::string_view(raw).substr(0, 5), 1024).ok());
  EXPECT_FALSE(demux_logs(frame(7, "x"), 1024).ok());
  EXPECT_TRUE(demux_logs("", 10)->out.empty());
}

// A small Engine API on a unix socket: answers create, start, wait, logs, kill, delete and
// _ping as dockerd does, and records each request line and body.
class FakeEngine {
 public:
  explicit FakeEngine(fs::path path) : path_(std::move(path)), acceptor_(ioc_, local::endpoint(path_.string())) {
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    // Wake the blocking accept with one last connection.
    try {
      local::socket s(ioc_);
      s.connect(local::endpoint(path_.string()));
    } catch (...) {
    }
    thread_.join();
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::string body_of(std::string_view line) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == line) return bodies_[i];
    }
    return {};
  }
  std::atomic<int> exit_code{3};
  std::atomic<int> wait_ms{0};  // how long /wait blocks
  std::atomic<bool> missing_image{false};

 private:
  void serve() {
    while (!stop_) {
      local::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) break;
      boost::beast::flat_buffer buf;
      bhttp::request<bhttp::string_body> req;
      bhttp::read(s, buf, req, ec);
      if (ec) continue;
      const std::string line = std::string(req.method_string()) + " " + std::string(req.target());
      {
        std::lock_guard lock(mu_);
        requests_.push_back(line);
        bodies_.push_back(req.body());
      }
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.set(bhttp::field::content_type, "application/json");
      const std::string t(req.target());
      if (t.find("/containers/create") != std::string::npos) {
        if (missing_image) {
          res.result(404);
          res.body() = R"({"message":"No such image: alpine:3.20"})";
        } else {
          res.result(201);
          res.body() = R"({"Id":"c0ffee","Warnings":[]})";
        }
      } else if (t.ends_with("/start") || t.find("/kill") != std::string::npos ||
                 req.method() == bhttp::verb::delete_) {
        res.result(204);
      } else if (t.find("/wait") != std::string::npos) {
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms.load()));
        res.body() = R"({"StatusCode":)" + std::to_string(exit_code.load()) + "}";
      } else if (t.find("/logs") != std::string::npos) {
        res.set(bhttp::field::content_type, "application/vnd.docker.multiplexed-stream");
        res.body() = frame(1, "out line\n") + frame(2, "err line\n");
      } else if (t.ends_with("/_ping")) {
        res.set(bhttp::field::content_type, "text/plain");
        res.body() = "OK";
      } else {
        res.result(404);
        res.body() = R"({"message":"page not found"})";
      }
      res.prepare_payload();
      bhttp::write(s, res, ec);
    }
  }

  fs::path path_;
  asio::io_context ioc_;
  local::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<std::string> bodies_;
};

class DockerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dp-docker-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    engine_ = std::make_unique<FakeEngine>(dir_ / "docker.sock");
  }
  void TearDown() override {
    engine_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<FakeEngine> engine_;
};

TEST_F(DockerClientTest, RunsAContainerToItsEndAndRemovesIt) {
  DockerClient c((dir_ / "docker.sock").string());
  ASSERT_TRUE(c.ping().ok());
  auto r = run(c, spec(), std::chrono::seconds(10), 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, "exited");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_text, "out line\n");
  EXPECT_EQ(r->stderr_text, "err line\n");
  EXPECT_TRUE(r->isolated);
  const auto reqs = engine_->requests();
  const std::vector<std::string> want = {
      "GET /v1.43/_ping",
      "POST /v1.43/containers/create?name=devplane-task-1",
      "POST /v1.43/containers/c0ffee/start",
      "POST /v1.43/containers/c0ffee/wait?condition=not-running",
      "GET /v1.43/containers/c0ffee/logs?stdout=1&stderr=1",
      "DELETE /v1.43/containers/c0ffee?force=1&v=1"};
  EXPECT_EQ(reqs, want);
  // The body the engine got is the one create_body builds.
  auto sent = json::parse(engine_->body_of("POST /v1.43/containers/create?name=devplane-task-1"));
  EXPECT_EQ(sent.as_object(), create_body(spec()));
}

TEST_F(DockerClientTest, ADeadlineKillsTheContainer) {
  engine_->wait_ms = 2000;  // every wait round times out
  DockerClient c((dir_ / "docker.sock").string());
  auto r = run(c, spec(), std::chrono::milliseconds(700), 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, "timeout");
  bool killed = false;
  for (const auto& q : engine_->requests()) killed = killed || q == "POST /v1.43/containers/c0ffee/kill?signal=SIGKILL";
  EXPECT_TRUE(killed);
  EXPECT_EQ(engine_->requests().back(), "DELETE /v1.43/containers/c0ffee?force=1&v=1");
}

TEST_F(DockerClientTest, AStopKillsTheContainer) {
  engine_->wait_ms = 2000;
  DockerClient c((dir_ / "docker.sock").string());
  sandbox::RunControl control;
  control.stop();
  auto r = run(c, spec(), std::chrono::seconds(30), 1024, &control);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, "stopped");
}

TEST_F(DockerClientTest, EngineErrorsKeepTheEnginesMessage) {
  engine_->missing_image = true;
  DockerClient c((dir_ / "docker.sock").string());
  auto r = run(c, spec(), std::chrono::seconds(10), 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("No such image: alpine:3.20"), std::string::npos) << r.error().message;
  auto none = spec();
  none.image.clear();
  EXPECT_EQ(run(c, none, std::chrono::seconds(1), 10).error().code, ErrorCode::kInvalidArgument);
}

TEST(DockerClientNoEngineTest, AMissingSocketIsUnavailableWithItsPath) {
  DockerClient c("/nonexistent/docker.sock", std::chrono::milliseconds(500));
  Status s = c.ping();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("/nonexistent/docker.sock"), std::string::npos);
}

// With a real engine this would run a container; these machines have none.
TEST(DockerEngineTest, RunsARealContainerWhenAnEngineIsThere) {
  const char* sock = std::getenv("DEVPLANE_TEST_DOCKER_SOCKET");
  const std::string path = sock != nullptr ? sock : std::string(kDefaultSocket);
  DockerClient c(path, std::chrono::seconds(2));
  if (!c.ping().ok()) GTEST_SKIP() << "no Docker engine at " << path << ": the real-engine test is skipped";
  auto s = spec();
  s.workspace = fs::temp_directory_path().string();
  s.argv = {"sh", "-c", "echo real; exit 4"};
  auto r = run(c, s, std::chrono::seconds(60), 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_EQ(r->stdout_text, "real\n");
}

}  // namespace
}  // namespace dp::agents::docker
