// PCRE2 wrapper for tokenizer regexes (UTF + UCP, JIT) with Oniguruma-compatible escapes.
#include "coordinator/text/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

struct UnicodeRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
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

}  // namespace

std::string oniguruma_to_pcre2(std::string_view p) {
  const std::string space_body(kWhiteSpaceClassBody);
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char d = p[i + 1];
      if (d == 'Q') {  // \Q...\E is literal text
        size_t end = p.find("\\E", i + 2);
        size_t stop = end == std::string_view::npos ? p.size() : end + 2;
        out.append(p.substr(i, stop - i));
        i = stop;
        continue;
      }
      if (d == 's') {
        out += in_class ? space_body : "[" + space_body + "]";
      } else if (d == 'S' && !in_class) {
        out += "[^" + space_body + "]";
      } else if (d == 'h') {
        out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
      } else if (d == 'H' && !in_class) {
        out += "[^0-9a-fA-F]";
      } else {
        out += c;
        out += d;
      }
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ']' is literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 2;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

Expected<UnicodeRegex> UnicodeRegex::compile(std::string_view pattern) {
  std::string translated = oniguruma_to_pcre2(pattern);
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
  auto holder = std::make_shared<Code>();
  holder->code = code;
  holder->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  if (!holder->jit) {
    PONDER_LOG(kDebug, "text", "regex '%s' runs without JIT", translated.c_str());
  }
  return UnicodeRegex(std::string(pattern), std::move(holder));
}

bool UnicodeRegex::match_at(std::string_view text, size_t start, TextSpan* match) const {
  MatchScratch& scratch = match_scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc;
  if (code_->jit) {
    rc = pcre2_jit_match(code_->code, subject, text.size(), start, 0, scratch.data(),
                         scratch.context());
  } else {
    rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, scratch.data(),
                     scratch.context());
  }
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && code_->jit) {
    // JIT stack exhausted (a pathological input): the interpreter keeps its frames on the heap.
    rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                     scratch.data(), nullptr);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PONDER_LOG(kWarn, "text", "regex '%s' failed on a %zu-byte text (%s); rest left unsplit",
               pattern_.c_str(), text.size(), pcre2_message(rc).c_str());
    return false;
  }
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data());
  match->begin = ovector[0];
  match->end = ovector[1];
  return true;
}

void UnicodeRegex::find_all(std::string_view text, std::vector<TextSpan>* out) const {
  size_t search_from = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (search_from <= text.size()) {
    TextSpan m;
    if (!match_at(text, search_from, &m)) break;
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
  return match_at(text, 0, &m);
}

}  // namespace ponder::text
