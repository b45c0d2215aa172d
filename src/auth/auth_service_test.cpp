// AuthService against a real SQLite store in a temporary folder, with a manual clock and a
// recorder that keeps what it is told.
#include "auth/auth_service.hpp"

#include <filesystem>
#include <mutex>
#include <random>

#include <gtest/gtest.h>

#include "auth/api_key.hpp"
#include "auth/crypto.hpp"
#include "core/log.hpp"

namespace dp::auth {
namespace {

namespace fs = std::filesystem;

class MemoryRecorder final : public audit::Recorder {
 public:
  void record(audit::Entry e) override {
    std::lock_guard lock(mu);
    entries.push_back(std::move(e));
  }
  std::size_t count(const std::string& action, const std::string& outcome) {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const auto& e : entries) n += e.action == action && e.outcome == outcome ? 1 : 0;
    return n;
  }
  std::mutex mu;
  std::vector<audit::Entry> entries;
};

class AuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::configure(log::Level::kError, log::Format::kJson);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_auth_test_" + std::to_string(rd()) + std::to_string(rd()));
    Config c;
    c.data_dir = dir_.string();
    auto s = store::open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->migrate().ok());
    AuthOptions o;
    o.jwt.secret = "auth-service-test-secret-0123456789abcdef";
    o.password_cost = PasswordCost::kInteractive;
    o.now_ms = [this] { return now_; };
    svc_ = std::make_unique<AuthService>(*store_, o);
    svc_->set_recorder(&recorder_);
  }
  void TearDown() override {
    svc_.reset();
    if (store_) store_->close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  model::User add_user(const std::string& name, const std::string& role,
                       const std::string& pw = "password-123") {
    auto u = svc_->create_user({name, "", role, pw}, system_caller(), ctx_);
    EXPECT_TRUE(u.ok()) << u.error().message;
    return *u;
  }

  std::int64_t now_ = 1'700'000'000'000;
  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AuthService> svc_;
  MemoryRecorder recorder_;
  RequestContext ctx_{"127.0.0.1", "req-1"};
};

TEST_F(AuthServiceTest, LoginReturnsAPairWhoseAccessTokenAuthenticates) {
  auto alice = add_user("alice", "operator");
  auto s = svc_->login("alice", "password-123", ctx_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->at("tokenType").as_string(), "Bearer");
  EXPECT_EQ(s->at("expiresIn").as_int64(), 900);
  EXPECT_EQ(s->at("user").at("username").as_string(), "alice");
  EXPECT_FALSE(s->at("user").as_object().contains("passwordHash"));
  auto caller = svc_->authenticate_token(s->at("accessToken").as_string());
  ASSERT_TRUE(caller.ok()) << caller.error().message;
  EXPECT_EQ(caller->id, alice.id);
  EXPECT_EQ(caller->role, "operator");
  EXPECT_EQ(caller->kind, "user");
  EXPECT_EQ(recorder_.count("auth.login", "success"), 1u);
  // The access token dies with its expiry (15 min + 30 s skew).
  now_ += 931'000;
  EXPECT_FALSE(svc_->authenticate_token(s->at("accessToken").as_string()).ok());
}

