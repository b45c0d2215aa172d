// The stdio transport: the server is a child process; messages are single lines of JSON on
// its stdin and stdout; its stderr is logged. The process is started through the sandbox
// runner (agents/sandbox), sandboxed or not, which owns limits, the cgroup and the stop that
// leaves no process behind. Its `run` blocks, so it runs on a thread of this transport, which
// also reads stdout and stderr through the runner's output callback.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "agents/sandbox/runner.hpp"
#include "core/log.hpp"
#include "mcp/transport.hpp"

namespace dp::mcp {
namespace {

namespace sandbox = agents::sandbox;

constexpr std::size_t kStderrTail = 2048;
constexpr std::size_t kMaxStderrLine = 4096;

class StdioTransport final : public Transport {
 public:
  explicit StdioTransport(StdioOptions o) : opt_(std::move(o)) {}
  ~StdioTransport() override { close(); }

  Status start(TransportHandlers h) override {
    if (opt_.argv.empty()) return Error::invalid_argument("invalid_config", "stdio transport needs a command");
    handlers_ = std::move(h);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::unavailable(std::string("pipe: ") + std::strerror(errno));
    stdin_read_ = p[0];
    stdin_write_ = p[1];
    ::fcntl(stdin_write_, F_SETFL, O_NONBLOCK);

    sandbox::RunSpec spec;
    spec.argv = opt_.argv;
    spec.env = opt_.env;
    spec.workspace = opt_.workspace;
    spec.isolation = opt_.sandbox ? sandbox::Isolation::kSandbox : sandbox::Isolation::kNone;
    spec.network = opt_.network;
    spec.ro_binds = opt_.ro_binds;
    spec.limits = opt_.limits;
    spec.stop_grace = std::chrono::milliseconds(1'000);
    spec.output_limit = 0;  // everything goes through on_output; nothing is kept
    spec.stdin_fd = stdin_read_;
    spec.on_output = [this](std::string_view stream, std::string_view chunk) {
      if (stream == "stdout") {
        on_stdout(chunk);
      } else {
        on_stderr(chunk);
      }
    };
    // Fail fast on what would make `run` refuse (missing bubblewrap, bad workspace), so the
    // caller gets the reason instead of an immediate close.
    DP_TRY(sandbox::check_available(spec.isolation));
    started_ = true;
    thread_ = std::thread([this, spec = std::move(spec)]() mutable {
      auto r = sandbox::run(spec, &control_);
      Error why = Error::unavailable("MCP server exited");
      if (!r.ok()) {
        why = std::move(r).error();
      } else {
        std::string m = "MCP server (" + describe() + ") ended: " + r->outcome;
        if (r->outcome == "exited") m += " with code " + std::to_string(r->exit_code);
        if (r->signal != 0) m += " by signal " + std::to_string(r->signal);
        std::lock_guard lock(mu_);
        if (!stderr_tail_.empty()) m += "; stderr: " + stderr_tail_;
        why = Error{ErrorCode::kUnavailable, "server_exited", m, nullptr};
      }
      {
        std::lock_guard lock(mu_);
        exited_ = true;
      }
      cv_.notify_all();
      if (!closing_.load() && handlers_.on_closed) handlers_.on_closed(why);
    });
    return Ok{};
  }

  Status send(const std::string& text, Clock::time_point deadline) override {
    std::lock_guard lock(write_mu_);
    if (stdin_write_ < 0 || closing_.load()) return Error::unavailable("MCP server connection is closed");
    std::string line = text;
    line.push_back('\n');
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t w = ::write(stdin_write_, line.data() + off, line.size() - off);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        return Error{ErrorCode::kUnavailable, "server_exited",
                     std::string("writing to the MCP server failed: ") + std::strerror(errno), nullptr};
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return Error{ErrorCode::kDeadlineExceeded, "timeout", "the MCP server does not read its input", nullptr};
      }
      pollfd pfd{stdin_write_, POLLOUT, 0};
      ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
    }
    return Ok{};
  }

