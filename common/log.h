// Logging to stderr with level, subsystem and a [rank r/n] prefix. The level is checked before
// the message is formatted. Library code never writes to stdout. Thread-safe (one write per line).
#pragma once

#include "common/check.h"
#include "common/strings.h"

namespace ponder {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError, kOff };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn", "error", "off"; returns false on anything else.
bool parse_log_level(std::string_view text, LogLevel* out);
// Sets the "[rank r/n]" prefix; n <= 1 prints no prefix.
void set_log_rank(int rank, int world_size);
void log_line(LogLevel level, const char* subsystem, const std::string& message);

}  // namespace ponder

#define PONDER_LOG(level, subsystem, ...)                                              \
  PONDER_DO_WHILE0(if (::ponder::LogLevel::level >= ::ponder::log_level()) {           \
    ::ponder::log_line(::ponder::LogLevel::level, subsystem, ::ponder::strformat(__VA_ARGS__)); \
  })
