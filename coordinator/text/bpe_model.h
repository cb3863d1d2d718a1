// The BPE model of a tokenizer.json: vocabulary, ranked merges, byte fallback, unknown-token
// handling, ignore_merges, and a cache of encoded pre-tokens. Immutable after from_json apart
// from the cache, which is internally locked: encode_word is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace ponder::text {

class BpeWordCache;

class BpeModel {
 public:
  struct Options {
    // Pre-tokens arrive as raw bytes and are read through the GPT-2 byte alphabet.
    bool byte_level_input = false;
    // Pre-tokens remembered with their ids; 0 disables the cache.
    size_t cache_entries = 0;
  };

  // `model` is the "model" value of tokenizer.json; it must be a BPE model.
  static Expected<BpeModel> from_json(const nlohmann::json& model, const Options& options);

  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  // Appends the ids of one pre-token.
  void encode_word(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary entry of `id`, or nullptr if the vocabulary has no such id.
  const std::string* id_to_token(int32_t id) const;
  // Number of vocabulary entries (Hugging Face's get_vocab_size for the model).
  size_t vocab_entries() const { return vocab_.size(); }
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  class PairMap;

  BpeModel();
  Status build_vocab(const nlohmann::json& vocab);
  Status build_merges(const nlohmann::json& merges);
  const Merge* find_merge(int32_t left, int32_t right) const;
  std::optional<int32_t> whole_word_id(std::string_view word) const;
  void merge_word(std::string_view word, std::vector<int32_t>* ids) const;

  std::vector<std::string> tokens_;  // by id; "" where the vocabulary has a gap
  std::vector<bool> present_;
  std::unordered_map<std::string_view, int32_t> vocab_;  // keys view tokens_
  // byte_level_input: the id of each byte's alphabet character (-1 if absent), and the
  // vocabulary keyed by raw bytes (for ignore_merges).
  std::array<int32_t, 256> byte_ids_{};
  std::vector<std::string> raw_tokens_;
  std::unordered_map<std::string_view, int32_t> raw_vocab_;
  // byte_fallback: the id of "<0xNN>" for each byte, -1 if absent.
  std::array<int32_t, 256> fallback_ids_{};
  std::unique_ptr<PairMap> merges_;
  std::unique_ptr<BpeWordCache> cache_;
  std::optional<int32_t> unk_id_;
  bool byte_level_input_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

}  // namespace ponder::text