TEST_F(AuthServiceTest, WrongPasswordUnknownUserAndLockout) {
  add_user("bob", "viewer");
  auto unknown = svc_->login("nobody", "password-123", ctx_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnauthenticated);
  for (int i = 0; i < 4; ++i) {
    auto r = svc_->login("bob", "wrong-password", ctx_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << i;
  }
  auto fifth = svc_->login("bob", "wrong-password", ctx_);
  ASSERT_FALSE(fifth.ok());
  EXPECT_EQ(fifth.error().reason, "account_locked");
  EXPECT_EQ(fifth.error().details.at("retryAfterSeconds").as_int64(), 900);
  // Locked even for the right password, until the lock lapses.
  auto right = svc_->login("bob", "password-123", ctx_);
  ASSERT_FALSE(right.ok());
  EXPECT_EQ(right.error().reason, "account_locked");
  EXPECT_EQ(recorder_.count("auth.login", "failure"), 7u);
  now_ += 15 * 60 * 1000 + 1;
  EXPECT_TRUE(svc_->login("bob", "password-123", ctx_).ok());
}

TEST_F(AuthServiceTest, FailuresPerAddressAreRateLimited) {
  RequestContext attacker{"10.0.0.9", "r"};
  int limited_at = -1;
  for (int i = 0; i < 40 && limited_at < 0; ++i) {
    auto r = svc_->login("user" + std::to_string(i), "x-password", attacker);
    if (!r.ok() && r.error().reason == "rate_limited") limited_at = i;
  }
  EXPECT_EQ(limited_at, 30);
  // Another address is not affected.
  add_user("carol", "viewer");
  EXPECT_TRUE(svc_->login("carol", "password-123", ctx_).ok());
}

TEST_F(AuthServiceTest, DisabledUsersCannotSignInAndTheirTokensStopWorking) {
  auto dan = add_user("dan", "viewer");
  add_user("root", "admin");
  auto s = svc_->login("dan", "password-123", ctx_);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(svc_->update_user(dan.id, {std::nullopt, std::nullopt, "disabled"}, system_caller(), ctx_).ok());
  auto r = svc_->login("dan", "password-123", ctx_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "account_disabled");
  EXPECT_FALSE(svc_->authenticate_token(s->at("accessToken").as_string()).ok());
  EXPECT_FALSE(svc_->refresh(s->at("refreshToken").as_string(), ctx_).ok());
}

TEST_F(AuthServiceTest, ACachedCallerIsDroppedAtOnceByChangesHereAndWithinTheTtlByOthers) {
  auto dan = add_user("dan", "viewer");
  add_user("root", "admin");
  auto s = svc_->login("dan", "password-123", ctx_);
  ASSERT_TRUE(s.ok());
  const std::string token(s->at("accessToken").as_string());
  ASSERT_TRUE(svc_->authenticate_token(token).ok());  // now cached

  // A change that does not go through this service (another node, the CLI): the cached
  // caller stands until the TTL passes, then the store has the last word.
  ASSERT_TRUE(store_->write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::User u, tx.users().get(dan.id));
    u.role = "operator";
    return tx.users().update(u);
  }).ok());
  auto cached = svc_->authenticate_token(token);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->role, "viewer");
  now_ += svc_->options().caller_cache_ttl.count();
  auto fresh = svc_->authenticate_token(token);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->role, "operator");

  // A change through this service takes effect on the next request, cached or not.
  ASSERT_TRUE(svc_->update_user(dan.id, {std::nullopt, std::nullopt, "disabled"}, system_caller(), ctx_).ok());
  EXPECT_FALSE(svc_->authenticate_token(token).ok());

  // A revoked key too, although it authenticated a moment ago.
  auto key = svc_->create_api_key({"bot", "agent", "", std::nullopt}, system_caller(), ctx_);
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(svc_->authenticate_token(key->secret).ok());
  ASSERT_TRUE(svc_->revoke_api_key(key->key.id, system_caller(), ctx_).ok());
  EXPECT_FALSE(svc_->authenticate_token(key->secret).ok());
}

TEST(CallerCacheTest, KeepsForTheTtlButNeverPastTheCredentialsExpiryAndStaysBounded) {
  CallerCache cache(1000, 3);
  http::Caller c;
  c.id = "u1";
  cache.put("t1", c, 0, 0);
  EXPECT_TRUE(cache.find("t1", 999).has_value());
  EXPECT_FALSE(cache.find("t1", 1000).has_value());
  cache.put("t2", c, 0, 400);  // the token itself expires at 400
  EXPECT_TRUE(cache.find("t2", 399).has_value());
  EXPECT_FALSE(cache.find("t2", 400).has_value());
  EXPECT_FALSE(cache.find("unknown", 0).has_value());
  cache.put("t3", c, 0, 0);
  cache.put("t4", c, 0, 0);  // full: starts over
  EXPECT_LE(cache.size(), 3u);
  EXPECT_TRUE(cache.find("t4", 1).has_value());
  CallerCache off(0, 10);
  off.put("t", c, 0, 0);
  EXPECT_FALSE(off.find("t", 0).has_value());
}