  void close() override {
    if (!started_) {
      close_fds();
      return;
    }
    closing_.store(true);
    {
      // Closing stdin is the polite way to end a stdio server; give it a moment.
      std::lock_guard wl(write_mu_);
      if (stdin_write_ >= 0) ::close(stdin_write_);
      stdin_write_ = -1;
    }
    if (std::this_thread::get_id() == thread_.get_id()) {
      control_.stop();
      return;  // joined by the destructor from another thread
    }
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(300), [this] { return exited_; });
    }
    control_.stop();
    if (thread_.joinable()) thread_.join();
    close_fds();
    started_ = false;
  }

  std::string describe() const override {
    std::string d = opt_.sandbox ? "stdio (sandboxed):" : "stdio:";
    for (const auto& a : opt_.argv) d += " " + a;
    return d;
  }

 private:
  void close_fds() {
    if (stdin_read_ >= 0) ::close(stdin_read_);
    stdin_read_ = -1;
    std::lock_guard wl(write_mu_);
    if (stdin_write_ >= 0) ::close(stdin_write_);
    stdin_write_ = -1;
  }

  void on_stdout(std::string_view chunk) {
    if (too_large_) return;
    std::size_t start = 0;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i] != '\n') continue;
      std::string_view piece = chunk.substr(start, i - start);
      start = i + 1;
      if (out_buf_.empty()) {
        deliver(piece);
      } else {
        out_buf_.append(piece);
        std::string line = std::move(out_buf_);
        out_buf_.clear();
        deliver(line);
      }
      if (too_large_) return;
    }
    if (start < chunk.size()) {
      out_buf_.append(chunk.substr(start));
      if (out_buf_.size() > opt_.max_message_bytes) fail_too_large(out_buf_.size());
    }
  }

  void deliver(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    if (line.size() > opt_.max_message_bytes) {
      fail_too_large(line.size());
      return;
    }
    if (handlers_.on_message) handlers_.on_message(line);
  }

  void fail_too_large(std::size_t n) {
    too_large_ = true;
    out_buf_.clear();
    out_buf_.shrink_to_fit();
    if (handlers_.on_closed) {
      handlers_.on_closed(Error{ErrorCode::kResourceExhausted, "message_too_large",
                                "the MCP server sent a message of more than " + std::to_string(n) +
                                    " bytes (limit " + std::to_string(opt_.max_message_bytes) + ")",
                                nullptr});
    }
    closing_.store(true);
    control_.stop();
  }

  void on_stderr(std::string_view chunk) {
    for (char c : chunk) {
      if (c == '\n' || err_buf_.size() >= kMaxStderrLine) {
        if (!err_buf_.empty()) {
          log::global().info("mcp server stderr", {{"adapter", opt_.log_name}, {"line", err_buf_}});
          std::lock_guard lock(mu_);
          stderr_tail_ += err_buf_ + "\n";
          if (stderr_tail_.size() > kStderrTail) stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
        }
        err_buf_.clear();
        if (c == '\n') continue;
      }
      err_buf_.push_back(c);
    }
  }

  StdioOptions opt_;
  TransportHandlers handlers_;
  sandbox::RunControl control_;
  std::thread thread_;
  bool started_ = false;
  std::atomic<bool> closing_{false};
  std::mutex write_mu_;
  int stdin_read_ = -1;
  int stdin_write_ = -1;
  // Reader-thread state (only the run thread touches these).
  std::string out_buf_;
  std::string err_buf_;
  bool too_large_ = false;
  // Shared with the closer.
  std::mutex mu_;
  std::condition_variable cv_;
  bool exited_ = false;
  std::string stderr_tail_;
};

}  // namespace

std::unique_ptr<Transport> make_stdio_transport(StdioOptions options) {
  return std::make_unique<StdioTransport>(std::move(options));
}

}  // namespace dp::mcp
