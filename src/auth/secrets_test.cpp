#include "auth/secrets.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace dp::auth {
namespace {

namespace fs = std::filesystem;

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_secrets_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<unsigned>(st.st_mode & 0777);
  }
  fs::path dir_;
};

TEST_F(SecretsTest, SealThenOpenRoundTripsWithAFreshNonceEachTime) {
  Secrets s(Secrets::generate_key());
  const std::string a = s.seal("sk-live-123");
  const std::string b = s.seal("sk-live-123");
  EXPECT_TRUE(a.starts_with("dpsec:v1:"));
  EXPECT_TRUE(Secrets::is_sealed(a));
  EXPECT_NE(a, b);  // random nonces
  EXPECT_EQ(a.find("sk-live"), std::string::npos);
  auto opened = s.open(a);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, "sk-live-123");
  EXPECT_EQ(*s.open(b), "sk-live-123");
  EXPECT_EQ(*s.open(s.seal("")), "");
  const std::string binary("a\0b\xff", 4);
  EXPECT_EQ(*s.open(s.seal(binary)), binary);
}

TEST_F(SecretsTest, TamperedValueIsRefused) {
  Secrets s(Secrets::generate_key());
  const std::string sealed = s.seal("the plaintext");
  // Flip one bit in each position of the ciphertext (after the prefix): never opens.
  for (std::size_t i = kSealedPrefix.size(); i + 2 < sealed.size(); i += 3) {
    std::string bad = sealed;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    auto r = s.open(bad);
    ASSERT_FALSE(r.ok()) << "position " << i;
    EXPECT_EQ(r.error().reason, "secret_unreadable");
  }
  EXPECT_FALSE(s.open(sealed.substr(0, sealed.size() - 4)).ok());  // truncated
  EXPECT_FALSE(s.open("dpsec:v1:").ok());
  EXPECT_FALSE(s.open("dpsec:v1:!!!!").ok());
  EXPECT_FALSE(s.open("plain text").ok());
  EXPECT_FALSE(s.open("dpsec:v2:" + sealed.substr(kSealedPrefix.size())).ok());
}

TEST_F(SecretsTest, WrongKeyCannotOpenAndResealMovesToTheNewKey) {
  Secrets old_key(Secrets::generate_key());
  Secrets new_key(Secrets::generate_key());
  const std::string sealed = old_key.seal("db-password");
  auto wrong = new_key.open(sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("another master key"), std::string::npos);

  auto moved = reseal(sealed, old_key, new_key);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(*new_key.open(*moved), "db-password");
  EXPECT_FALSE(old_key.open(*moved).ok());
  // Resealing with the wrong old key fails and gives nothing.
  EXPECT_FALSE(reseal(sealed, new_key, old_key).ok());
}

TEST_F(SecretsTest, ParseKeyWantsBase64OfExactly32Bytes) {
  const MasterKey k = Secrets::generate_key();
  const std::string text = Secrets::encode_key(k);
  auto parsed = Secrets::parse_key(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, k);
  EXPECT_TRUE(Secrets::parse_key(text + "\n").ok());  // a trailing newline, as in a file
  EXPECT_FALSE(Secrets::parse_key("").ok());
  EXPECT_FALSE(Secrets::parse_key("c2hvcnQ=").ok());  // "short"
  EXPECT_FALSE(Secrets::parse_key("not base64 at all!").ok());
  EXPECT_FALSE(Secrets::parse_key(text.substr(0, 20)).ok());
}

TEST_F(SecretsTest, KeyFileIsCreatedWith0600AndReadBack) {
  const fs::path file = dir_ / "sub" / "master.key";
  auto first = Secrets::load_or_create_key_file(file.string());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(mode_of(file), 0600u);
  auto again = Secrets::load_or_create_key_file(file.string());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *first);
  // A value sealed before a restart opens after it.
  const std::string sealed = Secrets(*first).seal("kept");
  EXPECT_EQ(*Secrets(*again).open(sealed), "kept");
}

