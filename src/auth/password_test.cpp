#include "auth/password.hpp"

#include <gtest/gtest.h>

namespace dp::auth {
namespace {

TEST(PasswordTest, HashIsArgon2idSaltedAndVerifies) {
  auto h1 = hash_password("correct horse battery", PasswordCost::kInteractive);
  auto h2 = hash_password("correct horse battery", PasswordCost::kInteractive);
  ASSERT_TRUE(h1.ok());
  ASSERT_TRUE(h2.ok());
  EXPECT_TRUE(h1->starts_with("$argon2id$")) << *h1;
  EXPECT_NE(*h1, *h2);  // salted
  EXPECT_EQ(h1->find("correct"), std::string::npos);
  EXPECT_TRUE(verify_password("correct horse battery", *h1));
  EXPECT_FALSE(verify_password("correct horse batterY", *h1));
  EXPECT_FALSE(verify_password("", *h1));
}

TEST(PasswordTest, ModerateCostIsTheDefaultProfileAndVerifies) {
  auto h = hash_password("moderate-password", PasswordCost::kModerate);
  ASSERT_TRUE(h.ok());
  EXPECT_NE(h->find("m=262144"), std::string::npos) << *h;  // 256 MiB
  EXPECT_TRUE(verify_password("moderate-password", *h));
}

TEST(PasswordTest, MalformedHashesNeverVerify) {
  EXPECT_FALSE(verify_password("x", ""));
  EXPECT_FALSE(verify_password("x", "plain-text"));
  EXPECT_FALSE(verify_password("x", std::string(1000, '$')));
}

TEST(PasswordTest, Rules) {
  EXPECT_TRUE(check_password_rules("0123456789").ok());
  auto short_pw = check_password_rules("012345678");
  ASSERT_FALSE(short_pw.ok());
  EXPECT_EQ(short_pw.error().reason, "weak_password");
  EXPECT_FALSE(check_password_rules(std::string(257, 'a')).ok());
  EXPECT_FALSE(check_password_rules("abcdefghij\n").ok());
  EXPECT_FALSE(check_password_rules(std::string("abcdefghij\0k", 12)).ok());
}

TEST(PasswordTest, GeneratedPasswordsPassTheRulesAndDiffer) {
  const auto a = generate_password();
  EXPECT_EQ(a.size(), 24u);
  EXPECT_TRUE(check_password_rules(a).ok());
  EXPECT_NE(a, generate_password());
}

}  // namespace
}  // namespace dp::auth
