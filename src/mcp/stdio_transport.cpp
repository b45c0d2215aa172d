// The stdio transport: the server is a child process; messages are single lines of JSON on
// its stdin and stdout; its stderr is logged. The process is started through the sandbox
// runner (agents/sandbox), sandboxed or not, which owns limits, the cgroup and the stop that
// leaves no process behind. Its `run` blocks, so it runs on a thread of this transport, which
// also gets stderr through the runner's output callback.
//
// Stdout is read by whoever holds the reader role, one thread at a time: a caller waiting for
// its reply (`pump`), which then wakes when the reply is there instead of waiting for another
// thread to read it and wake it, or, when no caller has waited for a moment, a background
// reader (for notifications and requests from the server). A caller that finds the background
// reader in its poll kicks it out (an eventfd) and takes over.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
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
// After the last caller stopped reading, the background reader waits this long before it
// takes the role back: a program's next call usually follows at once.
constexpr auto kCallerGrace = std::chrono::milliseconds(5);
// The longest one poll of the background reader (it also wakes when kicked).
constexpr auto kBackgroundPoll = std::chrono::milliseconds(100);

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
    kick_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (kick_ < 0) return Error::unavailable(std::string("eventfd: ") + std::strerror(errno));

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
      if (stream == "stderr") on_stderr(chunk);
    };
    // Fail fast on what would make `run` refuse (missing bubblewrap, bad workspace), so the
    // caller gets the reason instead of an immediate close.
    DP_TRY(sandbox::check_available(spec.isolation));
    int o[2];
    if (::pipe2(o, O_CLOEXEC) != 0) return Error::unavailable(std::string("pipe: ") + std::strerror(errno));
    stdout_read_ = o[0];
    ::fcntl(stdout_read_, F_SETFL, O_NONBLOCK);
    spec.stdout_fd = o[1];  // sandbox::run takes it over
    started_ = true;
    reader_ = std::thread([this] { read_in_background(); });
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
      // What the server wrote before it ended is delivered before its end is reported.
      drain();
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

  bool pump(Clock::time_point until) override {
    std::unique_lock l(rd_mu_);
    if (!started_.load() || eof_ || closing_.load()) return false;
    ++waiters_;
    const std::uint64_t seen = batches_;
    if (reading_) {
      if (bg_reading_) kick();
      ++blocked_;
      rd_cv_.wait_until(l, until, [&] { return !reading_ || batches_ != seen || closing_.load() || eof_; });
      --blocked_;
    }
    if (!reading_ && batches_ == seen && !closing_.load() && !eof_ && Clock::now() < until) {
      reading_ = true;
      l.unlock();
      read_batch(until);
      l.lock();
      reading_ = false;
    }
    --waiters_;
    last_pump_ = Clock::now();
    // Only callers blocked for the role need to hear that it is free (the background reader
    // looks again on its own).
    const bool others = blocked_ > 0;
    l.unlock();
    if (others) rd_cv_.notify_all();
    return true;
  }

  void close() override {
    if (!started_) {
      close_fds();
      return;
    }
    closing_.store(true);
    {
      std::lock_guard l(rd_mu_);  // a reader between its check and its wait sees closing_
    }
    rd_cv_.notify_all();
    bg_cv_.notify_all();
    kick();
    // From a handler (the reading thread, the runner's thread): only ask for the end; the
    // destructor, on another thread, waits for it.
    if (delivering_ == std::this_thread::get_id() || std::this_thread::get_id() == thread_.get_id() ||
        std::this_thread::get_id() == reader_.get_id()) {
      control_.stop();
      return;
    }
    {
      // Closing stdin is the polite way to end a stdio server; give it a moment.
      std::lock_guard wl(write_mu_);
      if (stdin_write_ >= 0) ::close(stdin_write_);
      stdin_write_ = -1;
    }
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(300), [this] { return exited_; });
    }
    control_.stop();
    if (thread_.joinable()) thread_.join();
    if (reader_.joinable()) reader_.join();
    {
      // Callers still in pump (they leave at once: closing_, and the kick ends a poll) must be
      // out before the descriptors they poll are closed (and their numbers reused).
      std::unique_lock l(rd_mu_);
      ++blocked_;
      rd_cv_.wait_for(l, std::chrono::seconds(5), [&] { return !reading_ && waiters_ == 0; });
      --blocked_;
    }
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
    if (stdout_read_ >= 0) ::close(stdout_read_);
    stdout_read_ = -1;
    if (kick_ >= 0) ::close(kick_);
    kick_ = -1;
    std::lock_guard wl(write_mu_);
    if (stdin_write_ >= 0) ::close(stdin_write_);
    stdin_write_ = -1;
  }

  void kick() {
    const std::uint64_t one = 1;
    if (kick_ >= 0 && ::write(kick_, &one, sizeof one) < 0) {}  // full: a kick is pending anyway
  }

  // As the holder of the reader role: waits (at most until `until`, and not past a kick) for
  // stdout, then reads and delivers everything it has.
  void read_batch(Clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd fds[2] = {{stdout_read_, POLLIN, 0}, {kick_, POLLIN, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(std::clamp<long long>(left + 1, 0, 1000)));
    if (rc <= 0) return;
    if ((fds[1].revents & POLLIN) != 0) {
      std::uint64_t n = 0;
      if (::read(kick_, &n, sizeof n) < 0) {}
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) read_available();
  }

  // Reads stdout until it would block (or ends), delivering each whole line.
  void read_available() {
    char chunk[65536];
    bool got = false;
    bool ended = false;
    delivering_ = std::this_thread::get_id();
    for (;;) {
      const ssize_t r = ::read(stdout_read_, chunk, sizeof chunk);
      if (r > 0) {
        got = true;
        on_stdout(std::string_view(chunk, static_cast<std::size_t>(r)));
        // A connection given up (a message over the limit, a close) reads no further.
        if (too_large_ || closing_.load()) break;
        continue;
      }
      if (r == 0 || (errno != EAGAIN && errno != EINTR)) ended = true;
      if (r < 0 && errno == EINTR) continue;
      break;
    }
    delivering_ = std::thread::id{};
    if (!got && !ended) return;
    bool others = false;
    {
      std::lock_guard l(rd_mu_);
      if (got) ++batches_;
      if (ended) eof_ = true;
      others = blocked_ > 0;
    }
    if (others) rd_cv_.notify_all();
  }

  // The background reader: holds the role while no caller reads for itself.
  void read_in_background() {
    for (;;) {
      {
        std::unique_lock l(rd_mu_);
        for (;;) {
          if (closing_.load() || eof_) return;
          const auto idle_at = last_pump_ + kCallerGrace;
          if (!reading_ && waiters_ == 0 && Clock::now() >= idle_at) break;
          // No one wakes this thread when callers stop reading (that would cost a wake-up per
          // call): it looks again after the grace.
          bg_cv_.wait_until(l, std::max(idle_at, Clock::now() + kCallerGrace));
        }
        reading_ = bg_reading_ = true;
      }
      read_batch(Clock::now() + kBackgroundPoll);
      bool others = false;
      {
        std::lock_guard l(rd_mu_);
        reading_ = bg_reading_ = false;
        others = blocked_ > 0;
      }
      if (others) rd_cv_.notify_all();
    }
  }

  // On the runner's thread once the server is gone: takes the role (bounded: a handler that
  // holds it may be the one closing) and delivers what is left in the pipe.
  void drain() {
    {
      std::unique_lock l(rd_mu_);
      if (bg_reading_) kick();
      ++blocked_;
      const bool mine = rd_cv_.wait_for(l, std::chrono::seconds(1), [&] { return !reading_; });
      --blocked_;
      if (!mine) return;
      reading_ = true;
    }
    if (stdout_read_ >= 0) read_available();
    bool others = false;
    {
      std::lock_guard l(rd_mu_);
      reading_ = false;
      others = blocked_ > 0;
    }
    if (others) rd_cv_.notify_all();
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
  std::atomic<bool> started_{false};
  std::atomic<bool> closing_{false};
  std::mutex write_mu_;
  int stdin_read_ = -1;
  int stdin_write_ = -1;
  int kick_ = -1;         // eventfd: gets the background reader out of its poll
  int stdout_read_ = -1;  // non-blocking
  std::thread reader_;
  // The reader role; guarded by rd_mu_.
  std::mutex rd_mu_;
  std::condition_variable rd_cv_;  // callers (and drain) blocked for the role or a batch
  std::condition_variable bg_cv_;  // the background reader between its looks
  int blocked_ = 0;           // threads waiting on rd_cv_
  bool reading_ = false;      // a thread holds the role
  bool bg_reading_ = false;   // ... and it is the background reader
  int waiters_ = 0;           // callers inside pump
  std::uint64_t batches_ = 0;  // reads that delivered something (a waiter returns when it moves)
  Clock::time_point last_pump_{};
  bool eof_ = false;
  // The thread delivering messages now (close() from inside a handler only asks for the end).
  std::atomic<std::thread::id> delivering_{};
  // The role holder's state.
  std::string out_buf_;
  bool too_large_ = false;
  // The runner thread's state.
  std::string err_buf_;
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
