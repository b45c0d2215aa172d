#include "workflow/definition.hpp"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace dp::workflow {
namespace {

namespace json = boost::json;

std::vector<Problem> problems_of(std::string_view text) { return validate_definition(text); }

const Problem* find(const std::vector<Problem>& ps, std::string_view code, std::string_view path = {}) {
  for (const auto& p : ps) {
    if (p.code == code && (path.empty() || p.path == path)) return &p;
  }
  return nullptr;
}

std::string dump(const std::vector<Problem>& ps) {
  return json::serialize(to_json(ps));
}

constexpr const char* kGood = R"(name: build-and-test
description: a CI-like pipeline
inputs:
  repo: {type: string, required: true}
  runs: {type: integer, default: 2}
  mode: {type: string, enum: [fast, full], default: fast}
outputs:
  artifact: ${{ steps.build.outputs.json.artifact }}
steps:
  - id: build
    type: agent
    agent: builder
    inputs: {repo: "${{ inputs.repo }}", mode: "${{ inputs.mode }}"}
    retry: {maxAttempts: 3, backoff: 1s, retryOn: [failed, "exit:2"]}
    timeout: 10m
  - id: test
    type: agent
    agent: {kind: command, labels: {role: tester}}
    needs: build
    forEach: ${{ fromJSON('["unit","e2e"]') }}
    concurrency: 2
    inputs: "suite ${{ item }} of ${{ steps.build.outputs.stdout }}"
    continueOnError: true
  - id: gate
    type: approval
    needs: [test]
    if: steps.test.status == 'succeeded' && inputs.runs > 1
    message: "ship ${{ inputs.repo }}?"
    approvers: [admin, operator]
    timeout: 1h
  - id: pause
    type: wait
    needs: [gate]
    duration: 250ms
  - id: sub
    type: workflow
    needs: [pause]
    workflow: notify
    inputs: {text: done}
  - id: call
    type: tool
    needs: [pause]
    tool: fs/read_file
    inputs: {path: README.md}
)";

TEST(DefinitionTest, ParsesAFullYamlDefinition) {
  auto d = parse_definition(kGood);
  ASSERT_TRUE(d.ok()) << json::serialize(d.error().details);
  EXPECT_EQ(d->name, "build-and-test");
  ASSERT_EQ(d->steps.size(), 6u);
  const Step& build = d->steps[0];
  EXPECT_EQ(build.retry.max_attempts, 3);
  EXPECT_EQ(build.retry.backoff_ms, 1000);
  EXPECT_EQ(build.retry.retry_on, (std::vector<std::string>{"failed", "exit:2"}));
  EXPECT_EQ(build.timeout_ms, 600'000);
  EXPECT_EQ(d->steps[1].needs, std::vector<std::string>{"build"});
  EXPECT_EQ(d->steps[1].concurrency, 2);
  EXPECT_TRUE(d->steps[1].continue_on_error);
  EXPECT_TRUE(d->steps[1].for_each.is_string());
  EXPECT_EQ(d->steps[2].approvers, (std::vector<std::string>{"admin", "operator"}));
  EXPECT_EQ(d->steps[2].timeout_ms, 3'600'000);
  EXPECT_EQ(d->steps[3].duration_ms, 250);
  EXPECT_EQ(d->steps[4].workflow, "notify");
  EXPECT_EQ(d->steps[5].adapter, "fs");
  EXPECT_EQ(d->steps[5].tool, "read_file");
  EXPECT_EQ(d->steps[5].inputs.at("path"), "README.md");
  EXPECT_EQ(d->inputs.at("runs").type, "integer");
  EXPECT_EQ(*d->inputs.at("runs").default_value, json::value(2));
}

TEST(DefinitionTest, StepsAreFoundByIdThroughTheIndexAndWithoutIt) {
  auto d = parse_definition(kGood);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->step_index.size(), d->steps.size());
  for (std::size_t i = 0; i < d->steps.size(); ++i) EXPECT_EQ(d->step(d->steps[i].id), &d->steps[i]);
  EXPECT_EQ(d->step("no-such-step"), nullptr);
  // Changed by hand without index_steps(): the index no longer matches and step() still finds
  // what is there now, and nothing that is gone.
  Definition changed = *d;
  const std::string gone = changed.steps.front().id;
  changed.steps.erase(changed.steps.begin());
  for (const auto& s : changed.steps) EXPECT_EQ(changed.step(s.id)->id, s.id);
  EXPECT_EQ(changed.step(gone), nullptr);
  changed.index_steps();
  EXPECT_EQ(changed.step_index.size(), changed.steps.size());
  EXPECT_EQ(changed.step(gone), nullptr);
  EXPECT_EQ(changed.step(changed.steps.back().id), &changed.steps.back());
}

