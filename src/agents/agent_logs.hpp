// AgentLogs: the output of each agent's tasks kept on this node, per agent, size-capped and
// rotated, for GET /api/v1/agents/:id/logs (docs/api.md).
//
// Files: `<dir>/<agent id>.log` (newest) and `.log.1` .. `.log.<keep>` (older), one JSON object
// per output line: {"id", "taskId", "stream", "text", "timestamp"}. `id` numbers an agent's
// lines 1, 2, 3, ... on this node; it survives restarts (read back from the newest file) and is
// the Server-Sent Events id that a follower resumes from.
//
// Following: `open()` returns the kept lines after a point and, when asked, a Follower that
// receives every line appended after them, exactly once and in order. Appended lines reach the
// followers through a per-agent buffer in memory (at most kFollowBufferBytes); a follower whose
// unread lines fall out of it is "lagged" and is dropped by its reader, so a slow reader never
// makes the node buffer without limit. The number of followers per node is capped.
//
// Thread safety: safe from any thread. Appends and `open` hold one mutex while they touch the
// files; `Follower::poll` takes only its agent's buffer lock (memory only, never blocks on I/O),
// so it may run on an I/O thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dp::agents {

struct AgentLogOptions {
  std::string dir;                                // <data_dir>/logs
  std::uint64_t max_file_bytes = 4 * 1024 * 1024;  // a file is rotated before it passes this
  int keep_files = 2;                              // rotated files kept besides the current one
  std::size_t max_followers = 64;                  // per node
};

// One kept line: its id and the JSON object as stored (one line, no newline).
struct AgentLogLine {
  std::uint64_t id = 0;
  std::string json;
};

class AgentLogs {
 public:
  // Unread lines a follower may fall behind by, per agent, before it is dropped.
  static constexpr std::size_t kFollowBufferBytes = 1024 * 1024;

  explicit AgentLogs(AgentLogOptions options);
  ~AgentLogs();
  AgentLogs(const AgentLogs&) = delete;
  AgentLogs& operator=(const AgentLogs&) = delete;

  // Appends `text` (one batch of a task's output) as one line per '\n'-separated piece (an
  // empty last piece is dropped). Best effort: I/O errors are logged, the lines still reach
  // followers.
  void append(const std::string& agent_id, const std::string& task_id, std::string_view stream,
              std::string_view text, const std::string& timestamp);

  class Follower;
  struct Opened {
    std::vector<AgentLogLine> lines;    // oldest first
    std::uint64_t skipped = 0;          // ids after `after` no longer kept (or over `limit`)
    std::unique_ptr<Follower> follower;  // when asked for
  };
  // The kept lines with id > `after`, the newest `limit` of them; with `follow`, also a
  // Follower for every line appended after those. kResourceExhausted when `follow` and the
  // node already has `max_followers`.
  Result<Opened> open(const std::string& agent_id, std::size_t limit, std::uint64_t after,
                      bool follow);

  std::size_t followers() const noexcept { return followers_.load(); }

  struct Channel;  // per agent: the id counter and the follow buffer

  // Receives the lines appended after `open`. Unregisters when destroyed.
  class Follower {
   public:
    ~Follower();
    Follower(const Follower&) = delete;
    Follower& operator=(const Follower&) = delete;

    // Moves up to `max_bytes` (at least one line) of the unread lines into `out`. False when
    // the follower is lagged: lines it had not read were dropped from the buffer.
    bool poll(std::vector<AgentLogLine>& out, std::size_t max_bytes);
    std::uint64_t last_id() const noexcept { return last_; }
    // `fn` is called after each append to this agent's log, on the appending thread with the
    // agent's buffer lock held: it must not block or call back into AgentLogs (post work or
    // set a flag). Replaces the previous callback; an empty one removes it.
    void set_on_append(std::function<void()> fn);

   private:
    friend class AgentLogs;
    Follower(AgentLogs& logs, std::shared_ptr<Channel> channel, std::uint64_t last)
        : logs_(logs), channel_(std::move(channel)), last_(last) {}
    AgentLogs& logs_;
    std::shared_ptr<Channel> channel_;
    std::uint64_t last_;  // id of the last line delivered (or the start point)
  };

 private:
  std::string path(const std::string& agent_id, int generation) const;
  // REQUIRES: mu_ held.
  std::shared_ptr<Channel> channel_locked(const std::string& agent_id);
  std::uint64_t recover_last_id(const std::string& agent_id) const;

  const AgentLogOptions options_;
  std::mutex mu_;  // the files and `channels_`
  std::map<std::string, std::shared_ptr<Channel>> channels_;
  std::atomic<std::size_t> followers_{0};
};

}  // namespace dp::agents
