#include "agents/agent_logs.hpp"

#include <sys/stat.h>

#include <charconv>
#include <filesystem>
#include <fstream>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/log.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;

// The id of a stored line: lines are written as {"id":N,...}, so it is read without parsing
// the whole object. nullopt for anything else (a torn or foreign line is skipped).
std::optional<std::uint64_t> line_id(std::string_view line) {
  constexpr std::string_view kPrefix = "{\"id\":";
  if (!line.starts_with(kPrefix)) return std::nullopt;
  std::uint64_t id = 0;
  const char* begin = line.data() + kPrefix.size();
  auto [p, ec] = std::from_chars(begin, line.data() + line.size(), id);
  if (ec != std::errc() || p == begin || id == 0) return std::nullopt;
  return id;
}

std::uint64_t file_size(const std::string& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

struct AgentLogs::Channel {
  // Guarded by AgentLogs::mu_.
  std::uint64_t last_id = 0;
  bool recovered = false;
  // The follow buffer. Lines are pushed with AgentLogs::mu_ held too, so they enter it in id
  // order; followers read it under `mu` alone.
  std::mutex mu;
  std::deque<AgentLogLine> buffer;  // guarded by mu; only while followers > 0
  std::size_t buffered_bytes = 0;   // guarded by mu
  std::uint64_t evicted_through = 0;  // guarded by mu: newest id dropped from `buffer`
  std::size_t followers = 0;          // guarded by mu
  // Followers' on_append callbacks (Follower::set_on_append); guarded by mu.
  std::map<const Follower*, std::function<void()>> on_append;
};

AgentLogs::AgentLogs(AgentLogOptions options) : options_(std::move(options)) {}

AgentLogs::~AgentLogs() = default;

std::string AgentLogs::path(const std::string& agent_id, int generation) const {
  std::string p = options_.dir + "/" + agent_id + ".log";
  if (generation > 0) p += "." + std::to_string(generation);
  return p;
}

std::uint64_t AgentLogs::recover_last_id(const std::string& agent_id) const {
  for (int g = 0; g <= options_.keep_files; ++g) {
    std::ifstream in(path(agent_id, g), std::ios::binary);
    if (!in) continue;
    std::uint64_t last = 0;
    std::string line;
    while (std::getline(in, line)) {
      if (auto id = line_id(line)) last = *id;
    }
    if (last > 0) return last;
  }
  return 0;
}

std::shared_ptr<AgentLogs::Channel> AgentLogs::channel_locked(const std::string& agent_id) {
  auto& ch = channels_[agent_id];
  if (!ch) ch = std::make_shared<Channel>();
  if (!ch->recovered) {
    ch->last_id = recover_last_id(agent_id);
    ch->recovered = true;
  }
  return ch;
}

void AgentLogs::append(const std::string& agent_id, const std::string& task_id,
                       std::string_view stream, std::string_view text,
                       const std::string& timestamp) {
  if (text.empty()) return;
  std::lock_guard lock(mu_);
  auto ch = channel_locked(agent_id);
  std::vector<AgentLogLine> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    boost::json::object o{{"id", ch->last_id + 1},
                          {"taskId", task_id},
                          {"stream", stream},
                          {"text", text.substr(start, end - start)},
                          {"timestamp", timestamp}};
    ch->last_id += 1;
    lines.push_back(AgentLogLine{ch->last_id, boost::json::serialize(o)});
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }

  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  const std::string current = path(agent_id, 0);
  std::uint64_t size = file_size(current);
  std::ofstream out;
  bool failed = false;
  for (const auto& l : lines) {
    // A file is rotated before a line would take it past the cap (a single longer line still
    // gets a file of its own).
    if (size > 0 && size + l.json.size() + 1 > options_.max_file_bytes) {
      out.close();
      // .log.<keep> falls off, each older file moves up one, the current becomes .1.
      fs::remove(path(agent_id, options_.keep_files), ec);
      for (int g = options_.keep_files - 1; g >= 0; --g) {
        fs::rename(path(agent_id, g), path(agent_id, g + 1), ec);
      }
      if (options_.keep_files <= 0) fs::remove(current, ec);
      size = 0;
    }
    if (!out.is_open()) out.open(current, std::ios::app | std::ios::binary);
    out << l.json << '\n';
    size += l.json.size() + 1;
    failed = failed || !out;
  }
  out.flush();
  if (failed || !out) {
    log::global().warn("agent log not written", {{"agentId", agent_id}, {"path", current}});
  }

  std::lock_guard blk(ch->mu);
  if (ch->followers == 0) return;
  for (auto& l : lines) {
    ch->buffered_bytes += l.json.size();
    ch->buffer.push_back(std::move(l));
  }
  while (ch->buffered_bytes > kFollowBufferBytes && ch->buffer.size() > 1) {
    ch->buffered_bytes -= ch->buffer.front().json.size();
    ch->evicted_through = ch->buffer.front().id;
    ch->buffer.pop_front();
  }
  for (const auto& [follower, fn] : ch->on_append) fn();
}