TEST(DefinitionTest, JsonAndYamlGiveTheSameModel) {
  auto y = parse_definition(kGood);
  ASSERT_TRUE(y.ok());
  auto doc = load_document(kGood);
  ASSERT_TRUE(doc.ok());
  auto j = parse_definition(json::serialize(*doc));
  ASSERT_TRUE(j.ok()) << json::serialize(j.error().details);
  ASSERT_EQ(j->steps.size(), y->steps.size());
  for (std::size_t i = 0; i < j->steps.size(); ++i) {
    EXPECT_EQ(j->steps[i].id, y->steps[i].id);
    EXPECT_EQ(json::serialize(j->steps[i].inputs), json::serialize(y->steps[i].inputs));
    EXPECT_EQ(j->steps[i].needs, y->steps[i].needs);
  }
}

TEST(DefinitionTest, YamlScalarsAreTypedAndQuotedOnesStayStrings) {
  auto doc = load_document("a: 1\nb: '1'\nc: true\nd: 'true'\ne: 2.5\nf: ~\ng: hello\nh: 0x1F\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(json::serialize(*doc),
            R"({"a":1,"b":"1","c":true,"d":"true","e":2.5E0,"f":null,"g":"hello","h":"0x1F"})");
}

TEST(DefinitionTest, UnknownKeysAreReportedWithLineAndColumn) {
  auto ps = problems_of("name: x\ncolour: red\nsteps:\n  - id: a\n    type: wait\n    duration: 1s\n    bogus: 1\n    agent: z\n");
  const Problem* top = find(ps, "unknown_key", "colour");
  ASSERT_NE(top, nullptr) << dump(ps);
  EXPECT_EQ(top->line, 2);
  EXPECT_EQ(top->column, 1);
  const Problem* in_step = find(ps, "unknown_key", "steps[0].bogus");
  ASSERT_NE(in_step, nullptr) << dump(ps);
  EXPECT_EQ(in_step->line, 7);
  EXPECT_EQ(in_step->column, 5);
  // A key of another step type is unknown here, and says why.
  const Problem* wrong_type = find(ps, "unknown_key", "steps[0].agent");
  ASSERT_NE(wrong_type, nullptr) << dump(ps);
  EXPECT_NE(wrong_type->message.find("wait"), std::string::npos);
  EXPECT_EQ(ps.size(), 3u) << dump(ps);
}

TEST(DefinitionTest, CyclesAreNamed) {
  auto ps = problems_of(R"(name: c
steps:
  - {id: a, type: wait, duration: 1s, needs: [c]}
  - {id: b, type: wait, duration: 1s, needs: [a]}
  - {id: c, type: wait, duration: 1s, needs: [b]}
  - {id: d, type: wait, duration: 1s, needs: [d]}
)");
  const Problem* cyc = nullptr;
  for (const auto& p : ps) {
    if (p.code == "cycle" && p.message.find("a -> c -> b -> a") != std::string::npos) cyc = &p;
  }
  ASSERT_NE(cyc, nullptr) << dump(ps);
  EXPECT_EQ(cyc->path, "steps[0].needs");
  EXPECT_GT(cyc->line, 0);
  bool self = false;
  for (const auto& p : ps) self |= p.code == "cycle" && p.message.find("d -> d") != std::string::npos;
  EXPECT_TRUE(self) << dump(ps);
}

