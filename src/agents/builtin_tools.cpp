// The built-in tools (see tools.hpp). File access goes through descriptors opened one path
// component at a time with O_NOFOLLOW, relative to the workspace's descriptor.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <boost/json/serialize.hpp>

#include "agents/tools.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace dp::agents {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxReadBytes = 256 * 1024;
constexpr std::size_t kMaxWriteBytes = 1024 * 1024;
constexpr std::size_t kMaxEntries = 1000;
constexpr std::size_t kMaxPathBytes = 1024;

ToolOutput fail(std::string text) { return ToolOutput{std::move(text), true}; }

// A descriptor closed at scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// The components of a relative path; nullopt (with `why`) for absolute paths, `..`, NUL bytes
// or an over-long path. "" and "." give no components (the workspace itself).
std::optional<std::vector<std::string>> split(std::string_view path, std::string& why) {
  if (path.size() > kMaxPathBytes) {
    why = "the path is too long";
    return std::nullopt;
  }
  if (path.find('\0') != std::string_view::npos) {
    why = "the path contains a NUL byte";
    return std::nullopt;
  }
  if (!path.empty() && path.front() == '/') {
    why = "absolute paths are refused: give a path relative to the workspace";
    return std::nullopt;
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      why = "'..' is refused: the path must stay inside the workspace";
      return std::nullopt;
    }
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = end + 1;
  }
  return parts;
}

std::string errno_text(int e, std::string_view path) {
  if (e == ELOOP || e == ENOTDIR) {
    return "'" + std::string(path) + "' goes through a symbolic link or a non-folder; refused";
  }
  if (e == ENOENT) return "'" + std::string(path) + "' does not exist";
  return "'" + std::string(path) + "': " + std::strerror(e);
}

// Opens the folder `parts[0..n)` under the workspace without following links; with
// `create`, makes missing folders.
Result<Fd> open_dir(const std::string& workspace, const std::vector<std::string>& parts,
                    std::size_t n, bool create, std::string_view shown) {
  Fd dir(::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Error::unavailable("the workspace cannot be opened");
  for (std::size_t i = 0; i < n; ++i) {
    int fd = ::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::invalid_argument("tool_failed", errno_text(errno, shown));
      }
      fd = ::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return Error::invalid_argument("tool_failed", errno_text(errno, shown));
    dir = Fd(fd);
  }
  return dir;
}

std::optional<std::string> str_arg(const json::object& a, std::string_view key) {
  if (auto* v = a.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return std::nullopt;
}

json::object schema(json::object properties, json::array required) {
  return json::object{{"type", "object"},
                      {"properties", std::move(properties)},
                      {"required", std::move(required)},
                      {"additionalProperties", false}};
}

class ListTool final : public Tool {
 public:
  std::string_view name() const noexcept override { return "workspace.list"; }
  std::string_view description() const noexcept override {
    return "List the entries (name, type, size) of a folder in the workspace. path is relative "
           "to the workspace; omit it for the workspace itself.";
  }
  json::object input_schema() const override {
    return schema(json::object{{"path", json::object{{"type", "string"}}}}, json::array{});
  }
  ToolOutput call(const json::object& args, const ToolContext& ctx) const override {
    if (auto* p = args.if_contains("path"); p != nullptr && !p->is_string()) {
      return fail("path must be a string");
    }
    const std::string path = str_arg(args, "path").value_or("");
    std::string why;
    auto parts = split(path, why);
    if (!parts) return fail(why);
    auto dir = open_dir(ctx.workspace, *parts, parts->size(), false, path);
    if (!dir.ok()) return fail(dir.error().message);
    DIR* d = ::fdopendir(dir->get());
    if (d == nullptr) return fail(errno_text(errno, path));
    dir->release();  // owned by `d` now
    json::array entries;
    bool truncated = false;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (entries.size() >= kMaxEntries) {
        truncated = true;
        break;
      }
      struct stat st{};
      json::object o{{"name", n}};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
          o["type"] = "symlink";
        } else if (S_ISDIR(st.st_mode)) {
          o["type"] = "directory";
        } else if (S_ISREG(st.st_mode)) {
          o["type"] = "file";
          o["size"] = static_cast<std::int64_t>(st.st_size);
        } else {
          o["type"] = "other";
        }
      }
      entries.push_back(std::move(o));
    }
    ::closedir(d);
    std::sort(entries.begin(), entries.end(), [](const json::value& a, const json::value& b) {
      return a.at("name").as_string() < b.at("name").as_string();
    });
    json::object out{{"path", path.empty() ? "." : path}, {"entries", std::move(entries)}};
    if (truncated) out["truncated"] = true;
    return ToolOutput{json::serialize(out), false};
  }
};

