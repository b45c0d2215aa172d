#include "app/run_command.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "http/client.hpp"
#include "workflow/definition.hpp"

namespace dp::app {
namespace {

namespace json = boost::json;

constexpr int kStarted = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kTimedOut = 3;

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

class Api {
 public:
  Api(std::string base, std::string token) : base_(std::move(base)), token_(std::move(token)) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }
  void set_token(std::string t) { token_ = std::move(t); }

  // The parsed JSON answer and its status; an error string when the server was not reached.
  struct Answer {
    unsigned status = 0;
    json::value body;
    std::string error;
  };
  Answer call(const std::string& method, const std::string& path, const std::string& body = {}) {
    http::ClientRequest req;
    req.method = method;
    req.url = base_ + path;
    if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
    if (!body.empty()) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body;
    }
    Answer a;
    auto r = http::fetch(req);
    if (!r.ok()) {
      a.error = "cannot reach " + base_ + ": " + r.error().message;
      return a;
    }
    a.status = r->status;
    boost::system::error_code ec;
    a.body = json::parse(r->body, ec);
    if (ec) a.body = json::string(r->body.substr(0, 2000));
    return a;
  }

 private:
  std::string base_;
  std::string token_;
};

const json::value* at(const json::value& v, std::string_view pointer) {
  boost::system::error_code ec;
  return v.find_pointer(pointer, ec);
}

std::string str_at(const json::value& v, std::string_view pointer) {
  const auto* p = at(v, pointer);
  return p != nullptr && p->is_string() ? std::string(p->get_string()) : std::string();
}

// Prints the server's error (and each validation problem) to stderr.
int refused(const std::string& what, const Api::Answer& a) {
  if (!a.error.empty()) {
    std::cerr << "devplane run: " << a.error << "\n";
    return kUsage;
  }
  std::cerr << "devplane run: " << what << ": HTTP " << a.status;
  const std::string code = str_at(a.body, "/error/code");
  const std::string message = str_at(a.body, "/error/message");
  if (!code.empty()) std::cerr << " " << code;
  if (!message.empty()) std::cerr << ": " << message;
  std::cerr << "\n";
  if (const auto* d = at(a.body, "/error/details"); d != nullptr && d->is_array()) {
    for (const auto& p : d->get_array()) {
      if (!p.is_object()) continue;
      const auto& o = p.get_object();
      std::cerr << "  ";
      if (const auto* path = o.if_contains("path"); path != nullptr && path->is_string()) {
        std::cerr << path->get_string();
      } else if (const auto* f = o.if_contains("field"); f != nullptr && f->is_string()) {
        std::cerr << f->get_string();
      }
      if (const auto* l = o.if_contains("line"); l != nullptr && l->is_int64()) {
        std::cerr << " (line " << l->get_int64() << ")";
      }
      if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string()) {
        std::cerr << ": " << m->get_string();
      }
      std::cerr << "\n";
    }
  }
  return kUsage;
}

}  // namespace

CLI::App* add_run_command(CLI::App& cli, RunOptions& opts) {
  auto* cmd = cli.add_subcommand(
      "run",
      "Submit a workflow file to a running server (create it, or update the workflow of the same "
      "name), execute it and, with --wait, follow it to the end");
  cmd->add_option("file", opts.file, "The workflow definition (YAML or JSON)")->required();
  cmd->add_option("-i,--input", opts.inputs,
                  "An input as name=value (repeatable); the value is JSON when it parses as "
                  "JSON (3, true, [1,2], {\"a\":1}), else text");
  cmd->add_option("-s,--server", opts.server,
                  "The server's base URL (default: $DEVPLANE_SERVER or http://127.0.0.1:8080)");
  cmd->add_option("--token", opts.token,
                  "An API key or access token (default: $DEVPLANE_TOKEN)");
  cmd->add_option("-u,--user", opts.user,
                  "Sign in as this user instead of a token; the password comes from "
                  "$DEVPLANE_PASSWORD (default user: $DEVPLANE_USER)");
  cmd->add_flag("-w,--wait", opts.wait,
                "Follow the execution until it ends; exit 0 when it succeeded, 1 when it failed "
                "or was cancelled, 3 on --timeout");
  cmd->add_option("--timeout", opts.timeout_s, "With --wait: give up after this many seconds (default 600)")
      ->check(CLI::Range(1, 7 * 24 * 3600));
  cmd->add_flag("-q,--quiet", opts.quiet, "Print only the execution id (and the outputs with --wait)");
  return cmd;
}

