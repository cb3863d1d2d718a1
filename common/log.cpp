// Logging implementation.
#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace ponder {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<int> g_rank{0};
std::atomic<int> g_world{1};
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

bool parse_log_level(std::string_view text, LogLevel* out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo}, {"warn", LogLevel::kWarn},
      {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& [name, level] : kNames) {
    if (text == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void set_log_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

void log_line(LogLevel level, const char* subsystem, const std::string& message) {
  static constexpr const char* kLetters = "DIWE";
  std::string rank;
  if (g_world > 1) rank = strformat("[rank %d/%d] ", g_rank.load(), g_world.load());
  std::string line = strformat("%c ponder %s[%s] %s\n", kLetters[static_cast<int>(level)],
                               rank.c_str(), subsystem, message.c_str());
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace ponder
