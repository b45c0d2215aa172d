// The OpenAI-compatible chat-completions wire format (see wire.hpp).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "llm/json_fields.hpp"
#include "llm/wire.hpp"

namespace dp::llm::wire {
namespace {

namespace json = boost::json;

void read_usage(const json::value* u, Usage& usage) {
  if (u == nullptr || !u->is_object()) return;
  const auto& o = u->as_object();
  usage.input_tokens = int_or(o, "prompt_tokens", 0);
  usage.output_tokens = int_or(o, "completion_tokens", 0);
  usage.reported = true;
}

Result<json::value> parse_json(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return bad_response(std::string(what) + " is not JSON: " + ec.message());
  return v;
}

}  // namespace

Error bad_response(std::string message) {
  return Error{ErrorCode::kUnavailable, "bad_provider_response", std::move(message), nullptr};
}

void set_arguments(ToolCall& call, std::string_view text) {
  call.arguments_text = std::string(text);
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    call.arguments = {};
    return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    call.arguments_error = "the arguments are not valid JSON (" + ec.message() + ")";
  } else if (!v.is_object()) {
    call.arguments_error = "the arguments are not a JSON object";
  } else {
    call.arguments = std::move(v.as_object());
  }
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  std::string msg;
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto* e = o.if_contains("error")) {
      if (e->is_object()) {
        msg = str_or(e->as_object(), "message");
      } else if (e->is_string()) {
        msg = std::string(e->as_string());
      }
    }
  }
  if (msg.empty()) msg = std::string(body.substr(0, 300));
  if (msg.size() > 300) msg.resize(300);
  for (char& c : msg) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return msg;
}

