// The pre-tokenizer of a tokenizer.json: Split (regex or literal, five split behaviors, invert),
// Digits, Metaspace, ByteLevel and Sequences of them, with Hugging Face's semantics.
// Immutable after from_json; split() is thread-safe (the caller owns the scratch).
#pragma once

#include <deque>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/text/unicode_regex.h"

namespace ponder::text {

// A pre-token and whether it starts at offset 0 of the original input (Metaspace's "first").
struct PreToken {
  std::string_view text;
  bool at_origin = false;
};

// Per-call buffers; reuse one across calls to avoid allocations. Pre-tokens point into the
// input text or into `strings`, so they stay valid until the next split() with this scratch.
struct PreTokenizerScratch {
  std::vector<PreToken> pieces, next;
  std::vector<TextSpan> matches;
  std::deque<std::string> strings;
};

class PreTokenizer {
 public:
  // `config` is the "pre_tokenizer" value of tokenizer.json; null means no splitting.
  static Expected<PreTokenizer> from_json(const nlohmann::json& config);

  // Splits `text` into pre-tokens (empty ones dropped) and writes them to scratch->pieces.
  void split(std::string_view text, bool at_origin, PreTokenizerScratch* scratch) const;

  // True when the pipeline ends in ByteLevel: pre-tokens are then raw UTF-8 bytes that the model
  // must read through the GPT-2 byte alphabet (the mapping itself is left to the model).
  bool byte_level() const { return byte_level_; }

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  enum class Kind { kSplit, kMetaspace, kPrefixSpace };
  struct Step {
    Kind kind = Kind::kSplit;
    // kSplit
    std::optional<UnicodeRegex> regex{};
    std::string literal{};
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    // kMetaspace
    std::string replacement{};
    enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;
    bool split = true;
  };

  Status add_steps(const nlohmann::json& config, bool last);
  void apply(const Step& step, const PreToken& piece, PreTokenizerScratch* scratch) const;
  static void split_by_matches(const Step& step, const PreToken& piece,
                               const std::vector<TextSpan>& matches, std::vector<PreToken>* out);

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// The regex GPT-2 splits with (ByteLevel with use_regex).
inline constexpr std::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace ponder::text