TEST_F(SecretsTest, KeyFileReadableByOthersIsRefused) {
  const fs::path file = dir_ / "master.key";
  ASSERT_TRUE(Secrets::load_or_create_key_file(file.string()).ok());
  for (unsigned mode : {0640u, 0604u, 0644u, 0660u}) {
    ASSERT_EQ(::chmod(file.c_str(), mode), 0);
    auto r = Secrets::load_or_create_key_file(file.string());
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
    EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos) << r.error().message;
  }
  ASSERT_EQ(::chmod(file.c_str(), 0400), 0);
  EXPECT_TRUE(Secrets::load_or_create_key_file(file.string()).ok());
}

TEST_F(SecretsTest, MalformedKeyFileIsRefused) {
  const fs::path file = dir_ / "master.key";
  {
    std::ofstream(file) << "too short\n";
  }
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  auto r = Secrets::load_or_create_key_file(file.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(file.string()), std::string::npos);
}

TEST_F(SecretsTest, FromConfigPrefersTheEnvironmentKeyOverTheFile) {
  Config c;
  c.data_dir = dir_.string();
  const MasterKey k = Secrets::generate_key();
  c.master_key = Secrets::encode_key(k);
  auto from_env = Secrets::from_config(c);
  ASSERT_TRUE(from_env.ok()) << from_env.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "master.key"));  // no file made when the key is given
  EXPECT_EQ(*Secrets(k).open(from_env->seal("x")), "x");

  c.master_key = "bad";
  auto bad = Secrets::from_config(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("DEVPLANE_MASTER_KEY"), std::string::npos);

  c.master_key.clear();
  auto from_file = Secrets::from_config(c);
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_TRUE(fs::exists(dir_ / "master.key"));
  c.master_key_file = (dir_ / "elsewhere.key").string();
  ASSERT_TRUE(Secrets::from_config(c).ok());
  EXPECT_TRUE(fs::exists(dir_ / "elsewhere.key"));
}

TEST(RedactTest, MasksSecretLookingKeysAtAnyDepth) {
  const auto in = boost::json::parse(R"({
    "name": "github",
    "headers": {"Authorization": "Bearer abc", "X-Trace": "1"},
    "env": {"GITHUB_TOKEN": "ghp_x", "OPENAI_API_KEY": "sk-1", "PATH": "/bin"},
    "password": 1234,
    "apiKey": "k", "client_secret": "s", "sshKey": {"private": "p"},
    "steps": [{"token": "t", "value": 2}],
    "usage": {"promptTokens": 12, "total_tokens": 30}
  })");
  const auto out = redact(in);
  EXPECT_EQ(boost::json::serialize(out.at("headers")), R"({"Authorization":"***","X-Trace":"1"})");
  EXPECT_EQ(out.at("env").at("GITHUB_TOKEN").as_string(), "***");
  EXPECT_EQ(out.at("env").at("OPENAI_API_KEY").as_string(), "***");
  EXPECT_EQ(out.at("env").at("PATH").as_string(), "/bin");
  EXPECT_EQ(out.at("password").as_string(), "***");
  EXPECT_EQ(out.at("apiKey").as_string(), "***");
  EXPECT_EQ(out.at("client_secret").as_string(), "***");
  EXPECT_EQ(out.at("sshKey").as_string(), "***");
  EXPECT_EQ(out.at("steps").at(0).at("token").as_string(), "***");
  EXPECT_EQ(out.at("steps").at(0).at("value").as_int64(), 2);
  EXPECT_EQ(out.at("usage").at("promptTokens").as_int64(), 12);  // counters are not secrets
  EXPECT_EQ(out.at("usage").at("total_tokens").as_int64(), 30);
  EXPECT_EQ(out.at("name").as_string(), "github");
  EXPECT_EQ(boost::json::serialize(out).find("ghp_x"), std::string::npos);
  // Non-objects pass through.
  EXPECT_EQ(redact(boost::json::value("token")).as_string(), "token");
}

}  // namespace
}  // namespace dp::auth
