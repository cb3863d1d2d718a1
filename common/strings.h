// Small string helpers: printf-style formatting into std::string, splitting, trimming.
#pragma once

#include <cstdarg>
#include <string>
#include <string_view>
#include <vector>

namespace ponder {

[[gnu::format(printf, 1, 2)]] std::string strformat(const char* fmt, ...);
std::string vstrformat(const char* fmt, va_list args);

std::vector<std::string> split(std::string_view text, char sep);
// The parts with `sep` between them ("a, b, c").
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view text);

}  // namespace ponder