TEST(DefinitionTest, MissingDependenciesAndUnknownReferences) {
  auto ps = problems_of(R"(name: refs
inputs: {who: string}
steps:
  - id: a
    type: agent
    agent: x
    outputs: [report]
    inputs: {v: "${{ inputs.nobody }}"}
  - id: b
    type: agent
    agent: x
    needs: [a, ghost]
    if: steps.a.outputs.summary == 'x'
    inputs: {v: "${{ steps.c.outputs.y }}", w: "${{ steps.zz.status }}", q: "${{ steps.a.colour }}"}
  - id: c
    type: agent
    agent: x
    inputs: "${{ item }} ${{ secrets.key }}"
outputs:
  r: ${{ steps.a.outputs.report }}
)");
  EXPECT_NE(find(ps, "unknown_input", "steps[0].inputs.v"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "missing_dependency", "steps[1].needs[1]"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "unknown_output", "steps[1].if"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "not_a_dependency", "steps[1].inputs.v"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "unknown_step", "steps[1].inputs.w"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "unknown_field", "steps[1].inputs.q"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "unknown_name", "steps[2].inputs"), nullptr) << dump(ps);  // item outside forEach
  EXPECT_EQ(ps.size(), 8u) << dump(ps);  // the two names in steps[2].inputs are two problems
  for (const auto& p : ps) EXPECT_GT(p.line, 0) << p.path;
}

TEST(DefinitionTest, BadExpressionsAndValues) {
  auto ps = problems_of(R"(name: bad
steps:
  - id: a
    type: wait
    duration: soon
    if: "steps.a.status =="
    retry: {maxAttempts: 0, backoff: -1, retryOn: [sometimes]}
    timeout: 5 minutes
    continueOnError: "yes"
    concurrency: 3
  - id: 9b
    type: launch
  - id: c
    type: approval
    approvers: [root]
    message: "${{ unclosed"
  - id: a
    type: agent
  - id: t
    type: tool
    tool: notool
)");
  for (const char* want :
       {"steps[0].duration", "steps[0].if", "steps[0].retry.maxAttempts", "steps[0].retry.backoff",
        "steps[0].retry.retryOn[0]", "steps[0].timeout", "steps[0].continueOnError",
        "steps[0].concurrency", "steps[1].id", "steps[1].type", "steps[2].approvers[0]",
        "steps[2].message", "steps[3].id", "steps[3].agent", "steps[4].tool"}) {
    bool seen = false;
    for (const auto& p : ps) seen |= p.path == want;
    EXPECT_TRUE(seen) << want << " in " << dump(ps);
  }
  EXPECT_NE(find(ps, "bad_expression", "steps[0].if"), nullptr);
  EXPECT_NE(find(ps, "duplicate_id", "steps[3].id"), nullptr);
}

TEST(DefinitionTest, ToolStepShapes) {
  auto d = parse_definition(R"(name: tools
steps:
  - id: a
    type: tool
    adapter: files
    tool: read_text_file
    arguments: {path: "x/${{ inputs.dir }}"}
  - id: b
    type: tool
    tool: files/dir/with/slash
    needs: [a]
    arguments: "${{ steps.a.outputs }}"
inputs:
  dir: string
)");
  ASSERT_TRUE(d.ok()) << json::serialize(d.error().details);
  EXPECT_EQ(d->steps[0].adapter, "files");
  EXPECT_EQ(d->steps[0].tool, "read_text_file");
  EXPECT_EQ(d->steps[0].inputs.at("path"), "x/${{ inputs.dir }}");
  EXPECT_EQ(d->steps[1].adapter, "files");
  EXPECT_EQ(d->steps[1].tool, "dir/with/slash");

  auto ps = problems_of(R"(name: bad-tools
steps:
  - id: noslash
    type: tool
    tool: read_text_file
  - id: badadapter
    type: tool
    adapter: "no spaces"
    tool: x
  - id: both
    type: tool
    tool: a/b
    inputs: {x: 1}
    arguments: {x: 1}
  - id: wrongtype
    type: tool
    tool: a/b
    arguments: [1, 2]
  - id: wronginputs
    type: tool
    tool: a/b
    inputs: 5
  - id: notool
    type: tool
    adapter: a
  - id: emptyparts
    type: tool
    tool: /b
  - id: badref
    type: tool
    tool: a/b
    arguments: {x: "${{ steps.nope.outputs.y }}"}
  - id: agentkey
    type: tool
    tool: a/b
    agent: someone
)");
  EXPECT_NE(find(ps, "bad_value", "steps[0].tool"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "bad_value", "steps[1].adapter"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "not_allowed", "steps[2].arguments"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "wrong_type", "steps[3].arguments"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "wrong_type", "steps[4].inputs"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "required", "steps[5].tool"), nullptr) << dump(ps);
  EXPECT_NE(find(ps, "bad_value", "steps[6].tool"), nullptr) << dump(ps);
  bool ref = false;
  for (const auto& p : ps) ref |= p.path.starts_with("steps[7].inputs");
  EXPECT_TRUE(ref) << dump(ps);
  EXPECT_NE(find(ps, "unknown_key", "steps[8].agent"), nullptr) << dump(ps);
}

