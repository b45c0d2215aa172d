// The hashing embedder (determinism, similar texts closer than unrelated ones), the index
// (HNSW recall against brute force on a few thousand random vectors, filters, removal) and the
// memory service over a real SQLite store (add, search, delete, restart, task outcomes).
#include "memory/memory_service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <atomic>
#include <mutex>
#include <thread>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "memory/embedder.hpp"
#include "memory/vector_index.hpp"

namespace dp::memory {
namespace {

namespace fs = std::filesystem;

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  return dot(a.data(), b.data(), a.size());
}

TEST(HashingEmbedderTest, IsDeterministicAndNormalised) {
  HashingEmbedder e(384);
  auto a = e.embed("Deploy the API to staging");
  auto b = HashingEmbedder(384).embed("Deploy the API to staging");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  ASSERT_EQ(a->size(), 384u);
  EXPECT_NEAR(cosine(*a, *a), 1.0F, 1e-5F);
  EXPECT_EQ(e.name(), "hashing-v1-384");
  // Case and punctuation do not change the words.
  EXPECT_EQ(*e.embed("deploy, the api... to STAGING!"), *a);
}

TEST(HashingEmbedderTest, SimilarTextsScoreHigherThanUnrelatedOnes) {
  HashingEmbedder e;
  const auto q = *e.embed("the deployment to staging failed: database migration timed out");
  const auto similar = *e.embed("staging deploy failed because the database migration timed out");
  const auto related = *e.embed("run the database migrations before deploying");
  const auto unrelated = *e.embed("write a haiku about autumn leaves and coffee");
  EXPECT_GT(cosine(q, similar), cosine(q, related));
  EXPECT_GT(cosine(q, related), cosine(q, unrelated));
  EXPECT_GT(cosine(q, similar), 0.5F);
  EXPECT_LT(cosine(q, unrelated), 0.2F);
  // Word parts count: "deploy" and "deployment" share character trigrams.
  EXPECT_GT(cosine(*e.embed("deployment"), *e.embed("deploy")), cosine(*e.embed("deployment"), *e.embed("coffee")));
}

TEST(HashingEmbedderTest, RefusesTextWithoutWords) {
  HashingEmbedder e;
  for (const char* t : {"", "   ", "!!! ??? ...", "\n\t"}) {
    auto v = e.embed(t);
    ASSERT_FALSE(v.ok()) << t;
    EXPECT_EQ(v.error().reason, "empty_text");
  }
  // Non-ASCII words are words.
  EXPECT_TRUE(e.embed("déploiement échoué").ok());
  EXPECT_TRUE(e.embed("部署失败").ok());
}

// A server on 127.0.0.1 that answers each request with the next scripted raw HTTP reply (the
// last one repeats) and keeps what it received.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> replies)
      : acceptor_(io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)),
        replies_(std::move(replies)) {
    thread_ = std::thread([this] {
      for (std::size_t i = 0; !stop_; ++i) {
        boost::asio::ip::tcp::socket sock(io_);
        boost::system::error_code ec;
        acceptor_.accept(sock, ec);
        if (ec || stop_) return;
        boost::beast::flat_buffer buf;
        boost::beast::http::request<boost::beast::http::string_body> req;
        boost::beast::http::read(sock, buf, req, ec);
        if (ec) continue;
        {
          std::lock_guard lock(mu_);
          requests_.push_back(req);
        }
        boost::asio::write(sock, boost::asio::buffer(replies_[std::min(i, replies_.size() - 1)]), ec);
        sock.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
      }
    });
  }
  ~ScriptedServer() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket s(io_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1"; }
  std::vector<boost::beast::http::request<boost::beast::http::string_body>> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::string> replies_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<boost::beast::http::request<boost::beast::http::string_body>> requests_;
  std::thread thread_;
};

std::string reply(unsigned status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(OpenAiEmbedderTest, SendsModelInputAndKeyAndNormalisesTheAnswer) {
  ScriptedServer server({reply(200, R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[3,4]}],"model":"m"})")});
  OpenAiEmbedderOptions o;
  o.base_url = server.url() + "/";
  o.model = "nomic-embed-text";
  int asked = 0;
  o.key_provider = [&asked]() -> Result<std::string> {
    ++asked;
    return std::string("sk-test");
  };
  OpenAiEmbedder e(std::move(o));
  EXPECT_EQ(e.name(), "openai:nomic-embed-text");
  EXPECT_FALSE(e.local());
  auto v = e.embed("hello world");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->size(), 2u);
  EXPECT_NEAR((*v)[0], 0.6F, 1e-6F);
  EXPECT_NEAR((*v)[1], 0.8F, 1e-6F);
  EXPECT_EQ(asked, 1);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target(), "/v1/embeddings");
  EXPECT_EQ(reqs[0][boost::beast::http::field::authorization], "Bearer sk-test");
  auto body = boost::json::parse(reqs[0].body());
  EXPECT_EQ(body.at("model"), "nomic-embed-text");
  EXPECT_EQ(body.at("input"), "hello world");
}

