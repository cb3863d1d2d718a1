// A checker of the Prometheus text exposition format for the tests: every sample belongs to a
// family announced by # HELP and # TYPE before it, names and label syntax are valid, counters end
// in _total, and histograms have cumulative _bucket{le} series ending in +Inf equal to _count.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ponder::coordinator::http::testing {

struct PrometheusSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Problems found (empty when the text is valid); `samples` receives every sample.
std::vector<std::string> check_prometheus_text(const std::string& text,
                                               std::vector<PrometheusSample>* samples = nullptr);

// The value of the sample `name` with exactly these labels; NaN when absent.
double prometheus_value(const std::vector<PrometheusSample>& samples, const std::string& name,
                        const std::map<std::string, std::string>& labels = {});

}  // namespace ponder::coordinator::http::testing
