// Byte-level matching of an OutputConstraint: literals, choices, bounded whitespace and a JSON
// object recognizer (a pushdown automaton over bytes).
#include "worker/engine/output_constraint.h"

#include <algorithm>
#include <nlohmann/json.hpp>

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
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    if (s.kind != Kind::kJsonObject || s.texts.size() <= 1) continue;
    size_t choice = i;  // the last kOneOf before it: its choice picks the schema
    while (choice > 0 && segments[choice - 1].kind != Kind::kOneOf) --choice;
    if (choice == 0 || segments[choice - 1].texts.size() != s.texts.size())
      return error(StatusCode::kInvalidArgument,
                   "constraint segment %zu: %zu schemas need a choice of as many before them", i,
                   s.texts.size());
  }
  if (!segments.empty() && segments.back().kind != Kind::kLiteral &&
      segments.back().kind != Kind::kJsonObject)
    return error(StatusCode::kInvalidArgument,
                 "a constraint ends with a literal or a JSON object (it must know its end)");
  return {};
}

Expected<std::shared_ptr<const ObjectSchema>> ObjectSchema::compile(std::string_view text) {
  using Json = nlohmann::json;
  const Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return error(StatusCode::kInvalidArgument, "a schema must be a JSON object");
  const auto props = j.find("properties");
  if (props == j.end() || !props->is_object() || props->size() > kMaxProperties) return nullptr;
  auto s = std::make_shared<ObjectSchema>();
  auto dump = [](const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); };
  for (const auto& [name, p] : props->items()) {
    Property prop;
    const std::string quoted = dump(Json(name));
    prop.key = quoted.substr(1, quoted.size() - 2);
    if (p.is_object()) {
      const Json types = p.contains("type")
                             ? (p["type"].is_array() ? p["type"] : Json::array({p["type"]}))
                             : Json::array();
      for (const Json& t : types) {
        if (!t.is_string()) continue;
        const std::string n = t.get<std::string>();
        prop.types |= n == "string"    ? kString
                      : n == "number"  ? kNumber
                      : n == "integer" ? kInteger
                      : n == "boolean" ? kBoolean
                      : n == "null"    ? kNull
                      : n == "object"  ? kObject
                      : n == "array"   ? kArray
                                       : 0;
      }
      if (p.contains("enum") && p["enum"].is_array() && !p["enum"].empty() &&
          p["enum"].size() <= 64)
        for (const Json& v : p["enum"]) prop.enum_values.push_back(dump(v));
      if (p.contains("const")) prop.enum_values = {dump(p["const"])};
    }
    s->properties.push_back(std::move(prop));
  }
  if (const auto req = j.find("required"); req != j.end() && req->is_array()) {
    for (const Json& r : *req) {
      if (!r.is_string()) continue;
      const std::string quoted = dump(r);
      for (size_t i = 0; i < s->properties.size(); ++i)
        if (s->properties[i].key == quoted.substr(1, quoted.size() - 2))
          s->required |= uint64_t{1} << i;
    }
  }
  return std::shared_ptr<const ObjectSchema>(std::move(s));
}

Status OutputConstraint::compile() {
  for (size_t i = 0; i < segments.size(); ++i) {
    Segment& s = segments[i];
    if (s.kind != Kind::kJsonObject) continue;
    s.schemas.clear();
    for (const std::string& text : s.texts) {
      auto schema = ObjectSchema::compile(text);
      if (!schema)
        return error(StatusCode::kInvalidArgument, "constraint segment %zu: %s", i,
                     schema.error().message().c_str());
      s.schemas.push_back(*schema);
    }
  }
  return {};
}

bool ConstraintMatcher::any_unseen() const {
  if (!schema_) return true;
  const size_t n = schema_->properties.size();
  const uint64_t all = n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  return seen_ != all;
}

ConstraintMatcher::ConstraintMatcher(const OutputConstraint* c) : c_(c) {
  segment_ = static_cast<size_t>(-1);
  next_segment();  // enters segment 0
}