TEST(OpenAiEmbedderTest, MapsErrorsAndRefusesBadAnswers) {
  struct Case {
    std::string reply;
    ErrorCode code;
    std::string reason;
  };
  const Case cases[] = {
      {reply(401, R"({"error":{"message":"bad key"}})"), ErrorCode::kPermissionDenied, "provider_auth"},
      {reply(400, R"({"error":{"message":"no such model"}})"), ErrorCode::kInvalidArgument, "provider_rejected"},
      {reply(503, "{}"), ErrorCode::kUnavailable, "provider_unavailable"},
      {reply(200, "not json"), ErrorCode::kUnavailable, "bad_embedding_response"},
      {reply(200, R"({"data":[]})"), ErrorCode::kUnavailable, "bad_embedding_response"},
      {reply(200, R"({"data":[{"embedding":[1,"x"]}]})"), ErrorCode::kUnavailable, "bad_embedding_response"},
      {reply(200, R"({"data":[{"embedding":[0,0,0]}]})"), ErrorCode::kUnavailable, "bad_embedding_response"},
  };
  for (const auto& c : cases) {
    ScriptedServer server({c.reply});
    OpenAiEmbedderOptions opts;
    opts.base_url = server.url();
    opts.model = "m";
    opts.api_key = "sk-secret";
    opts.timeout = std::chrono::milliseconds(5000);
    OpenAiEmbedder e(std::move(opts));
    auto v = e.embed("x");
    ASSERT_FALSE(v.ok()) << c.reply;
    EXPECT_EQ(v.error().code, c.code) << c.reply;
    EXPECT_EQ(v.error().reason, c.reason) << c.reply << " " << v.error().message;
    EXPECT_EQ(v.error().message.find("sk-"), std::string::npos);
  }
  // The key cannot be read: no request is sent.
  ScriptedServer server({reply(200, "{}")});
  OpenAiEmbedderOptions o;
  o.base_url = server.url();
  o.model = "m";
  o.key_provider = []() -> Result<std::string> { return Error::not_found("secret 'k' not found"); };
  auto v = OpenAiEmbedder(std::move(o)).embed("x");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(server.requests().empty());
}

std::vector<float> random_unit(std::mt19937& rng, std::size_t dims) {
  std::normal_distribution<float> n(0.0F, 1.0F);
  std::vector<float> v(dims);
  for (auto& x : v) x = n(rng);
  EXPECT_TRUE(normalize(v));
  return v;
}

TEST(VectorIndexTest, GraphRecallAgainstBruteForce) {
  constexpr std::size_t kDims = 32, kCount = 3000, kQueries = 200, kK = 10;
  std::mt19937 rng(42);
  IndexOptions o;
  o.graph_threshold = 1000;
  VectorIndex index(o);
  for (std::size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(index.add("m" + std::to_string(i), i % 4 == 0 ? "note" : "task_outcome",
                          "agent-" + std::to_string(i % 10), random_unit(rng, kDims)).ok());
  }
  ASSERT_TRUE(index.graph_built());
  EXPECT_EQ(index.size(), kCount);
  std::size_t found = 0, total = 0;
  for (std::size_t q = 0; q < kQueries; ++q) {
    const auto query = random_unit(rng, kDims);
    const auto truth = index.exact(query, kK, {}, -1.0F);
    const auto got = index.search(query, kK, {}, -1.0F);
    ASSERT_EQ(truth.size(), kK);
    ASSERT_EQ(got.size(), kK);
    std::set<std::string> want;
    for (const auto& h : truth) want.insert(h.id);
    for (const auto& h : got) found += want.count(h.id);
    total += kK;
    // Best first, and the best score agrees with brute force when found.
    for (std::size_t i = 1; i < got.size(); ++i) EXPECT_GE(got[i - 1].score, got[i].score);
  }
  const double recall = static_cast<double>(found) / static_cast<double>(total);
  std::printf("recall@10 over %zu random %zu-d vectors: %.4f\n", kCount, kDims, recall);
  EXPECT_GE(recall, 0.95);

  // Filters: every hit matches, and a filtered search finds what brute force finds.
  const auto query = random_unit(rng, kDims);
  IndexFilter f{std::string("note"), std::string("agent-0")};
  const auto got = index.search(query, kK, f, -1.0F);
  const auto truth = index.exact(query, kK, f, -1.0F);
  ASSERT_EQ(got.size(), truth.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].id, truth[i].id);
  IndexFilter kind_only{std::string("task_outcome"), std::nullopt};
  for (const auto& h : index.search(query, 50, kind_only, -1.0F)) {
    const auto n = std::stoul(h.id.substr(1));
    EXPECT_NE(n % 4, 0u) << h.id;
  }
}

