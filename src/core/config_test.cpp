#include "core/config.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace dp {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_config_test_" + std::to_string(rd()) + "_" +
                                        std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write_file(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

// A fake environment for apply_env.
struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(ConfigTest, DefaultsAreEmbeddedLoopback) {
  Config c;
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.data_dir, "./devplane-data");
  EXPECT_TRUE(c.database_url.empty());
  EXPECT_TRUE(c.redis_url.empty());
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.blocking_threads, 4);
  EXPECT_EQ(c.write_threads, 32);
  EXPECT_EQ(c.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(c.sqlite_synchronous, "full");
  EXPECT_EQ(c.mcp_tool_records, "relaxed");
  EXPECT_EQ(c.audit_records, "relaxed");
  EXPECT_FALSE(c.distributed());
  EXPECT_EQ(c.to_json_masked().at("mode").as_string(), "embedded");
}

TEST(ConfigTest, ShortJwtSecretIsRefusedAndChangesNothing) {
  Config c;
  Status s = c.set("jwt_secret", "short", "flag");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("32"), std::string::npos);
  EXPECT_EQ(c.jwt_secret, "");
  EXPECT_FALSE(c.set("password_hash_cost", "none", "flag").ok());
  EXPECT_EQ(c.password_hash_cost, "moderate");
}

TEST(ConfigTest, MasterKeyComesFromTheEnvironmentAndIsMasked) {
  Config c;
  const auto env = [](const char* name) -> const char* {
    return std::string_view(name) == "DEVPLANE_MASTER_KEY" ? "c2VjcmV0LW1hc3Rlci1rZXk=" : nullptr;
  };
  ASSERT_TRUE(c.apply_env(env).ok());
  EXPECT_EQ(c.master_key, "c2VjcmV0LW1hc3Rlci1rZXk=");
  const auto o = c.to_json_masked();
  EXPECT_EQ(o.at("master_key").as_string(), "***");
  EXPECT_EQ(o.at("master_key_file").as_string(), "");
}