Result<AgentLogs::Opened> AgentLogs::open(const std::string& agent_id, std::size_t limit,
                                          std::uint64_t after, bool follow) {
  Opened out;
  if (follow) {
    // Reserve a place first so that the cap holds under concurrent opens.
    if (followers_.fetch_add(1) >= options_.max_followers) {
      followers_.fetch_sub(1);
      return Error{ErrorCode::kResourceExhausted, "too_many_followers",
                   "this node already serves " + std::to_string(options_.max_followers) +
                       " log followers (agent_log_max_followers)",
                   nullptr};
    }
  }
  std::lock_guard lock(mu_);
  auto ch = channel_locked(agent_id);
  // Oldest file first; the newest `limit` lines with id > after.
  std::deque<AgentLogLine> kept;
  for (int g = options_.keep_files; g >= 0 && limit > 0; --g) {
    std::ifstream in(path(agent_id, g), std::ios::binary);
    if (!in) continue;
    std::string line;
    while (std::getline(in, line)) {
      auto id = line_id(line);
      if (!id || *id <= after || *id > ch->last_id) continue;
      if (!kept.empty() && *id <= kept.back().id) continue;  // never out of order
      kept.push_back(AgentLogLine{*id, std::move(line)});
      if (kept.size() > limit) kept.pop_front();
    }
  }
  const std::uint64_t first = kept.empty() ? ch->last_id + 1 : kept.front().id;
  out.skipped = first > after + 1 ? first - after - 1 : 0;
  out.lines.assign(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
  if (follow) {
    std::lock_guard blk(ch->mu);
    ch->followers += 1;
    out.follower.reset(new Follower(*this, ch, ch->last_id));
  }
  return out;
}

void AgentLogs::Follower::set_on_append(std::function<void()> fn) {
  std::lock_guard lock(channel_->mu);
  if (fn) {
    channel_->on_append[this] = std::move(fn);
  } else {
    channel_->on_append.erase(this);
  }
}

AgentLogs::Follower::~Follower() {
  {
    std::lock_guard lock(channel_->mu);
    channel_->on_append.erase(this);
    channel_->followers -= 1;
    if (channel_->followers == 0) {
      channel_->buffer.clear();
      channel_->buffered_bytes = 0;
    }
  }
  logs_.followers_.fetch_sub(1);
}

bool AgentLogs::Follower::poll(std::vector<AgentLogLine>& out, std::size_t max_bytes) {
  std::lock_guard lock(channel_->mu);
  if (channel_->evicted_through > last_) return false;
  auto& buf = channel_->buffer;
  if (buf.empty() || buf.back().id <= last_) return true;
  std::size_t i = last_ + 1 >= buf.front().id ? static_cast<std::size_t>(last_ + 1 - buf.front().id) : 0;
  std::size_t bytes = 0;
  for (; i < buf.size(); ++i) {
    if (bytes > 0 && bytes + buf[i].json.size() > max_bytes) break;
    bytes += buf[i].json.size();
    out.push_back(buf[i]);
    last_ = buf[i].id;
  }
  return true;
}

}  // namespace dp::agents
