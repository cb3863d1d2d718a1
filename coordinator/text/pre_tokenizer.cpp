// Pre-tokenizer steps of tokenizer.json, applied in order to every piece.
#include "coordinator/text/pre_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/text/tokenizer_json.h"

namespace ponder::text {
namespace {

struct Marked {
  TextSpan span;
  bool is_match;
};

}  // namespace

Expected<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& config) {
  PreTokenizer pre_tokenizer;
  PONDER_RETURN_IF_ERROR(pre_tokenizer.add_steps(config, /*last=*/true));
  return pre_tokenizer;
}

Status PreTokenizer::add_steps(const nlohmann::json& config, bool last) {
  if (config.is_null()) return Status::ok_status();
  PONDER_ASSIGN_OR_RETURN(std::string type, json_type_of(config, "pre_tokenizer"));
  if (byte_level_) {
    return error(StatusCode::kInvalidArgument,
                 "pre_tokenizer %s after ByteLevel is not supported (ByteLevel must come last)",
                 type.c_str());
  }
  if (type == "Sequence") {
    PONDER_ASSIGN_OR_RETURN(const nlohmann::json* list,
                            json_array_member(config, "pretokenizers", "pre_tokenizer Sequence"));
    for (size_t i = 0; i < list->size(); ++i) {
      PONDER_RETURN_IF_ERROR(add_steps((*list)[i], last && i + 1 == list->size()));
    }
    return Status::ok_status();
  }
  if (type == "Split") {
    Step step{.kind = Kind::kSplit};
    PONDER_ASSIGN_OR_RETURN(JsonPattern pattern, json_pattern(config, "pre_tokenizer Split"));
    if (pattern.is_regex) {
      PONDER_ASSIGN_OR_RETURN(step.regex, UnicodeRegex::compile(pattern.text));
    } else if (pattern.text.empty()) {
      return error(StatusCode::kInvalidArgument, "pre_tokenizer Split has an empty pattern");
    } else {
      step.literal = pattern.text;
    }
    PONDER_ASSIGN_OR_RETURN(std::string behavior,
                            json_string_member(config, "behavior", "pre_tokenizer Split"));
    static constexpr std::pair<std::string_view, Behavior> kBehaviors[] = {
        {"Removed", Behavior::kRemoved},
        {"Isolated", Behavior::kIsolated},
        {"MergedWithPrevious", Behavior::kMergedWithPrevious},
        {"MergedWithNext", Behavior::kMergedWithNext},
        {"Contiguous", Behavior::kContiguous}};
    bool known = false;
    for (const auto& [name, value] : kBehaviors) {
      if (behavior == name) {
        step.behavior = value;
        known = true;
      }
    }
    if (!known) {
      return error(StatusCode::kInvalidArgument, "pre_tokenizer Split: unknown behavior '%s'",
                   behavior.c_str());
    }
    PONDER_ASSIGN_OR_RETURN(step.invert,
                            json_optional_bool(config, "invert", false, "pre_tokenizer Split"));
    steps_.push_back(std::move(step));
    return Status::ok_status();
  }
  if (type == "Digits") {
    PONDER_ASSIGN_OR_RETURN(bool individual, json_optional_bool(config, "individual_digits", false,
                                                                "pre_tokenizer Digits"));
    Step step{.kind = Kind::kSplit};
    // Rust's char::is_numeric is the N* categories; each digit is its own match.
    PONDER_ASSIGN_OR_RETURN(step.regex, UnicodeRegex::compile("\\p{N}"));
    step.behavior = individual ? Behavior::kIsolated : Behavior::kContiguous;
    steps_.push_back(std::move(step));
    return Status::ok_status();
  }
  if (type == "Metaspace") {
    Step step{.kind = Kind::kMetaspace};
    PONDER_ASSIGN_OR_RETURN(step.replacement, json_optional_string(config, "replacement", "\u2581",
                                                                   "pre_tokenizer Metaspace"));
    if (step.replacement.empty()) {
      return error(StatusCode::kInvalidArgument, "pre_tokenizer Metaspace: empty replacement");
    }
    PONDER_ASSIGN_OR_RETURN(step.split,
                            json_optional_bool(config, "split", true, "pre_tokenizer Metaspace"));
    // Older files carry add_prefix_space instead of prepend_scheme.
    PONDER_ASSIGN_OR_RETURN(
        bool add_prefix_space,
        json_optional_bool(config, "add_prefix_space", true, "pre_tokenizer Metaspace"));
    PONDER_ASSIGN_OR_RETURN(
        std::string scheme,
        json_optional_string(config, "prepend_scheme", add_prefix_space ? "always" : "never",
                             "pre_tokenizer Metaspace"));
    if (scheme == "always") {
      step.prepend = Step::Prepend::kAlways;
    } else if (scheme == "first") {
      step.prepend = Step::Prepend::kFirst;
    } else if (scheme == "never") {
      step.prepend = Step::Prepend::kNever;
    } else {
      return error(StatusCode::kInvalidArgument,
                   "pre_tokenizer Metaspace: unknown prepend_scheme '%s'", scheme.c_str());
    }
    steps_.push_back(std::move(step));
    return Status::ok_status();
  }
  if (type == "ByteLevel") {
    if (!last) {
      return error(StatusCode::kInvalidArgument,
                   "pre_tokenizer ByteLevel must be the last pre-tokenizer");
    }
    PONDER_ASSIGN_OR_RETURN(
        bool add_prefix_space,
        json_optional_bool(config, "add_prefix_space", true, "pre_tokenizer ByteLevel"));
    PONDER_ASSIGN_OR_RETURN(
        bool use_regex, json_optional_bool(config, "use_regex", true, "pre_tokenizer ByteLevel"));
    if (add_prefix_space) steps_.push_back(Step{.kind = Kind::kPrefixSpace});
    if (use_regex) {
      Step step{.kind = Kind::kSplit};
      PONDER_ASSIGN_OR_RETURN(step.regex, UnicodeRegex::compile(kGpt2SplitRegex));
      step.behavior = Behavior::kIsolated;
      steps_.push_back(std::move(step));
    }
    byte_level_ = true;
    return Status::ok_status();
  }
  return error(StatusCode::kInvalidArgument,
               "pre_tokenizer type '%s' is not supported (supported: Sequence, Split, Digits, "
               "Metaspace, ByteLevel)",
               type.c_str());
}

