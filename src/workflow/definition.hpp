// Workflow definitions: the model, the YAML/JSON parser and the validator
// (docs/workflows.md; the JSON Schema in docs/workflow.schema.json describes the same shape).
//
// A definition is a name, a description, declared inputs, optional outputs and a list of
// steps forming a DAG through `needs`. `parse_definition` reads YAML or JSON (YAML is a
// superset; JSON text is detected by its first character) and validates the whole
// document, collecting every problem with a path ("steps[2].needs[0]") and, for YAML, the
// line and column (1-based) of the offending node, instead of stopping at the first one.
//
// Plain value types; the functions are pure and safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace dp::workflow {

inline constexpr std::size_t kMaxDefinitionBytes = 512 * 1024;
inline constexpr std::size_t kMaxSteps = 1000;

struct Problem {
  std::string path;     // "" for the document, "steps[1].needs[0]", "inputs.count.type"
  std::string code;     // unknown_key, required, wrong_type, cycle, missing_dependency, ...
  std::string message;
  int line = 0;         // 1-based; 0 when unknown (JSON input)
  int column = 0;
};

struct RetryPolicy {
  int max_attempts = 1;                // total attempts, including the first
  std::int64_t backoff_ms = 1000;      // before the 2nd attempt; doubles after each
  double factor = 2.0;
  std::int64_t max_backoff_ms = 300'000;
  std::vector<std::string> retry_on;   // error kinds: failed, timeout, exit code "exit:N"; empty: all
};

struct InputSpec {
  std::string type = "string";  // string | number | integer | boolean | object | array
  bool required = false;
  std::optional<boost::json::value> default_value;
  std::string description;
  std::vector<boost::json::value> enum_values;
};

struct Step {
  std::string id;
  std::string type;  // agent | tool | approval | workflow | wait
  std::string name;
  std::vector<std::string> needs;
  std::string if_expr;          // empty: always
  boost::json::value inputs;    // templated; null when absent
  RetryPolicy retry;
  std::int64_t timeout_ms = 0;  // 0: none
  bool continue_on_error = false;
  boost::json::value for_each;  // null, an array, or a template string yielding an array
  int concurrency = 0;          // forEach parallelism; 0: all at once
  std::vector<std::string> outputs;  // declared output names (optional; checked when given)
  // agent: an agent id or name, or {id | name | kind, labels}.
  boost::json::value agent;
  // tool: the adapter's name and the tool's (`adapter: A, tool: T` or `tool: A/T`); the
  // arguments are `inputs` (written `arguments` or `inputs`).
  std::string adapter;
  std::string tool;
  // approval
  std::string message;
  std::vector<std::string> approvers;  // roles allowed to decide; empty: admin, operator
  // workflow: a workflow id or name.
  std::string workflow;
  // wait
  std::int64_t duration_ms = 0;
};

// What starts executions besides the API (docs/workflows.md, "Triggers").
inline constexpr std::size_t kMaxTriggers = 32;

struct Trigger {
  std::string id;    // unique among the workflow's triggers; a webhook's is its hook id
  std::string kind;  // schedule | webhook
  // schedule
  std::string cron;
  std::string timezone = "UTC";
  std::string missed = "once";  // once: one run for a missed window; skip: none
  // webhook
  std::string secret;         // the name of the secret (/api/v1/secrets) holding the HMAC key
  std::string payload_input;  // the declared input that receives the request body; "": none
  boost::json::object inputs;  // fixed inputs of the executions it starts

  // What a schedule's next time is computed from: a change recomputes it.
  std::string schedule_spec() const { return cron + " @ " + timezone; }
};

struct Definition {
  std::string name;
  std::string description;
  std::map<std::string, InputSpec> inputs;
  boost::json::object outputs;  // templated execution outputs
  std::vector<Step> steps;
  std::vector<Trigger> triggers;
  // Step id -> its position in `steps`, made by parse_definition* and validate_definition (the
  // engine looks steps up by id many times per pass). A definition built or changed by hand
  // calls index_steps(); step() scans when the index does not match `steps`.
  std::map<std::string, std::size_t, std::less<>> step_index;

  const Step* step(std::string_view id) const;
  void index_steps();
  const Trigger* trigger(std::string_view id) const;
};

// Parses and validates. On any problem: kInvalidArgument `validation_failed` whose details are
// an array of problem objects ({path, code, message, line?, column?}). Oversized text
// (kMaxDefinitionBytes) is kResourceExhausted `payload_too_large` (413).
Result<Definition> parse_definition(std::string_view text);
// The same from a JSON value (no line numbers).
Result<Definition> parse_definition_json(const boost::json::value& doc);

// Like parse_definition but returns every problem (empty when valid) and the model when the
// shape could be read at all.
std::vector<Problem> validate_definition(std::string_view text, Definition* out = nullptr);

// The text as a JSON value (YAML converted: plain scalars typed by the YAML 1.2 core schema).
// kInvalidArgument `invalid_definition` with line and column in details on a syntax error.
Result<boost::json::value> load_document(std::string_view text);

// "250ms", "30s", "5m", "2h", "1d" or a plain number of seconds. nullopt when malformed.
std::optional<std::int64_t> parse_duration_ms(const boost::json::value& v);

// Checks `inputs` against the declared inputs: fills defaults; unknown, missing, wrongly typed
// and not-allowed values become problems ("inputs.<name>"). Returns the completed inputs.
Result<boost::json::object> check_inputs(const Definition& def, const boost::json::object& inputs);

// The problems as the `details` of a validation error.
boost::json::array to_json(const std::vector<Problem>& problems);

}  // namespace dp::workflow
