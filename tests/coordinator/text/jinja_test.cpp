// Jinja interpreter tests: every construct case of tests/data/chat_templates/jinja_cases.json
// (expected output rendered by Python's jinja2) byte for byte, plus error reporting.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/text/jinja/py_string.h"
#include "coordinator/text/jinja/template.h"
#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {
namespace {

using nlohmann::ordered_json;

ordered_json load_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ordered_json::parse(buffer.str());
}

const ordered_json& construct_cases() {
  static const ordered_json cases =
      load_json(std::string(PONDER_TEST_DATA_DIR) + "/chat_templates/jinja_cases.json");
  return cases;
}

// The fixed clock the fixture generator gave strftime_now(): 2024-07-26 13:45:07.
std::tm fixed_now() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 13;
  t.tm_min = 45;
  t.tm_sec = 7;
  std::time_t seconds = timegm(&t);  // normalizes tm_wday / tm_yday
  gmtime_r(&seconds, &t);
  return t;
}

TemplateOptions options_for(const ordered_json& c) {
  TemplateOptions options;
  options.clock = fixed_now;
  if (c.at("env") == "transformers") {
    options.trim_blocks = true;
    options.lstrip_blocks = true;
    options.tojson = TojsonStyle::kTransformers;
  } else {
    options.trim_blocks = c.at("trim_blocks").get<bool>();
    options.lstrip_blocks = c.at("lstrip_blocks").get<bool>();
  }
  return options;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& c : construct_cases().at("cases")) names.push_back(c.at("name"));
  return names;
}

const ordered_json& find_case(const std::string& name) {
  for (const auto& c : construct_cases().at("cases")) {
    if (c.at("name") == name) return c;
  }
  throw std::runtime_error("no case " + name);
}

class JinjaConstructTest : public testing::TestWithParam<std::string> {};

