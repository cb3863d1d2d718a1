// The normalizer of a tokenizer.json: NFC, NFD, Replace, Prepend, Strip and Sequences of them,
// with Hugging Face's semantics. Immutable after from_json; thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/text/unicode_regex.h"

namespace ponder::text {

class Normalizer {
 public:
  // `config` is the "normalizer" value of tokenizer.json; null means no normalization.
  // Unsupported types are an error naming the type.
  static Expected<Normalizer> from_json(const nlohmann::json& config);

  // Normalizes valid UTF-8 `text`. Returns false (and leaves *out alone) when it is unchanged.
  bool normalize(std::string_view text, std::string* out) const;
  std::string normalize(std::string_view text) const;

  bool empty() const { return steps_.empty(); }

 private:
  enum class Kind { kNfc, kNfd, kReplace, kPrepend, kStrip };
  struct Step {
    Kind kind;
    std::string pattern;                // kReplace with a literal pattern
    std::optional<UnicodeRegex> regex;  // kReplace with a regex pattern
    std::string content;                // kReplace replacement, kPrepend prefix
    bool strip_left = false;            // kStrip
    bool strip_right = false;
  };
  static Status add_steps(const nlohmann::json& config, std::vector<Step>* steps);
  static bool apply(const Step& step, std::string_view text, std::string* out);

  std::vector<Step> steps_;
};

}  // namespace ponder::text
