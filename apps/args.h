// Args: the `--name value` / `--flag` command-line options of one ponder subcommand, with typed
// getters whose errors name the option. Unknown options are an error, not silently ignored.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace ponder::apps {

class Args {
 public:
  // `flags` take no value; `options` take one. Anything else starting with "--" is an error;
  // other words are positional.
  static Expected<Args> parse(int argc, char** argv, const std::set<std::string>& flags,
                              const std::set<std::string>& options);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  Expected<std::string> require(const std::string& name) const;
  Expected<int64_t> get_int(const std::string& name, int64_t fallback) const;
  Expected<double> get_double(const std::string& name, double fallback) const;
  // Comma-separated integers: "1,2,3".
  Expected<std::vector<int32_t>> get_int_list(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace ponder::apps
