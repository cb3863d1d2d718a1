// Byte-level matching of an OutputConstraint: literals, choices, bounded whitespace and a JSON
// object recognizer (a pushdown automaton over bytes).
#include "worker/engine/output_constraint.h"

#include <algorithm>

namespace ponder::worker {
namespace {

bool is_space(unsigned char b) { return b == ' ' || b == '\n' || b == '\t' || b == '\r'; }
bool is_digit(unsigned char b) { return b >= '0' && b <= '9'; }
bool is_hex(unsigned char b) {
  return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

}  // namespace

Status OutputConstraint::validate() const {
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    if (static_cast<int>(s.kind) < 0 || static_cast<int>(s.kind) > 3)
      return error(StatusCode::kInvalidArgument, "constraint segment %zu: unknown kind %d", i,
                   static_cast<int>(s.kind));
    if (s.kind == Kind::kLiteral && s.texts.size() != 1)
      return error(StatusCode::kInvalidArgument, "constraint segment %zu: a literal has one text",
                   i);
    if (s.kind == Kind::kOneOf && s.texts.empty())
      return error(StatusCode::kInvalidArgument, "constraint segment %zu: no choices", i);
    for (const std::string& t : s.texts)
      if (t.empty())
        return error(StatusCode::kInvalidArgument, "constraint segment %zu: an empty text", i);
  }
  if (!segments.empty() && segments.back().kind != Kind::kLiteral &&
      segments.back().kind != Kind::kJsonObject)
    return error(StatusCode::kInvalidArgument,
                 "a constraint ends with a literal or a JSON object (it must know its end)");
  return {};
}

ConstraintMatcher::ConstraintMatcher(const OutputConstraint* c) : c_(c) {
  if (!complete() && c_->segments[0].kind == OutputConstraint::Kind::kOneOf)
    alive_.assign(c_->segments[0].texts.size(), 1);
}

void ConstraintMatcher::next_segment() {
  ++segment_;
  pos_ = 0;
  space_ = 0;
  if (!complete() && c_->segments[segment_].kind == OutputConstraint::Kind::kOneOf)
    alive_.assign(c_->segments[segment_].texts.size(), 1);
}

bool ConstraintMatcher::feed(std::string_view bytes) {
  for (char c : bytes)
    if (!feed_byte(static_cast<unsigned char>(c))) return false;
  return true;
}

bool ConstraintMatcher::feed_byte(unsigned char b) {
  using Kind = OutputConstraint::Kind;
  for (;;) {
    if (complete()) return false;
    const OutputConstraint::Segment& seg = c_->segments[segment_];
    switch (seg.kind) {
      case Kind::kSpace:
        if (is_space(b) && space_ < kMaxSpace) {
          ++space_;
          return true;
        }
        next_segment();  // whitespace is optional: the next segment takes b
        continue;
      case Kind::kLiteral: {
        const std::string& t = seg.texts[0];
        if (static_cast<unsigned char>(t[pos_]) != b) return false;
        if (++pos_ == t.size()) next_segment();
        return true;
      }
      case Kind::kOneOf: {
        bool extends = false, completed = false;
        for (size_t i = 0; i < seg.texts.size(); ++i) {
          if (!alive_[i]) continue;
          const std::string& t = seg.texts[i];
          if (t.size() == pos_) completed = true;
          if (t.size() > pos_ && static_cast<unsigned char>(t[pos_]) == b) extends = true;
        }
        if (!extends) {
          if (!completed) return false;
          next_segment();  // a choice ended here; b belongs to what follows
          continue;
        }
        bool longer = false;
        for (size_t i = 0; i < seg.texts.size(); ++i) {
          const std::string& t = seg.texts[i];
          if (alive_[i] && !(t.size() > pos_ && static_cast<unsigned char>(t[pos_]) == b))
            alive_[i] = 0;
          if (alive_[i] && t.size() > pos_ + 1) longer = true;
        }
        ++pos_;
        if (!longer) next_segment();  // every choice still alive ends here
        return true;
      }
      case Kind::kJsonObject:
        if (!json_byte(b)) return false;
        if (started_ && depth_ == 0) next_segment();
        return true;
    }
  }
}

bool ConstraintMatcher::number_byte(unsigned char b) {
  switch (number_) {
    case Num::kMinus:
      if (b == '0') return number_ = Num::kZero, true;
      if (is_digit(b)) return number_ = Num::kInt, true;
      return false;
    case Num::kZero:
      if (b == '.') return number_ = Num::kDot, true;
      if (b == 'e' || b == 'E') return number_ = Num::kE, true;
      return false;
    case Num::kInt:
      if (is_digit(b)) return true;
      if (b == '.') return number_ = Num::kDot, true;
      if (b == 'e' || b == 'E') return number_ = Num::kE, true;
      return false;
    case Num::kDot:
      if (is_digit(b)) return number_ = Num::kFrac, true;
      return false;
    case Num::kFrac:
      if (is_digit(b)) return true;
      if (b == 'e' || b == 'E') return number_ = Num::kE, true;
      return false;
    case Num::kE:
      if (b == '+' || b == '-') return number_ = Num::kESign, true;
      if (is_digit(b)) return number_ = Num::kExp, true;
      return false;
    case Num::kESign:
      if (is_digit(b)) return number_ = Num::kExp, true;
      return false;
    case Num::kExp:
      return is_digit(b);
  }
  return false;
}

bool ConstraintMatcher::number_can_end() const {
  return number_ == Num::kZero || number_ == Num::kInt || number_ == Num::kFrac ||
         number_ == Num::kExp;
}

bool ConstraintMatcher::end_value() {
  json_ = Json::kCommaOrClose;  // at depth 0 the object is done and nothing more is read
  return true;
}

bool ConstraintMatcher::json_byte(unsigned char b) {
  if (!started_) {
    if (b != '{') return false;
    started_ = true;
    stack_[depth_++] = '{';
    json_ = Json::kKeyOrClose;
    return true;
  }
  auto open = [&](char kind) {
    if (depth_ >= kMaxDepth) return false;
    stack_[depth_++] = kind;
    json_ = kind == '{' ? Json::kKeyOrClose : Json::kValueOrClose;
    space_ = 0;
    return true;
  };
  auto close = [&](char kind) {
    if (depth_ == 0 || stack_[depth_ - 1] != kind) return false;
    --depth_;
    space_ = 0;
    return end_value();
  };
  // Whitespace between tokens: bounded runs.
  auto space = [&]() {
    if (space_ >= kMaxSpace) return false;
    ++space_;
    return true;
  };
  for (;;) {
    switch (json_) {
      case Json::kString:
        if (b == '"') {
          json_ = string_is_key_ ? Json::kColon : Json::kCommaOrClose;
          space_ = 0;
          return true;
        }
        if (b == '\\') return json_ = Json::kEscape, true;
        return b >= 0x20;  // control characters must be escaped
      case Json::kEscape:
        if (b == 'u') return json_ = Json::kUnicode, json_hex_ = 0, true;
        if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' ||
            b == 't')
          return json_ = Json::kString, true;
        return false;
      case Json::kUnicode:
        if (!is_hex(b)) return false;
        if (++json_hex_ == 4) json_ = Json::kString;
        return true;
      case Json::kNumber:
        if (number_byte(b)) return true;
        if (!number_can_end()) return false;
        end_value();
        continue;  // the number ended; b is what follows it
      case Json::kWord:
        if (static_cast<unsigned char>(word_[word_pos_]) != b) return false;
        if (word_[++word_pos_] == '\0') end_value();
        return true;
      case Json::kValue:
      case Json::kValueOrClose:
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ']' && json_ == Json::kValueOrClose) return close('[');
        if (b == '"') return json_ = Json::kString, string_is_key_ = false, true;
        if (b == '{' || b == '[') return open(static_cast<char>(b));
        if (b == '-') return json_ = Json::kNumber, number_ = Num::kMinus, true;
        if (b == '0') return json_ = Json::kNumber, number_ = Num::kZero, true;
        if (is_digit(b)) return json_ = Json::kNumber, number_ = Num::kInt, true;
        if (b == 't' || b == 'f' || b == 'n') {
          word_ = b == 't' ? "true" : b == 'f' ? "false" : "null";
          word_pos_ = 1;
          json_ = Json::kWord;
          return true;
        }
        return false;
      case Json::kKeyOrClose:
      case Json::kKey:
        if (is_space(b)) return space();
        space_ = 0;
        if (b == '}' && json_ == Json::kKeyOrClose) return close('{');
        if (b == '"') return json_ = Json::kString, string_is_key_ = true, true;
        return false;
      case Json::kColon:
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ':') return json_ = Json::kValue, true;
        return false;
      case Json::kCommaOrClose:
        if (depth_ == 0) return false;  // the object is complete
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ',') return json_ = stack_[depth_ - 1] == '{' ? Json::kKey : Json::kValue, true;
        if (b == '}') return close('{');
        if (b == ']') return close('[');
        return false;
    }
  }
}

}  // namespace ponder::worker
