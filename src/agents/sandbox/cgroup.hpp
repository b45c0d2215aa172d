// Cgroup: resource limits and accounting for one sandboxed process tree.
//
// Works on cgroup v2 (a unified hierarchy with the memory, pids and cpu controllers
// delegated to devplane's own cgroup) and on v1 (separate memory, pids and cpu hierarchies,
// as on hybrid hosts). The group is made under the cgroup devplane itself runs in, so the
// limits nest inside whatever the host gave devplane. Every process the sandboxed program
// starts stays in the group, which is how `kill_all` reaches the whole tree.
// Thread safety: not thread safe; one owner (the run that created it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/result.hpp"

namespace dp::agents::sandbox {

struct CgroupLimits {
  std::int64_t memory_bytes = 0;  // 0: no limit
  std::int64_t pids = 0;          // 0: no limit
  double cpus = 0;                // 0: no limit; 0.5 = half a core
};

// The limits an agent's or an MCP adapter's config sets, as its keys `memoryMb`, `pids` and
// `cpus` (0: no CPU quota); a key that is absent (or not a number) keeps `defaults`' value.
// The API validates the ranges before a config is stored.
CgroupLimits limits_from_config(const boost::json::object& config, CgroupLimits defaults);

struct CgroupStats {
  std::int64_t memory_peak_bytes = 0;
  std::int64_t oom_kills = 0;       // processes the kernel killed at the memory limit
  std::int64_t pids_refused = 0;    // forks refused at the pids limit
  std::int64_t cpu_usage_us = 0;
  std::int64_t cpu_throttled = 0;   // periods in which the group was throttled
};

// What the group uses now (sampled while it runs, for the agent cards).
struct CgroupUsage {
  std::int64_t memory_bytes = 0;        // current charge (memory.current / usage_in_bytes)
  std::int64_t memory_limit_bytes = 0;  // 0: no limit
  std::int64_t cpu_usage_us = -1;       // CPU time so far; -1: this host does not account it
};

class Cgroup {
 public:
  enum class Version { kV1, kV2 };

  // Which hierarchy this host offers for memory, pids and cpu; kUnavailable naming what is
  // missing when neither does. Looked at until found once, then remembered.
  static Result<Version> detect();
  // Makes a new group `name` (unique, [a-z0-9-]) with `limits`.
  static Result<std::unique_ptr<Cgroup>> create(const std::string& name, const CgroupLimits& limits);

  ~Cgroup();  // kills what is left and removes the group
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // The files a child writes its pid into (each "cgroup.procs") before it execs, so that it
  // and all its descendants start inside the group. Precomputed: the child may only make
  // async-signal-safe calls.
  const std::vector<std::string>& procs_files() const noexcept { return procs_files_; }
  // SIGKILLs every process in the group, repeating until it is empty (bounded). A group once
  // found empty is not read again.
  void kill_all();
  bool empty() const;
  CgroupStats stats() const;
  // Reads the group's current use; cheap (three small files), safe while processes run.
  CgroupUsage usage() const;
  Version version() const noexcept { return version_; }

 private:
  Cgroup(Version v, std::vector<std::string> dirs);
  static Result<Version> probe();
  bool emptied_ = false;
  Version version_;
  std::vector<std::string> dirs_;  // v2: one; v1: memory, pids, cpu[, cpuacct]
  std::vector<std::string> procs_files_;
};

}  // namespace dp::agents::sandbox