TEST(ConfigTest, SetsEveryKnownKey) {
  Config c;
  const std::map<std::string, std::string> values = {
      {"host", "0.0.0.0"},
      {"port", "9090"},
      {"data_dir", "/var/lib/dp"},
      {"database_url", "postgres://u@h/db"},
      {"redis_url", "redis://h:6379"},
      {"log_level", "debug"},
      {"log_format", "text"},
      {"io_threads", "3"},
      {"blocking_threads", "7"},
      {"write_threads", "9"},
      {"db_pool_size", "11"},
      {"max_body_bytes", "4096"},
      {"header_timeout_ms", "500"},
      {"idle_timeout_ms", "1500"},
      {"request_timeout_ms", "2500"},
      {"shutdown_timeout_ms", "0"},
      {"sqlite_synchronous", "normal"},
      {"event_retention_hours", "48"},
      {"health_interval_ms", "250"},
      {"remote_heartbeat_timeout_ms", "5000"},
      {"mcp_health_interval_ms", "1500"},
      {"mcp_tool_records", "deferred"},
      {"audit_records", "durable"},
      {"allowed_origins", "https://a.example, http://b.example:3000 ,"},
      {"master_key_file", "/etc/devplane/master.key"},
      {"master_key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
      {"jwt_secret", "0123456789abcdef0123456789abcdef-secret"},
      {"access_token_ttl_s", "600"},
      {"refresh_token_ttl_s", "3600"},
      {"password_hash_cost", "interactive"},
      {"web_dir", "/srv/devplane/web"},
      {"redis_key_prefix", "team-a.devplane"},
      {"workflow_lease_ms", "5000"},
      {"workflow_tick_ms", "50"},
      {"task_lease_ms", "4000"},
      {"oidc_issuer", "https://idp.example.com"},
      {"oidc_client_id", "devplane"},
      {"oidc_client_secret", "oidc-client-secret"},
      {"oidc_redirect_url", "https://dp.example.com/api/v1/auth/oidc/callback"},
      {"oidc_role_claim", "roles"},
      {"oidc_role_map", "devplane-admins=admin, *=viewer"},
      {"oidc_scopes", "openid groups"},
      {"oidc_display_name", "Example SSO"},
      {"oidc_jwks_min_refresh_ms", "0"},
      {"workspace_retention_hours", "12"},
      {"agent_resources_interval_ms", "1000"},
      {"agent_resources_retention_minutes", "30"},
      {"docker_socket", "/run/user/1000/docker.sock"},
      {"llm_prices", "gpt-4o=2.5/10, claude-sonnet-4=3/15,"},
      {"agent_log_max_bytes", "65536"},
      {"agent_log_files", "0"},
      {"agent_log_max_followers", "3"},
      {"webhook_timestamp_tolerance_s", "5"},
      {"cron_late_tolerance_s", "2"},
      {"webhook_delivery_retention_s", "3600"},
      {"memory_outcomes", "off"},
      {"memory_embedder", "openai"},
      {"memory_embedding_url", "http://127.0.0.1:11434/v1"},
      {"memory_embedding_model", "nomic-embed-text"},
      {"memory_embedding_key_secret", "embeddings-key"},
      {"memory_dims", "256"},
  };
  ASSERT_EQ(values.size(), Config::keys().size()) << "a key was added without a test value";
  for (const auto& key : Config::keys()) {
    auto it = values.find(key);
    ASSERT_NE(it, values.end()) << key;
    Status s = c.set(key, it->second, "flag");
    EXPECT_TRUE(s.ok()) << key << ": " << s.error().message;
  }
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 9090);
  EXPECT_EQ(c.data_dir, "/var/lib/dp");
  EXPECT_EQ(c.database_url, "postgres://u@h/db");
  EXPECT_EQ(c.redis_url, "redis://h:6379");
  EXPECT_EQ(c.redis_key_prefix, "team-a.devplane");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "text");
  EXPECT_EQ(c.io_threads, 3);
  EXPECT_EQ(c.workflow_lease_ms, 5000u);
  EXPECT_EQ(c.workflow_tick_ms, 50u);
  EXPECT_EQ(c.blocking_threads, 7);
  EXPECT_EQ(c.write_threads, 9);
  EXPECT_EQ(c.db_pool_size, 11);
  EXPECT_EQ(c.max_body_bytes, 4096u);
  EXPECT_EQ(c.header_timeout_ms, 500u);
  EXPECT_EQ(c.idle_timeout_ms, 1500u);
  EXPECT_EQ(c.request_timeout_ms, 2500u);
  EXPECT_EQ(c.shutdown_timeout_ms, 0u);
  EXPECT_EQ(c.sqlite_synchronous, "normal");
  EXPECT_EQ(c.jwt_secret, "0123456789abcdef0123456789abcdef-secret");
  EXPECT_EQ(c.access_token_ttl_s, 600u);
  EXPECT_EQ(c.refresh_token_ttl_s, 3600u);
  EXPECT_EQ(c.password_hash_cost, "interactive");
  EXPECT_EQ(c.to_json_masked().at("jwt_secret").as_string(), "***");
  EXPECT_EQ(c.event_retention_hours, 48u);
  EXPECT_EQ(c.health_interval_ms, 250u);
  EXPECT_EQ(c.remote_heartbeat_timeout_ms, 5000u);
  EXPECT_EQ(c.mcp_health_interval_ms, 1500u);
  EXPECT_EQ(c.mcp_tool_records, "deferred");
  EXPECT_EQ(c.audit_records, "durable");
  EXPECT_EQ(c.allowed_origins,
            (std::vector<std::string>{"https://a.example", "http://b.example:3000"}));
  EXPECT_EQ(c.oidc_issuer, "https://idp.example.com");
  EXPECT_EQ(c.oidc_role_claim, "roles");
  EXPECT_EQ(c.oidc_role_map, "devplane-admins=admin, *=viewer");
  EXPECT_EQ(c.oidc_jwks_min_refresh_ms, 0u);
  EXPECT_EQ(c.to_json_masked().at("oidc_client_secret").as_string(), "***");
  EXPECT_TRUE(c.distributed());
  EXPECT_EQ(c.workspace_retention_hours, 12u);
  EXPECT_EQ(c.agent_resources_interval_ms, 1000u);
  EXPECT_EQ(c.agent_resources_retention_minutes, 30u);
  EXPECT_EQ(c.docker_socket, "/run/user/1000/docker.sock");
  ASSERT_EQ(c.llm_prices.size(), 2u);
  EXPECT_EQ(c.llm_prices.at("gpt-4o"), (std::pair<double, double>{2.5, 10}));
  EXPECT_EQ(c.llm_prices.at("claude-sonnet-4"), (std::pair<double, double>{3, 15}));
  EXPECT_EQ(c.agent_log_max_bytes, 65536u);
  EXPECT_EQ(c.agent_log_files, 0);
  EXPECT_EQ(c.agent_log_max_followers, 3u);
  EXPECT_EQ(c.webhook_timestamp_tolerance_s, 5u);
  EXPECT_EQ(c.cron_late_tolerance_s, 2u);
  EXPECT_EQ(c.webhook_delivery_retention_s, 3600u);
  EXPECT_EQ(c.memory_outcomes, "off");
  EXPECT_EQ(c.memory_embedder, "openai");
  EXPECT_EQ(c.memory_embedding_url, "http://127.0.0.1:11434/v1");
  EXPECT_EQ(c.memory_embedding_model, "nomic-embed-text");
  EXPECT_EQ(c.memory_embedding_key_secret, "embeddings-key");
  EXPECT_EQ(c.memory_dims, 256u);
  EXPECT_TRUE(c.check().ok());
  const auto j = c.to_json_masked();
  for (const char* k : {"agent_log_max_bytes", "agent_log_files", "agent_log_max_followers",
                        "webhook_timestamp_tolerance_s", "cron_late_tolerance_s",
                        "webhook_delivery_retention_s"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_TRUE(c.check().ok());
}

TEST(ConfigTest, LogAndTriggerKeysAreBoundedAndTheRetentionMustCoverTheWindow) {
  Config c;
  for (const auto& [key, bad] : std::vector<std::pair<std::string, std::string>>{
           {"agent_log_max_bytes", "100"}, {"agent_log_max_bytes", "2000000000"},
           {"agent_log_files", "-1"}, {"agent_log_files", "101"},
           {"agent_log_max_followers", "0"}, {"webhook_timestamp_tolerance_s", "0"},
           {"webhook_timestamp_tolerance_s", "86401"}, {"cron_late_tolerance_s", "0"},
           {"cron_late_tolerance_s", "1m"}, {"webhook_delivery_retention_s", "1"},
           {"webhook_delivery_retention_s", "31622401"}}) {
    Status s = c.set(key, bad, "flag");
    EXPECT_FALSE(s.ok()) << key << "=" << bad;
  }
  // Nothing bad was applied.
  EXPECT_EQ(c.agent_log_max_bytes, 4u * 1024 * 1024);
  EXPECT_EQ(c.webhook_timestamp_tolerance_s, 300u);
  EXPECT_EQ(c.cron_late_tolerance_s, 60u);
  EXPECT_EQ(c.webhook_delivery_retention_s, 86400u);
  EXPECT_TRUE(c.check().ok());
  // A window of 2 hours either way needs 4 hours of delivery ids.
  ASSERT_TRUE(c.set("webhook_timestamp_tolerance_s", "7200", "flag").ok());
  ASSERT_TRUE(c.set("webhook_delivery_retention_s", "14399", "flag").ok());
  Status s = c.check();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("webhook_delivery_retention_s"), std::string::npos);
  ASSERT_TRUE(c.set("webhook_delivery_retention_s", "14400", "flag").ok());
  EXPECT_TRUE(c.check().ok());
}

