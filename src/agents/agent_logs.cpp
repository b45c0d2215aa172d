#include "agents/agent_logs.hpp"

#include <sys/stat.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "core/log.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;

bool stat_file(const std::string& p, std::uint64_t& size, std::uint64_t& inode) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return false;
  size = static_cast<std::uint64_t>(st.st_size);
  inode = static_cast<std::uint64_t>(st.st_ino);
  return true;
}

}  // namespace

AgentLogs::AgentLogs(std::string dir, std::uint64_t max_bytes, int keep)
    : dir_(std::move(dir)), max_bytes_(max_bytes), keep_(keep) {}

std::string AgentLogs::path(const std::string& agent_id) const { return dir_ + "/" + agent_id + ".log"; }

void AgentLogs::append(const std::string& agent_id, const std::string& line) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const std::string p = path(agent_id);
  std::uint64_t size = 0, inode = 0;
  if (stat_file(p, size, inode) && size + line.size() + 1 > max_bytes_ && size > 0) {
    for (int i = keep_; i >= 1; --i) {
      const std::string from = i == 1 ? p : p + "." + std::to_string(i - 1);
      if (i == keep_) fs::remove(p + "." + std::to_string(i), ec);
      fs::rename(from, p + "." + std::to_string(i), ec);
    }
    if (keep_ <= 0) fs::remove(p, ec);
  }
  std::ofstream out(p, std::ios::app | std::ios::binary);
  out << line << '\n';
  if (!out) log::global().warn("agent log not written", {{"agentId", agent_id}});
}

std::vector<std::string> AgentLogs::tail(const std::string& agent_id, std::size_t n) const {
  std::lock_guard lock(mu_);
  std::deque<std::string> lines;
  const std::string p = path(agent_id);
  for (int i = keep_; i >= 0; --i) {
    std::ifstream in(i == 0 ? p : p + "." + std::to_string(i), std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      lines.push_back(std::move(line));
      if (lines.size() > n) lines.pop_front();
    }
  }
  return {lines.begin(), lines.end()};
}

AgentLogs::Follower AgentLogs::follow(const std::string& agent_id) const {
  std::lock_guard lock(mu_);
  Follower f;
  f.path_ = path(agent_id);
  stat_file(f.path_, f.offset_, f.inode_);
  return f;
}

std::vector<std::string> AgentLogs::Follower::poll() {
  std::vector<std::string> out;
  std::uint64_t size = 0, inode = 0;
  if (!stat_file(path_, size, inode)) return out;
  if (inode != inode_ || size < offset_) {  // rotated: the new file from its start
    inode_ = inode;
    offset_ = 0;
    partial_.clear();
  }
  if (size == offset_) return out;
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string chunk(static_cast<std::size_t>(std::min<std::uint64_t>(size - offset_, 1 << 20)), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<std::size_t>(in.gcount()));
  offset_ += chunk.size();
  partial_ += chunk;
  std::size_t start = 0;
  for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(partial_.substr(start, nl - start));
  }
  partial_.erase(0, start);
  return out;
}

}  // namespace dp::agents