TEST(VectorIndexTest, RemoveMinScoreAndDimensions) {
  std::mt19937 rng(7);
  for (std::size_t threshold : {std::size_t{1000}, std::size_t{1}}) {  // exact, then graph
    IndexOptions o;
    o.graph_threshold = threshold;
    VectorIndex index(o);
    const auto a = random_unit(rng, 16);
    ASSERT_TRUE(index.add("a", "note", "", a).ok());
    ASSERT_TRUE(index.add("b", "note", "", random_unit(rng, 16)).ok());
    ASSERT_TRUE(index.add("a", "note", "", random_unit(rng, 16)).ok());  // again: no-op
    EXPECT_EQ(index.size(), 2u);
    auto hits = index.search(a, 5, {}, -1.0F);
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_EQ(hits[0].id, "a");
    EXPECT_NEAR(hits[0].score, 1.0F, 1e-4F);
    EXPECT_EQ(index.search(a, 5, {}, 0.999F).size(), 1u);
    auto bad = index.add("c", "note", "", std::vector<float>(8, 0.35F));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().reason, "dims_mismatch");
    EXPECT_TRUE(index.search(std::vector<float>(8, 0.35F), 5, {}, -1.0F).empty());
    EXPECT_TRUE(index.remove("a"));
    EXPECT_FALSE(index.remove("a"));
    hits = index.search(a, 5, {}, -1.0F);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id, "b");
    EXPECT_TRUE(index.search(a, 0, {}, -1.0F).empty());
  }
}

// Not a pass/fail check: the time of one search, exact and through the graph, printed for
// docs/memory.md (vector_index.cpp is built -O2 in every build type).
TEST(VectorIndexTest, PrintsSearchTimes) {
  constexpr std::size_t kDims = 384, kCount = 2000, kQueries = 100;
  std::mt19937 rng(3);
  IndexOptions o;
  o.graph_threshold = 1'000'000;  // exact until built below
  VectorIndex exact_only(o);
  std::vector<std::vector<float>> queries;
  for (std::size_t i = 0; i < kQueries; ++i) queries.push_back(random_unit(rng, kDims));
  std::vector<std::vector<float>> data;
  for (std::size_t i = 0; i < kCount; ++i) data.push_back(random_unit(rng, kDims));
  for (std::size_t i = 0; i < kCount; ++i) ASSERT_TRUE(exact_only.add("m" + std::to_string(i), "note", "", data[i]).ok());
  auto time_per_query = [&](const VectorIndex& idx) {
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t n = 0;
    for (const auto& q : queries) n += idx.search(q, 10, {}, -1.0F).size();
    EXPECT_EQ(n, kQueries * 10);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
           static_cast<double>(kQueries);
  };
  const double exact_us = time_per_query(exact_only);
  IndexOptions g;
  g.graph_threshold = 1;
  VectorIndex graph(g);
  const auto b0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kCount; ++i) ASSERT_TRUE(graph.add("m" + std::to_string(i), "note", "", data[i]).ok());
  const double build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count();
  const double graph_us = time_per_query(graph);
  std::printf("%zu vectors of %zu dims, top 10: exact %.0f us/search, graph %.0f us/search (built in %.0f ms)\n",
              kCount, kDims, exact_us, graph_us, build_ms);
}

class MemoryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::configure(log::Level::kError, log::Format::kJson);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_memory_test_" + std::to_string(rd()) + std::to_string(rd()));
    open();
  }
  void TearDown() override {
    close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void open(std::size_t dims = 384) {
    Config c;
    c.data_dir = dir_.string();
    auto s = store::open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->migrate().ok());
    svc_ = std::make_unique<MemoryService>(*store_, std::make_unique<HashingEmbedder>(dims), MemoryOptions{});
    ASSERT_TRUE(svc_->load().ok());
    svc_->start();
  }
  void close() {
    if (svc_) svc_->stop();
    svc_.reset();
    if (store_) store_->close();
    store_.reset();
  }
  model::Memory add(std::string text, std::string kind = "note", std::string agent = "") {
    NewMemory m;
    m.text = std::move(text);
    m.kind = std::move(kind);
    if (!agent.empty()) m.metadata["agentId"] = agent;
    m.created_by = "user:test";
    auto r = svc_->add(std::move(m), "req-1");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : model::Memory{};
  }
  std::int64_t outbox_count(const std::string& topic) {
    std::int64_t n = 0;
    EXPECT_TRUE(store_->read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(auto rows, tx.outbox().pending(1000));
      for (const auto& e : rows) n += e.topic == topic ? 1 : 0;
      return Ok{};
    }).ok());
    return n;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<MemoryService> svc_;
};