TEST(ConfigTest, AMalformedPriceTableIsRefusedAndKeepsTheOldOne) {
  Config c;
  ASSERT_TRUE(c.set("llm_prices", "m=1/2", "flag").ok());
  for (const char* bad : {"m", "m=1", "=1/2", "m=1/", "m=/2", "m=a/2", "m=1/2x", "m=-1/2",
                          "m=1/2,n", "m=1e9/1", "m=2/1=3"}) {
    Status s = c.set("llm_prices", bad, "env DEVPLANE_LLM_PRICES");
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_NE(s.error().message.find("env DEVPLANE_LLM_PRICES"), std::string::npos);
    }
  }
  EXPECT_EQ(c.llm_prices.size(), 1u);
  EXPECT_TRUE(c.set("workspace_retention_hours", "0", "flag").ok());
  EXPECT_FALSE(c.set("workspace_retention_hours", "-1", "flag").ok());
  // Resource sampling may be off (0); its retention may not be 0 or longer than a week.
  EXPECT_TRUE(c.set("agent_resources_interval_ms", "0", "flag").ok());
  EXPECT_FALSE(c.set("agent_resources_interval_ms", "3600001", "flag").ok());
  EXPECT_FALSE(c.set("agent_resources_retention_minutes", "0", "flag").ok());
  EXPECT_FALSE(c.set("agent_resources_retention_minutes", "10081", "flag").ok());
  EXPECT_TRUE(c.set("agent_resources_retention_minutes", "10080", "flag").ok());
}