void PreTokenizer::split_by_matches(const Step& step, const PreToken& piece,
                                    const std::vector<TextSpan>& matches,
                                    std::vector<PreToken>* out) {
  // Matches and the gaps between them, in order (Hugging Face's find_matches).
  std::vector<Marked> marked;
  marked.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const TextSpan& m : matches) {
    if (prev != m.begin) marked.push_back({{prev, m.begin}, false});
    marked.push_back({m, true});
    prev = m.end;
  }
  if (prev != piece.text.size()) marked.push_back({{prev, piece.text.size()}, false});
  if (step.invert) {
    for (Marked& m : marked) m.is_match = !m.is_match;
  }

  std::vector<TextSpan> spans;
  spans.reserve(marked.size());
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::kIsolated:
      for (const Marked& m : marked) spans.push_back(m.span);
      break;
    case Behavior::kRemoved:
      for (const Marked& m : marked) {
        if (!m.is_match) spans.push_back(m.span);
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Marked& m : marked) {
        if (m.is_match && !previous_match && !spans.empty()) {
          spans.back().end = m.span.end;
        } else {
          spans.push_back(m.span);
        }
        previous_match = m.is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (size_t i = marked.size(); i-- > 0;) {
        const Marked& m = marked[i];
        if (m.is_match && !previous_match && !spans.empty()) {
          spans.back().begin = m.span.begin;
        } else {
          spans.push_back(m.span);
        }
        previous_match = m.is_match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
    case Behavior::kContiguous:
      for (const Marked& m : marked) {
        if (m.is_match == previous_match && !spans.empty()) {
          spans.back().end = m.span.end;
        } else {
          spans.push_back(m.span);
        }
        previous_match = m.is_match;
      }
      break;
  }
  for (const TextSpan& s : spans) {
    if (s.end > s.begin) {
      out->push_back(
          {piece.text.substr(s.begin, s.end - s.begin), piece.at_origin && s.begin == 0});
    }
  }
}

void PreTokenizer::apply(const Step& step, const PreToken& piece,
                         PreTokenizerScratch* scratch) const {
  switch (step.kind) {
    case Kind::kSplit: {
      scratch->matches.clear();
      if (step.regex) {
        step.regex->find_all(piece.text, &scratch->matches);
      } else {
        std::string_view text = piece.text;
        for (size_t pos = text.find(step.literal); pos != std::string_view::npos;
             pos = text.find(step.literal, pos + step.literal.size())) {
          scratch->matches.push_back({pos, pos + step.literal.size()});
        }
      }
      if (scratch->matches.empty() && !step.invert) {
        // Fast path: no match leaves the piece whole under every behavior.
        scratch->next.push_back(piece);
        return;
      }
      split_by_matches(step, piece, scratch->matches, &scratch->next);
      return;
    }
    case Kind::kPrefixSpace: {
      if (!piece.text.empty() && piece.text.front() == ' ') {
        scratch->next.push_back(piece);
        return;
      }
      std::string& s = scratch->strings.emplace_back(" ");
      s.append(piece.text);
      scratch->next.push_back({s, piece.at_origin});
      return;
    }
    case Kind::kMetaspace: {
      std::string& s = scratch->strings.emplace_back();
      s.reserve(piece.text.size() + step.replacement.size() * 4);
      for (char c : piece.text) {
        if (c == ' ') {
          s.append(step.replacement);
        } else {
          s.push_back(c);
        }
      }
      bool starts_with_replacement = s.compare(0, step.replacement.size(), step.replacement) == 0;
      if (!starts_with_replacement &&
          (step.prepend == Step::Prepend::kAlways ||
           (step.prepend == Step::Prepend::kFirst && piece.at_origin))) {
        s.insert(0, step.replacement);
      }
      PreToken replaced{s, piece.at_origin};
      if (!step.split) {
        if (!s.empty()) scratch->next.push_back(replaced);
        return;
      }
      scratch->matches.clear();
      for (size_t pos = s.find(step.replacement); pos != std::string::npos;
           pos = s.find(step.replacement, pos + step.replacement.size())) {
        scratch->matches.push_back({pos, pos + step.replacement.size()});
      }
      Step merged{.kind = Kind::kSplit, .behavior = Behavior::kMergedWithNext};
      split_by_matches(merged, replaced, scratch->matches, &scratch->next);
      return;
    }
  }
}

void PreTokenizer::split(std::string_view text, bool at_origin,
                         PreTokenizerScratch* scratch) const {
  scratch->strings.clear();
  scratch->pieces.clear();
  if (!text.empty()) scratch->pieces.push_back({text, at_origin});
  for (const Step& step : steps_) {
    scratch->next.clear();
    for (const PreToken& piece : scratch->pieces) apply(step, piece, scratch);
    scratch->pieces.swap(scratch->next);
  }
}

}  // namespace ponder::text
