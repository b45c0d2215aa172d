#include "agents/sandbox/cgroup.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/json/object.hpp>

namespace dp::agents::sandbox {

CgroupLimits limits_from_config(const boost::json::object& config, CgroupLimits defaults) {
  if (const auto* v = config.if_contains("memoryMb"); v != nullptr && v->is_int64()) {
    defaults.memory_bytes = v->get_int64() * 1024 * 1024;
  }
  if (const auto* v = config.if_contains("pids"); v != nullptr && v->is_int64()) defaults.pids = v->get_int64();
  if (const auto* v = config.if_contains("cpus"); v != nullptr && v->is_number()) {
    defaults.cpus = v->to_number<double>();
  }
  return defaults;
}

namespace {

namespace fs = std::filesystem;
constexpr const char* kRoot = "/sys/fs/cgroup";

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Status write_file(const fs::path& p, const std::string& value) {
  std::ofstream f(p);
  if (!f) return Error::unavailable("cannot open " + p.string() + ": " + std::strerror(errno));
  f << value;
  f.flush();
  if (!f) return Error::unavailable("cannot write '" + value + "' to " + p.string());
  return Ok{};
}

// The path of this process's group in `controller`'s hierarchy ("" for v2's unified one).
// Read from /proc/self/cgroup once: devplane's own group does not move while it runs, and a
// task start should not pay for re-reading it (several times) on every run.
std::string own_path(std::string_view controller) {
  static const std::vector<std::pair<std::string, std::string>> kLines = [] {
    std::vector<std::pair<std::string, std::string>> out;  // ",controller-list,", path
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    while (std::getline(f, line)) {
      // hierarchy-id:controller-list:path
      const auto a = line.find(':');
      const auto b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      out.emplace_back("," + line.substr(a + 1, b - a - 1) + ",", line.substr(b + 1));
    }
    return out;
  }();
  for (const auto& [list, path] : kLines) {
    if (controller.empty() ? list == ",," : list.find("," + std::string(controller) + ",") != std::string::npos) {
      return path;
    }
  }
  return {};
}

// mkdir of one new group folder; its parent is made too when missing (the first run).
std::error_code make_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return {};
  std::error_code ec;
  if (errno == ENOENT) fs::create_directories(dir, ec);
  else ec = std::error_code(errno, std::generic_category());
  return ec;
}

std::int64_t read_int(const fs::path& p) {
  try {
    return std::stoll(read_file(p));
  } catch (...) {
    return 0;
  }
}

// "key value" lines (memory.events, pids.events, cpu.stat, memory.oom_control).
std::int64_t read_key(const fs::path& p, std::string_view key) {
  std::istringstream in(read_file(p));
  std::string k;
  std::int64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

bool v2_has_controllers() {
  const std::string self = own_path("");
  const fs::path dir = fs::path(kRoot) / self.substr(self.empty() ? 0 : 1);
  const std::string controllers = read_file(fs::path(kRoot) / "cgroup.controllers");
  return fs::exists(fs::path(kRoot) / "cgroup.controllers") &&
         controllers.find("memory") != std::string::npos &&
         controllers.find("pids") != std::string::npos && fs::exists(dir);
}

}  // namespace

Cgroup::Cgroup(Version v, std::vector<std::string> dirs) : version_(v), dirs_(std::move(dirs)) {
  for (const auto& d : dirs_) procs_files_.push_back(d + "/cgroup.procs");
}

Result<Cgroup::Version> Cgroup::detect() {
  // What the host offers does not change while devplane runs: once found, remembered (a
  // failure is looked at again next time).
  static std::mutex mu;
  static std::optional<Version> found;
  {
    std::lock_guard lock(mu);
    if (found) return *found;
  }
  auto v = probe();
  if (v.ok()) {
    std::lock_guard lock(mu);
    found = *v;
  }
  return v;
}

Result<Cgroup::Version> Cgroup::probe() {
  if (v2_has_controllers()) return Version::kV2;
  std::string missing;
  for (const char* c : {"memory", "pids", "cpu"}) {
    if (!fs::exists(fs::path(kRoot) / c / "cgroup.procs")) missing += std::string(missing.empty() ? "" : ", ") + c;
  }
  if (missing.empty()) return Version::kV1;
  return Error::unavailable("cgroups unavailable: neither a cgroup v2 hierarchy with the memory "
                            "and pids controllers nor cgroup v1 hierarchies for " + missing +
                            " under /sys/fs/cgroup");
}

Result<std::unique_ptr<Cgroup>> Cgroup::create(const std::string& name, const CgroupLimits& limits) {
  DP_ASSIGN_OR_RETURN(Version v, detect());
  std::vector<std::string> dirs;
  auto make = [&](const fs::path& dir) -> Status {
    if (auto ec = make_dir(dir)) {
      return Error::unavailable("cannot create cgroup " + dir.string() + ": " + ec.message());
    }
    dirs.push_back(dir.string());
    return Ok{};
  };
  auto cleanup = [&] {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  };
  const std::int64_t period = 100'000;
  if (v == Version::kV2) {
    const std::string self = own_path("");
    // Nested under devplane's own group, which works when devplane was given a delegated
    // subtree (systemd's Delegate=yes, or a container's own cgroup namespace).
    const fs::path base = fs::path(kRoot) / (self.size() > 1 ? self.substr(1) : "") / "devplane-sandbox";
    if (auto s = make(base); !s.ok()) return std::move(s).error();
    write_file(base / "cgroup.subtree_control", "+memory +pids +cpu").ignore_error();
    if (auto s = make(base / name); !s.ok()) {
      cleanup();
      return std::move(s).error();
    }
    dirs.erase(dirs.begin());  // the shared base stays
    const fs::path d = dirs.front();
    Status s = Ok{};
    if (limits.memory_bytes > 0) s = write_file(d / "memory.max", std::to_string(limits.memory_bytes));
    if (s.ok() && limits.memory_bytes > 0) write_file(d / "memory.swap.max", "0").ignore_error();
    if (s.ok() && limits.pids > 0) s = write_file(d / "pids.max", std::to_string(limits.pids));
    if (s.ok() && limits.cpus > 0) {
      s = write_file(d / "cpu.max", std::to_string(static_cast<std::int64_t>(std::ceil(limits.cpus * period))) + " " + std::to_string(period));
    }
    if (!s.ok()) {
      cleanup();
      return std::move(s).error();
    }
    return std::unique_ptr<Cgroup>(new Cgroup(v, std::move(dirs)));
  }
  // v1: one group per controller hierarchy, each under devplane's own group there.
  for (const char* c : {"memory", "pids", "cpu"}) {
    const std::string self = own_path(c);
    const fs::path dir = fs::path(kRoot) / c / (self.size() > 1 ? self.substr(1) : "") /
                         "devplane-sandbox" / name;
    if (auto s = make(dir); !s.ok()) {
      cleanup();
      return std::move(s).error();
    }
  }
  // CPU time is accounted by cpuacct, which hybrid hosts often mount on its own rather than
  // with cpu ("cpu,cpuacct"). Optional: without it the group still limits, only the CPU use
  // of a running task is unknown.
  static const bool kSeparateCpuacct = !fs::exists(fs::path(dirs[2]) / "cpuacct.usage") &&
                                       fs::exists(fs::path(kRoot) / "cpuacct" / "cgroup.procs");
  if (kSeparateCpuacct) {
    const std::string self = own_path("cpuacct");
    const fs::path dir = fs::path(kRoot) / "cpuacct" / (self.size() > 1 ? self.substr(1) : "") /
                         "devplane-sandbox" / name;
    if (!make_dir(dir)) dirs.push_back(dir.string());
  }
  const fs::path mem = dirs[0], pids = dirs[1], cpu = dirs[2];
  Status s = Ok{};
  if (limits.memory_bytes > 0) {
    s = write_file(mem / "memory.limit_in_bytes", std::to_string(limits.memory_bytes));
    // Without swap accounting the file is absent; the limit above still holds RAM.
    if (s.ok() && fs::exists(mem / "memory.memsw.limit_in_bytes")) {
      write_file(mem / "memory.memsw.limit_in_bytes", std::to_string(limits.memory_bytes)).ignore_error();
    }
  }
  if (s.ok() && limits.pids > 0) s = write_file(pids / "pids.max", std::to_string(limits.pids));
  if (s.ok() && limits.cpus > 0) {
    s = write_file(cpu / "cpu.cfs_period_us", std::to_string(period));
    if (s.ok()) {
      s = write_file(cpu / "cpu.cfs_quota_us",
                     std::to_string(static_cast<std::int64_t>(std::ceil(limits.cpus * period))));
    }
  }
  if (!s.ok()) {
    cleanup();
    return std::move(s).error();
  }
  return std::unique_ptr<Cgroup>(new Cgroup(v, std::move(dirs)));
}

Cgroup::~Cgroup() {
  kill_all();
  for (const auto& d : dirs_) ::rmdir(d.c_str());
}

bool Cgroup::empty() const {
  for (const auto& f : procs_files_) {
    if (!read_file(f).empty()) return false;
  }
  return true;
}

void Cgroup::kill_all() {
  // Once found empty the group stays so: only its own processes could add one.
  if (emptied_) return;
  // A fork racing with the kill can add a process after we read the list: repeat until the
  // group is empty, a bounded number of times.
  for (int round = 0; round < 100; ++round) {
    bool any = false;
    for (const auto& f : procs_files_) {
      std::istringstream in(read_file(f));
      pid_t pid = 0;
      while (in >> pid) {
        if (pid > 0) {
          ::kill(pid, SIGKILL);
          any = true;
        }
      }
    }
    if (!any) {
      emptied_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(round < 10 ? 1 : 10));
  }
}

CgroupStats Cgroup::stats() const {
  CgroupStats st;
  if (version_ == Version::kV2) {
    const fs::path d = dirs_.front();
    st.memory_peak_bytes = read_int(d / "memory.peak");
    st.oom_kills = read_key(d / "memory.events", "oom_kill");
    st.pids_refused = read_key(d / "pids.events", "max");
    st.cpu_usage_us = read_key(d / "cpu.stat", "usage_usec");
    st.cpu_throttled = read_key(d / "cpu.stat", "nr_throttled");
    return st;
  }
  const fs::path mem = dirs_[0], pids = dirs_[1], cpu = dirs_[2];
  st.memory_peak_bytes = read_int(mem / "memory.max_usage_in_bytes");
  st.oom_kills = read_key(mem / "memory.oom_control", "oom_kill");
  st.pids_refused = read_key(pids / "pids.events", "max");
  st.cpu_throttled = read_key(cpu / "cpu.stat", "nr_throttled");
  const fs::path acct = dirs_.size() > 3 ? fs::path(dirs_[3]) : cpu;
  if (fs::exists(acct / "cpuacct.usage")) st.cpu_usage_us = read_int(acct / "cpuacct.usage") / 1000;
  return st;
}

CgroupUsage Cgroup::usage() const {
  CgroupUsage u;
  if (version_ == Version::kV2) {
    const fs::path d = dirs_.front();
    u.memory_bytes = read_int(d / "memory.current");
    u.memory_limit_bytes = read_int(d / "memory.max");  // "max" reads as 0: no limit
    if (fs::exists(d / "cpu.stat")) u.cpu_usage_us = read_key(d / "cpu.stat", "usage_usec");
    return u;
  }
  const fs::path mem = dirs_[0];
  u.memory_bytes = read_int(mem / "memory.usage_in_bytes");
  u.memory_limit_bytes = read_int(mem / "memory.limit_in_bytes");
  // v1 reports "no limit" as a huge page-rounded number.
  if (u.memory_limit_bytes >= (std::int64_t{1} << 62)) u.memory_limit_bytes = 0;
  const fs::path acct = dirs_.size() > 3 ? fs::path(dirs_[3]) : fs::path(dirs_[2]);
  if (fs::exists(acct / "cpuacct.usage")) u.cpu_usage_us = read_int(acct / "cpuacct.usage") / 1000;
  return u;
}

}  // namespace dp::agents::sandbox