TEST(DefinitionTest, DocumentLevelErrors) {
  EXPECT_EQ(problems_of("")[0].code, "syntax");
  EXPECT_EQ(problems_of("[1, 2]")[0].code, "wrong_type");
  EXPECT_NE(find(problems_of("name: x"), "required", "steps"), nullptr);
  EXPECT_NE(find(problems_of("name: x\nsteps: []"), "required", "steps"), nullptr);
  EXPECT_NE(find(problems_of("steps: 3"), "wrong_type", "steps"), nullptr);
  auto syntax = problems_of("name: x\nsteps:\n  - id: a\n   bad: [\n");
  ASSERT_EQ(syntax.size(), 1u);
  EXPECT_EQ(syntax[0].code, "syntax");
  EXPECT_GT(syntax[0].line, 1);
  auto bad_json = parse_definition(std::string_view("{\"name\": "));
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.error().reason, "validation_failed");
  auto big = parse_definition(std::string(kMaxDefinitionBytes + 1, ' ') + "x");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().reason, "payload_too_large");
  // Alias expansion is bounded ("billion laughs").
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
    prev = c;
  }
  auto bp = problems_of(bomb);
  ASSERT_EQ(bp.size(), 1u);
  EXPECT_NE(bp[0].message.find("nodes"), std::string::npos);
}

TEST(DefinitionTest, InputsAreCheckedAgainstTheDeclaration) {
  auto d = parse_definition(kGood);
  ASSERT_TRUE(d.ok());
  auto ok = check_inputs(*d, json::parse(R"({"repo": "r"})").as_object());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(json::serialize(*ok), R"({"mode":"fast","repo":"r","runs":2})");
  auto bad = check_inputs(*d, json::parse(R"({"runs": "two", "mode": "slow", "extra": 1})").as_object());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().details.as_array().size(), 4u) << json::serialize(bad.error().details);
}

TEST(DefinitionTest, Durations) {
  EXPECT_EQ(parse_duration_ms(json::value("250ms")), 250);
  EXPECT_EQ(parse_duration_ms(json::value("3s")), 3000);
  EXPECT_EQ(parse_duration_ms(json::value("2m")), 120000);
  EXPECT_EQ(parse_duration_ms(json::value("1h")), 3600000);
  EXPECT_EQ(parse_duration_ms(json::value(5)), 5000);
  EXPECT_EQ(parse_duration_ms(json::value("5x")), std::nullopt);
  EXPECT_EQ(parse_duration_ms(json::value("-1s")), std::nullopt);
  EXPECT_EQ(parse_duration_ms(json::value(true)), std::nullopt);
}

// The JSON Schema in docs/ and the validator accept the same keys: every property the schema
// declares is accepted, and each is the only way a key is accepted.
class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream f(std::string(DP_SOURCE_DIR) + "/docs/workflow.schema.json");
    ASSERT_TRUE(f) << "docs/workflow.schema.json missing";
    std::stringstream ss;
    ss << f.rdbuf();
    schema_ = json::parse(ss.str()).as_object();
  }
  std::vector<std::string> props(const json::object& o) {
    std::vector<std::string> out;
    for (const auto& kv : o.at("properties").as_object()) out.emplace_back(kv.key());
    return out;
  }
  json::object schema_;
};

TEST_F(SchemaTest, TopLevelKeysMatch) {
  for (const auto& k : props(schema_)) {
    json::object doc{{"name", "n"}, {"steps", json::array{json::object{{"id", "a"}, {"type", "wait"}, {"duration", "1s"}}}}};
    if (!doc.contains(k)) {
      doc[k] = k == "inputs" || k == "outputs" ? json::value(json::object{})
               : k == "triggers"               ? json::value(json::array{})
                                               : json::value("x");
    }
    auto r = parse_definition_json(json::value(doc));
    EXPECT_TRUE(r.ok()) << k << ": " << json::serialize(r.error().details);
  }
  json::object extra{{"name", "n"}, {"nonsense", 1}, {"steps", json::array{json::object{{"id", "a"}, {"type", "wait"}, {"duration", "1s"}}}}};
  EXPECT_FALSE(parse_definition_json(json::value(extra)).ok());
}

