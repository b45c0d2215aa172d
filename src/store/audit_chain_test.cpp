#include "store/audit_chain.hpp"

#include <set>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::store::audit_chain {
namespace {

model::AuditRecord sample() {
  model::AuditRecord r;
  r.seq = 7;
  r.id = "0190a5f2-0000-7000-8000-000000000001";
  r.at = 1'767'225'600'123;
  r.actor_id = "u1";
  r.actor_name = "alice";
  r.actor_kind = "user";
  r.action = "POST /api/v1/agents/:id/start";
  r.target = "agent:a1";
  r.outcome = "success";
  r.status = 202;
  r.correlation_id = "req-1";
  r.source_address = "127.0.0.1";
  r.details = R"({"role":"admin"})";
  r.prev_hash = std::string(kGenesisHash);
  return r;
}

TEST(AuditChainTest, Sha256MatchesKnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuditChainTest, CanonicalFormIsVersionedLengthPrefixedAndFixedOrder) {
  const std::string form = canonical_form(sample());
  EXPECT_EQ(form,
            "devplane-audit-v1\n"
            "seq=7\n"
            "id=36:0190a5f2-0000-7000-8000-000000000001\n"
            "at=1767225600123\n"
            "actor_id=2:u1\n"
            "actor_name=5:alice\n"
            "actor_kind=4:user\n"
            "action=29:POST /api/v1/agents/:id/start\n"
            "target=8:agent:a1\n"
            "outcome=7:success\n"
            "status=202\n"
            "correlation_id=5:req-1\n"
            "source_address=9:127.0.0.1\n"
            "details=16:{\"role\":\"admin\"}\n"
            "prev_hash=64:" + std::string(kGenesisHash) + "\n");
  EXPECT_EQ(compute_hash(sample()), sha256_hex(form));
}

TEST(AuditChainTest, EveryFieldChangesTheHash) {
  const std::string base = compute_hash(sample());
  std::vector<model::AuditRecord> variants(14, sample());
  variants[0].seq = 8;
  variants[1].id += "x";
  variants[2].at += 1;
  variants[3].actor_id = "u2";
  variants[4].actor_name = "mallory";
  variants[5].actor_kind = "api_key";
  variants[6].action = "DELETE /api/v1/agents/:id";
  variants[7].target = "agent:a2";
  variants[8].outcome = "denied";
  variants[9].status = 403;
  variants[10].correlation_id = "req-2";
  variants[11].source_address = "127.0.0.2";
  variants[12].details = R"({"role":"viewer"})";
  variants[13].prev_hash = std::string(64, 'f');
  std::set<std::string> hashes{base};
  for (const auto& v : variants) hashes.insert(compute_hash(v));
  EXPECT_EQ(hashes.size(), variants.size() + 1);
}

TEST(AuditChainTest, NoFieldCanLeakIntoItsNeighbour) {
  // Without length prefixes these two would render the same bytes.
  auto a = sample();
  auto b = sample();
  a.actor_id = "u1\nactor_name=5:alice";
  a.actor_name = "";
  b.actor_id = "u1";
  EXPECT_NE(canonical_form(a), canonical_form(b));
  EXPECT_NE(compute_hash(a), compute_hash(b));
}

TEST(AuditChainTest, ChainLinksEachEntryToThePreviousHash) {
  auto first = sample();
  first.seq = 1;
  first.hash = compute_hash(first);
  auto second = sample();
  second.seq = 2;
  second.prev_hash = first.hash;
  second.hash = compute_hash(second);
  // Rewriting the first entry changes its hash, so the second no longer links to it.
  auto forged = first;
  forged.actor_name = "mallory";
  EXPECT_NE(compute_hash(forged), second.prev_hash);
  EXPECT_EQ(compute_hash(first), second.prev_hash);
}

TEST(AuditChainTest, CanonicalJsonSortsKeysAtEveryDepthWithoutWhitespace) {
  const auto v = boost::json::parse(R"({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "s"}})");
  EXPECT_EQ(canonical_json(v), R"({"a":{"c":"s","z":[3,{"x":null,"y":true}]},"b":1})");
  const auto same = boost::json::parse(R"({"a":{"z":[3,{"x":null,"y":true}],"c":"s"},"b":1})");
  EXPECT_EQ(canonical_json(v), canonical_json(same));
  EXPECT_EQ(canonical_json(boost::json::object{}), "{}");
}

}  // namespace
}  // namespace dp::store::audit_chain
