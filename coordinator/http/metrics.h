// ServerMetrics: what /metrics reports — the HTTP server's own counters and latency histograms
// (requests by endpoint and status, time to first token, time per output token, request
// duration, prompt tokens) and, at each scrape, the dispatcher's figures (queue depth, running
// sequences, KV blocks, prefix-cache hits, prefills and the prompt tokens they computed, tokens
// generated and their rate).
// Thread-safe: every method locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/http/prometheus.h"
#include "coordinator/replicas/dispatcher.h"

namespace ponder::coordinator::http {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  const HistogramSnapshot& snapshot() const { return h_; }

 private:
  HistogramSnapshot h_;
};

class ServerMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  ServerMetrics();

  // `endpoint` is a known route ("/v1/chat/completions", …) or "other".
  void count_request(std::string_view endpoint, int status);
  void observe_time_to_first_token(double seconds);
  void observe_time_per_output_token(double seconds);
  void observe_request_duration(double seconds);
  void add_prompt_tokens(int64_t n);
  void count_tls_handshake_failure();
  // A request the access gate refused: "unauthorized" (401) or "rate_limited" (429).
  void count_refusal(const char* reason);

  // The exposition text. `in_progress`: generation requests the server is answering now.
  // Each call also records a tokens-generated sample for the tokens/s gauge (rate over the
  // scrapes of the last minute).
  std::string render(const DispatcherStats& stats, int64_t in_progress, Clock::time_point now);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram ttft_;
  Histogram tpot_;
  Histogram duration_;
  int64_t prompt_tokens_ = 0;
  int64_t tls_handshake_failures_ = 0;
  std::map<std::string, int64_t> refusals_;
  std::deque<std::pair<Clock::time_point, int64_t>> token_samples_;
};

}  // namespace ponder::coordinator::http