void ConstraintMatcher::next_segment() {
  ++segment_;
  pos_ = 0;
  space_ = 0;
  if (complete()) return;
  const OutputConstraint::Segment& seg = c_->segments[segment_];
  if (seg.kind == OutputConstraint::Kind::kOneOf) alive_.assign(seg.texts.size(), 1);
  if (seg.kind == OutputConstraint::Kind::kJsonObject)
    schema_ =
        seg.schemas.empty() ? nullptr : seg.schemas[seg.schemas.size() == 1 ? 0 : chosen_].get();
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
          for (size_t i = 0; i < seg.texts.size(); ++i)
            if (alive_[i] && seg.texts[i].size() == pos_) chosen_ = i;
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
        if (!longer) {  // every choice still alive ends here
          for (size_t i = 0; i < seg.texts.size(); ++i)
            if (alive_[i]) chosen_ = i;
          next_segment();
        }
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
  // Bounded digits, so that every number is a finite double (a JSON parser refuses 1e400).
  const Num before = number_;
  if (!number_step(b)) return false;
  if (is_digit(b)) {
    const bool exp = number_ == Num::kExp;
    int& n = exp ? exp_digits_ : digits_;
    if (n >= (exp ? kMaxExpDigits : kMaxDigits)) {
      number_ = before;
      return false;
    }
    ++n;
  }
  return true;
}

