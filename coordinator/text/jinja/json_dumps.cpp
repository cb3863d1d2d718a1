// Python json.dumps emulation for template Values.
#include "coordinator/text/jinja/json_dumps.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

void append_hex_escape(std::string& out, unsigned code) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\u%04x", code);
  out += buf;
}

void append_json_string(std::string& out, std::string_view s, const JsonDumpOptions& options) {
  out += '"';
  for (char32_t c : py::decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (options.ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        append_hex_escape(out, 0xD800 | static_cast<unsigned>(v >> 10));
        append_hex_escape(out, 0xDC00 | static_cast<unsigned>(v & 0x3FF));
      } else {
        append_hex_escape(out, static_cast<unsigned>(c));
      }
      continue;
    }
    py::append_utf8(out, c);
  }
  out += '"';
}

std::string float_json(double d) {
  if (d != d) return "NaN";
  if (d == std::numeric_limits<double>::infinity()) return "Infinity";
  if (d == -std::numeric_limits<double>::infinity()) return "-Infinity";
  return py::float_repr(d);
}

// json.dumps turns non-string keys into strings: True -> "true", None -> "null", 1.5 -> "1.5".
std::string key_string(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kString:
      return key.as_string();
    case Value::Kind::kBool:
      return key.as_bool() ? "true" : "false";
    case Value::Kind::kNone:
      return "null";
    case Value::Kind::kInt:
      return std::to_string(key.as_int());
    case Value::Kind::kFloat:
      return float_json(key.as_float());
    default:
      fail("TypeError: keys must be str, int, float, bool or None, not " +
           std::string(key.type_name()));
  }
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& options) : options_(options) {
    bool indented = options.indent.has_value();
    item_sep_ = options.item_separator.value_or(indented ? "," : ", ");
    key_sep_ = options.key_separator.value_or(": ");
  }

  void dump(const Value& v, int depth) {
    switch (v.kind()) {
      case Value::Kind::kNone:
        out_ += "null";
        return;
      case Value::Kind::kBool:
        out_ += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out_ += std::to_string(v.as_int());
        return;
      case Value::Kind::kFloat:
        out_ += float_json(v.as_float());
        return;
      case Value::Kind::kString:
        append_json_string(out_, v.as_string(), options_);
        return;
      case Value::Kind::kList:
      case Value::Kind::kTuple:
        dump_list(v.as_list(), depth);
        return;
      case Value::Kind::kDict:
        dump_dict(v.as_dict(), depth);
        return;
      default:
        fail("TypeError: Object of type " + std::string(v.type_name()) +
             " is not JSON serializable");
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void newline(int depth) {
    if (!options_.indent) return;
    out_ += '\n';
    for (int i = 0; i < depth; ++i) out_ += *options_.indent;
  }

  void dump_list(const ValueList& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(depth + 1);
      dump(items[i], depth + 1);
    }
    newline(depth);
    out_ += ']';
  }

  void dump_dict(const Dict& d, int depth) {
    if (d.empty()) {
      out_ += "{}";
      return;
    }
    std::vector<std::pair<std::string, const Value*>> entries;
    entries.reserve(d.size());
    for (const auto& [key, value] : d.items()) {
      if (options_.sort_keys && !key.is_string()) {
        fail("TypeError: '<' not supported between instances of non-str dict keys");
      }
      entries.emplace_back(key_string(key), &value);
    }
    if (options_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(depth + 1);
      append_json_string(out_, entries[i].first, options_);
      out_ += key_sep_;
      dump(*entries[i].second, depth + 1);
    }
    newline(depth);
    out_ += '}';
  }

  const JsonDumpOptions& options_;
  std::string item_sep_;
  std::string key_sep_;
  std::string out_;
};

}  // namespace

std::string json_dumps(const Value& value, const JsonDumpOptions& options) {
  Dumper dumper(options);
  dumper.dump(value, 0);
  std::string text = dumper.take();
  if (!options.html_safe) return text;
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      case '\'':
        out += "\\u0027";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

}  // namespace ponder::text::jinja
