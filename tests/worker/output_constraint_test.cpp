// ConstraintMatcher: the JSON object recognizer accepts what JSON accepts (and every prefix of
// it) and refuses the rest; literals, choices (one a prefix of another) and bounded whitespace.
#include "worker/engine/output_constraint.h"

#include <gtest/gtest.h>

#include <string>

namespace ponder::worker {
namespace {

using Kind = OutputConstraint::Kind;

OutputConstraint tool_call(std::vector<std::string> names) {
  return {.segments = {{Kind::kSpace, {}},
                       {Kind::kLiteral, {"<tool_call>\n{\"name\": \""}},
                       {Kind::kOneOf, std::move(names)},
                       {Kind::kLiteral, {"\", \"arguments\": "}},
                       {Kind::kJsonObject, {}},
                       {Kind::kLiteral, {"}\n</tool_call>"}}}};
}

// Whole text matched (every prefix too) and complete at the end.
bool matches(const OutputConstraint& c, const std::string& text) {
  ConstraintMatcher m(&c);
  for (char ch : text) {
    if (m.complete() || !m.feed(std::string_view(&ch, 1))) return false;
  }
  return m.complete();
}

TEST(ConstraintMatcher, AcceptsJsonObjectsAndTheirPrefixes) {
  const OutputConstraint json{.segments = {{Kind::kJsonObject, {}}}};
  for (const char* ok :
       {"{}", "{ }", R"({"a":1})", R"({"a": -0.5e+10, "b": [1, 2.25, [], {}], "c": {"d": null}})",
        R"({"s": "q\"\\\/\b\f\n\r\t\u00e9 é"})", R"({"t": true, "f": false, "z": 0, "e": 1E5})",
        "{\n  \"a\" : [ 1 , 2 ]\n}"}) {
    EXPECT_TRUE(matches(json, ok)) << ok;
  }
  for (const char* bad : {"[]", "1", R"({"a"})", R"({"a":})", R"({"a":01})", R"({"a":1.})",
                          R"({"a":-})", R"({"a":tru})", R"({"a":1,})", R"({a:1})", R"({"a":"x\q"})",
                          R"({"a":"\u12g4"})", "{\"a\":\"\x01\"}", R"({"a":[1,]})", R"({"a":1]})",
                          R"({"a":1}})", "{     }", R"({"a":1} )"}) {
    EXPECT_FALSE(matches(json, bad)) << bad;
  }
  // Strings are valid UTF-8 and surrogates pair, as a JSON parser wants them.
  for (const char* ok :
       {"{\"s\": \"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"}", R"({"s": "\ud83d\ude00"})"}) {
    EXPECT_TRUE(matches(json, ok)) << ok;
  }
  for (const char* bad : {"{\"s\": \"\xc3\"}", "{\"s\": \"\xc0\xaf\"}", "{\"s\": \"\xed\xa0\x80\"}",
                          "{\"s\": \"\xf4\x90\x80\x80\"}", "{\"s\": \"\xff\"}",
                          R"({"s": "\ud83d"})", R"({"s": "\ude00"})", R"({"s": "\ud83dx"})"}) {
    EXPECT_FALSE(matches(json, bad)) << bad;
  }
  // Numbers stay finite doubles: a parser refuses 1e400.
  EXPECT_TRUE(matches(json, R"({"n": -1234567890123456789012345678901.5e99})"));
  for (const char* bad :
       {R"({"n": 1e400})", R"({"n": 1e-400})", R"({"n": 123456789012345678901234567890123})"})
    EXPECT_FALSE(matches(json, bad)) << bad;
  // Nesting is bounded.
  std::string deep = "{\"a\":";
  for (int i = 0; i < ConstraintMatcher::kMaxDepth; ++i) deep += "[";
  EXPECT_FALSE(matches(json, deep));
}