TEST_F(SchemaTest, StepKeysMatchPerType) {
  const auto& defs = schema_.at("$defs").as_object();
  const auto common = props(defs.at("stepCommon").as_object());
  const std::map<std::string, json::object> base = {
      {"agent", json::object{{"agent", "x"}}},       {"tool", json::object{{"tool", "a/b"}}},
      {"approval", json::object{}},                  {"workflow", json::object{{"workflow", "w"}}},
      {"wait", json::object{{"duration", "1s"}}}};
  std::set<std::string> all_specific;
  for (const auto& [type, _] : base) {
    for (const auto& k : props(defs.at(type + "Step").as_object())) all_specific.insert(k);
  }
  for (const auto& [type, fields] : base) {
    const auto specific = props(defs.at(type + "Step").as_object());
    for (const auto& k : all_specific) {
      if (k == "type") continue;
      json::object step = fields;
      step["id"] = "s";
      step["type"] = type;
      if (!step.contains(k)) step[k] = k == "approvers" ? json::value("admin") : json::value("a/b");
      json::object doc{{"name", "n"}, {"steps", json::array{step}}};
      auto ps = validate_definition(json::serialize(doc));
      const bool unknown = find(ps, "unknown_key", "steps[0]." + k) != nullptr;
      const bool declared = std::find(specific.begin(), specific.end(), k) != specific.end();
      EXPECT_EQ(unknown, !declared) << type << "." << k << ": " << dump(ps);
    }
    for (const auto& k : common) {
      if (k == "id" || k == "type") continue;
      json::object step = fields;
      step["id"] = "s";
      step["type"] = type;
      step[k] = nullptr;
      json::object doc{{"name", "n"}, {"steps", json::array{step}}};
      auto ps = validate_definition(json::serialize(doc));
      EXPECT_EQ(find(ps, "unknown_key"), nullptr) << type << "." << k << ": " << dump(ps);
    }
  }
}


// Every example in examples/workflows is a valid definition.
TEST(DefinitionTest, ExamplesAreValid) {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(DP_SOURCE_DIR) + "/examples/workflows")) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream f(entry.path());
    std::stringstream ss;
    ss << f.rdbuf();
    auto ps = validate_definition(ss.str());
    EXPECT_TRUE(ps.empty()) << entry.path() << ": " << dump(ps);
    ++seen;
  }
  EXPECT_GE(seen, 3);
}

// Fuzz-ish: mutated definitions never crash the parser and always either parse or give problems.
TEST(DefinitionTest, MutatedInputNeverCrashes) {
  std::mt19937 rng(7);
  const std::string base = kGood;
  const std::string alphabet = "{}[]:,-'\"&*!|>#\n ${}.abc019";
  for (int i = 0; i < 800; ++i) {
    std::string s = base;
    const int edits = static_cast<int>(rng() % 6) + 1;
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, rng() % 8); break;
        default: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    Definition d;
    auto ps = validate_definition(s, &d);
    for (const auto& p : ps) EXPECT_FALSE(p.code.empty());
  }
}

}  // namespace
}  // namespace dp::workflow

namespace dp::workflow {
namespace {

// Found by the fuzzer: a step that is not a mapping, before a step whose `needs` is a single
// missing name, made the validator read the wrong list entry (and crash).
TEST(DefinitionTest, AStepThatIsNotAMappingIsRefusedWithoutMisreadingTheOthers) {
  auto ps = problems_of("name: x\nsteps:\n  - just a string\n  - id: b\n    type: wait\n"
                        "    duration: 1s\n    needs: missing\n");
  ASSERT_FALSE(ps.empty());
  bool wrong_type = false;
  for (const auto& p : ps) wrong_type = wrong_type || p.code == "wrong_type";
  EXPECT_TRUE(wrong_type);
}

}  // namespace
}  // namespace dp::workflow
