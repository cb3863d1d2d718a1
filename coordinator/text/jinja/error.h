// TemplateError: the exception the Jinja lexer, parser and evaluator throw internally. It never
// leaves the jinja module: Template::parse / Template::render turn it into a ponder::Status.
#pragma once

#include <stdexcept>
#include <string>

namespace ponder::text::jinja {

// Where in the template source something is: 1-based line and column (in code points).
struct Location {
  int line = 0;
  int column = 0;
};

class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(std::string message, Location location = {})
      : std::runtime_error(message), message_(std::move(message)), location_(location) {}

  const std::string& message() const { return message_; }
  const Location& location() const { return location_; }
  bool has_location() const { return location_.line > 0; }
  void set_location(Location location) { location_ = location; }
  // True for errors raised on purpose by the template (raise_exception).
  bool raised_by_template() const { return raised_by_template_; }
  void set_raised_by_template() { raised_by_template_ = true; }

 private:
  std::string message_;
  Location location_;
  bool raised_by_template_ = false;
};

[[noreturn]] inline void fail(std::string message) { throw TemplateError(std::move(message)); }

// Cap on a width a template asks for — a format width or precision, ljust/rjust/center/zfill,
// indent, tojson's indent, batch's fill — far above any real template's, low enough that what it
// pads stays small and quick to build.
constexpr int64_t kMaxWidth = int64_t{1} << 20;

inline int64_t checked_width(int64_t n) {
  if (n > kMaxWidth) {
    fail("ValueError: width " + std::to_string(n) + " is above ponder's limit " +
         std::to_string(kMaxWidth));
  }
  return n;
}

}  // namespace ponder::text::jinja