TEST(ConstraintMatcher, ACallToOneOfTheOfferedFunctions) {
  const OutputConstraint c = tool_call({"get", "get_weather", "search"});
  EXPECT_TRUE(matches(c,
                      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                      "\"Paris\"}}\n</tool_call>"));
  EXPECT_TRUE(matches(c, "\n\n<tool_call>\n{\"name\": \"get\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(matches(c, "<tool_call>\n{\"name\": \"ge\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(matches(c, "<tool_call>\n{\"name\": \"rm\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(matches(c, "Sure! <tool_call>"));
  EXPECT_FALSE(matches(c, "     <tool_call>"));  // more whitespace than kMaxSpace
  // Not complete before the end; nothing after it.
  ConstraintMatcher m(&c);
  EXPECT_TRUE(m.feed("<tool_call>\n{\"name\": \"search\", \"arguments\": {}}"));
  EXPECT_FALSE(m.complete());
  EXPECT_TRUE(m.feed("\n</tool_call>"));
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.feed(" "));
}

// A schema holds the top level of the object to its properties, their types and enums, and its
// required keys; below the top level values are JSON only.
TEST(ConstraintMatcher, ArgumentsFollowTheFunctionsSchema) {
  OutputConstraint c{.segments = {{Kind::kOneOf, {"a", "b"}},
                                  {Kind::kLiteral, {":"}},
                                  {Kind::kJsonObject,
                                   {R"({"type": "object", "properties": {
                                         "city": {"type": "string"},
                                         "unit": {"enum": ["celsius", "fahrenheit"]},
                                         "days": {"type": "integer"},
                                         "at": {"type": ["number", "null"]},
                                         "opts": {"type": "object"}},
                                       "required": ["city"]})",
                                    R"({"type": "object", "properties": {}})"}}}};
  ASSERT_TRUE(c.validate().ok());
  ASSERT_TRUE(c.compile().ok());
  for (const char* ok :
       {R"(a:{"city": "Paris"})", R"(a:{"city":"Paris","unit":"celsius"})",
        R"(a:{"days": 3, "city": "x", "at": null})",
        R"(a:{ "city" : "a" , "unit" : "fahrenheit" })",
        R"(a:{"at": -2.5e3, "city": "x", "opts": {"city": 1, "any": [true]}})", "b:{}", "b:{ }"}) {
    EXPECT_TRUE(matches(c, ok)) << ok;
  }
  for (const char* bad :
       {"a:{}", R"(a:{"unit": "celsius"})", R"(a:{"town": "x", "city": "y"})", R"(a:{"city": 5})",
        R"(a:{"city": "a", "city": "b"})", R"(a:{"unit": "kelvin", "city": "a"})",
        R"(a:{"days": 1.5, "city": "a"})", R"(a:{"days": 1e3, "city": "a"})", R"(a:{"city": "a",})",
        R"(a:{"at": "now", "city": "a"})", R"(b:{"city": "a"})", R"(a:{"cit": "a"})"}) {
    EXPECT_FALSE(matches(c, bad)) << bad;
  }
  // Every property given: only the close may follow.
  ConstraintMatcher m(&c);
  EXPECT_TRUE(m.feed(R"(a:{"city": "a", "unit": "celsius", "days": 1, "at": 0, "opts": {})"));
  ConstraintMatcher comma = m;
  EXPECT_FALSE(comma.feed(","));
  EXPECT_TRUE(m.feed("}"));
  EXPECT_TRUE(m.complete());
  // A schema that is not a JSON object is an error; one without properties is JSON only.
  OutputConstraint broken{.segments = {{Kind::kJsonObject, {"[1]"}}}};
  EXPECT_FALSE(broken.compile().ok());
  OutputConstraint loose{.segments = {{Kind::kJsonObject, {R"({"type": "object"})"}}}};
  ASSERT_TRUE(loose.compile().ok());
  EXPECT_TRUE(matches(loose, R"({"anything": [1, {"x": null}]})"));
}

TEST(OutputConstraint, ValidateNamesTheSegment) {
  EXPECT_TRUE(tool_call({"f"}).validate().ok());
  EXPECT_FALSE((OutputConstraint{.segments = {{Kind::kOneOf, {}}}}).validate().ok());
  EXPECT_FALSE(
      (OutputConstraint{.segments = {{Kind::kOneOf, {"a"}}, {Kind::kJsonObject, {"{}", "{}"}}}})
          .validate()
          .ok());
  EXPECT_FALSE((OutputConstraint{.segments = {{Kind::kLiteral, {""}}}}).validate().ok());
  EXPECT_FALSE((OutputConstraint{.segments = {{Kind::kLiteral, {"a"}}, {Kind::kSpace, {}}}})
                   .validate()
                   .ok());
}

}  // namespace
}  // namespace ponder::worker