TEST_F(AuthServiceTest, RefreshRotatesAndReuseRevokesTheWholeFamily) {
  add_user("erin", "viewer");
  auto s1 = svc_->login("erin", "password-123", ctx_);
  ASSERT_TRUE(s1.ok());
  const std::string t1(s1->at("refreshToken").as_string());
  auto s2 = svc_->refresh(t1, ctx_);
  ASSERT_TRUE(s2.ok()) << s2.error().message;
  const std::string t2(s2->at("refreshToken").as_string());
  EXPECT_NE(t1, t2);
  auto s3 = svc_->refresh(t2, ctx_);
  ASSERT_TRUE(s3.ok());
  const std::string t3(s3->at("refreshToken").as_string());
  // t1 again: a thief or a replay. The family (t3 included) dies.
  auto reuse = svc_->refresh(t1, ctx_);
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(recorder_.count("auth.refresh_reuse", "denied"), 1u);
  EXPECT_FALSE(svc_->refresh(t3, ctx_).ok());
  // Another login (another family) is untouched.
  auto other = svc_->login("erin", "password-123", ctx_);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(svc_->refresh(other->at("refreshToken").as_string(), ctx_).ok());
  EXPECT_FALSE(svc_->refresh("made-up", ctx_).ok());
  EXPECT_FALSE(svc_->refresh("", ctx_).ok());
}

