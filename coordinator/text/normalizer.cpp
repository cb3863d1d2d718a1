// Normalizer steps of tokenizer.json, applied in order to each piece of input text.
#include "coordinator/text/normalizer.h"

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/text/tokenizer_json.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

Expected<Normalizer> Normalizer::from_json(const nlohmann::json& config) {
  Normalizer normalizer;
  PONDER_RETURN_IF_ERROR(add_steps(config, &normalizer.steps_));
  return normalizer;
}

Status Normalizer::add_steps(const nlohmann::json& config, std::vector<Step>* steps) {
  if (config.is_null()) return Status::ok_status();
  PONDER_ASSIGN_OR_RETURN(std::string type, json_type_of(config, "normalizer"));
  if (type == "Sequence") {
    PONDER_ASSIGN_OR_RETURN(const nlohmann::json* list,
                            json_array_member(config, "normalizers", "normalizer Sequence"));
    for (const nlohmann::json& item : *list) PONDER_RETURN_IF_ERROR(add_steps(item, steps));
    return Status::ok_status();
  }
  Step step;
  if (type == "NFC") {
    step.kind = Kind::kNfc;
  } else if (type == "NFD") {
    step.kind = Kind::kNfd;
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    PONDER_ASSIGN_OR_RETURN(JsonPattern pattern, json_pattern(config, "normalizer Replace"));
    PONDER_ASSIGN_OR_RETURN(step.content,
                            json_string_member(config, "content", "normalizer Replace"));
    if (pattern.is_regex) {
      PONDER_ASSIGN_OR_RETURN(step.regex, UnicodeRegex::compile(pattern.text));
    } else {
      if (pattern.text.empty()) {
        return error(StatusCode::kInvalidArgument, "normalizer Replace has an empty pattern");
      }
      step.pattern = pattern.text;
    }
  } else if (type == "Prepend") {
    step.kind = Kind::kPrepend;
    PONDER_ASSIGN_OR_RETURN(step.content,
                            json_string_member(config, "prepend", "normalizer Prepend"));
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    PONDER_ASSIGN_OR_RETURN(step.strip_left,
                            json_optional_bool(config, "strip_left", true, "normalizer Strip"));
    PONDER_ASSIGN_OR_RETURN(step.strip_right,
                            json_optional_bool(config, "strip_right", true, "normalizer Strip"));
  } else {
    return error(StatusCode::kInvalidArgument,
                 "normalizer type '%s' is not supported (supported: Sequence, NFC, NFD, Replace, "
                 "Prepend, Strip)",
                 type.c_str());
  }
  steps->push_back(std::move(step));
  return Status::ok_status();
}

bool Normalizer::apply(const Step& step, std::string_view text, std::string* out) {
  switch (step.kind) {
    case Kind::kNfc:
      return normalize_nfc(text, out);
    case Kind::kNfd:
      return normalize_nfd(text, out);
    case Kind::kPrepend:
      if (text.empty() || step.content.empty()) return false;
      *out = step.content;
      out->append(text);
      return true;
    case Kind::kStrip: {
      size_t begin = 0, end = text.size();
      if (step.strip_left) {
        while (begin < end) {
          size_t next = begin;
          if (!is_white_space(utf8_decode(text, &next))) break;
          begin = next;
        }
      }
      if (step.strip_right) {
        while (end > begin) {
          size_t start = end - 1;
          while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
          size_t next = start;
          if (!is_white_space(utf8_decode(text, &next))) break;
          end = start;
        }
      }
      if (begin == 0 && end == text.size()) return false;
      out->assign(text.substr(begin, end - begin));
      return true;
    }
    case Kind::kReplace: {
      std::vector<TextSpan> matches;
      if (step.regex) {
        step.regex->find_all(text, &matches);
      } else {
        for (size_t pos = text.find(step.pattern); pos != std::string_view::npos;
             pos = text.find(step.pattern, pos + step.pattern.size())) {
          matches.push_back({pos, pos + step.pattern.size()});
        }
      }
      if (matches.empty()) return false;
      std::string result;
      result.reserve(text.size() + matches.size() * step.content.size());
      size_t last = 0;
      for (const TextSpan& m : matches) {
        result.append(text.substr(last, m.begin - last));
        result.append(step.content);
        last = m.end;
      }
      result.append(text.substr(last));
      *out = std::move(result);
      return true;
    }
  }
  return false;
}

bool Normalizer::normalize(std::string_view text, std::string* out) const {
  bool changed = false;
  std::string current, next;
  for (const Step& step : steps_) {
    std::string_view input = changed ? std::string_view(current) : text;
    if (apply(step, input, &next)) {
      current.swap(next);
      changed = true;
    }
  }
  if (changed) *out = std::move(current);
  return changed;
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string out;
  return normalize(text, &out) ? out : std::string(text);
}

}  // namespace ponder::text
