// OutputConstraint: a shape the answer must take, enforced while sampling — what makes
// `tool_choice: "required"` or a named function a promise rather than a hope. The answer (after
// the thinking block, if the sample has one) must be, byte for byte, the constraint's segments in
// order, then end of sequence:
//
//   kSpace       up to kMaxSpace whitespace bytes (' ', '\n', '\t', '\r'), possibly none
//   kLiteral     texts[0] exactly
//   kOneOf       one of texts exactly (e.g. the offered function names)
//   kJsonObject  one JSON object (RFC 8259: strings with escapes, numbers, true/false/null,
//                nesting up to kMaxDepth), whitespace runs of at most kMaxSpace bytes; with a
//                schema (texts: a JSON Schema, or one per choice of the kOneOf before it), its
//                top level is held to the schema's properties (no other keys, each once), their
//                types and enums, and its required keys (the object cannot close without them)
//
// ConstraintMatcher follows it a byte at a time; the engine bans, at each step, every token
// whose bytes would leave the shape, and end of sequence until the shape is complete. Because
// the check is on bytes, any tokenization of the shape is allowed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::worker {

// What a kJsonObject segment enforces of a JSON Schema: the top-level object's properties (their
// names as JSON writes them, types, enums) and which are required. Values below the top level
// are checked as JSON only.
struct ObjectSchema {
  enum Type : uint8_t {
    kString = 1,
    kNumber = 2,
    kInteger = 4,
    kBoolean = 8,
    kNull = 16,
    kObject = 32,
    kArray = 64,
  };
  struct Property {
    std::string key;                       // escaped, without the quotes
    uint8_t types = 0;                     // Type bits; 0: any
    std::vector<std::string> enum_values;  // JSON texts; empty: any
  };
  static constexpr size_t kMaxProperties = 64;
  std::vector<Property> properties;
  uint64_t required = 0;  // bit i: properties[i]

  // nullptr (JSON only) for a schema without "properties" or with more than kMaxProperties;
  // kInvalidArgument when the text is not a JSON object.
  static Expected<std::shared_ptr<const ObjectSchema>> compile(std::string_view schema_json);
};

struct OutputConstraint {
  enum class Kind { kSpace = 0, kLiteral = 1, kOneOf = 2, kJsonObject = 3 };  // the wire's numbers
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::vector<std::string> texts;  // kLiteral: one; kOneOf: the choices; kJsonObject: schemas
    std::vector<std::shared_ptr<const ObjectSchema>> schemas;  // compile()'s, from texts
  };
  std::vector<Segment> segments;

  bool empty() const { return segments.empty(); }
  // kInvalidArgument for a literal without exactly one text, an empty kOneOf or an empty text,
  // a kJsonObject with several schemas whose last kOneOf before it has not as many choices.
  Status validate() const;
  // Compiles the kJsonObject segments' schemas (after validate()); errors name the segment.
  Status compile();
};

class ConstraintMatcher {
 public:
  static constexpr int kMaxDepth = 16;
  static constexpr int kMaxSpace = 4;
  static constexpr int kMaxDigits = 32;    // of a number's integer and fraction parts together
  static constexpr int kMaxExpDigits = 2;  // of its exponent: every number is a finite double

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
    kEnum,          // a top-level value that must be one of its property's enum values
  };
  enum class Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kE, kESign, kExp };

  bool end_value();  // a value just ended: what the container expects next
  bool all_required_seen() const {
    return !schema_ || (seen_ & schema_->required) == schema_->required;
  }
  bool any_unseen() const;            // a top-level property is still to come
  bool number_byte(unsigned char b);  // false: the number cannot take it (it may have ended)
  bool number_step(unsigned char b);  // number_byte's grammar, without the digit bounds
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
  uint32_t code_unit_ = 0;                   // the \uXXXX being read
  bool need_low_ = false;                    // a high surrogate was read: its low one must follow
  int utf8_left_ = 0;                        // continuation bytes the current character still needs
  uint8_t utf8_lo_ = 0x80, utf8_hi_ = 0xBF;  // the range of the next one
  Num number_ = Num::kMinus;
  int digits_ = 0, exp_digits_ = 0;
  const char* word_ = nullptr;
  int word_pos_ = 0;
  int depth_ = 0;
  std::array<char, kMaxDepth> stack_{};   // '{' or '['
  bool started_ = false;                  // the top-level '{' was read
  size_t chosen_ = 0;                     // which choice the last kOneOf took
  const ObjectSchema* schema_ = nullptr;  // the current kJsonObject's, for chosen_
  uint64_t seen_ = 0;                     // top-level properties given
  int prop_ = -1;                         // the top-level property whose value is being read
  bool key_ = false;                      // reading a top-level key against the schema
  uint64_t alive_keys_ = 0;               // properties whose name the key so far begins
  size_t key_pos_ = 0;
  bool int_only_ = false;    // the top-level number is an integer
  bool in_enum_ = false;     // the top-level value is one of the property's enum
  uint64_t alive_enum_ = 0;  // enum values the value so far begins
  size_t enum_pos_ = 0;
};

}  // namespace ponder::worker
