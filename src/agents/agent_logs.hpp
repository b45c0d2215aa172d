// AgentLogs: the output of each agent's tasks kept on this node, per agent, size-capped and
// rotated: `<dir>/<agent id>.log` (newest) and `.log.1` .. `.log.<keep>` (older), one JSON
// object per line ({timestamp, taskId, stream, text}). GET /api/v1/agents/:id/logs reads the
// last lines and, with follow=true, what is appended after them.
//
// Thread safety: safe from any thread (one mutex; appends are small).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dp::agents {

class AgentLogs {
 public:
  // `max_bytes`: size of one file before it is rotated; `keep`: rotated files kept.
  AgentLogs(std::string dir, std::uint64_t max_bytes = 4 * 1024 * 1024, int keep = 2);

  // Appends one line (a JSON object without its newline). Best effort: I/O errors are logged.
  void append(const std::string& agent_id, const std::string& line);
  // The last `n` lines over the current and rotated files, oldest first.
  std::vector<std::string> tail(const std::string& agent_id, std::size_t n) const;

  // Follows one agent's log from its current end: each `poll` returns the complete lines
  // appended since the last one (after a rotation, from the new file's start).
  class Follower {
   public:
    std::vector<std::string> poll();

   private:
    friend class AgentLogs;
    std::string path_;
    std::uint64_t offset_ = 0;
    std::uint64_t inode_ = 0;
    std::string partial_;
  };
  Follower follow(const std::string& agent_id) const;

 private:
  std::string path(const std::string& agent_id) const;

  const std::string dir_;
  const std::uint64_t max_bytes_;
  const int keep_;
  mutable std::mutex mu_;
};

}  // namespace dp::agents
