// Workflow triggers on the real binary, on SQLite and PostgreSQL: signed webhooks (bad
// signature, stale timestamp, replay, oversized, unknown hook, malformed headers: each
// answered and none starting anything), the cause recorded on executions and its filter.
// Signatures are computed here with OpenSSL, independently of the server's code.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;

std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

std::string sign(const std::string& secret, const std::string& ts, const std::string& delivery,
                 const std::string& body) {
  const std::string text = ts + "." + delivery + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

std::string now_s(long offset = 0) { return std::to_string(static_cast<long>(std::time(nullptr)) + offset); }

class TriggersTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(GetParam());
    ASSERT_EQ(server_->error(), "") << "server did not start";
    admin_ = std::make_unique<HttpClient>(server_->port());
    anon_ = std::make_unique<HttpClient>(server_->port());
    anon_->reset_token();
    auto s = admin_->put("/api/v1/secrets/deploy-hook", R"({"value": "hook-secret-1"})");
    ASSERT_EQ(s.status, 201u) << s.describe();
    const std::string yaml =
        "name: on-push\n"
        "inputs:\n  payload: {type: object, required: true}\n  env: {type: string, default: dev}\n"
        "triggers:\n"
        "  - {webhook: deploy, secret: deploy-hook, payloadInput: payload, inputs: {env: prod}}\n"
        "  - {webhook: nosecret, secret: not-set}\n"
        "steps:\n  - {id: w, type: wait, duration: 10ms}\n"
        "outputs:\n  ref: ${{ inputs.payload.ref }}\n";
    auto r = admin_->post("/api/v1/workflows", json::serialize(json::object{{"definition", yaml}}));
    ASSERT_EQ(r.status, 201u) << r.describe();
    wf_ = r.str("/data/id");
  }
  void TearDown() override {
    admin_.reset();
    anon_.reset();
    if (server_ && server_->process().running()) {
      EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
    }
    server_.reset();
  }

  HttpResponse deliver(const std::string& body, const std::string& delivery,
                       const std::string& ts, const std::string& sig,
                       const std::string& hook = "deploy") {
    Headers h{{"Content-Type", "application/json"}};
    if (!ts.empty()) h.emplace_back("X-Devplane-Timestamp", ts);
    if (!delivery.empty()) h.emplace_back("X-Devplane-Delivery", delivery);
    if (!sig.empty()) h.emplace_back("X-Devplane-Signature", sig);
    return anon_->post("/api/v1/workflows/" + wf_ + "/hooks/" + hook, body, h);
  }
  HttpResponse signed_delivery(const std::string& body, const std::string& delivery,
                               long offset = 0) {
    const auto ts = now_s(offset);
    return deliver(body, delivery, ts, sign("hook-secret-1", ts, delivery, body));
  }
  std::int64_t executions() {
    auto r = admin_->get("/api/v1/executions?workflowId=" + wf_);
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r.num("/meta/total");
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> admin_;
  std::unique_ptr<HttpClient> anon_;
  std::string wf_;
};