bool ConstraintMatcher::number_step(unsigned char b) {
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
  if (depth_ == 1 && prop_ >= 0) {  // a top-level property's value is complete
    seen_ |= uint64_t{1} << prop_;
    prop_ = -1;
  }
  int_only_ = false;
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
    // The top-level object closes only with its required properties.
    if (depth_ == 1 && !all_required_seen()) return false;
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
  // The schema's top level: keys are its properties, values their types or enums.
  const bool top = schema_ != nullptr && depth_ == 1;
  for (;;) {
    switch (json_) {
      case Json::kString:
        if (key_) {  // a top-level key, byte for byte against the unseen properties' names
          const auto& props = schema_->properties;
          if (b == '"') {
            for (size_t i = 0; i < props.size(); ++i)
              if ((alive_keys_ >> i & 1) && props[i].key.size() == key_pos_)
                prop_ = static_cast<int>(i);
            if (prop_ < 0) return false;
            key_ = false;
            json_ = Json::kColon;
            space_ = 0;
            return true;
          }
          uint64_t alive = 0;
          for (size_t i = 0; i < props.size(); ++i)
            if ((alive_keys_ >> i & 1) && props[i].key.size() > key_pos_ &&
                static_cast<unsigned char>(props[i].key[key_pos_]) == b)
              alive |= uint64_t{1} << i;
          if (alive == 0) return false;
          alive_keys_ = alive;
          ++key_pos_;
          return true;
        }
        // Valid UTF-8 only (a token may end inside a character: the next must finish it), and a
        // \u high surrogate only with its low one: what a JSON parser accepts.
        if (utf8_left_ > 0) {
          if (b < utf8_lo_ || b > utf8_hi_) return false;
          --utf8_left_;
          utf8_lo_ = 0x80;
          utf8_hi_ = 0xBF;
          return true;
        }
        if (need_low_ && b != '\\') return false;
        if (b == '"') {
          if (string_is_key_) {
            json_ = Json::kColon;
            space_ = 0;
            return true;
          }
          return end_value();
        }
        if (b == '\\') return json_ = Json::kEscape, true;
        if (b >= 0x80) {
          utf8_lo_ = 0x80;
          utf8_hi_ = 0xBF;
          if (b >= 0xC2 && b <= 0xDF) {
            utf8_left_ = 1;
          } else if (b >= 0xE0 && b <= 0xEF) {
            utf8_left_ = 2;
            if (b == 0xE0) utf8_lo_ = 0xA0;  // no overlong forms
            if (b == 0xED) utf8_hi_ = 0x9F;  // no surrogates
          } else if (b >= 0xF0 && b <= 0xF4) {
            utf8_left_ = 3;
            if (b == 0xF0) utf8_lo_ = 0x90;
            if (b == 0xF4) utf8_hi_ = 0x8F;  // nothing above U+10FFFF
          } else {
            return false;
          }
          return true;
        }
        return b >= 0x20;  // control characters must be escaped
      case Json::kEscape:
        if (need_low_ && b != 'u') return false;
        if (b == 'u') return json_ = Json::kUnicode, json_hex_ = 0, code_unit_ = 0, true;
        if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' ||
            b == 't')
          return json_ = Json::kString, true;
        return false;
      case Json::kUnicode: {
        if (!is_hex(b)) return false;
        code_unit_ = code_unit_ * 16 + (is_digit(b) ? b - '0' : (b | 0x20) - 'a' + 10);
        if (++json_hex_ < 4) return true;
        json_ = Json::kString;
        const bool high = code_unit_ >= 0xD800 && code_unit_ <= 0xDBFF;
        const bool low = code_unit_ >= 0xDC00 && code_unit_ <= 0xDFFF;
        if (need_low_) {
          need_low_ = false;
          return low;
        }
        if (low) return false;  // a low surrogate alone
        need_low_ = high;
        return true;
      }
      case Json::kNumber:
        if (int_only_ && (b == '.' || b == 'e' || b == 'E')) return false;
        if (number_byte(b)) return true;
        if (!number_can_end()) return false;
        end_value();
        continue;  // the number ended; b is what follows it
      case Json::kWord:
        if (static_cast<unsigned char>(word_[word_pos_]) != b) return false;
        if (word_[++word_pos_] == '\0') end_value();
        return true;
      case Json::kEnum: {  // one of the property's enum values, byte for byte
        const auto& values = schema_->properties[prop_].enum_values;
        bool completed = false;
        uint64_t alive = 0;
        for (size_t i = 0; i < values.size(); ++i) {
          if (!(alive_enum_ >> i & 1)) continue;
          if (values[i].size() == enum_pos_) completed = true;
          if (values[i].size() > enum_pos_ && static_cast<unsigned char>(values[i][enum_pos_]) == b)
            alive |= uint64_t{1} << i;
        }
        if (alive == 0) {
          if (!completed) return false;
          end_value();
          continue;  // the value ended; b is what follows it
        }
        alive_enum_ = alive;
        ++enum_pos_;
        return true;
      }
      case Json::kValue:
      case Json::kValueOrClose:
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ']' && json_ == Json::kValueOrClose) return close('[');
        if (top && prop_ >= 0) {
          const ObjectSchema::Property& p = schema_->properties[prop_];
          if (!p.enum_values.empty()) {
            json_ = Json::kEnum;
            alive_enum_ = p.enum_values.size() >= 64 ? ~uint64_t{0}
                                                     : (uint64_t{1} << p.enum_values.size()) - 1;
            enum_pos_ = 0;
            continue;
          }
          using T = ObjectSchema;
          const uint8_t need = b == '"'                  ? T::kString
                               : b == '{'                ? T::kObject
                               : b == '['                ? T::kArray
                               : b == '-' || is_digit(b) ? (T::kNumber | T::kInteger)
                               : b == 't' || b == 'f'    ? T::kBoolean
                               : b == 'n'                ? T::kNull
                                                         : 0;
          if (p.types != 0 && (p.types & need) == 0) return false;
          int_only_ = (p.types & T::kInteger) && !(p.types & T::kNumber);
        }
        if (b == '"') return json_ = Json::kString, string_is_key_ = false, true;
        if (b == '{' || b == '[') return open(static_cast<char>(b));
        digits_ = is_digit(b) ? 1 : 0;
        exp_digits_ = 0;
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
        if (b != '"') return false;
        if (top) {
          if (!any_unseen()) return false;
          const size_t n = schema_->properties.size();
          const uint64_t all = n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
          key_ = true;
          alive_keys_ = all & ~seen_;
          key_pos_ = 0;
          json_ = Json::kString;
          return true;
        }
        return json_ = Json::kString, string_is_key_ = true, true;
      case Json::kColon:
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ':') return json_ = Json::kValue, true;
        return false;
      case Json::kCommaOrClose:
        if (depth_ == 0) return false;  // the object is complete
        if (is_space(b)) return space();
        space_ = 0;
        if (b == ',') {
          if (top && !any_unseen()) return false;  // every property given: only '}' is left
          return json_ = stack_[depth_ - 1] == '{' ? Json::kKey : Json::kValue, true;
        }
        if (b == '}') return close('{');
        if (b == ']') return close('[');
        return false;
    }
  }
}

}  // namespace ponder::worker
