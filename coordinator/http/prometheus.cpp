// Prometheus text format writer.
#include "coordinator/http/prometheus.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ponder::coordinator::http {

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    // The shortest of %.15g / %.17g that reads back as the same double.
    std::snprintf(buf, sizeof(buf), "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  }
  return buf;
}

std::string prometheus_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
void append_labels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += prometheus_escape(labels[i].second);
    out += '"';
  }
  out += '}';
}

// Bounds like 0.005 print as "0.005", not 0.0050000000000000001.
std::string bound_text(double b) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", b);
  return buf;
}
}  // namespace

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  for (char c : help) {
    if (c == '\\') {
      text_ += "\\\\";
    } else if (c == '\n') {
      text_ += "\\n";
    } else {
      text_ += c;
    }
  }
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void PrometheusWriter::sample(std::string_view name, const Labels& labels, double value) {
  text_ += name;
  append_labels(text_, labels);
  text_ += ' ';
  text_ += prometheus_number(value);
  text_ += '\n';
}

void PrometheusWriter::histogram(std::string_view name, const Labels& labels,
                                 const HistogramSnapshot& h) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    Labels l = labels;
    l.emplace_back("le", bound_text(h.bounds[i]));
    sample(bucket, l, static_cast<double>(cumulative));
  }
  Labels l = labels;
  l.emplace_back("le", "+Inf");
  sample(bucket, l, static_cast<double>(h.count));
  sample(std::string(name) + "_sum", labels, h.sum);
  sample(std::string(name) + "_count", labels, static_cast<double>(h.count));
}

}  // namespace ponder::coordinator::http