TEST_P(TriggersTest, SignedDeliveryStartsAnExecutionWithItsCause) {
  const std::string body = R"({"ref": "refs/heads/main", "after": "abc123"})";
  auto r = signed_delivery(body, "d-0001");
  ASSERT_EQ(r.status, 202u) << r.describe();
  const std::string id = r.str("/data/id");
  EXPECT_EQ(r.str("/data/cause"), "webhook");
  EXPECT_EQ(r.str("/data/causeDetail/hook"), "deploy");
  EXPECT_EQ(r.str("/data/causeDetail/deliveryId"), "d-0001");
  EXPECT_EQ(r.str("/data/inputs/payload/ref"), "refs/heads/main");
  EXPECT_EQ(r.str("/data/inputs/env"), "prod");
  EXPECT_EQ(r.header("Location"), "/api/v1/executions/" + id);
  // It runs to the end like any other.
  HttpResponse e;
  for (int i = 0; i < 300; ++i) {
    e = admin_->get("/api/v1/executions/" + id);
    if (e.str("/data/status") == "succeeded") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(e.str("/data/status"), "succeeded") << e.describe();
  EXPECT_EQ(e.str("/data/outputs/ref"), "refs/heads/main");
  EXPECT_EQ(e.str("/data/createdBy"), "hook:deploy");
  // The cause filter.
  auto byc = admin_->get("/api/v1/executions?cause=webhook");
  ASSERT_EQ(byc.status, 200u) << byc.describe();
  EXPECT_EQ(byc.num("/meta/total"), 1);
  EXPECT_EQ(admin_->get("/api/v1/executions?cause=schedule").num("/meta/total"), 0);
  EXPECT_EQ(admin_->get("/api/v1/executions?cause=bogus").status, 422u);
  // A manual execution says who asked.
  auto m = admin_->post("/api/v1/workflows/" + wf_ + "/execute",
                        R"({"inputs": {"payload": {"ref": "x"}}})");
  ASSERT_EQ(m.status, 202u) << m.describe();
  EXPECT_EQ(m.str("/data/cause"), "manual");
  EXPECT_EQ(m.str("/data/causeDetail/by"), m.str("/data/createdBy"));
  EXPECT_EQ(admin_->get("/api/v1/executions?cause=manual").num("/meta/total"), 1);
}

TEST_P(TriggersTest, ReplayedDeliveryAnswersWithTheFirstExecution) {
  const std::string body = R"({"ref": "r1"})";
  auto first = signed_delivery(body, "same-id");
  ASSERT_EQ(first.status, 202u) << first.describe();
  auto again = signed_delivery(body, "same-id");
  ASSERT_EQ(again.status, 200u) << again.describe();
  EXPECT_EQ(again.str("/data/id"), first.str("/data/id"));
  EXPECT_EQ(again.at("/meta/duplicate")->as_bool(), true);
  EXPECT_EQ(first.at("/meta/duplicate")->as_bool(), false);
  // A different body under the same delivery id is still the same delivery.
  auto other = signed_delivery(R"({"ref": "r2"})", "same-id");
  EXPECT_EQ(other.status, 200u) << other.describe();
  EXPECT_EQ(other.str("/data/id"), first.str("/data/id"));
  // Concurrent repeats start nothing more.
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    ts.emplace_back([&] {
      HttpClient c(server_->port());
      c.reset_token();
      const auto t = now_s();
      const std::string b = R"({"ref": "r3"})";
      auto r = c.post("/api/v1/workflows/" + wf_ + "/hooks/deploy", b,
                      Headers{{"X-Devplane-Timestamp", t}, {"X-Devplane-Delivery", "burst"},
                              {"X-Devplane-Signature", sign("hook-secret-1", t, "burst", b)}});
      if (r.status == 200 || r.status == 202) ++ok;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(executions(), 2);
}

TEST_P(TriggersTest, BadDeliveriesAreRefusedAndStartNothing) {
  const std::string body = R"({"ref": "x"})";
  const auto ts = now_s();
  // Bad signatures: wrong secret, altered body, altered timestamp, altered delivery id.
  auto wrong = deliver(body, "b1", ts, sign("other-secret", ts, "b1", body));
  EXPECT_EQ(wrong.status, 401u) << wrong.describe();
  EXPECT_EQ(wrong.str("/error/code"), "bad_signature");
  EXPECT_EQ(deliver(R"({"ref": "y"})", "b1", ts, sign("hook-secret-1", ts, "b1", body)).status, 401u);
  EXPECT_EQ(deliver(body, "b1", now_s(1), sign("hook-secret-1", ts, "b1", body)).status, 401u);
  EXPECT_EQ(deliver(body, "b2", ts, sign("hook-secret-1", ts, "b1", body)).status, 401u);
  EXPECT_EQ(deliver(body, "b1", ts, "sha256=zz").str("/error/code"), "bad_signature");
  EXPECT_EQ(deliver(body, "b1", ts, "").status, 401u);  // no signature
  EXPECT_EQ(deliver(body, "b1", ts, std::string("sha1=") + std::string(64, 'a')).status, 401u);
  // Stale or future timestamps, correctly signed.
  auto stale = signed_delivery(body, "b3", -301);
  EXPECT_EQ(stale.status, 401u) << stale.describe();
  EXPECT_EQ(stale.str("/error/code"), "stale_timestamp");
  EXPECT_EQ(signed_delivery(body, "b4", 400).str("/error/code"), "stale_timestamp");
  // Malformed headers.
  EXPECT_EQ(deliver(body, "b5", "", sign("hook-secret-1", "", "b5", body)).status, 400u);
  EXPECT_EQ(deliver(body, "b5", "12ab", sign("hook-secret-1", "12ab", "b5", body)).status, 400u);
  EXPECT_EQ(deliver(body, "", ts, sign("hook-secret-1", ts, "", body)).status, 400u);
  EXPECT_EQ(deliver(body, "has space", ts, sign("hook-secret-1", ts, "has space", body)).status, 400u);
  EXPECT_EQ(deliver(body, std::string(129, 'x'), ts, "sha256=00").status, 400u);
  // Oversized (256 KiB is the limit).
  const std::string big = "{\"ref\": \"" + std::string(300 * 1024, 'a') + "\"}";
  auto large = signed_delivery(big, "b6");
  EXPECT_EQ(large.status, 413u) << large.describe();
  // Unknown hook, unknown or malformed workflow id, a hook whose secret is not set.
  EXPECT_EQ(signed_delivery(body, "b7").status, 202u);  // the control: this one is fine
  {
    const auto t = now_s();
    EXPECT_EQ(deliver(body, "b8", t, sign("hook-secret-1", t, "b8", body), "nohook").status, 404u);
    EXPECT_EQ(deliver(body, "b8", t, sign("hook-secret-1", t, "b8", body), "nosecret").status, 503u);
    Headers h{{"X-Devplane-Timestamp", t}, {"X-Devplane-Delivery", "b8"},
              {"X-Devplane-Signature", sign("hook-secret-1", t, "b8", body)}};
    EXPECT_EQ(anon_->post("/api/v1/workflows/01890000-0000-7000-8000-000000000000/hooks/deploy", body, h).status, 404u);
    EXPECT_EQ(anon_->post("/api/v1/workflows/not-a-uuid/hooks/deploy", body, h).status, 400u);
  }
  // Inputs the workflow refuses (payload must be an object): 422, and the delivery id is not
  // used up.
  auto notobj = signed_delivery("[1, 2]", "b9");
  EXPECT_EQ(notobj.status, 422u) << notobj.describe();
  EXPECT_EQ(signed_delivery(R"({"ref": "z"})", "b9").status, 202u);
  EXPECT_EQ(executions(), 2);
  // Other methods are not routed.
  EXPECT_NE(anon_->get("/api/v1/workflows/" + wf_ + "/hooks/deploy").status, 200u);
  // An archived workflow's hooks are gone.
  ASSERT_EQ(admin_->del("/api/v1/workflows/" + wf_).status, 200u);
  EXPECT_EQ(signed_delivery(body, "b10").status, 404u);
}

TEST_P(TriggersTest, CronTriggersAreValidated) {
  auto bad = admin_->post(
      "/api/v1/workflows",
      json::serialize(json::object{
          {"definition",
           "name: bad-cron\ntriggers:\n  - {cron: '61 * * * *'}\n  - {cron: '* * * * *', timezone: Mars/Base}\n"
           "  - {cron: '* * * * *', missed: sometimes}\n  - {webhook: '1x', secret: s}\n  - {every: 5m}\n"
           "  - {webhook: h, secret: s, payloadInput: nope}\n"
           "steps:\n  - {id: w, type: wait, duration: 1s}\n"}}));
  ASSERT_EQ(bad.status, 422u) << bad.describe();
  std::set<std::string> paths;
  for (const auto& d : bad.at("/error/details")->as_array()) {
    paths.insert(std::string(d.as_object().at("path").as_string()));
  }
  for (const char* p : {"triggers[0].cron", "triggers[1].timezone", "triggers[2].missed",
                        "triggers[3].webhook", "triggers[4]", "triggers[5].payloadInput"}) {
    EXPECT_TRUE(paths.contains(p)) << p << " in " << bad.body;
  }
  auto good = admin_->post(
      "/api/v1/workflows",
      json::serialize(json::object{
          {"definition",
           "name: good-cron\ntriggers:\n  - {cron: '0 9 * * mon-fri', timezone: Europe/Berlin, missed: skip}\n"
           "steps:\n  - {id: w, type: wait, duration: 1s}\n"}}));
  EXPECT_EQ(good.status, 201u) << good.describe();
}

// `devplane run FILE` against the server: creates, executes, follows, exits by the result;
// a second run of a changed file makes a new version; refusals exit 2 and change nothing.
TEST_P(TriggersTest, DevplaneRunSubmitsExecutesAndWaits) {
  // The examples' `shell` agent.
  auto a = admin_->post("/api/v1/agents",
                        R"({"name":"shell","type":"command","config":{"command":["sh","-s"],"concurrency":4}})");
  ASSERT_EQ(a.status, 201u) << a.describe();
  ASSERT_EQ(admin_->post("/api/v1/agents/" + a.str("/data/id") + "/start", "").status, 200u);
  const std::string url = "http://127.0.0.1:" + std::to_string(server_->port());
  const Env env{{"DEVPLANE_SERVER", url}, {"DEVPLANE_TOKEN", admin_token(server_->port())}};
  const std::string example = source_dir() + "/examples/workflows/ci-pipeline.yaml";
  auto r = run_devplane({"run", example, "--wait", "--input", "project=tour",
                         "--input", R"(suites=["unit","lint"])"}, env, std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string exec = r.out.substr(0, r.out.find('\n'));
  auto e = admin_->get("/api/v1/executions/" + exec);
  ASSERT_EQ(e.status, 200u) << e.describe();
  EXPECT_EQ(e.str("/data/status"), "succeeded");
  EXPECT_EQ(e.str("/data/cause"), "manual");
  EXPECT_EQ(e.str("/data/inputs/project"), "tour");
  EXPECT_EQ(e.at("/data/inputs/suites")->as_array().size(), 2u);
  EXPECT_NE(r.err.find("created workflow ci-pipeline"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("succeeded"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"report\""), std::string::npos) << r.out;  // the outputs, last

  // The same file again: the same workflow, no new version; a changed file: version 2. With a
  // user and password instead of a token. Without --wait it exits once started.
  TempDir dir;
  const std::string file = dir.str() + "/wf.yaml";
  auto write = [&](const std::string& text) {
    std::ofstream(file) << text;
  };
  write("name: cli-flow\ninputs: {n: {type: integer, default: 1}}\nsteps:\n  - {id: w, type: wait, duration: 10ms}\n");
  const Env user_env{{"DEVPLANE_SERVER", url}, {"DEVPLANE_USER", "admin"}, {"DEVPLANE_PASSWORD", kAdminPassword}};
  EXPECT_EQ(run_devplane({"run", file}, user_env).exit_code, 0);
  EXPECT_EQ(run_devplane({"run", file, "-w", "-i", "n=5"}, user_env).exit_code, 0);
  auto wf = admin_->get("/api/v1/workflows?name=cli-flow");
  ASSERT_EQ(wf.num("/meta/total"), 1);
  EXPECT_EQ(wf.num("/data/0/version"), 1);
  write("name: cli-flow\ndescription: v2\nsteps:\n  - {id: w, type: wait, duration: 10ms}\n");
  auto v2 = run_devplane({"run", file, "--wait", "--user", "admin"}, Env{{"DEVPLANE_SERVER", url}, {"DEVPLANE_PASSWORD", kAdminPassword}});
  EXPECT_EQ(v2.exit_code, 0) << v2.err;
  EXPECT_NE(v2.err.find("updated workflow cli-flow to version 2"), std::string::npos) << v2.err;

  // A failing workflow exits 1.
  write("name: cli-fails\nsteps:\n  - {id: boom, type: agent, agent: shell, inputs: 'exit 3'}\n");
  auto failed = run_devplane({"run", file, "--wait"}, env, std::chrono::seconds(120));
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.err.find("boom: failed"), std::string::npos) << failed.err;

  // Refusals exit 2 and create nothing: an invalid definition (its problems printed), bad
  // inputs, a missing file, no credential, a wrong password, an unreachable server, --input
  // without '='.
  const auto before = admin_->get("/api/v1/workflows").num("/meta/total");
  write("name: cli-bad\nsteps:\n  - {id: a, type: wait, duration: soon, needs: [a]}\n");
  auto bad = run_devplane({"run", file}, env);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("steps[0].duration"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("validation_failed"), std::string::npos) << bad.err;
  write("name: cli-flow\ndescription: v2\nsteps:\n  - {id: w, type: wait, duration: 10ms}\n");
  auto badin = run_devplane({"run", file, "--input", "nope=1"}, env);
  EXPECT_EQ(badin.exit_code, 2);
  EXPECT_NE(badin.err.find("inputs.nope"), std::string::npos) << badin.err;
  EXPECT_EQ(run_devplane({"run", dir.str() + "/missing.yaml"}, env).exit_code, 2);
  EXPECT_EQ(run_devplane({"run", file}, Env{{"DEVPLANE_SERVER", url}}).exit_code, 2);
  EXPECT_EQ(run_devplane({"run", file, "-u", "admin"}, Env{{"DEVPLANE_SERVER", url}, {"DEVPLANE_PASSWORD", "wrong"}}).exit_code, 2);
  EXPECT_EQ(run_devplane({"run", file, "--token", "garbage"}, Env{{"DEVPLANE_SERVER", url}}).exit_code, 2);
  EXPECT_EQ(run_devplane({"run", file, "--server", "http://127.0.0.1:1"}, env).exit_code, 2);
  EXPECT_EQ(run_devplane({"run", file, "--input", "novalue"}, env).exit_code, 2);
  write(": : not yaml [");
  EXPECT_EQ(run_devplane({"run", file}, env).exit_code, 2);
  EXPECT_EQ(admin_->get("/api/v1/workflows").num("/meta/total"), before);
  auto help = run_devplane({"run", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--wait"), std::string::npos);
}

// ------------------------------------------------- the trigger constants are config keys

// A hook workflow on `server`, with secret "hook-secret-1" under the hook `deploy`.
std::string hook_workflow(HttpClient& admin) {
  EXPECT_EQ(admin.put("/api/v1/secrets/deploy-hook", R"({"value": "hook-secret-1"})").status, 201u);
  const std::string yaml =
      "name: hooked\ntriggers:\n  - {webhook: deploy, secret: deploy-hook}\n"
      "steps:\n  - {id: w, type: wait, duration: 10ms}\n";
  auto r = admin.post("/api/v1/workflows", json::serialize(json::object{{"definition", yaml}}));
  EXPECT_EQ(r.status, 201u) << r.describe();
  return r.str("/data/id");
}

HttpResponse hook_delivery(HttpClient& anon, const std::string& wf, const std::string& delivery,
                           long offset) {
  const std::string body = R"({"ref": "x"})";
  const auto ts = now_s(offset);
  return anon.post("/api/v1/workflows/" + wf + "/hooks/deploy", body,
                   Headers{{"Content-Type", "application/json"},
                           {"X-Devplane-Timestamp", ts},
                           {"X-Devplane-Delivery", delivery},
                           {"X-Devplane-Signature", sign("hook-secret-1", ts, delivery, body)}});
}

TEST(TriggerConfigTest, TheWebhookWindowAndTheDeliveryRetentionAreHonoured) {
  TestServer server(Backend::kSqlite, {},
                    Env{{"DEVPLANE_WEBHOOK_TIMESTAMP_TOLERANCE_S", "5"},
                        {"DEVPLANE_WEBHOOK_DELIVERY_RETENTION_S", "10"}});
  ASSERT_EQ(server.error(), "");
  HttpClient admin(server.port());
  HttpClient anon(server.port());
  anon.set_token("");
  const std::string wf = hook_workflow(admin);
  // A window of 5 s: 10 s old or ahead is stale, 2 s old is fine (the default window is 300 s).
  auto old = hook_delivery(anon, wf, "w1", -10);
  EXPECT_EQ(old.status, 401u) << old.describe();
  EXPECT_EQ(old.str("/error/code"), "stale_timestamp");
  EXPECT_NE(old.str("/error/message").find("5"), std::string::npos) << old.describe();
  EXPECT_EQ(hook_delivery(anon, wf, "w2", 10).str("/error/code"), "stale_timestamp");
  const auto t0 = std::chrono::steady_clock::now();
  auto fresh = hook_delivery(anon, wf, "w3", -2);
  ASSERT_EQ(fresh.status, 202u) << fresh.describe();
  // Retention 10 s: the id is a duplicate at first, and is forgotten (a new delivery) after it.
  EXPECT_EQ(hook_delivery(anon, wf, "w3", 0).status, 200u);
  HttpResponse later;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(40)) {
    later = hook_delivery(anon, wf, "w3", 0);
    if (later.status != 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const auto forgotten_after = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(later.status, 202u) << later.describe();
  EXPECT_NE(later.str("/data/id"), fresh.str("/data/id"));
  EXPECT_GE(forgotten_after, std::chrono::seconds(9)) << "pruned before its retention passed";
  EXPECT_LE(forgotten_after, std::chrono::seconds(25));
  EXPECT_EQ(server.process().stop(), 0);

  // A retention shorter than twice the window stops the process before it listens.
  auto bad = run_devplane({"serve", "--print-config"},
                          Env{{"DEVPLANE_WEBHOOK_TIMESTAMP_TOLERANCE_S", "600"},
                              {"DEVPLANE_WEBHOOK_DELIVERY_RETENTION_S", "1000"}});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("webhook_delivery_retention_s"), std::string::npos) << bad.err;
  auto shown = run_devplane({"serve", "--print-config"},
                            Env{{"DEVPLANE_WEBHOOK_TIMESTAMP_TOLERANCE_S", "600"},
                                {"DEVPLANE_CRON_LATE_TOLERANCE_S", "7"}});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto cfg = parse_json(shown.out);
  ASSERT_TRUE(cfg.is_object()) << shown.out;
  EXPECT_EQ(cfg.at("webhook_timestamp_tolerance_s").to_number<int>(), 600);
  EXPECT_EQ(cfg.at("cron_late_tolerance_s").to_number<int>(), 7);
  EXPECT_EQ(cfg.at("webhook_delivery_retention_s").to_number<int>(), 86400);
}

TEST(TriggerConfigTest, TheCronLateToleranceDecidesWhatCountsAsMissed) {
  // Two servers down across the same scheduled minute, back 4 s after it: with a tolerance of
  // 1 s that time was missed, with the default 60 s it runs as on time.
  TestServer strict(Backend::kSqlite, {}, Env{{"DEVPLANE_CRON_LATE_TOLERANCE_S", "1"}});
  TestServer lenient(Backend::kSqlite);
  ASSERT_EQ(strict.error(), "");
  ASSERT_EQ(lenient.error(), "");
  using clk = std::chrono::system_clock;
  auto secs_in_minute = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(clk::now().time_since_epoch()).count() % 60;
  };
  // Leave time to define the workflows and stop the servers before the minute turns.
  if (secs_in_minute() > 45) std::this_thread::sleep_for(std::chrono::seconds(61 - secs_in_minute()));
  const std::string yaml =
      "name: minutely\ntriggers:\n  - {cron: '* * * * *', missed: once}\n"
      "steps:\n  - {id: w, type: wait, duration: 10ms}\n";
  std::string wf[2];
  TestServer* servers[2] = {&strict, &lenient};
  for (int i = 0; i < 2; ++i) {
    HttpClient admin(servers[i]->port());
    auto r = admin.post("/api/v1/workflows", json::serialize(json::object{{"definition", yaml}}));
    ASSERT_EQ(r.status, 201u) << r.describe();
    wf[i] = r.str("/data/id");
  }
  ASSERT_LT(secs_in_minute(), 58) << "too slow to stop before the minute turned";
  for (auto* s : servers) ASSERT_EQ(s->process().stop(), 0);
  const auto boundary = std::chrono::time_point_cast<std::chrono::minutes>(clk::now()) + std::chrono::minutes(1);
  std::this_thread::sleep_until(boundary + std::chrono::seconds(4));
  std::string cause[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(servers[i]->restart(), "");
    HttpClient admin(servers[i]->port());
    HttpResponse list;
    for (int k = 0; k < 100; ++k) {
      list = admin.get("/api/v1/executions?workflowId=" + wf[i]);
      if (list.num("/meta/total") > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(list.num("/meta/total"), 1) << list.describe();
    auto e = admin.get("/api/v1/executions/" + list.str("/data/0/id"));
    EXPECT_EQ(e.str("/data/cause"), "schedule");
    cause[i] = json::serialize(*e.at("/data/causeDetail"));
  }
  EXPECT_NE(cause[0].find("\"missedRuns\":1"), std::string::npos) << cause[0];
  EXPECT_NE(cause[0].find("\"missedPolicy\":\"once\""), std::string::npos) << cause[0];
  EXPECT_EQ(cause[1].find("missedRuns"), std::string::npos) << cause[1];
}

INSTANTIATE_TEST_SUITE_P(Backends, TriggersTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