TEST_F(MemoryServiceTest, AddSearchDeleteAndRestart) {
  const std::string agent = ids::uuid_v7();
  const auto deploy = add("The staging deploy failed: the database migration timed out after 30 s", "note", agent);
  add("Use pnpm, not npm, in the web folder");
  add("Release notes are written in docs/CHANGELOG.md");
  EXPECT_EQ(outbox_count("memory.added"), 3);
  SearchQuery q;
  q.text = "why did the staging deployment fail?";
  q.k = 2;
  auto hits = svc_->search(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].memory.id, deploy.id);
  EXPECT_GT((*hits)[0].score, (*hits)[1].score);
  EXPECT_EQ((*hits)[0].memory.metadata.at("agentId").as_string(), agent);
  q.agent_id = agent;
  q.k = 10;
  ASSERT_EQ(svc_->search(q)->size(), 1u);
  q.agent_id.reset();
  q.kind = "task_outcome";
  EXPECT_TRUE(svc_->search(q)->empty());

  // Restart: the index is rebuilt from the store.
  close();
  open();
  EXPECT_EQ(svc_->stats().indexed, 3u);
  q.kind.reset();
  hits = svc_->search(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].memory.id, deploy.id);

  // Delete: gone from search, the store and the index; twice is kNotFound.
  ASSERT_TRUE(svc_->remove(deploy.id, "req-2").ok());
  EXPECT_EQ(svc_->remove(deploy.id, "req-3").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(svc_->get(deploy.id).error().code, ErrorCode::kNotFound);
  hits = svc_->search(q);
  ASSERT_TRUE(hits.ok());
  for (const auto& h : *hits) EXPECT_NE(h.memory.id, deploy.id);
  EXPECT_EQ(outbox_count("memory.deleted"), 1);

  // Another embedder (dimensions) at start: every memory is embedded again and searchable.
  close();
  open(256);
  EXPECT_EQ(svc_->stats().indexed, 2u);
  EXPECT_EQ(svc_->stats().dims, 256u);
  q.text = "pnpm in the web folder";
  hits = svc_->search(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].memory.text, "Use pnpm, not npm, in the web folder");
}

TEST_F(MemoryServiceTest, BadTextChangesNothing) {
  NewMemory m;
  m.text = "?!";
  auto r = svc_->add(std::move(m), "req");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "empty_text");
  SearchQuery q;
  q.text = "...";
  EXPECT_FALSE(svc_->search(q).ok());
  EXPECT_EQ(svc_->stats().indexed, 0u);
  EXPECT_EQ(outbox_count("memory.added"), 0);
}

TEST_F(MemoryServiceTest, TaskOutcomesAreRememberedOnce) {
  model::Task t;
  t.id = ids::uuid_v7();
  t.agent_id = ids::uuid_v7();
  t.input = "fix the flaky login test";
  t.status = "failed";
  t.error = "exit code 1";
  t.result = boost::json::object{{"exitCode", 1}, {"stderr", "AssertionError: expected 200, got 401"}};
  t.created_by = "execution:0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee";
  svc_->remember_task(t);
  svc_->remember_task(t);  // a repeat is ignored
  model::Task running = t;
  running.id = ids::uuid_v7();
  running.status = "cancelled";
  svc_->remember_task(running);  // not an outcome to learn from
  svc_->drain();
  SearchQuery q;
  q.text = "login test fails with 401";
  auto hits = svc_->search(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  const auto& m = (*hits)[0].memory;
  EXPECT_EQ(m.kind, "task_outcome");
  EXPECT_EQ(m.created_by, "system:memory");
  EXPECT_EQ(m.metadata.at("taskId").as_string(), t.id);
  EXPECT_EQ(m.metadata.at("status").as_string(), "failed");
  EXPECT_EQ(m.metadata.at("executionId").as_string(), "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee");
  EXPECT_NE(m.text.find("AssertionError"), std::string::npos);
  EXPECT_EQ(svc_->stats().indexed, 1u);
}

TEST(OutcomeTextTest, CutsAtAUtf8Boundary) {
  model::Task t;
  t.input = std::string(10, 'a') + "ééééé";
  t.status = "succeeded";
  const std::string s = outcome_text(t, 6 + 10 + 3);  // "Task: " + 10 + 1.5 é
  EXPECT_EQ(s, "Task: aaaaaaaaaaé");
}

}  // namespace
}  // namespace dp::memory
