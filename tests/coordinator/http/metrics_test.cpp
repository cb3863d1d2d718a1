// Metrics: the Prometheus text of ServerMetrics is valid exposition format and reports what was
// recorded (request counts by endpoint and status, cumulative histogram buckets, dispatcher
// figures, the tokens/s gauge over scrapes).
#include "coordinator/http/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "prometheus_check.h"

namespace ponder::coordinator::http {
namespace {

using testing::check_prometheus_text;
using testing::prometheus_value;

TEST(Prometheus, NumbersAndEscapes) {
  EXPECT_EQ(prometheus_number(3), "3");
  EXPECT_EQ(prometheus_number(0.25), "0.25");
  EXPECT_EQ(prometheus_number(INFINITY), "+Inf");
  EXPECT_EQ(prometheus_number(NAN), "NaN");
  EXPECT_EQ(prometheus_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Prometheus, HistogramIsCumulative) {
  Histogram h({0.25, 1.0});
  for (double v : {0.125, 0.25, 0.5, 2.0, 3.0}) h.observe(v);
  PrometheusWriter w;
  w.family("x_seconds", "histogram", "test");
  w.histogram("x_seconds", {}, h.snapshot());
  EXPECT_EQ(w.text(),
            "# HELP x_seconds test\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.25\"} 2\nx_seconds_bucket{le=\"1\"} 3\n"
            "x_seconds_bucket{le=\"+Inf\"} 5\nx_seconds_sum 5.875\nx_seconds_count 5\n");
  EXPECT_TRUE(check_prometheus_text(w.text()).empty());
}

TEST(ServerMetrics, RendersValidTextWithWhatWasRecorded) {
  ServerMetrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/completions", 400);
  m.observe_time_to_first_token(0.03);
  m.observe_time_to_first_token(0.3);
  m.observe_time_per_output_token(0.002);
  m.add_prompt_tokens(17);
  DispatcherStats st{.replicas = 1,
                     .healthy_replicas = 1,
                     .requests_in_flight = 3,
                     .waiting = 2,
                     .running = 4,
                     .kv_blocks_used = 10,
                     .kv_blocks_free = 90,
                     .prefix_cache_queries = 8,
                     .prefix_cache_hits = 2,
                     .tokens_generated = 100,
                     .prefills = 6,
                     .prompt_tokens_computed = 250};
  const auto t0 = ServerMetrics::Clock::now();
  std::string first = m.render(st, 5, t0);
  EXPECT_TRUE(check_prometheus_text(first).empty());
  st.tokens_generated = 300;
  std::string text = m.render(st, 5, t0 + std::chrono::seconds(2));
  std::vector<testing::PrometheusSample> s;
  auto problems = check_prometheus_text(text, &s);
  EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << text;
  EXPECT_EQ(prometheus_value(s, "ponder_http_requests_total",
                             {{"endpoint", "/v1/chat/completions"}, {"status", "200"}}),
            2);
  EXPECT_EQ(prometheus_value(s, "ponder_http_requests_total",
                             {{"endpoint", "/v1/completions"}, {"status", "400"}}),
            1);
  EXPECT_EQ(prometheus_value(s, "ponder_http_requests_in_progress"), 5);
  EXPECT_EQ(prometheus_value(s, "ponder_requests_in_flight"), 3);
  EXPECT_EQ(prometheus_value(s, "ponder_sequences_waiting"), 2);
  EXPECT_EQ(prometheus_value(s, "ponder_sequences_running"), 4);
  EXPECT_EQ(prometheus_value(s, "ponder_kv_blocks_used"), 10);
  EXPECT_EQ(prometheus_value(s, "ponder_kv_blocks_free"), 90);
  EXPECT_DOUBLE_EQ(prometheus_value(s, "ponder_prefix_cache_hit_rate"), 0.25);
  EXPECT_EQ(prometheus_value(s, "ponder_prompt_tokens_total"), 17);
  EXPECT_EQ(prometheus_value(s, "ponder_generation_tokens_total"), 300);
  EXPECT_EQ(prometheus_value(s, "ponder_prefills_total"), 6);
  EXPECT_EQ(prometheus_value(s, "ponder_prompt_tokens_computed_total"), 250);
  EXPECT_DOUBLE_EQ(prometheus_value(s, "ponder_generation_tokens_per_second"), 100.0);
  EXPECT_EQ(prometheus_value(s, "ponder_time_to_first_token_seconds_count"), 2);
  EXPECT_EQ(prometheus_value(s, "ponder_time_to_first_token_seconds_bucket", {{"le", "0.04"}}), 1);
  EXPECT_EQ(prometheus_value(s, "ponder_time_to_first_token_seconds_bucket", {{"le", "0.5"}}), 2);
  EXPECT_EQ(prometheus_value(s, "ponder_time_per_output_token_seconds_count"), 1);
}

}  // namespace
}  // namespace ponder::coordinator::http