TEST_P(JinjaConstructTest, MatchesJinja2) {
  const ordered_json& c = find_case(GetParam());
  const std::string source = c.at("template");
  SCOPED_TRACE("template: " + source);
  Expected<Template> tmpl = Template::parse(source, options_for(c));
  if (c.contains("error")) {
    // jinja2 failed; ponder must fail too, at parse or render time.
    if (!tmpl) return;
    Expected<std::string> out = tmpl->render(c.at("variables"));
    EXPECT_FALSE(out.has_value()) << "jinja2 raised " << c.at("error") << " but ponder rendered '"
                                  << *out << "'";
    return;
  }
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().to_string();
  Expected<std::string> out = tmpl->render(c.at("variables"));
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, c.at("expected").get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, JinjaConstructTest, testing::ValuesIn(case_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(JinjaFixtures, CoverEveryConstructTheBriefNames) {
  EXPECT_GE(construct_cases().at("cases").size(), 80u);
}

std::string render_or_error(std::string_view source,
                            const ordered_json& vars = ordered_json::object(),
                            TemplateOptions options = {}) {
  Expected<Template> tmpl = Template::parse(source, std::move(options));
  if (!tmpl) return "ERROR " + tmpl.error().message();
  Expected<std::string> out = tmpl->render(vars);
  if (!out) return "ERROR " + out.error().message();
  return *out;
}

TEST(JinjaErrors, UnsupportedTagNamesLineColumnAndTag) {
  std::string msg = render_or_error("hello\n  {% include 'other.jinja' %}");
  EXPECT_NE(msg.find("line 2, column 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported tag 'include'"), std::string::npos) << msg;
  msg = render_or_error("{% extends 'base' %}");
  EXPECT_NE(msg.find("unsupported tag 'extends'"), std::string::npos) << msg;
}

TEST(JinjaErrors, UnknownFilterAndTestNameTheirLine) {
  std::string msg = render_or_error("a\nb {{ x | wordwrap }}", {{"x", "y"}});
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("filter 'wordwrap'"), std::string::npos) << msg;
  msg = render_or_error("{% if x is prime %}{% endif %}", {{"x", 3}});
  EXPECT_NE(msg.find("test 'prime'"), std::string::npos) << msg;
  // An unknown filter in a branch that never runs does not break the template (as in jinja2).
  EXPECT_EQ(render_or_error("{% if false %}{{ x | wordwrap }}{% endif %}ok"), "ok");
}

TEST(JinjaErrors, RecursiveLoopsAreRejectedClearly) {
  std::string msg = render_or_error("{% for x in xs recursive %}{% endfor %}");
  EXPECT_NE(msg.find("recursive"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 1"), std::string::npos) << msg;
}

TEST(JinjaErrors, SyntaxErrorsNameTheLine) {
  std::string msg = render_or_error("ok\n\n{{ 1 + }}");
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  msg = render_or_error("{% if true %}\nnever closed");
  EXPECT_NE(msg.find("endif"), std::string::npos) << msg;
  msg = render_or_error("{% endfor %}");
  EXPECT_NE(msg.find("'endfor'"), std::string::npos) << msg;
  msg = render_or_error("{{ 'unterminated }}");
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  std::string msg = render_or_error("x\n{{ raise_exception('Roles must alternate') }}");
  EXPECT_NE(msg.find("template raised an exception: Roles must alternate"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
}

TEST(JinjaErrors, UndefinedMisuseNamesTheVariable) {
  std::string msg = render_or_error("{{ message.content }}");
  EXPECT_NE(msg.find("'message' is undefined"), std::string::npos) << msg;
  msg = render_or_error("{{ m.content.strip() }}", {{"m", {{"role", "user"}}}});
  EXPECT_NE(msg.find("has no attribute 'content'"), std::string::npos) << msg;
}

TEST(JinjaErrors, RunawayRecursionFails) {
  std::string msg = render_or_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  EXPECT_NE(msg.find("RecursionError"), std::string::npos) << msg;
}

TEST(JinjaErrors, PathologicalNestingFailsCleanly) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(render_or_error(deep).find("nested more than"), std::string::npos);
  std::string chain = "{{ 'a'";
  for (int i = 0; i < 5000; ++i) chain += " ~ 'a'";
  chain += " }}";
  EXPECT_NE(render_or_error(chain).find("nested too deeply"), std::string::npos);
  EXPECT_NE(render_or_error("{{ 'x' * 10000000000 }}").find("too large"), std::string::npos);
  EXPECT_NE(render_or_error("{{ range(1000000) | length }}").find("MAX_RANGE"), std::string::npos);
}

// Found by fuzz/chat_template_fuzzer (UBSan): a '%2000000000000s' width overflowed int while it
// was read, and a wide '%d' / '%f' was cut at a fixed buffer. Widths are bounded and exact;
// the expected strings are Python's.
TEST(JinjaFormat, WidthsPrecisionsAndEdgeValuesMatchPython) {
  const std::pair<const char*, const char*> cases[] = {
      {"{{ '%*s|' % (-5, 'a') }}", "a    |"},
      {"{{ '%.*s|' % (-1, 'abc') }}", "|"},
      {"{{ '%.*f' % (-1, 2.5) }}", "2"},
      {"{{ '%d' % 1e18 }}", "1000000000000000000"},
      {"{{ '%x' % -9223372036854775807 - 1 }}", ""},
      {"{{ '%x' % (-9223372036854775807 - 1) }}", "-8000000000000000"},
      {"{{ ('%.600f' % 1.5)[:8] }}|{{ ('%.600f' % 1.5) | length }}", "1.500000|602"},
      {"{{ ('%700d' % 7) | length }}", "700"},
      {"{{ '{:.30}'.format('abc') }}", "abc"},
      {"{{ (-1) ** 3 }} {{ (-1) ** 4 }} {{ 0 ** 0 }} {{ 0 ** 5 }} {{ 1 ** 99 }}", "-1 1 1 0 1"},
  };
  for (const auto& [source, expected] : cases) {
    if (std::string(expected).empty()) {
      // '%x' % int then '- 1' on the string: Python's TypeError.
      EXPECT_NE(render_or_error(source).find("TypeError"), std::string::npos) << source;
      continue;
    }
    EXPECT_EQ(render_or_error(source), expected) << source;
  }
  EXPECT_NE(render_or_error("{{ '%0000000000000000000002000000000000000000000s' % 'a' }}")
                .find("above ponder's limit"),
            std::string::npos);
  EXPECT_NE(render_or_error("{{ '{:99999999999}'.format('a') }}").find("above ponder's limit"),
            std::string::npos);
  EXPECT_NE(
      render_or_error("{{ '%*s' % (-9223372036854775807 - 1, 'a') }}").find("above ponder's limit"),
      std::string::npos);
  // The same cap on every width a template asks for (a 45e9-wide ljust ran for minutes).
  for (const char* source :
       {"{{ 'ab'.ljust(45555555555, '.') }}", "{{ 'a'.rjust(2000000) }}",
        "{{ 'a'.zfill(2000000) }}", "{{ 'a' | center(2000000) }}", "{{ 'a\nb' | indent(2000000) }}",
        "{{ [1] | tojson(indent=2000000) }}", "{{ [1] | batch(2000000, 0) | list }}"}) {
    EXPECT_NE(render_or_error(source).find("above ponder's limit"), std::string::npos) << source;
  }
  EXPECT_EQ(render_or_error("{{ 'ab'.ljust(5, '.') }}|{{ 'a' | center(5) }}|{{ '7'.zfill(3) }}"),
            "ab...|  a  |007");
  // Found by the fuzzer (ASan): '{:n}' handed "%n" to printf, which then wrote through a pointer.
  for (const char* source :
       {"{{ '{:n}'.format(42) }}", "{{ '{:p}'.format(4.5) }}", "{{ '%n' % 1 }}"})
    EXPECT_NE(render_or_error(source).find("format character"), std::string::npos) << source;
  EXPECT_NE(render_or_error("{{ '%d' % 1e300 }}").find("OverflowError"), std::string::npos);
  EXPECT_NE(render_or_error("{{ '%d' % (1e309 - 1e309) }}").find("NaN"), std::string::npos);
}

TEST(JinjaTemplate, RendersRepeatedlyAndFromPlainJson) {
  Expected<Template> tmpl = Template::parse("{% for m in messages %}{{ m.role }};{% endfor %}");
  ASSERT_TRUE(tmpl.has_value());
  nlohmann::json sorted = {{"messages", {{{"role", "a"}}, {{"role", "b"}}}}};
  for (int i = 0; i < 3; ++i) {
    Expected<std::string> out = tmpl->render(Value::from_json(sorted));
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, "a;b;");
  }
  EXPECT_FALSE(tmpl->render(Value::from_json(nlohmann::json::array())).has_value());
}

// Found by fuzz/chat_template_fuzzer (LeakSanitizer): every macro closes over the frame that
// holds it, so each render of a template with a macro leaked that frame and all it referred to;
// so did a namespace stored in itself and loop.changed() given the loop. What the render was
// given must be released with the render.
TEST(JinjaTemplate, RenderReleasesWhatItsCyclesHeld) {
  const std::pair<const char*, const char*> cases[] = {
      {"{% macro m(a) %}{{ a }}{{ f() }}{% endmacro %}{{ m(1) }}", "1f"},
      {"{% for i in [1] %}{% macro m() %}{{ f() }}{% endmacro %}{{ m() }}{% endfor %}", "f"},
      {"{% macro outer() %}<{{ caller() }}>{% endmacro %}{% call outer() %}{{ f() }}{% endcall %}",
       "<f>"},
      {"{% set ns = namespace(g=f) %}{% set ns.me = ns %}{{ ns.me.g() }}", "f"},
      {"{% for x in [1, 2] %}{{ loop.changed(loop, f) }}{% endfor %}", "TrueTrue"},
  };
  for (const auto& [source, expected] : cases) {
    auto token = std::make_shared<int>(0);
    const std::weak_ptr<int> watch = token;
    {
      Expected<Template> tmpl = Template::parse(source);
      ASSERT_TRUE(tmpl.has_value()) << source << ": " << tmpl.error().to_string();
      Dict variables;
      variables.set("f", Value::function("f", [token](CallArgs&) { return Value::string("f"); }));
      token.reset();
      Expected<std::string> out = tmpl->render(Value::dict(std::move(variables)));
      ASSERT_TRUE(out.has_value()) << source << ": " << out.error().to_string();
      EXPECT_EQ(*out, expected) << source;
    }
    EXPECT_TRUE(watch.expired()) << source << " kept its variables after the render";
  }
}

TEST(JinjaValue, FromJsonKeepsOrderAndTypes) {
  ordered_json j =
      ordered_json::parse(R"({"z": 1, "a": [true, null, 1.5, "s"], "big": 18446744073709551615})");
  Value v = Value::from_json(j);
  ASSERT_TRUE(v.is_dict());
  EXPECT_EQ(v.str(), "{'z': 1, 'a': [True, None, 1.5, 's'], 'big': 1.8446744073709552e+19}");
}

TEST(JinjaPyString, FloatReprMatchesPython) {
  EXPECT_EQ(py::float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(py::float_repr(1e22), "1e+22");
  EXPECT_EQ(py::float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(py::float_repr(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(py::float_repr(5e-324), "5e-324");
  EXPECT_EQ(py::float_repr(0.0001), "0.0001");
  EXPECT_EQ(py::float_repr(100.0), "100.0");
  EXPECT_EQ(py::float_repr(-2.5), "-2.5");
}

TEST(JinjaPyString, SplitStripAndCaseFollowPython) {
  EXPECT_EQ(py::split("  a \u3000b  ", std::nullopt, -1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(py::rsplit("a b c", std::nullopt, 1), (std::vector<std::string>{"a b", "c"}));
  EXPECT_EQ(py::strip("\u00a0 x \n", std::nullopt, true, true), "x");
  EXPECT_EQ(py::upper("straße ǆ"), "STRASSE Ǆ");
  EXPECT_EQ(py::title("ǆemal o'neil"), "ǅemal O'Neil");
  EXPECT_EQ(py::length("a😀é"), 3u);
  EXPECT_EQ(py::repr("it's"), "\"it's\"");
}

}  // namespace
}  // namespace ponder::text::jinja
