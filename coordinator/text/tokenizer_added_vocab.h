// Added tokens of a tokenizer.json (special tokens such as <|im_start|> and plain added tokens
// such as <think>): found in the text as whole tokens before pre-tokenization, leftmost-longest,
// with the lstrip / rstrip / single_word / normalized flags handled as Hugging Face does.
// Immutable after build; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "coordinator/text/unicode_regex.h"

namespace ponder::text {

class Normalizer;

struct AddedToken {
  std::string content;
  // The id written in tokenizer.json. Hugging Face does not use it: see AddedVocabulary::build.
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  // Matched in normalized text (against the normalized content) rather than in raw text.
  bool normalized = false;
};

// A piece of text after added-token extraction: either an added token or text to tokenize.
struct AddedSegment {
  std::string_view text;
  int32_t id = -1;  // >= 0 for an added token
};

class AddedVocabulary {
 public:
  // Resolves ids as Hugging Face does when it loads a tokenizer.json: a token whose content is
  // in the model's vocabulary (or an earlier added token) takes that id, any other the next id
  // after the vocabulary (`vocab_entries`, the number of vocabulary entries) and the added ids so
  // far; the ids written in the file are only checked (a mismatch is logged). Real files agree.
  static Expected<AddedVocabulary> build(
      std::vector<AddedToken> tokens, const Normalizer& normalizer,
      const std::function<std::optional<int32_t>(std::string_view)>& model_token_to_id,
      size_t vocab_entries);

  // Splits `text` at the added tokens of one pass: raw-text tokens (normalized == false) or
  // normalized-text tokens. Appends the segments (none empty) in order.
  void split(std::string_view text, bool normalized_pass, std::vector<AddedSegment>* out) const;

  bool has_normalized_tokens() const { return !tries_[1].nodes.empty(); }
  // The tokens with their resolved ids, in file order.
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // The added token with this id, or nullptr.
  const AddedToken* find_id(int32_t id) const;
  // The text of added token `id` when decoding: its content, normalized for a normalized token
  // (Hugging Face returns "▁ample" for a normalized "ample" under a Prepend("▁") normalizer).
  const std::string* decode_text(int32_t id) const;
  std::optional<int32_t> find_content(std::string_view content) const;

 private:
  // Byte trie over the patterns of one pass.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;
      int32_t token = -1;  // index into tokens_ of the pattern ending here
    };
    std::vector<Node> nodes;  // nodes[0] is the root once anything is inserted
    bool first_byte[256] = {};
    void insert(std::string_view pattern, int32_t token);
    // Length of the longest pattern starting at text[pos] (0 if none) and its token.
    size_t longest_at(std::string_view text, size_t pos, int32_t* token) const;
  };

  bool is_word_char_before(std::string_view text, size_t pos) const;
  bool is_word_char_after(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> decode_texts_;  // parallel to tokens_
  std::vector<int32_t> by_id_;             // id -> index into tokens_, -1 if none
  std::unordered_map<std::string, int32_t> by_content_;
  Trie tries_[2];  // [0] raw text, [1] normalized text
  std::optional<UnicodeRegex> word_char_;
};

}  // namespace ponder::text
