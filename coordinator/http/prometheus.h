// Prometheus text exposition format (version 0.0.4): metric families with their # HELP and
// # TYPE lines, label values escaped, histograms as cumulative _bucket{le=…} series ending in
// le="+Inf", then _sum and _count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ponder::coordinator::http {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram's state: counts per upper bound (not cumulative), observations above the last
// bound, their sum and count.
struct HistogramSnapshot {
  std::vector<double> bounds;    // ascending upper bounds, +Inf excluded
  std::vector<uint64_t> counts;  // one per bound
  uint64_t overflow = 0;
  double sum = 0.0;
  uint64_t count = 0;
};

class PrometheusWriter {
 public:
  // Starts a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  // A whole histogram family member: name_bucket…, name_sum, name_count.
  void histogram(std::string_view name, const Labels& labels, const HistogramSnapshot& h);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A sample value as Prometheus reads it: integers without exponent, "+Inf", "-Inf", "NaN".
std::string prometheus_number(double v);
// Label value escaping: backslash, double quote and newline.
std::string prometheus_escape(std::string_view v);

}  // namespace ponder::coordinator::http