TEST_F(AuthServiceTest, RefreshTokensExpire) {
  add_user("fay", "viewer");
  auto s = svc_->login("fay", "password-123", ctx_);
  ASSERT_TRUE(s.ok());
  now_ += 7LL * 86'400'000 + 1;
  auto r = svc_->refresh(s->at("refreshToken").as_string(), ctx_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expired"), std::string::npos);
}

TEST_F(AuthServiceTest, LogoutRevokesTheFamilyOfItsTokenOnly) {
  auto gus = add_user("gus", "viewer");
  auto a = svc_->login("gus", "password-123", ctx_);
  auto b = svc_->login("gus", "password-123", ctx_);
  ASSERT_TRUE(a.ok() && b.ok());
  auto caller = svc_->authenticate_token(a->at("accessToken").as_string());
  ASSERT_TRUE(caller.ok());
  std::string ta(a->at("refreshToken").as_string());
  ASSERT_TRUE(svc_->logout(*caller, std::string_view(ta), ctx_).ok());
  EXPECT_FALSE(svc_->refresh(ta, ctx_).ok());
  EXPECT_TRUE(svc_->refresh(b->at("refreshToken").as_string(), ctx_).ok());
  EXPECT_EQ(svc_->logout(*caller, std::string_view("unknown"), ctx_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(recorder_.count("auth.logout", "success"), 1u);
}

TEST_F(AuthServiceTest, ApiKeysAuthenticateUntilRevokedOrExpired) {
  auto admin = system_caller();
  auto k = svc_->create_api_key({"ci", "agent", "0190aaaa-0000-7000-8000-000000000001", std::nullopt},
                                admin, ctx_);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_TRUE(parse_api_key(k->secret).has_value());
  EXPECT_EQ(k->key.key_hash, sha256_hex(k->secret));  // only the hash is kept
  auto c = svc_->authenticate_token(k->secret);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kind, "api_key");
  EXPECT_EQ(c->role, "agent");
  EXPECT_EQ(c->agent_id, "0190aaaa-0000-7000-8000-000000000001");
  // Same prefix, other secret.
  std::string forged = k->secret;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(svc_->authenticate_token(forged).ok());
  ASSERT_TRUE(svc_->revoke_api_key(k->key.id, admin, ctx_).ok());
  auto revoked = svc_->authenticate_token(k->secret);
  ASSERT_FALSE(revoked.ok());
  EXPECT_NE(revoked.error().message.find("revoked"), std::string::npos);

  auto e = svc_->create_api_key({"short", "viewer", "", now_ + 1000}, admin, ctx_);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(svc_->authenticate_token(e->secret).ok());
  now_ += 1000;
  EXPECT_FALSE(svc_->authenticate_token(e->secret).ok());
  EXPECT_EQ(svc_->create_api_key({"past", "viewer", "", now_ - 1}, admin, ctx_).error().reason, "bad_expiry");
}

TEST_F(AuthServiceTest, OperatorsCannotGrantOrRevokeMoreThanTheyHave) {
  auto op = add_user("olga", "operator");
  http::Caller opc{op.id, "olga", "user", "operator", ""};
  auto admin_key = svc_->create_api_key({"boss", "admin", "", std::nullopt}, opc, ctx_);
  ASSERT_FALSE(admin_key.ok());
  EXPECT_EQ(admin_key.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(svc_->create_api_key({"bot", "agent", "", std::nullopt}, opc, ctx_).ok());
  auto sys = svc_->create_api_key({"boss", "admin", "", std::nullopt}, system_caller(), ctx_);
  ASSERT_TRUE(sys.ok());
  EXPECT_EQ(svc_->revoke_api_key(sys->key.id, opc, ctx_).error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(svc_->authenticate_token(sys->secret).ok());
}

TEST_F(AuthServiceTest, TheLastAdminCannotBeDemotedOrDisabled) {
  auto a = add_user("ada", "admin");
  auto r = svc_->update_user(a.id, {std::nullopt, "viewer", std::nullopt}, system_caller(), ctx_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "last_admin");
  EXPECT_EQ(svc_->get_user(a.id)->role, "admin");
  add_user("ben", "admin");
  EXPECT_TRUE(svc_->update_user(a.id, {std::nullopt, std::nullopt, "disabled"}, system_caller(), ctx_).ok());
}

TEST_F(AuthServiceTest, BadUserInputChangesNothing) {
  EXPECT_EQ(svc_->create_user({"Bad Name", "", "viewer", "password-123"}, system_caller(), ctx_).error().reason,
            "bad_username");
  EXPECT_EQ(svc_->create_user({"ok", "", "root", "password-123"}, system_caller(), ctx_).error().reason,
            "bad_role");
  EXPECT_EQ(svc_->create_user({"ok", "", "viewer", "short"}, system_caller(), ctx_).error().reason,
            "weak_password");
  add_user("dup", "viewer");
  EXPECT_EQ(svc_->create_user({"dup", "", "viewer", "password-123"}, system_caller(), ctx_).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(svc_->list_users()->size(), 1u);
}

TEST_F(AuthServiceTest, SetPasswordClearsLockoutAndEndsSessions) {
  auto u = add_user("hal", "viewer");
  auto s = svc_->login("hal", "password-123", ctx_);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 5; ++i) (void)svc_->login("hal", "nope-nope-nope", ctx_);
  ASSERT_TRUE(svc_->set_password(u.id, "new-password-456", system_caller(), ctx_).ok());
  EXPECT_FALSE(svc_->refresh(s->at("refreshToken").as_string(), ctx_).ok());
  EXPECT_FALSE(svc_->login("hal", "password-123", ctx_).ok());
  EXPECT_TRUE(svc_->login("hal", "new-password-456", {"10.1.1.1", "r"}).ok());
}

TEST_F(AuthServiceTest, FirstRunCreatesOneAdmin) {
  auto pw = svc_->ensure_admin(std::nullopt);
  ASSERT_TRUE(pw.ok());
  ASSERT_TRUE(pw->has_value());
  EXPECT_EQ((*pw)->size(), 24u);
  EXPECT_TRUE(svc_->login("admin", **pw, ctx_).ok());
  auto again = svc_->ensure_admin(std::string("other-password"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  EXPECT_EQ(svc_->list_users()->size(), 1u);
}

TEST_F(AuthServiceTest, FirstRunUsesTheGivenPassword) {
  auto pw = svc_->ensure_admin(std::string("given-password-1"));
  ASSERT_TRUE(pw.ok());
  EXPECT_EQ(**pw, "");
  EXPECT_TRUE(svc_->login("admin", "given-password-1", ctx_).ok());
}

TEST_F(AuthServiceTest, ExternalSignInFindsOrCreatesTheSsoUser) {
  add_user("jo", "viewer");
  ExternalIdentity id{"https://idp.example", "sub-42", "Jo", "Jo Smith", "jo@example.com", "operator"};
  auto s = svc_->sign_in_external(id, ctx_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->at("user").at("username").as_string(), "jo-2");  // "jo" was taken
  EXPECT_EQ(s->at("user").at("role").as_string(), "operator");
  EXPECT_TRUE(s->at("user").at("sso").as_bool());
  EXPECT_TRUE(svc_->authenticate_token(s->at("accessToken").as_string()).ok());
  id.role = "viewer";  // the mapping changed at the provider
  auto again = svc_->sign_in_external(id, ctx_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->at("user").at("id"), s->at("user").at("id"));
  EXPECT_EQ(again->at("user").at("role").as_string(), "viewer");
  // SSO users have no password to sign in with.
  EXPECT_FALSE(svc_->login("jo-2", "", ctx_).ok());
  EXPECT_FALSE(svc_->sign_in_external({"", "x", "", "", "", "viewer"}, ctx_).ok());
  EXPECT_FALSE(svc_->sign_in_external({"i", "x", "", "", "", "agent"}, ctx_).ok());
}

}  // namespace
}  // namespace dp::auth
