// Hugging Face tokenizers for ponder: loads tokenizer.json + tokenizer_config.json from a model
// directory (byte-level BPE as in GPT-2, Llama-3, Qwen2/3, DeepSeek-V3/R1; SentencePiece-style
// BPE as in Llama-2 / TinyLlama) and encodes / decodes with Hugging Face's results.
//
// Threading: a Tokenizer is immutable after load(); encode, decode and the queries are
// thread-safe (the word cache locks internally). Copies are cheap and share the loaded data.
// A StreamDecoder belongs to one stream and is not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::text {

struct TokenizerData;  // defined in tokenizer.cpp
class StreamDecoder;

struct TokenizerOptions {
  // Pre-tokens remembered with their ids (text repeats words); 0 disables the cache.
  size_t word_cache_entries = size_t{1} << 16;
};

// A named special token from tokenizer_config.json (bos_token, eos_token, ...).
struct SpecialToken {
  std::string text;
  int32_t id = -1;
};

class Tokenizer {
 public:
  // Reads <model_dir>/tokenizer.json (required) and <model_dir>/tokenizer_config.json (optional:
  // without it there are no named special tokens). Errors name the file and the problem.
  static Expected<Tokenizer> load(const std::string& model_dir,
                                  const TokenizerOptions& options = {});
  // The same from file contents; `origin` names them in errors. Empty `config_json` = no config.
  static Expected<Tokenizer> from_json(std::string_view tokenizer_json,
                                       std::string_view config_json, std::string_view origin,
                                       const TokenizerOptions& options = {});

  // Raw encoding: no BOS/EOS added; added and special tokens written in the text are matched.
  // Invalid UTF-8 in `text` is read as U+FFFD (once per maximal invalid subpart).
  std::vector<int32_t> encode(std::string_view text) const;
  // Appends to *ids.
  void encode(std::string_view text, std::vector<int32_t>* ids) const;

  // Text of `ids` (unknown ids are skipped). skip_special drops tokens marked special.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // One past the largest id the tokenizer knows (vocabulary and added tokens). The model's
  // embedding table may be larger.
  int32_t vocab_size() const;
  // Id of a vocabulary entry or added token, written as in tokenizer.json ("Ġhello", "<s>").
  std::optional<int32_t> token_id(std::string_view token) const;
  // Vocabulary / added-token text of `id` as in tokenizer.json, or nullopt for an unknown id.
  std::optional<std::string_view> token_text(int32_t id) const;
  // True for added tokens marked "special" (dropped by decode with skip_special).
  bool is_special(int32_t id) const;
  // The bytes `id` decodes to on its own, without UTF-8 repair (a byte token that is part of a
  // multi-byte character is that one byte); empty for an unknown id.
  std::string token_bytes(int32_t id) const;

  // From tokenizer_config.json (a string or an AddedToken object there); nullopt when absent
  // or null.
  const std::optional<SpecialToken>& bos_token() const;
  const std::optional<SpecialToken>& eos_token() const;
  const std::optional<SpecialToken>& pad_token() const;
  const std::optional<SpecialToken>& unk_token() const;
  // Whether the model expects BOS / EOS around an encoded prompt: tokenizer_config.json's
  // add_bos_token / add_eos_token, else what tokenizer.json's post_processor adds (Llama-3).
  bool add_bos_token() const;
  bool add_eos_token() const;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<const TokenizerData> data) : data_(std::move(data)) {}

  std::shared_ptr<const TokenizerData> data_;
};

// Incremental detokenization for streaming: push() returns the text that became final with
// this token (possibly empty), never a broken UTF-8 sequence; the pieces of push()... + flush()
// concatenate to exactly tokenizer.decode(all ids, skip_special). Keeps the tokenizer's data
// alive. After flush() the decoder starts a new stream.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;
  ~StreamDecoder();

  std::string push(int32_t id);
  // Appends to *out instead of returning.
  void push(int32_t id, std::string* out);
  // Ends the stream: the text still held back (an incomplete UTF-8 sequence at the end becomes
  // U+FFFD, as in decode()).
  std::string flush();

 private:
  struct State;
  std::shared_ptr<const TokenizerData> data_;
  std::unique_ptr<State> state_;
  bool skip_special_;
};

}  // namespace ponder::text
