#include "memory/embedder.hpp"

#include <cmath>
#include <cstdint>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/check.hpp"
#include "http/client.hpp"

namespace dp::memory {
namespace {

namespace json = boost::json;

// FNV-1a, 64 bits, with a per-feature-kind seed so that a word and a trigram of the same
// letters land in different buckets.
std::uint64_t fnv1a(std::string_view s, std::uint64_t seed) noexcept {
  std::uint64_t h = 14695981039346656037ULL ^ seed;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  // Finalizer (splitmix64) so that the low bits used for the bucket are well mixed.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

void add_feature(std::vector<float>& v, std::string_view feature, std::uint64_t seed, float weight) {
  const std::uint64_t h = fnv1a(feature, seed);
  const std::size_t bucket = static_cast<std::size_t>(h % v.size());
  v[bucket] += (h >> 63) != 0 ? -weight : weight;
}

// Words: runs of ASCII letters and digits, and of bytes >= 0x80 (UTF-8 letters of other
// scripts stay whole), lower-cased.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
      cur.push_back(static_cast<char>(c));
    } else if (c >= 'A' && c <= 'Z') {
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

bool normalize(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * static_cast<double>(x);
  if (!(sum > 0) || !std::isfinite(sum)) return false;
  const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : v) x *= inv;
  return true;
}

float dot(const float* a, const float* b, std::size_t n) noexcept {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

HashingEmbedder::HashingEmbedder(std::size_t dims) : dims_(dims) {
  DP_CHECK(dims >= 16 && dims <= 4096);
}

std::string HashingEmbedder::name() const { return "hashing-v1-" + std::to_string(dims_); }

Result<std::vector<float>> HashingEmbedder::embed(std::string_view text) const {
  std::vector<float> v(dims_, 0.0F);
  const auto words = words_of(text);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    add_feature(v, w, 1, 1.0F);
    if (i + 1 < words.size()) add_feature(v, w + " " + words[i + 1], 2, 0.5F);
    // Character trigrams of the word with boundary marks: "deploy" and "deployment" share
    // most of theirs.
    const std::string marked = "<" + w + ">";
    if (marked.size() >= 3) {
      for (std::size_t j = 0; j + 3 <= marked.size(); ++j) {
        add_feature(v, std::string_view(marked).substr(j, 3), 3, 0.25F);
      }
    }
  }
  if (!normalize(v)) {
    return Error::invalid_argument("empty_text", "the text has no words to remember or search by");
  }
  return v;
}

Result<std::vector<float>> OpenAiEmbedder::embed(std::string_view text) const {
  if (text.empty()) return Error::invalid_argument("empty_text", "the text is empty");
  std::string base = options_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::ClientRequest req;
  req.method = "POST";
  req.url = base + "/embeddings";
  req.headers.emplace_back("content-type", "application/json");
  std::string key = options_.api_key;
  if (options_.key_provider) {
    DP_ASSIGN_OR_RETURN(key, options_.key_provider());
  }
  if (!key.empty()) req.headers.emplace_back("authorization", "Bearer " + key);
  req.body = json::serialize(json::object{{"model", options_.model}, {"input", text}});
  req.timeout = options_.timeout;
  req.max_response_bytes = options_.max_response_bytes;
  DP_ASSIGN_OR_RETURN(http::ClientResponse resp, http::fetch(req));
  if (resp.status == 401 || resp.status == 403) {
    return Error{ErrorCode::kPermissionDenied, "provider_auth",
                 "the embeddings server refused the key (HTTP " + std::to_string(resp.status) + ")",
                 nullptr};
  }
  if (resp.status >= 400 && resp.status < 500) {
    return Error::invalid_argument("provider_rejected", "the embeddings server answered HTTP " +
                                                            std::to_string(resp.status));
  }
  if (resp.status != 200) {
    return Error{ErrorCode::kUnavailable, "provider_unavailable",
                 "the embeddings server answered HTTP " + std::to_string(resp.status), nullptr};
  }
  auto bad = [](std::string why) {
    return Error{ErrorCode::kUnavailable, "bad_embedding_response", std::move(why), nullptr};
  };
  boost::system::error_code ec;
  const json::value doc = json::parse(resp.body, ec);
  if (ec || !doc.is_object()) return bad("the embeddings response is not a JSON object");
  const auto* data = doc.as_object().if_contains("data");
  if (data == nullptr || !data->is_array() || data->as_array().empty() ||
      !data->as_array()[0].is_object()) {
    return bad("the embeddings response has no data[0]");
  }
  const auto* emb = data->as_array()[0].as_object().if_contains("embedding");
  if (emb == nullptr || !emb->is_array() || emb->as_array().empty() ||
      emb->as_array().size() > 16384) {
    return bad("data[0].embedding is not an array of 1..16384 numbers");
  }
  std::vector<float> v;
  v.reserve(emb->as_array().size());
  for (const auto& x : emb->as_array()) {
    if (!x.is_number()) return bad("data[0].embedding holds a value that is not a number");
    v.push_back(static_cast<float>(x.to_number<double>()));
  }
  if (!normalize(v)) return bad("data[0].embedding is all zeros or not finite");
  return v;
}

}  // namespace dp::memory
