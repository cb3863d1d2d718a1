// PCRE2 wrapper for tokenizer regexes (UTF + UCP, JIT) with Oniguruma-compatible escapes and
// Hugging Face's Unicode version for the general-category properties.
#include "coordinator/text/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>
#include <cstring>
#include <optional>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/unicode_property.h"
#include "coordinator/text/unicode_tables.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

namespace {

// A compiled PCRE2 pattern; UnicodeRegex::Code owns and frees it.
struct Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
};

}  // namespace

// One pattern compiled twice where that pays: with PCRE2's own property tables (`engine`: fast,
// and exact for text whose characters have the same categories there as in
// unicode_tables::kCategoryVersion) and in a form exact for all text (`exact`: the changed
// characters as ranges, or explicit ranges only).
struct UnicodeRegex::Code {
  Compiled engine;  // null when PCRE2's tables are of neither version
  Compiled exact;   // null when `engine` is exact for all text
  ~Code() {
    pcre2_code_free(engine.code);
    pcre2_code_free(exact.code);
  }
  const Compiled& for_text(std::string_view text) const {
    if (exact.code == nullptr) return engine;
    if (engine.code == nullptr || has_category_changes(text)) return exact;
    return engine;
  }
};

namespace {

// Per-thread match data (one ovector pair is all find_all needs) and a JIT stack large enough
// for long runs of whitespace under patterns like \s+(?!\S).
class MatchScratch {
 public:
  MatchScratch() {
    data_ = pcre2_match_data_create(1, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    stack_ = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    if (context_ != nullptr && stack_ != nullptr) {
      pcre2_jit_stack_assign(context_, nullptr, stack_);
    }
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(data_);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  pcre2_match_data* data() const { return data_; }
  pcre2_match_context* context() const { return context_; }

 private:
  pcre2_match_data* data_ = nullptr;
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
};

MatchScratch& match_scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// A \p{Name} / \P{Name} / \p{^Name} at p[i] (a backslash): its length, name and negation.
struct PropertyEscape {
  size_t length;
  std::string_view name;
  bool negated;
};

std::optional<PropertyEscape> read_property_escape(std::string_view p, size_t i) {
  if (i + 2 >= p.size() || (p[i + 1] != 'p' && p[i + 1] != 'P') || p[i + 2] != '{') {
    return std::nullopt;
  }
  size_t close = p.find('}', i + 3);
  if (close == std::string_view::npos) return std::nullopt;
  PropertyEscape escape{close + 1 - i, p.substr(i + 3, close - i - 3), p[i + 1] == 'P'};
  if (!escape.name.empty() && escape.name[0] == '^') {
    escape.negated = !escape.negated;
    escape.name.remove_prefix(1);
  }
  return escape;
}

// Rewrites one pattern; see oniguruma_to_pcre2. Tracks character classes and the scopes of
// (?i) so that a property's ranges keep Oniguruma's case rules: outside a class a property
// ignores (?i), inside one it is case-folded like the rest of the class.
class PatternTranslator {
 public:
  PatternTranslator(std::string_view pattern, CategorySource source)
      : p_(pattern), source_(source) {}

  std::string run() {
    const std::string space_body(kWhiteSpaceClassBody);
    out_.reserve(p_.size() + 64);
    size_t i = 0;
    while (i < p_.size()) {
      char c = p_[i];
      if (c == '\\' && i + 1 < p_.size()) {
        char d = p_[i + 1];
        if (d == 'Q') {  // \Q...\E is literal text
          size_t end = p_.find("\\E", i + 2);
          size_t stop = end == std::string_view::npos ? p_.size() : end + 2;
          out_.append(p_.substr(i, stop - i));
          i = stop;
          continue;
        }
        if (std::optional<PropertyEscape> escape = read_property_escape(p_, i)) {
          if (std::optional<CategoryProperty> property = find_category_property(escape->name)) {
            append_property(*property, escape->negated);
            i += escape->length;
            continue;
          }
        }
        if ((d == 'd' || d == 'D') && source_ != CategorySource::kEngine) {  // \d is \p{Nd}
          append_property(*find_category_property("Nd"), d == 'D');
        } else if (d == 's') {
          out_ += in_class_ ? space_body : "[" + space_body + "]";
        } else if (d == 'S' && !in_class_) {
          out_ += "[^" + space_body + "]";
        } else if (d == 'h') {
          out_ += in_class_ ? "0-9a-fA-F" : "[0-9a-fA-F]";
        } else if (d == 'H' && !in_class_) {
          out_ += "[^0-9a-fA-F]";
        } else {
          out_ += c;
          out_ += d;
        }
        i += 2;
        continue;
      }
      if (in_class_) {
        i = class_char(i);
        continue;
      }
      if (c == '[') {
        in_class_ = true;
        class_caseless_ = caseless_;
        out_ += c;
        ++i;
        if (i < p_.size() && p_[i] == '^') out_ += p_[i++];
        if (i < p_.size() && p_[i] == ']') out_ += p_[i++];  // a leading ']' is literal
        continue;
      }
      if (c == '(') {
        i = group_open(i);
        continue;
      }
      if (c == ')' && !scopes_.empty()) {
        caseless_ = scopes_.back();
        scopes_.pop_back();
      }
      out_ += c;
      ++i;
    }
    return std::move(out_);
  }

 private:
  // One character inside a class at p_[i] (not a backslash); returns the next index.
  size_t class_char(size_t i) {
    if (p_[i] == '[' && i + 1 < p_.size() && p_[i + 1] == ':') {  // [:alpha:]
      size_t end = p_.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out_.append(p_.substr(i, end + 2 - i));
        return end + 2;
      }
    }
    if (p_[i] == ']') in_class_ = false;
    out_ += p_[i];
    return i + 1;
  }

  // A '(' at p_[i]: opens a scope, or sets options for the rest of the current one.
  size_t group_open(size_t i) {
    size_t j = i + 1;
    if (j < p_.size() && p_[j] == '?') {
      bool on = true, caseless = caseless_;
      size_t k = j + 1;
      for (; k < p_.size() && (std::isalpha(static_cast<unsigned char>(p_[k])) || p_[k] == '-');
           ++k) {
        if (p_[k] == '-') on = false;
        if (p_[k] == 'i') caseless = on;
      }
      if (k < p_.size() && (p_[k] == ')' || p_[k] == ':')) {  // (?i) or (?i:...)
        if (p_[k] == ':') scopes_.push_back(caseless_);
        caseless_ = caseless;
        out_.append(p_.substr(i, k + 1 - i));
        return k + 1;
      }
    }
    scopes_.push_back(caseless_);  // (...), (?=...), (?<name>...), ...
    out_ += '(';
    return i + 1;
  }

  void append_property(const CategoryProperty& property, bool negated) {
    // Inside a case-insensitive class, Oniguruma folds the property's characters: PCRE2 does so
    // for explicit ranges only (and knows only its own version's case pairs), so such a class
    // always gets ranges and the newer case partners.
    bool folded = in_class_ && class_caseless_;
    std::string engine = (negated ? "\\P{" : "\\p{") + std::string(property.pcre2_name) + "}";
    std::string body;
    if (folded || source_ == CategorySource::kRanges) {
      body = category_class_body(property.categories, negated, folded);
    } else if (source_ == CategorySource::kEngine) {
      out_ += engine;
      return;
    } else if (std::optional<std::string> changes = category_changes_body(property.categories);
               changes && (!negated || !in_class_)) {  // a negated union needs a class of its own
      if (changes->empty()) {
        out_ += engine;
        return;
      }
      if (!in_class_) {
        std::string positive = "\\p{" + std::string(property.pcre2_name) + "}" + *changes;
        append_outside_class(negated ? "[^" + positive + "]" : "[" + positive + "]");
        return;
      }
      body = engine + *changes;
    } else {
      body = category_class_body(property.categories, negated, false);
    }
    if (body.empty()) body = "\\p{Cs}";  // no code point (surrogates never occur in UTF-8)
    if (in_class_) {
      out_ += body;
    } else {
      append_outside_class("[" + body + "]");
    }
  }

  // A class that stands for a property outside a class: no case folding, as for Oniguruma's
  // properties.
  void append_outside_class(const std::string& cls) {
    out_ += caseless_ ? "(?-i:" + cls + ")" : cls;
  }

  std::string_view p_;
  CategorySource source_;
  std::string out_;
  bool in_class_ = false;
  bool class_caseless_ = false;  // caseless_ where the current class opened
  bool caseless_ = false;        // (?i) in force
  std::vector<bool> scopes_;     // caseless_ outside each open group
};

}  // namespace

std::string oniguruma_to_pcre2(std::string_view pattern, CategorySource source) {
  return PatternTranslator(pattern, source).run();
}

namespace {

// How PCRE2's own Unicode tables relate to unicode_tables::kCategoryVersion.
enum class EngineTables {
  kCurrent,  // the same version: \p{..} is exact
  kBase,     // kCategoryBaseVersion: exact except for the code points that changed since
  kOther,    // another version: only explicit ranges are exact
};

EngineTables engine_tables() {
  static const EngineTables tables = [] {
    char version[32] = {};
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, version);
    EngineTables t = EngineTables::kOther;
    if (std::strcmp(version, unicode_tables::kCategoryVersion) == 0) {
      t = EngineTables::kCurrent;
    } else if (std::strcmp(version, unicode_tables::kCategoryBaseVersion) == 0) {
      t = EngineTables::kBase;
    }
    PONDER_LOG(kDebug, "text", "PCRE2 has Unicode %s; regex properties follow Unicode %s%s",
               version, unicode_tables::kCategoryVersion,
               t == EngineTables::kOther ? " through explicit ranges only" : "");
    return t;
  }();
  return tables;
}

Expected<Compiled> compile_pcre2(std::string_view pattern, const std::string& translated) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return error(StatusCode::kInvalidArgument, "cannot compile regex '%.*s': %s at offset %zu",
                 static_cast<int>(pattern.size()), pattern.data(),
                 pcre2_message(error_code).c_str(), static_cast<size_t>(error_offset));
  }
  bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  if (!jit) {
    PONDER_LOG(kDebug, "text", "regex '%.*s' runs without JIT", static_cast<int>(pattern.size()),
               pattern.data());
  }
  return Compiled{code, jit};
}

