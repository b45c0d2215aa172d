// Embedder: turns text into a vector whose cosine similarity to another text's vector says how
// alike the two texts are. Two kinds:
//
// - HashingEmbedder (built in, the default): feature hashing of lower-cased words, word pairs
//   and character trigrams into `dims` signed buckets, L2-normalised. Deterministic, no model,
//   no network, about a microsecond per hundred bytes; texts that share words and word parts
//   score higher than unrelated ones. It knows no synonyms.
// - OpenAiEmbedder: `POST <baseUrl>/embeddings` of an OpenAI-compatible server (OpenAI, Ollama,
//   vLLM, llama.cpp server), the key sent as a bearer token. Blocks for the HTTP call: never on
//   an I/O thread, never in a task's path (the memory service embeds outcomes on its own thread).
//
// Every vector returned is L2-normalised (cosine = dot product). `name()` identifies the
// embedder and its settings: vectors made under another name are made again.
//
// Errors (embed): kInvalidArgument (empty text), and for the remote embedder those of the HTTP
// client plus kUnavailable `bad_embedding_response`, kPermissionDenied `provider_auth`,
// kInvalidArgument `provider_rejected`. Thread safety: immutable after construction; safe from
// any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dp::memory {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual Result<std::vector<float>> embed(std::string_view text) const = 0;
  virtual std::string name() const = 0;
  // True when embed() is cheap and local (may run on the caller's thread in any path).
  virtual bool local() const noexcept = 0;
};

class HashingEmbedder final : public Embedder {
 public:
  // REQUIRES: 16 <= dims <= 4096.
  explicit HashingEmbedder(std::size_t dims = 384);

  // Embedder
  Result<std::vector<float>> embed(std::string_view text) const override;
  std::string name() const override;
  bool local() const noexcept override { return true; }

 private:
  std::size_t dims_;
};

struct OpenAiEmbedderOptions {
  std::string base_url;  // e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1
  std::string model;     // e.g. text-embedding-3-small
  std::string api_key;   // empty: no Authorization header (unless key_provider is set)
  // When set, called for every request (the key lives sealed in the store's secrets and may
  // change while devplane runs); its error fails the embed.
  std::function<Result<std::string>()> key_provider;
  std::chrono::milliseconds timeout{30'000};
  std::size_t max_response_bytes = 16 * 1024 * 1024;
};

class OpenAiEmbedder final : public Embedder {
 public:
  explicit OpenAiEmbedder(OpenAiEmbedderOptions options) : options_(std::move(options)) {}

  // Embedder
  Result<std::vector<float>> embed(std::string_view text) const override;
  std::string name() const override { return "openai:" + options_.model; }
  bool local() const noexcept override { return false; }

 private:
  OpenAiEmbedderOptions options_;
};

// Scales `v` to unit length; false (and `v` unchanged) when it is all zeros or not finite.
bool normalize(std::vector<float>& v);

// The dot product of two vectors of equal size (cosine for unit vectors).
float dot(const float* a, const float* b, std::size_t n) noexcept;

}  // namespace dp::memory
