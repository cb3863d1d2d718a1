// Prometheus text format checker for the tests.
#include "prometheus_check.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace ponder::coordinator::http::testing {

namespace {
// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  return true;
}

bool parse_value(const std::string& s, double* v) {
  if (s == "+Inf") return *v = INFINITY, true;
  if (s == "-Inf") return *v = -INFINITY, true;
  if (s == "NaN") return *v = NAN, true;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}
}  // namespace

std::vector<std::string> check_prometheus_text(const std::string& text,
                                               std::vector<PrometheusSample>* out) {
  std::vector<std::string> problems;
  std::map<std::string, std::string> types;  // family → type
  std::set<std::string> helped;
  std::vector<PrometheusSample> samples;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  if (!text.empty() && text.back() != '\n')
    problems.push_back("the text does not end with a newline");
  while (std::getline(in, line)) {
    ++n;
    const std::string where = "line " + std::to_string(n) + ": ";
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      if (!helped.insert(name).second) problems.push_back(where + "second HELP for " + name);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      if (types.count(name)) problems.push_back(where + "second TYPE for " + name);
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
          type != "untyped")
        problems.push_back(where + "unknown type " + type);
      if (!helped.count(name)) problems.push_back(where + "TYPE before HELP for " + name);
      types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;
    PrometheusSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!valid_name(s.name)) problems.push_back(where + "bad metric name " + s.name);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          problems.push_back(where + "bad label syntax");
          break;
        }
        std::string key = line.substr(i, eq - i), value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      problems.push_back(where + "no value");
      continue;
    }
    if (!parse_value(line.substr(i + 1), &s.value))
      problems.push_back(where + "bad value " + line.substr(i + 1));
    // The family: the name itself, or a histogram's name before _bucket/_sum/_count.
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string suf = suffix;
      if (!types.count(family) && s.name.size() > suf.size() &&
          s.name.compare(s.name.size() - suf.size(), suf.size(), suf) == 0)
        family = s.name.substr(0, s.name.size() - suf.size());
    }
    if (!types.count(family)) {
      problems.push_back(where + s.name + " has no # TYPE line before it");
    } else if (types[family] == "counter" &&
               (family.size() < 6 || family.compare(family.size() - 6, 6, "_total") != 0)) {
      problems.push_back(where + "counter " + family + " does not end in _total");
    }
    samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets, +Inf last and equal to _count.
  for (const auto& [family, type] : types) {
    if (type != "histogram") continue;
    double previous = -1, inf = NAN, count = NAN;
    bool saw_inf = false;
    for (const PrometheusSample& s : samples) {
      if (s.name == family + "_bucket") {
        if (saw_inf) problems.push_back(family + ": bucket after le=\"+Inf\"");
        if (!s.labels.count("le")) problems.push_back(family + ": bucket without le");
        if (s.value < previous) problems.push_back(family + ": buckets are not cumulative");
        previous = s.value;
        if (s.labels.count("le") && s.labels.at("le") == "+Inf") saw_inf = true, inf = s.value;
      }
      if (s.name == family + "_count") count = s.value;
    }
    if (!saw_inf) problems.push_back(family + ": no le=\"+Inf\" bucket");
    if (!(inf == count)) problems.push_back(family + ": +Inf bucket differs from _count");
  }
  if (out) *out = std::move(samples);
  return problems;
}

double prometheus_value(const std::vector<PrometheusSample>& samples, const std::string& name,
                        const std::map<std::string, std::string>& labels) {
  for (const PrometheusSample& s : samples)
    if (s.name == name && s.labels == labels) return s.value;
  return NAN;
}

}  // namespace ponder::coordinator::http::testing
