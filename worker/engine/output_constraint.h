// OutputConstraint: a shape the answer must take, enforced while sampling — what makes
// `tool_choice: "required"` or a named function a promise rather than a hope. The answer (after
// the thinking block, if the sample has one) must be, byte for byte, the constraint's segments in
// order, then end of sequence:
//
//   kSpace       up to kMaxSpace whitespace bytes (' ', '\n', '\t', '\r'), possibly none
//   kLiteral     texts[0] exactly
//   kOneOf       one of texts exactly (e.g. the offered function names)
//   kJsonObject  one JSON object (RFC 8259: strings with escapes, numbers, true/false/null,
//                nesting up to kMaxDepth), whitespace runs of at most kMaxSpace bytes
//
// ConstraintMatcher follows it a byte at a time; the engine bans, at each step, every token
// whose bytes would leave the shape, and end of sequence until the shape is complete. Because
// the check is on bytes, any tokenization of the shape is allowed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::worker {

struct OutputConstraint {
  enum class Kind { kSpace = 0, kLiteral = 1, kOneOf = 2, kJsonObject = 3 };  // the wire's numbers
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::vector<std::string> texts;  // kLiteral: one; kOneOf: the choices
  };
  std::vector<Segment> segments;

  bool empty() const { return segments.empty(); }
  // kInvalidArgument for a literal without exactly one text, an empty kOneOf or an empty text.
  Status validate() const;
};

class ConstraintMatcher {
 public:
  static constexpr int kMaxDepth = 16;
  static constexpr int kMaxSpace = 4;

  // `c` must be valid and outlive the matcher.
  explicit ConstraintMatcher(const OutputConstraint* c);

  // Consumes `bytes`; false (and the matcher is then unusable) when they leave the shape.
  bool feed(std::string_view bytes);
  // The whole shape has been matched: only end of sequence may follow.
  bool complete() const { return segment_ >= c_->segments.size(); }

 private:
  bool feed_byte(unsigned char b);
  bool json_byte(unsigned char b);
  void next_segment();

  // JSON: what the recognizer expects next.
  enum class Json : uint8_t {
    kValue,         // a value (after ':', or ',' in an array)
    kValueOrClose,  // after '[': a value or ']'
    kKeyOrClose,    // after '{': a key or '}'
    kKey,           // after ',' in an object: a key
    kColon,         // after a key
    kCommaOrClose,  // after a value
    kString,        // inside a string
    kEscape,        // after '\'
    kUnicode,       // inside \uXXXX (json_hex_ hex digits read)
    kNumber,        // inside a number (number_ says where)
    kWord,          // inside true/false/null (word_ and word_pos_)
  };
  enum class Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kE, kESign, kExp };

  bool end_value();                   // a value just ended: what the container expects next
  bool number_byte(unsigned char b);  // false: the number cannot take it (it may have ended)
  bool number_can_end() const;

  const OutputConstraint* c_;
  size_t segment_ = 0;
  size_t pos_ = 0;              // bytes of the current literal / choice matched
  std::vector<uint8_t> alive_;  // kOneOf: which choices still match
  int space_ = 0;               // whitespace bytes in the current run
  // JSON state.
  Json json_ = Json::kValue;
  bool string_is_key_ = false;
  int json_hex_ = 0;
  Num number_ = Num::kMinus;
  const char* word_ = nullptr;
  int word_pos_ = 0;
  int depth_ = 0;
  std::array<char, kMaxDepth> stack_{};  // '{' or '['
  bool started_ = false;                 // the top-level '{' was read
};

}  // namespace ponder::worker