TEST(ConfigTest, UnknownKeyIsNamedWithItsSource) {
  Config c;
  Status s = c.set("prot", "80", "env DEVPLANE_PROT");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().reason, "bad_config");
  EXPECT_NE(s.error().message.find("prot"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("env DEVPLANE_PROT"), std::string::npos) << s.error().message;
}

struct BadValue {
  std::string key;
  std::string value;
};

class ConfigBadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigBadValueTest, IsRejectedNamingKeyAndSourceAndChangesNothing) {
  const BadValue& bv = GetParam();
  Config c;
  const auto before = c.to_json_masked();
  Status s = c.set(bv.key, bv.value, "file /etc/devplane.yaml");
  ASSERT_FALSE(s.ok()) << bv.key << "=" << bv.value;
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().reason, "bad_config");
  EXPECT_NE(s.error().message.find(bv.key), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("file /etc/devplane.yaml"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(c.to_json_masked(), before) << "a rejected value must not change the config";
}

INSTANTIATE_TEST_SUITE_P(
    AllKeys, ConfigBadValueTest,
    ::testing::Values(BadValue{"host", ""}, BadValue{"port", "abc"}, BadValue{"port", "65536"},
                      BadValue{"port", "-1"}, BadValue{"port", "80x"}, BadValue{"port", ""},
                      BadValue{"agent_resources_interval_ms", "5s"},
                      BadValue{"agent_resources_retention_minutes", "-5"},
                      BadValue{"port", " 80"}, BadValue{"data_dir", ""},
                      BadValue{"database_url", "mysql://h/db"},
                      BadValue{"database_url", "h:5432"}, BadValue{"redis_url", "http://h"},
                      BadValue{"log_level", "verbose"}, BadValue{"log_level", "INFO"},
                      BadValue{"log_format", "xml"}, BadValue{"io_threads", "257"},
                      BadValue{"blocking_threads", "0"}, BadValue{"write_threads", "0"},
                      BadValue{"write_threads", "257"}, BadValue{"db_pool_size", "0"},
                      BadValue{"db_pool_size", "1000"}, BadValue{"max_body_bytes", "1023"},
                      BadValue{"max_body_bytes", "4294967297"},
                      BadValue{"header_timeout_ms", "99"},
                      BadValue{"idle_timeout_ms", "3600001"},
                      BadValue{"request_timeout_ms", "1.5"},
                      BadValue{"shutdown_timeout_ms", "600001"},
                      BadValue{"sqlite_synchronous", "off"},
                      BadValue{"mcp_tool_records", "sometimes"}, BadValue{"audit_records", "never"}, BadValue{"memory_outcomes", "maybe"},
                      BadValue{"memory_embedder", "word2vec"}, BadValue{"memory_dims", "8"},
                      BadValue{"memory_dims", "5000"},
                      BadValue{"event_retention_hours", "0"},
                      BadValue{"event_retention_hours", "8785"},
                      BadValue{"health_interval_ms", "99"},
                      BadValue{"remote_heartbeat_timeout_ms", "999"},
                      BadValue{"remote_heartbeat_timeout_ms", "600001"},
                      BadValue{"mcp_health_interval_ms", "199"},
                      BadValue{"allowed_origins", "https://ok.example,ftp://bad"},
                      BadValue{"allowed_origins", "example.com"},
                      BadValue{"redis_key_prefix", ""}, BadValue{"redis_key_prefix", "Team A"},
                      BadValue{"redis_key_prefix", "a:b"},
                      BadValue{"workflow_lease_ms", "999"}, BadValue{"workflow_lease_ms", "x"},
                      BadValue{"workflow_tick_ms", "9"}, BadValue{"workflow_tick_ms", "60001"},
                      BadValue{"task_lease_ms", "600001"}),
    [](const ::testing::TestParamInfo<BadValue>& param_info) {
      return param_info.param.key + "_" + std::to_string(param_info.index);
    });

TEST(ConfigTest, BoundaryValuesAreAccepted) {
  Config c;
  EXPECT_TRUE(c.set("port", "0", "flag").ok());
  EXPECT_EQ(c.port, 0);
  EXPECT_TRUE(c.set("port", "65535", "flag").ok());
  EXPECT_EQ(c.port, 65535);
  EXPECT_TRUE(c.set("max_body_bytes", "1024", "flag").ok());
  EXPECT_EQ(c.max_body_bytes, 1024u);
  EXPECT_TRUE(c.set("max_body_bytes", "4294967296", "flag").ok());
  EXPECT_EQ(c.max_body_bytes, 4294967296u);
  EXPECT_TRUE(c.set("io_threads", "0", "flag").ok());
  EXPECT_TRUE(c.set("blocking_threads", "256", "flag").ok());
  EXPECT_EQ(c.blocking_threads, 256);
}

TEST(ConfigTest, SqliteUrlSelectsEmbeddedModeAndDataDir) {
  Config c;
  ASSERT_TRUE(c.set("database_url", "postgres://u@h/db", "flag").ok());
  ASSERT_TRUE(c.distributed());
  ASSERT_TRUE(c.set("database_url", "sqlite:/tmp/dp-data", "flag").ok());
  EXPECT_FALSE(c.distributed());
  EXPECT_TRUE(c.database_url.empty());
  EXPECT_EQ(c.data_dir, "/tmp/dp-data");
  // An empty URL also means embedded.
  ASSERT_TRUE(c.set("database_url", "postgresql://h/db", "flag").ok());
  ASSERT_TRUE(c.set("database_url", "", "flag").ok());
  EXPECT_FALSE(c.distributed());
}

TEST(ConfigTest, ApplyEnvReadsDevplaneVariablesOnly) {
  FakeEnv env;
  env.vars = {{"DEVPLANE_PORT", "7000"},
              {"DEVPLANE_LOG_LEVEL", "warn"},
              {"DEVPLANE_SQLITE_SYNCHRONOUS", "normal"},
              {"PORT", "1"},
              {"DEVPLANE_port", "2"}};
  Config c;
  ASSERT_TRUE(c.apply_env(env.fn()).ok());
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.sqlite_synchronous, "normal");
  EXPECT_EQ(c.host, "127.0.0.1");
}