int run_run_command(const RunOptions& opts) {
  // The definition: read it and take its name (the server validates the rest).
  std::ifstream in(opts.file, std::ios::binary);
  if (!in) {
    std::cerr << "devplane run: cannot read " << opts.file << "\n";
    return kUsage;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.size() > workflow::kMaxDefinitionBytes) {
    std::cerr << "devplane run: " << opts.file << " is larger than 512 KiB\n";
    return kUsage;
  }
  auto doc = workflow::load_document(text);
  if (!doc.ok()) {
    std::cerr << "devplane run: " << opts.file << ": " << doc.error().message << "\n";
    return kUsage;
  }
  const std::string name = doc->is_object() ? str_at(*doc, "/name") : std::string();
  if (name.empty()) {
    std::cerr << "devplane run: " << opts.file << " has no name\n";
    return kUsage;
  }
  json::object inputs;
  for (const auto& kv : opts.inputs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "devplane run: --input wants name=value, not '" << kv << "'\n";
      return kUsage;
    }
    boost::system::error_code ec;
    json::value v = json::parse(kv.substr(eq + 1), ec);
    inputs[kv.substr(0, eq)] = ec ? json::value(json::string(kv.substr(eq + 1))) : std::move(v);
  }

  Api api(opts.server.empty() ? env_or("DEVPLANE_SERVER", "http://127.0.0.1:8080") : opts.server,
          opts.token.empty() ? env_or("DEVPLANE_TOKEN", "") : opts.token);
  const std::string user = opts.user.empty() ? env_or("DEVPLANE_USER", "") : opts.user;
  if (opts.token.empty() && env_or("DEVPLANE_TOKEN", "").empty()) {
    if (user.empty()) {
      std::cerr << "devplane run: no credential: set DEVPLANE_TOKEN (or --token), or --user with "
                   "DEVPLANE_PASSWORD\n";
      return kUsage;
    }
    auto login = api.call("POST", "/api/v1/auth/login",
                          json::serialize(json::object{
                              {"username", user}, {"password", env_or("DEVPLANE_PASSWORD", "")}}));
    if (login.status != 200) return refused("signing in as " + user, login);
    api.set_token(str_at(login.body, "/data/accessToken"));
  }

  // Create, or a new version of the workflow with this name when the text changed.
  std::string id;
  auto found = api.call("GET", "/api/v1/workflows?limit=500&name=" + http::url_encode(name));
  if (found.status != 200) return refused("looking up workflow '" + name + "'", found);
  if (const auto* items = at(found.body, "/data"); items != nullptr && items->is_array()) {
    for (const auto& w : items->get_array()) {
      if (str_at(w, "/name") == name) id = str_at(w, "/id");
    }
  }
  const std::string body = json::serialize(json::object{{"definition", text}});
  if (id.empty()) {
    auto created = api.call("POST", "/api/v1/workflows", body);
    if (created.status != 201) return refused("creating workflow '" + name + "'", created);
    id = str_at(created.body, "/data/id");
    if (!opts.quiet) std::cerr << "created workflow " << name << " (" << id << ")\n";
  } else {
    auto current = api.call("GET", "/api/v1/workflows/" + id);
    if (current.status != 200) return refused("reading workflow '" + name + "'", current);
    if (str_at(current.body, "/data/definition") != text) {
      auto updated = api.call("PUT", "/api/v1/workflows/" + id, body);
      if (updated.status != 200) return refused("updating workflow '" + name + "'", updated);
      if (!opts.quiet) {
        std::cerr << "updated workflow " << name << " to version "
                  << json::serialize(*at(updated.body, "/data/version")) << "\n";
      }
    }
  }
  auto started = api.call("POST", "/api/v1/workflows/" + id + "/execute",
                          json::serialize(json::object{{"inputs", inputs}}));
  if (started.status != 202) return refused("executing workflow '" + name + "'", started);
  const std::string exec = str_at(started.body, "/data/id");
  std::cout << exec << std::endl;
  if (!opts.wait) return kStarted;

  // Follow: print each step's status as it changes.
  std::map<std::string, std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opts.timeout_s);
  for (;;) {
    auto r = api.call("GET", "/api/v1/executions/" + exec);
    if (r.status != 200) return refused("reading execution " + exec, r);
    if (const auto* steps = at(r.body, "/data/steps"); steps != nullptr && steps->is_array()) {
      for (const auto& s : steps->get_array()) {
        const std::string sid = str_at(s, "/stepId");
        const std::string status = str_at(s, "/status");
        if (seen[sid] == status) continue;
        seen[sid] = status;
        if (opts.quiet) continue;
        std::cerr << "  " << sid << ": " << status;
        if (const std::string err = str_at(s, "/error"); !err.empty()) std::cerr << " (" << err << ")";
        if (status == "waiting_approval") {
          std::cerr << "  -> POST /api/v1/executions/" << exec << "/steps/" << sid << "/approve";
        }
        std::cerr << "\n";
      }
    }
    const std::string status = str_at(r.body, "/data/status");
    if (status == "succeeded" || status == "failed" || status == "cancelled") {
      if (!opts.quiet) std::cerr << "execution " << exec << " " << status << "\n";
      if (const std::string err = str_at(r.body, "/data/error"); !err.empty()) {
        std::cerr << "error: " << err << "\n";
      }
      if (const auto* out = at(r.body, "/data/outputs"); out != nullptr && !out->is_null()) {
        std::cout << json::serialize(*out) << std::endl;
      }
      return status == "succeeded" ? kStarted : kFailed;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "devplane run: execution " << exec << " still " << status << " after "
                << opts.timeout_s << " s\n";
      return kTimedOut;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

}  // namespace dp::app
