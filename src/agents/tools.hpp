// Tools an `llm` agent may call: a small interface so that any source of tools can plug in
// (the built-ins here; the MCP gateway next), and the built-in tools.
//
// A Tool has a dotted name (`workspace.read_file`, later `<adapter>.<tool>` for MCP tools), a
// description and a JSON Schema for its arguments. `call` never throws: a failed call (a
// missing file, a bad argument) is an output with `is_error`, which the model reads and may
// recover from. A ToolSet maps names to tools; an agent only ever sees the tools its config
// lists (`config.tools`).
//
// Built-in tools (all confined to the task's workspace):
// - `workspace.list {path?}`: the entries of a folder (name, type, size), at most 1000.
// - `workspace.read_file {path, maxBytes?}`: a file's text, at most 256 KiB.
// - `workspace.write_file {path, content}`: writes a file (parents made), at most 1 MiB.
// - `clock.now {}`: the current UTC time (ISO 8601) and epoch milliseconds.
// Paths are relative to the workspace; absolute paths, `..` and symbolic links on the way are
// refused: every component is opened with O_NOFOLLOW from the workspace's descriptor, so a
// link planted in the workspace can never lead a read or a write outside it.
//
// Tools from elsewhere (the MCP adapters) come from a ToolSource: config names `<adapter>.<tool>`
// or `<adapter>.*` (every tool of the adapter) are resolved against the live catalog when the
// config is saved (unknown names are refused) and again for every task (a name that no longer
// resolves fails the task with the reason). Built-in namespaces win over an adapter of the
// same name.
//
// Thread safety: tools and a ToolSet are immutable after construction; safe from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp::agents {

struct ToolContext {
  std::string workspace;  // absolute path of the task's workspace
  std::string agent_id;
  std::string task_id;
  std::string correlation_id;
  const std::atomic<bool>* cancel = nullptr;
};

struct ToolOutput {
  std::string text;  // what the model reads
  bool is_error = false;
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual std::string_view description() const noexcept = 0;
  virtual boost::json::object input_schema() const = 0;
  virtual ToolOutput call(const boost::json::object& arguments, const ToolContext& context) const = 0;
};

class ToolSet {
 public:
  void add(std::shared_ptr<const Tool> tool);
  // nullptr when there is no such tool.
  std::shared_ptr<const Tool> find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::shared_ptr<const Tool>, std::less<>> tools_;
};

// A source of tools beyond the built-ins (agents/mcp_tools.hpp: the MCP adapters).
class ToolSource {
 public:
  virtual ~ToolSource() = default;
  // The tools that `names` select (names in built-in namespaces are skipped). Errors:
  // kNotFound reason `unknown_tool` naming the first name that selects nothing (no such
  // adapter or tool); kUnavailable when an adapter named cannot be reached now.
  virtual Result<std::vector<std::shared_ptr<const Tool>>> resolve(
      const std::vector<std::string>& names, const std::string& correlation_id) const = 0;
};

// The config's tool names (`config.tools` strings) that are not in a built-in namespace.
std::vector<std::string> external_tool_names(const boost::json::object& config);

// The built-in tools listed above.
const ToolSet& builtin_tools();
// True for a name in a built-in namespace (`workspace.`, `clock.`), known or not: config
// validation refuses unknown names there.
bool is_builtin_namespace(std::string_view name) noexcept;

}  // namespace dp::agents
