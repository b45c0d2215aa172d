#include "agents/mcp_tools.hpp"

#include <map>
#include <set>

#include <boost/json/serialize.hpp>

namespace dp::agents {
namespace {

namespace json = boost::json;

std::string str_of(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->get_string());
  return {};
}

class McpTool final : public Tool {
 public:
  McpTool(mcp::ToolService& service, std::string adapter_id, const std::string& adapter_name,
          mcp::Tool tool)
      : service_(service),
        adapter_id_(std::move(adapter_id)),
        name_(adapter_name + "." + tool.name),
        tool_(std::move(tool)) {
    description_ = tool_.description.empty() ? tool_.title : tool_.description;
    if (description_.empty()) description_ = "MCP tool " + name_;
  }

  std::string_view name() const noexcept override { return name_; }
  std::string_view description() const noexcept override { return description_; }
  json::object input_schema() const override {
    json::object s = tool_.input_schema;
    if (!s.contains("type")) s["type"] = "object";
    return s;
  }

  ToolOutput call(const json::object& arguments, const ToolContext& context) const override {
    mcp::ExecuteRequest req;
    req.adapter_id = adapter_id_;
    req.tool = tool_.name;
    req.arguments = arguments;
    req.caller = "agent:" + context.agent_id;
    req.correlation_id = context.correlation_id;
    // The task's cancel flag: a cancel, a stopped agent or a shutdown ends the call in flight.
    req.cancel = context.cancel;
    auto r = service_.execute(std::move(req));
    if (!r.ok()) {
      // Refused (held, invalid arguments, adapter down) or failed: the model reads why.
      return ToolOutput{"error (" + r.error().reason + "): " + r.error().message, true};
    }
    return ToolOutput{tool_result_text(r->result), r->status == "tool_error"};
  }

 private:
  mcp::ToolService& service_;
  std::string adapter_id_;
  std::string name_;
  std::string description_;
  mcp::Tool tool_;
};

}  // namespace

std::string tool_result_text(const json::value& result) {
  if (!result.is_object()) return json::serialize(result);
  const auto& r = result.get_object();
  std::string out;
  bool has_text = false;
  auto line = [&](const std::string& s) {
    if (!out.empty()) out += "\n";
    out += s;
  };
  if (const auto* c = r.if_contains("content"); c != nullptr && c->is_array()) {
    for (const auto& item : c->get_array()) {
      if (!item.is_object()) continue;
      const auto& o = item.get_object();
      const std::string type = str_of(o, "type");
      if (type == "text") {
        line(str_of(o, "text"));
        has_text = true;
      } else if (type == "image" || type == "audio") {
        line("[" + type + " " + str_of(o, "mimeType") + ", " +
             std::to_string(str_of(o, "data").size()) + " bytes of base64]");
      } else if (type == "resource") {
        const auto* res = o.if_contains("resource");
        if (res != nullptr && res->is_object()) {
          const auto& ro = res->get_object();
          const std::string text = str_of(ro, "text");
          line("[resource " + str_of(ro, "uri") + "]" + (text.empty() ? "" : "\n" + text));
          has_text = has_text || !text.empty();
        }
      } else if (type == "resource_link") {
        line("[resource link " + str_of(o, "uri") + (o.contains("name") ? " (" + str_of(o, "name") + ")" : "") + "]");
      } else {
        line(json::serialize(item));
      }
    }
  }
  if (const auto* sc = r.if_contains("structuredContent"); sc != nullptr && !sc->is_null() && !has_text) {
    line(json::serialize(*sc));
  }
  return out;
}

Result<std::vector<std::shared_ptr<const Tool>>> McpToolSource::resolve(
    const std::vector<std::string>& names, const std::string& correlation_id) const {
  std::vector<std::shared_ptr<const Tool>> out;
  // The names grouped by adapter, in order: adapter name -> tools asked for ("*": all).
  std::map<std::string, std::vector<std::string>> wanted;
  std::vector<std::string> order;
  for (const auto& n : names) {
    if (is_builtin_namespace(n)) continue;
    const auto dot = n.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == n.size()) {
      Error e = Error::not_found("config.tools names '" + n + "': MCP tools are written <adapter>.<tool> or <adapter>.*");
      e.reason = "unknown_tool";
      return e;
    }
    const std::string adapter = n.substr(0, dot);
    if (!wanted.contains(adapter)) order.push_back(adapter);
    wanted[adapter].push_back(n.substr(dot + 1));
  }
  if (wanted.empty()) return out;
  DP_ASSIGN_OR_RETURN(auto adapters, service_.list());
  for (const auto& adapter_name : order) {
    const model::Adapter* a = nullptr;
    for (const auto& x : adapters) {
      if (x.name == adapter_name) a = &x;
    }
    if (a == nullptr) {
      Error e = Error::not_found("config.tools names '" + adapter_name + "." + wanted[adapter_name].front() +
                                 "', but there is no MCP adapter named '" + adapter_name + "'");
      e.reason = "unknown_tool";
      return e;
    }
    auto catalog = service_.catalog(a->id, correlation_id);
    if (!catalog.ok()) {
      Error e = Error::unavailable("the tools of MCP adapter '" + adapter_name +
                                   "' cannot be listed now: " + catalog.error().message);
      e.reason = "adapter_unavailable";
      return e;
    }
    std::set<std::string> added;
    for (const auto& t : wanted[adapter_name]) {
      bool found = false;
      for (const auto& entry : catalog->tools) {
        if (t != "*" && entry.tool.name != t) continue;
        found = true;
        if (added.insert(entry.tool.name).second) {
          out.push_back(std::make_shared<McpTool>(service_, a->id, a->name, entry.tool));
        }
      }
      if (!found && t != "*") {
        std::string known;
        for (const auto& entry : catalog->tools) known += (known.empty() ? "" : ", ") + entry.tool.name;
        Error e = Error::not_found("config.tools names '" + adapter_name + "." + t + "', but MCP adapter '" +
                                   adapter_name + "' has no tool '" + t + "' (it lists: " + known + ")");
        e.reason = "unknown_tool";
        return e;
      }
    }
  }
  return out;
}

}  // namespace dp::agents