class ReadTool final : public Tool {
 public:
  std::string_view name() const noexcept override { return "workspace.read_file"; }
  std::string_view description() const noexcept override {
    return "Read a text file in the workspace (at most 256 KiB). path is relative to the "
           "workspace.";
  }
  json::object input_schema() const override {
    return schema(json::object{{"path", json::object{{"type", "string"}}},
                               {"maxBytes", json::object{{"type", "integer"}, {"minimum", 1}}}},
                  json::array{"path"});
  }
  ToolOutput call(const json::object& args, const ToolContext& ctx) const override {
    auto path = str_arg(args, "path");
    if (!path || path->empty()) return fail("path (a string) is required");
    std::size_t limit = kMaxReadBytes;
    if (auto* m = args.if_contains("maxBytes")) {
      if (!m->is_int64() || m->as_int64() < 1) return fail("maxBytes must be a positive integer");
      limit = std::min(limit, static_cast<std::size_t>(m->as_int64()));
    }
    std::string why;
    auto parts = split(*path, why);
    if (!parts) return fail(why);
    if (parts->empty()) return fail("path names the workspace itself, not a file");
    auto dir = open_dir(ctx.workspace, *parts, parts->size() - 1, false, *path);
    if (!dir.ok()) return fail(dir.error().message);
    // O_NONBLOCK: a FIFO planted in the workspace must not hang the agent.
    Fd f(::openat(dir->get(), parts->back().c_str(),
                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (f.get() < 0) return fail(errno_text(errno, *path));
    struct stat st{};
    if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail("'" + *path + "' is not a regular file");
    }
    std::string data;
    data.resize(limit);
    std::size_t got = 0;
    while (got < limit) {
      const ssize_t n = ::read(f.get(), data.data() + got, limit - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(errno_text(errno, *path));
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    data.resize(got);
    if (static_cast<std::size_t>(st.st_size) > got) {
      data += "\n[truncated: the file has " + std::to_string(st.st_size) + " bytes]";
    }
    return ToolOutput{std::move(data), false};
  }
};

class WriteTool final : public Tool {
 public:
  std::string_view name() const noexcept override { return "workspace.write_file"; }
  std::string_view description() const noexcept override {
    return "Write a text file in the workspace (at most 1 MiB), replacing it if it exists; "
           "missing folders are made. path is relative to the workspace.";
  }
  json::object input_schema() const override {
    return schema(json::object{{"path", json::object{{"type", "string"}}},
                               {"content", json::object{{"type", "string"}}}},
                  json::array{"path", "content"});
  }
  ToolOutput call(const json::object& args, const ToolContext& ctx) const override {
    auto path = str_arg(args, "path");
    auto content = str_arg(args, "content");
    if (!path || path->empty()) return fail("path (a string) is required");
    if (!content) return fail("content (a string) is required");
    if (content->size() > kMaxWriteBytes) return fail("content is larger than 1 MiB");
    std::string why;
    auto parts = split(*path, why);
    if (!parts) return fail(why);
    if (parts->empty()) return fail("path names the workspace itself, not a file");
    auto dir = open_dir(ctx.workspace, *parts, parts->size() - 1, true, *path);
    if (!dir.ok()) return fail(dir.error().message);
    Fd f(::openat(dir->get(), parts->back().c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
    if (f.get() < 0) return fail(errno_text(errno, *path));
    struct stat st{};
    if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail("'" + *path + "' is not a regular file");
    }
    std::size_t done = 0;
    while (done < content->size()) {
      const ssize_t n = ::write(f.get(), content->data() + done, content->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(errno_text(errno, *path));
      done += static_cast<std::size_t>(n);
    }
    return ToolOutput{"wrote " + std::to_string(done) + " bytes to " + *path, false};
  }
};

class ClockTool final : public Tool {
 public:
  std::string_view name() const noexcept override { return "clock.now"; }
  std::string_view description() const noexcept override {
    return "The current date and time in UTC (ISO 8601) and as epoch milliseconds.";
  }
  json::object input_schema() const override { return schema(json::object{}, json::array{}); }
  ToolOutput call(const json::object&, const ToolContext&) const override {
    const std::int64_t now = clock::now_ms();
    return ToolOutput{json::serialize(json::object{{"utc", clock::format_iso8601(now)},
                                                   {"epochMs", now}}),
                      false};
  }
};

}  // namespace

void ToolSet::add(std::shared_ptr<const Tool> tool) {
  std::string key(tool->name());
  tools_[std::move(key)] = std::move(tool);
}

std::shared_ptr<const Tool> ToolSet::find(std::string_view name) const {
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : it->second;
}

std::vector<std::string> ToolSet::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : tools_) out.push_back(k);
  return out;
}

const ToolSet& builtin_tools() {
  static const ToolSet set = [] {
    ToolSet s;
    s.add(std::make_shared<ListTool>());
    s.add(std::make_shared<ReadTool>());
    s.add(std::make_shared<WriteTool>());
    s.add(std::make_shared<ClockTool>());
    return s;
  }();
  return set;
}

bool is_builtin_namespace(std::string_view name) noexcept {
  return name.starts_with("workspace.") || name.starts_with("clock.");
}

std::vector<std::string> external_tool_names(const json::object& config) {
  std::vector<std::string> out;
  if (const auto* t = config.if_contains("tools"); t != nullptr && t->is_array()) {
    for (const auto& x : t->as_array()) {
      if (x.is_string() && !is_builtin_namespace(x.as_string())) out.emplace_back(x.as_string());
    }
  }
  return out;
}

}  // namespace dp::agents