std::string openai_body(const ChatRequest& r) {
  json::array messages;
  if (!r.system.empty()) messages.push_back(json::object{{"role", "system"}, {"content", r.system}});
  for (const auto& m : r.messages) {
    switch (m.role) {
      case Role::kUser:
        messages.push_back(json::object{{"role", "user"}, {"content", m.text}});
        break;
      case Role::kAssistant: {
        json::object o{{"role", "assistant"}};
        o["content"] = m.text.empty() && !m.tool_calls.empty() ? json::value(nullptr)
                                                               : json::value(m.text);
        if (!m.tool_calls.empty()) {
          json::array calls;
          for (const auto& c : m.tool_calls) {
            // Sent back as received, so the model sees its own words (even broken JSON).
            const std::string args =
                c.arguments_text.empty() ? json::serialize(c.arguments) : c.arguments_text;
            calls.push_back(json::object{
                {"id", c.id},
                {"type", "function"},
                {"function", json::object{{"name", c.name}, {"arguments", args}}}});
          }
          o["tool_calls"] = std::move(calls);
        }
        messages.push_back(std::move(o));
        break;
      }
      case Role::kTool:
        messages.push_back(json::object{
            {"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.text}});
        break;
    }
  }
  json::object body{{"model", r.model}, {"messages", std::move(messages)}};
  if (!r.tools.empty()) {
    json::array tools;
    for (const auto& t : r.tools) {
      tools.push_back(json::object{
          {"type", "function"},
          {"function", json::object{{"name", t.name},
                                    {"description", t.description},
                                    {"parameters", t.input_schema}}}});
    }
    body["tools"] = std::move(tools);
  }
  if (r.max_tokens > 0) body["max_tokens"] = r.max_tokens;
  if (r.temperature) body["temperature"] = *r.temperature;
  if (r.stream) {
    body["stream"] = true;
    body["stream_options"] = json::object{{"include_usage", true}};
  }
  return json::serialize(body);
}

Result<ChatResponse> openai_parse(std::string_view body) {
  DP_ASSIGN_OR_RETURN(json::value v, parse_json(body, "the response"));
  if (!v.is_object()) return bad_response("the response is not a JSON object");
  const auto& o = v.as_object();
  if (auto* e = o.if_contains("error"); e != nullptr && !e->is_null()) {
    return bad_response("the provider reported an error: " + error_message(body));
  }
  auto* choices = o.if_contains("choices");
  if (choices == nullptr || !choices->is_array() || choices->as_array().empty() ||
      !choices->as_array()[0].is_object()) {
    return bad_response("the response has no choices");
  }
  const auto& choice = choices->as_array()[0].as_object();
  auto* msg = choice.if_contains("message");
  if (msg == nullptr || !msg->is_object()) return bad_response("the choice has no message");
  const auto& m = msg->as_object();
  ChatResponse out;
  if (auto* c = m.if_contains("content"); c != nullptr && c->is_string()) {
    out.text = std::string(c->as_string());
  }
  if (out.text.size() > kMaxTextBytes) return bad_response("the answer text is too long");
  if (auto* calls = m.if_contains("tool_calls"); calls != nullptr && calls->is_array()) {
    if (calls->as_array().size() > kMaxToolCalls) return bad_response("too many tool calls");
    for (const auto& cv : calls->as_array()) {
      if (!cv.is_object()) return bad_response("a tool call is not an object");
      const auto& c = cv.as_object();
      auto* fn = c.if_contains("function");
      if (fn == nullptr || !fn->is_object()) return bad_response("a tool call has no function");
      ToolCall call;
      call.id = str_or(c, "id");
      call.name = str_or(fn->as_object(), "name");
      if (call.name.empty()) return bad_response("a tool call has no function name");
      auto* args = fn->as_object().if_contains("arguments");
      if (args != nullptr && args->is_string()) {
        set_arguments(call, args->as_string());
      } else if (args != nullptr && args->is_object()) {  // some servers send an object
        set_arguments(call, json::serialize(*args));
      } else {
        set_arguments(call, "");
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  out.stop_reason = str_or(choice, "finish_reason");
  read_usage(o.if_contains("usage"), out.usage);
  return out;
}

Status OpenAiStream::on_event(const SseEvent& event) {
  if (done_) return Ok{};  // nothing may follow [DONE]; ignore what a server sends anyway
  if (event.data == "[DONE]") {
    done_ = true;
    return Ok{};
  }
  DP_ASSIGN_OR_RETURN(json::value v, parse_json(event.data, "a stream chunk"));
  if (!v.is_object()) return bad_response("a stream chunk is not a JSON object");
  const auto& o = v.as_object();
  if (auto* e = o.if_contains("error"); e != nullptr && !e->is_null()) {
    return bad_response("the provider reported an error in the stream: " +
                        error_message(event.data));
  }
  if (auto* u = o.if_contains("usage"); u != nullptr && u->is_object()) read_usage(u, out_.usage);
  auto* choices = o.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) {
    if (o.contains("usage")) return Ok{};
    return bad_response("a stream chunk has no choices");
  }
  for (const auto& cv : choices->as_array()) {
    if (!cv.is_object()) return bad_response("a stream choice is not an object");
    const auto& choice = cv.as_object();
    if (int_or(choice, "index", 0) != 0) continue;  // n > 1 is never asked for
    if (auto* fr = choice.if_contains("finish_reason"); fr != nullptr && fr->is_string()) {
      out_.stop_reason = std::string(fr->as_string());
      finished_ = true;
    }
    auto* dv = choice.if_contains("delta");
    if (dv == nullptr || !dv->is_object()) continue;
    const auto& d = dv->as_object();
    if (auto* c = d.if_contains("content"); c != nullptr && c->is_string()) {
      const auto piece = c->as_string();
      if (out_.text.size() + piece.size() > kMaxTextBytes) {
        return bad_response("the answer text is too long");
      }
      out_.text.append(piece.data(), piece.size());
      if (on_text_ && !piece.empty()) on_text_(std::string_view(piece.data(), piece.size()));
    }
    auto* tc = d.if_contains("tool_calls");
    if (tc == nullptr || !tc->is_array()) continue;
    for (const auto& xv : tc->as_array()) {
      if (!xv.is_object()) return bad_response("a tool call delta is not an object");
      const auto& x = xv.as_object();
      const std::int64_t index = int_or(x, "index", -1);
      if (index < 0) return bad_response("a tool call delta has no index");
      if (!calls_.contains(index) && calls_.size() >= kMaxToolCalls) {
        return bad_response("too many tool calls");
      }
      Partial& p = calls_[index];
      if (auto id = str_or(x, "id"); !id.empty()) p.call.id = id;
      if (auto* fn = x.if_contains("function"); fn != nullptr && fn->is_object()) {
        const auto& f = fn->as_object();
        if (auto name = str_or(f, "name"); !name.empty()) p.call.name += name;
        if (auto* a = f.if_contains("arguments"); a != nullptr && a->is_string()) {
          if (p.args.size() + a->as_string().size() > kMaxTextBytes) {
            return bad_response("tool call arguments are too long");
          }
          p.args.append(a->as_string().data(), a->as_string().size());
        }
      }
    }
  }
  return Ok{};
}

Result<ChatResponse> OpenAiStream::finish() {
  if (!done_ && !finished_) {
    return bad_response("the stream ended before the answer was complete (no finish_reason or [DONE])");
  }
  ChatResponse out = std::move(out_);
  for (auto& [index, p] : calls_) {
    if (p.call.name.empty()) return bad_response("a streamed tool call has no function name");
    set_arguments(p.call, p.args);
    out.tool_calls.push_back(std::move(p.call));
  }
  return out;
}

}  // namespace dp::llm::wire