TEST(ConfigTest, ApplyEnvNamesTheVariableOfABadValue) {
  FakeEnv env;
  env.vars = {{"DEVPLANE_DB_POOL_SIZE", "lots"}};
  Config c;
  Status s = c.apply_env(env.fn());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().message.find("env DEVPLANE_DB_POOL_SIZE"), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("lots"), std::string::npos) << s.error().message;
}

TEST_F(ConfigFileTest, AppliesYamlMapping) {
  const auto path = write_file("c.yaml",
                               "host: 0.0.0.0\n"
                               "port: 9001\n"
                               "log_format: text\n"
                               "max_body_bytes: 2048\n");
  Config c;
  Status s = c.apply_file(path);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 9001);
  EXPECT_EQ(c.log_format, "text");
  EXPECT_EQ(c.max_body_bytes, 2048u);
  EXPECT_EQ(c.log_level, "info");
}

TEST_F(ConfigFileTest, EmptyFileChangesNothing) {
  const auto path = write_file("empty.yaml", "");
  Config c;
  const auto before = c.to_json_masked();
  ASSERT_TRUE(c.apply_file(path).ok());
  EXPECT_EQ(c.to_json_masked(), before);
}

TEST_F(ConfigFileTest, MissingFileIsNotFound) {
  Config c;
  Status s = c.apply_file((dir_ / "absent.yaml").string());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_NE(s.error().message.find("absent.yaml"), std::string::npos);
}