// One match of `compiled` at or after `start`; returns false when there is none.
bool match_at(const Compiled& compiled, const std::string& pattern, std::string_view text,
              size_t start, TextSpan* match) {
  MatchScratch& scratch = match_scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc;
  if (compiled.jit) {
    rc = pcre2_jit_match(compiled.code, subject, text.size(), start, 0, scratch.data(),
                         scratch.context());
  } else {
    rc = pcre2_match(compiled.code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, scratch.data(),
                     scratch.context());
  }
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && compiled.jit) {
    // JIT stack exhausted (a pathological input): the interpreter keeps its frames on the heap.
    rc = pcre2_match(compiled.code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                     scratch.data(), nullptr);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PONDER_LOG(kWarn, "text", "regex '%s' failed on a %zu-byte text (%s); rest left unsplit",
               pattern.c_str(), text.size(), pcre2_message(rc).c_str());
    return false;
  }
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data());
  match->begin = ovector[0];
  match->end = ovector[1];
  return true;
}

}  // namespace

Expected<UnicodeRegex> UnicodeRegex::compile(std::string_view pattern) {
  EngineTables tables = engine_tables();
  std::string engine = oniguruma_to_pcre2(pattern, CategorySource::kEngine);
  std::string exact = engine;
  if (tables == EngineTables::kBase) {
    exact = oniguruma_to_pcre2(pattern, CategorySource::kEnginePlusChanges);
  } else if (tables == EngineTables::kOther) {
    exact = oniguruma_to_pcre2(pattern, CategorySource::kRanges);
  }
  auto holder = std::make_shared<Code>();
  if (exact == engine || tables == EngineTables::kBase) {
    PONDER_ASSIGN_OR_RETURN(holder->engine, compile_pcre2(pattern, engine));
  }
  if (exact != engine) {
    PONDER_ASSIGN_OR_RETURN(holder->exact, compile_pcre2(pattern, exact));
  }
  return UnicodeRegex(std::string(pattern), std::move(holder));
}

void UnicodeRegex::find_all(std::string_view text, std::vector<TextSpan>* out) const {
  const Compiled& compiled = code_->for_text(text);
  size_t search_from = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (search_from <= text.size()) {
    TextSpan m;
    if (!match_at(compiled, pattern_, text, search_from, &m)) break;
    if (m.begin == m.end && have_last && last_match_end == search_from) {
      // An empty match right after the previous one: step over one character and retry.
      if (search_from >= text.size()) break;
      size_t len = utf8_sequence_length(static_cast<unsigned char>(text[search_from]));
      search_from += len == 0 ? 1 : len;
      continue;
    }
    out->push_back(m);
    search_from = m.end;
    have_last = true;
    last_match_end = m.end;
  }
}

bool UnicodeRegex::search(std::string_view text) const {
  TextSpan m;
  return match_at(code_->for_text(text), pattern_, text, 0, &m);
}

}  // namespace ponder::text
