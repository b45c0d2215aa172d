// The Anthropic Messages wire format (see wire.hpp).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "llm/json_fields.hpp"
#include "llm/wire.hpp"

namespace dp::llm::wire {
namespace {

namespace json = boost::json;

// input_tokens counts only the uncached part; cache reads and writes are input too.
void read_usage(const json::value* u, Usage& usage, bool input_too) {
  if (u == nullptr || !u->is_object()) return;
  const auto& o = u->as_object();
  if (input_too || o.contains("input_tokens")) {
    usage.input_tokens = int_or(o, "input_tokens", 0) +
                         int_or(o, "cache_creation_input_tokens", 0) +
                         int_or(o, "cache_read_input_tokens", 0);
  }
  if (o.contains("output_tokens")) usage.output_tokens = int_or(o, "output_tokens", 0);
  usage.reported = true;
}

Result<json::value> parse_json(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return bad_response(std::string(what) + " is not JSON: " + ec.message());
  return v;
}

}  // namespace

std::string anthropic_body(const ChatRequest& r) {
  json::array messages;
  for (std::size_t i = 0; i < r.messages.size(); ++i) {
    const auto& m = r.messages[i];
    switch (m.role) {
      case Role::kUser:
        messages.push_back(json::object{{"role", "user"}, {"content", m.text}});
        break;
      case Role::kAssistant: {
        json::array content;
        if (!m.text.empty()) content.push_back(json::object{{"type", "text"}, {"text", m.text}});
        for (const auto& c : m.tool_calls) {
          content.push_back(json::object{
              {"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", c.arguments}});
        }
        if (content.empty()) content.push_back(json::object{{"type", "text"}, {"text", ""}});
        messages.push_back(json::object{{"role", "assistant"}, {"content", std::move(content)}});
        break;
      }
      case Role::kTool: {
        // The results of one turn's calls go back together, in one user message.
        json::array content;
        for (; i < r.messages.size() && r.messages[i].role == Role::kTool; ++i) {
          const auto& t = r.messages[i];
          json::object block{{"type", "tool_result"}, {"tool_use_id", t.tool_call_id},
                             {"content", t.text}};
          if (t.is_error) block["is_error"] = true;
          content.push_back(std::move(block));
        }
        --i;
        messages.push_back(json::object{{"role", "user"}, {"content", std::move(content)}});
        break;
      }
    }
  }
  json::object body{{"model", r.model},
                    {"max_tokens", r.max_tokens > 0 ? r.max_tokens : 4096},
                    {"messages", std::move(messages)}};
  if (!r.system.empty()) body["system"] = r.system;
  if (!r.tools.empty()) {
    json::array tools;
    for (const auto& t : r.tools) {
      tools.push_back(json::object{{"name", t.name},
                                   {"description", t.description},
                                   {"input_schema", t.input_schema}});
    }
    body["tools"] = std::move(tools);
  }
  if (r.temperature) body["temperature"] = *r.temperature;
  if (r.stream) body["stream"] = true;
  return json::serialize(body);
}

Result<ChatResponse> anthropic_parse(std::string_view body) {
  DP_ASSIGN_OR_RETURN(json::value v, parse_json(body, "the response"));
  if (!v.is_object()) return bad_response("the response is not a JSON object");
  const auto& o = v.as_object();
  if (str_or(o, "type") == "error") {
    return bad_response("the provider reported an error: " + error_message(body));
  }
  auto* content = o.if_contains("content");
  if (content == nullptr || !content->is_array()) return bad_response("the response has no content");
  ChatResponse out;
  for (const auto& bv : content->as_array()) {
    if (!bv.is_object()) return bad_response("a content block is not an object");
    const auto& b = bv.as_object();
    const std::string type = str_or(b, "type");
    if (type == "text") {
      out.text += str_or(b, "text");
      if (out.text.size() > kMaxTextBytes) return bad_response("the answer text is too long");
    } else if (type == "tool_use") {
      if (out.tool_calls.size() >= kMaxToolCalls) return bad_response("too many tool calls");
      ToolCall call;
      call.id = str_or(b, "id");
      call.name = str_or(b, "name");
      if (call.name.empty()) return bad_response("a tool_use block has no name");
      auto* input = b.if_contains("input");
      if (input != nullptr && input->is_object()) {
        call.arguments = input->as_object();
        call.arguments_text = json::serialize(*input);
      } else {
        call.arguments_error = "the arguments are not a JSON object";
      }
      out.tool_calls.push_back(std::move(call));
    }
    // Other blocks (thinking, ...) are not part of the answer.
  }
  out.stop_reason = str_or(o, "stop_reason");
  read_usage(o.if_contains("usage"), out.usage, true);
  return out;
}

Status AnthropicStream::on_event(const SseEvent& event) {
  if (stopped_) return Ok{};
  if (event.event == "ping") return Ok{};
  DP_ASSIGN_OR_RETURN(json::value v, parse_json(event.data, "a stream event"));
  if (!v.is_object()) return bad_response("a stream event is not a JSON object");
  const auto& o = v.as_object();
  // The data's own `type` is authoritative; the SSE event name repeats it.
  const std::string type = str_or(o, "type").empty() ? event.event : str_or(o, "type");
  if (type == "error") {
    return bad_response("the provider reported an error in the stream: " +
                        error_message(event.data));
  }
  if (type == "message_start") {
    auto* m = o.if_contains("message");
    if (m == nullptr || !m->is_object()) return bad_response("message_start has no message");
    read_usage(m->as_object().if_contains("usage"), out_.usage, true);
    started_ = true;
    return Ok{};
  }
  if (!started_) return bad_response("the stream did not begin with message_start");
  if (type == "content_block_start") {
    const std::int64_t index = int_or(o, "index", -1);
    auto* cb = o.if_contains("content_block");
    if (index < 0 || cb == nullptr || !cb->is_object()) {
      return bad_response("content_block_start without index or block");
    }
    if (blocks_.size() >= kMaxToolCalls * 2 && !blocks_.contains(index)) {
      return bad_response("too many content blocks");
    }
    Block& b = blocks_[index];
    b.type = str_or(cb->as_object(), "type");
    if (b.type == "tool_use") {
      b.call.id = str_or(cb->as_object(), "id");
      b.call.name = str_or(cb->as_object(), "name");
    } else if (b.type == "text") {
      const std::string t = str_or(cb->as_object(), "text");
      out_.text += t;
      if (on_text_ && !t.empty()) on_text_(t);
    }
    return Ok{};
  }
  if (type == "content_block_delta") {
    const std::int64_t index = int_or(o, "index", -1);
    auto it = blocks_.find(index);
    if (it == blocks_.end()) return bad_response("a delta for a content block that was not started");
    auto* dv = o.if_contains("delta");
    if (dv == nullptr || !dv->is_object()) return bad_response("content_block_delta has no delta");
    const auto& d = dv->as_object();
    const std::string dtype = str_or(d, "type");
    if (dtype == "text_delta") {
      const std::string t = str_or(d, "text");
      if (out_.text.size() + t.size() > kMaxTextBytes) return bad_response("the answer text is too long");
      out_.text += t;
      if (on_text_ && !t.empty()) on_text_(t);
    } else if (dtype == "input_json_delta") {
      if (it->second.type != "tool_use") return bad_response("input_json_delta for a non-tool block");
      const std::string part = str_or(d, "partial_json");
      if (it->second.json.size() + part.size() > kMaxTextBytes) {
        return bad_response("tool call arguments are too long");
      }
      it->second.json += part;
    }
    // thinking_delta, signature_delta, citations: not part of the answer.
    return Ok{};
  }
  if (type == "message_delta") {
    if (auto* dv = o.if_contains("delta"); dv != nullptr && dv->is_object()) {
      if (auto sr = str_or(dv->as_object(), "stop_reason"); !sr.empty()) out_.stop_reason = sr;
    }
    // message_delta's usage is cumulative: it replaces what message_start said.
    read_usage(o.if_contains("usage"), out_.usage, false);
    return Ok{};
  }
  if (type == "message_stop") {
    stopped_ = true;
    return Ok{};
  }
  // content_block_stop and event types added later are fine to skip.
  return Ok{};
}

Result<ChatResponse> AnthropicStream::finish() {
  if (!stopped_) return bad_response("the stream ended before message_stop");
  ChatResponse out = std::move(out_);
  for (auto& [index, b] : blocks_) {
    if (b.type != "tool_use") continue;
    if (b.call.name.empty()) return bad_response("a tool_use block has no name");
    set_arguments(b.call, b.json);
    out.tool_calls.push_back(std::move(b.call));
  }
  return out;
}

}  // namespace dp::llm::wire
