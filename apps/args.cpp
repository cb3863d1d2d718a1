// Command-line option parsing.
#include "apps/args.h"

#include <cerrno>
#include <cstdlib>

#include "common/strings.h"

namespace ponder::apps {

Expected<Args> Args::parse(int argc, char** argv, const std::set<std::string>& flags,
                           const std::set<std::string>& options) {
  Args args;
  for (int i = 0; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0 || word == "--") {
      args.positional_.push_back(word);
      continue;
    }
    std::string name = word.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (flags.count(name)) {
      if (inline_value) return error(StatusCode::kInvalidArgument, "--%s takes no value", name.c_str());
      args.values_[name] = "";
    } else if (options.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) return error(StatusCode::kInvalidArgument, "--%s needs a value", name.c_str());
        value = argv[++i];
      }
      args.values_[name] = value;
    } else {
      return error(StatusCode::kInvalidArgument, "unknown option --%s (see --help)", name.c_str());
    }
  }
  return args;
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

Expected<std::string> Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) return error(StatusCode::kInvalidArgument, "--%s is required", name.c_str());
  return *v;
}

Expected<int64_t> Args::get_int(const std::string& name, int64_t fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0)
    return error(StatusCode::kInvalidArgument, "--%s: '%s' is not an integer", name.c_str(), v->c_str());
  return static_cast<int64_t>(x);
}

Expected<double> Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || errno != 0)
    return error(StatusCode::kInvalidArgument, "--%s: '%s' is not a number", name.c_str(), v->c_str());
  return x;
}

Expected<std::vector<int32_t>> Args::get_int_list(const std::string& name) const {
  std::vector<int32_t> out;
  auto v = get(name);
  if (!v) return out;
  for (const std::string& part : split(*v, ',')) {
    std::string item(trim(part));
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || x < INT32_MIN || x > INT32_MAX)
      return error(StatusCode::kInvalidArgument, "--%s: '%s' is not an integer", name.c_str(),
                   item.c_str());
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

}  // namespace ponder::apps