TEST_F(ConfigFileTest, MalformedYamlNamesTheFile) {
  const auto path = write_file("bad.yaml", "port: [1, 2\nhost: x\n");
  Config c;
  Status s = c.apply_file(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().reason, "bad_config");
  EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
}

TEST_F(ConfigFileTest, NonMappingIsRejected) {
  const auto path = write_file("list.yaml", "- port\n- 80\n");
  Config c;
  Status s = c.apply_file(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "bad_config");
  EXPECT_NE(s.error().message.find("mapping"), std::string::npos) << s.error().message;
}

TEST_F(ConfigFileTest, NestedValueIsRejectedNamingTheKey) {
  const auto path = write_file("nested.yaml", "log_level:\n  a: b\n");
  Config c;
  Status s = c.apply_file(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "bad_config");
  EXPECT_NE(s.error().message.find("log_level"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
}

TEST_F(ConfigFileTest, UnknownKeyAndBadValueNameTheFile) {
  Config c;
  const auto unknown = write_file("unknown.yaml", "colour: blue\n");
  Status s = c.apply_file(unknown);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("colour"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("file " + unknown), std::string::npos) << s.error().message;

  const auto bad = write_file("bad_port.yaml", "port: eighty\n");
  s = c.apply_file(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("port"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("file " + bad), std::string::npos) << s.error().message;
  EXPECT_EQ(c.port, 8080);
}

// The order app/commands.cpp applies sources in: defaults, file, env, flags.
TEST_F(ConfigFileTest, PrecedenceIsDefaultsThenFileThenEnvThenFlags) {
  const auto path = write_file("p.yaml",
                               "port: 1001\n"
                               "log_level: debug\n"
                               "data_dir: /from/file\n"
                               "redis_url: redis://file:1\n");
  FakeEnv env;
  env.vars = {{"DEVPLANE_PORT", "2002"}, {"DEVPLANE_DATA_DIR", "/from/env"}};
  Config c;
  ASSERT_TRUE(c.apply_file(path).ok());
  ASSERT_TRUE(c.apply_env(env.fn()).ok());
  ASSERT_TRUE(c.set("port", "3003", "flag").ok());

  EXPECT_EQ(c.port, 3003);                   // flag beats env and file
  EXPECT_EQ(c.data_dir, "/from/env");        // env beats file
  EXPECT_EQ(c.log_level, "debug");           // file beats default
  EXPECT_EQ(c.redis_url, "redis://file:1");  // file only
  EXPECT_EQ(c.host, "127.0.0.1");            // default stays
  EXPECT_EQ(c.blocking_threads, 4);
}

TEST(ConfigTest, MaskUrlPassword) {
  EXPECT_EQ(mask_url_password("postgres://user:secret@h/db"), "postgres://user:***@h/db");
  EXPECT_EQ(mask_url_password("postgresql://user:s3cr%40t@h:5432/db?sslmode=disable"),
            "postgresql://user:***@h:5432/db?sslmode=disable");
  EXPECT_EQ(mask_url_password("redis://:pw@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
  EXPECT_EQ(mask_url_password("postgres://h/db?user=u&password=secret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(mask_url_password("postgres://h/db?password=secret"), "postgres://h/db?password=***");
  // Nothing to mask.
  EXPECT_EQ(mask_url_password("postgres://user@h:5432/db"), "postgres://user@h:5432/db");
  EXPECT_EQ(mask_url_password("postgres://h:5432/db"), "postgres://h:5432/db");
  EXPECT_EQ(mask_url_password("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
  EXPECT_EQ(mask_url_password(""), "");
  EXPECT_EQ(mask_url_password("not a url"), "not a url");
}

TEST(ConfigTest, MaskUrlPasswordIgnoresTheQueryAndMasksAwkwardPasswords) {
  // An '@' in the query is not a credentials separator: the host must stay readable.
  EXPECT_EQ(mask_url_password("postgres://h:5432/db?application_name=a@b"),
            "postgres://h:5432/db?application_name=a@b");
  // A password holding an unescaped '@' or '/' is masked whole.
  EXPECT_EQ(mask_url_password("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
  EXPECT_EQ(mask_url_password("postgres://u:pa/ss@h/db"), "postgres://u:***@h/db");
  // Credentials and a password parameter are both masked.
  EXPECT_EQ(mask_url_password("postgres://u:one@h/db?password=two"),
            "postgres://u:***@h/db?password=***");
}

TEST(ConfigTest, ToJsonMasksPasswordsAndShowsMode) {
  Config c;
  ASSERT_TRUE(c.set("database_url", "postgres://dp:hunter2@db:5432/dp", "flag").ok());
  ASSERT_TRUE(c.set("redis_url", "redis://:redispw@cache:6379", "flag").ok());
  const auto o = c.to_json_masked();
  EXPECT_EQ(o.at("database_url").as_string(), "postgres://dp:***@db:5432/dp");
  EXPECT_EQ(o.at("redis_url").as_string(), "redis://:***@cache:6379");
  EXPECT_EQ(o.at("mode").as_string(), "distributed");
  EXPECT_EQ(o.at("port").to_number<int>(), 8080);
  // No key of the config leaks a password anywhere in the rendered object.
  for (const auto& kv : o) {
    if (kv.value().is_string()) {
      EXPECT_EQ(std::string(kv.value().as_string()).find("hunter2"), std::string::npos);
      EXPECT_EQ(std::string(kv.value().as_string()).find("redispw"), std::string::npos);
    }
  }
  for (const auto& key : Config::keys()) EXPECT_TRUE(o.contains(key)) << key;
}

}  // namespace
}  // namespace dp

namespace dp {
namespace {

TEST(ConfigTest, RemoteEmbedderNeedsUrlAndModel) {
  Config c;
  ASSERT_TRUE(c.set("memory_embedder", "openai", "flag").ok());
  EXPECT_FALSE(c.check().ok());
  ASSERT_TRUE(c.set("memory_embedding_url", "ftp://x", "flag").ok());
  ASSERT_TRUE(c.set("memory_embedding_model", "m", "flag").ok());
  EXPECT_FALSE(c.check().ok());
  ASSERT_TRUE(c.set("memory_embedding_url", "https://api.example.com/v1", "flag").ok());
  EXPECT_TRUE(c.check().ok());
}

}  // namespace
}  // namespace dp
