// Server metrics and their Prometheus rendering.
#include "coordinator/http/metrics.h"

#include <algorithm>

namespace ponder::coordinator::http {

Histogram::Histogram(std::vector<double> bounds) {
  h_.bounds = std::move(bounds);
  h_.counts.assign(h_.bounds.size(), 0);
}

void Histogram::observe(double v) {
  auto it = std::lower_bound(h_.bounds.begin(), h_.bounds.end(), v);  // first bound >= v: le
  if (it == h_.bounds.end()) {
    ++h_.overflow;
  } else {
    ++h_.counts[it - h_.bounds.begin()];
  }
  h_.sum += v;
  ++h_.count;
}

ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
             10.0, 20.0, 40.0, 80.0}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
             1.0, 2.5}),
      duration_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0,
                 320.0}) {}

void ServerMetrics::count_request(std::string_view endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(endpoint), status}];
}

void ServerMetrics::observe_time_to_first_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}

void ServerMetrics::observe_time_per_output_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  tpot_.observe(s);
}

void ServerMetrics::observe_request_duration(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  duration_.observe(s);
}

void ServerMetrics::add_prompt_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += n;
}

void ServerMetrics::count_tls_handshake_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++tls_handshake_failures_;
}

void ServerMetrics::count_refusal(const char* reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refusals_[reason];
}

std::string ServerMetrics::render(const DispatcherStats& st, int64_t in_progress,
                                  Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  token_samples_.emplace_back(now, st.tokens_generated);
  while (token_samples_.size() > 2 && now - token_samples_[1].first > std::chrono::seconds(60))
    token_samples_.pop_front();
  double tokens_per_s = 0.0;
  if (token_samples_.size() >= 2) {
    const auto& [t0, n0] = token_samples_.front();
    const double dt = std::chrono::duration<double>(now - t0).count();
    if (dt > 0) tokens_per_s = static_cast<double>(st.tokens_generated - n0) / dt;
  }

  PrometheusWriter w;
  w.family("ponder_http_requests_total", "counter",
           "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, count] : requests_)
    w.sample("ponder_http_requests_total",
             {{"endpoint", key.first}, {"status", std::to_string(key.second)}},
             static_cast<double>(count));
  w.family("ponder_tls_handshake_failures_total", "counter",
           "TLS connections closed because their handshake failed (a plain-HTTP client, a "
           "refused or missing client certificate, a timeout).");
  w.sample("ponder_tls_handshake_failures_total", static_cast<double>(tls_handshake_failures_));
  w.family("ponder_access_refused_total", "counter",
           "Requests refused by the API-key gate: unauthorized (401) or rate_limited (429).");
  for (const char* reason : {"unauthorized", "rate_limited"}) {
    auto it = refusals_.find(reason);
    w.sample("ponder_access_refused_total", {{"reason", reason}},
             static_cast<double>(it == refusals_.end() ? 0 : it->second));
  }
  w.family("ponder_http_requests_in_progress", "gauge",
           "Completion requests the HTTP server is answering now.");
  w.sample("ponder_http_requests_in_progress", static_cast<double>(in_progress));
  w.family("ponder_requests_in_flight", "gauge",
           "Requests submitted to replicas and not finished.");
  w.sample("ponder_requests_in_flight", static_cast<double>(st.requests_in_flight));
  w.family("ponder_sequences_waiting", "gauge", "Sequences queued in replicas, waiting to run.");
  w.sample("ponder_sequences_waiting", static_cast<double>(st.waiting));
  w.family("ponder_sequences_running", "gauge", "Sequences in a running batch.");
  w.sample("ponder_sequences_running", static_cast<double>(st.running));
  w.family("ponder_kv_blocks_used", "gauge", "KV cache blocks held by sequences.");
  w.sample("ponder_kv_blocks_used", static_cast<double>(st.kv_blocks_used));
  w.family("ponder_kv_blocks_free", "gauge", "KV cache blocks free (prefix-cached ones included).");
  w.sample("ponder_kv_blocks_free", static_cast<double>(st.kv_blocks_free));
  w.family("ponder_kv_cache_bytes_per_token", "gauge",
           "KV cache bytes one token takes over every layer (MLA models: the compressed latent, "
           "kv_lora_rank + qk_rope_head_dim values per layer).");
  w.sample("ponder_kv_cache_bytes_per_token", static_cast<double>(st.kv_bytes_per_token));
  w.family("ponder_prefix_cache_queries_total", "counter",
           "Full prompt blocks looked up in the prefix cache.");
  w.sample("ponder_prefix_cache_queries_total", static_cast<double>(st.prefix_cache_queries));
  w.family("ponder_prefix_cache_hits_total", "counter", "Prompt blocks found in the prefix cache.");
  w.sample("ponder_prefix_cache_hits_total", static_cast<double>(st.prefix_cache_hits));
  w.family("ponder_prefix_cache_hit_rate", "gauge",
           "Prefix-cache hits / queries since start (0 before any query).");
  w.sample("ponder_prefix_cache_hit_rate", st.prefix_cache_queries > 0
                                               ? static_cast<double>(st.prefix_cache_hits) /
                                                     static_cast<double>(st.prefix_cache_queries)
                                               : 0.0);
  w.family("ponder_preemptions_total", "counter", "Sequences preempted for lack of KV blocks.");
  w.sample("ponder_preemptions_total", static_cast<double>(st.preemptions));
  w.family("ponder_prefills_total", "counter",
           "Sequences whose prompt began running through the forward pass (n-way forks "
           "sharing it excluded; a preempted sequence counts again when it is recomputed).");
  w.sample("ponder_prefills_total", static_cast<double>(st.prefills));
  w.family("ponder_prompt_tokens_computed_total", "counter",
           "Prompt tokens run through the forward pass (prefix-cache hits excluded, "
           "recomputation after preemption included).");
  w.sample("ponder_prompt_tokens_computed_total", static_cast<double>(st.prompt_tokens_computed));
  w.family("ponder_spread_requests_total", "counter",
           "Requests whose n samples were spread over several replicas.");
  w.sample("ponder_spread_requests_total", static_cast<double>(st.spread_requests));
  w.family("ponder_prompt_tokens_total", "counter",
           "Prompt tokens of the completion requests submitted.");
  w.sample("ponder_prompt_tokens_total", static_cast<double>(prompt_tokens_));
  w.family("ponder_generation_tokens_total", "counter", "Tokens generated by the replicas.");
  w.sample("ponder_generation_tokens_total", static_cast<double>(st.tokens_generated));
  w.family("ponder_generation_tokens_per_second", "gauge",
           "Tokens generated per second over the scrapes of the last minute.");
  w.sample("ponder_generation_tokens_per_second", tokens_per_s);
  w.family("ponder_replicas", "gauge", "Replicas registered.");
  w.sample("ponder_replicas", static_cast<double>(st.replicas));
  w.family("ponder_replicas_healthy", "gauge",
           "Replicas whose every rank answered a heartbeat recently.");
  w.sample("ponder_replicas_healthy", static_cast<double>(st.healthy_replicas));
  w.family("ponder_replicas_down", "gauge",
           "Supervised replicas not healthy: restarting or failed (stays down).");
  w.sample("ponder_replicas_down", static_cast<double>(st.replicas_down));
  w.family("ponder_replica_restarts_total", "counter",
           "Times a supervised replica was started again after it exited or was lost.");
  w.sample("ponder_replica_restarts_total", static_cast<double>(st.replica_restarts));
  w.family("ponder_replica_link_refusals_total", "counter",
           "Connections to the replica socket refused at the handshake (CURVE: a key not on the "
           "allow-list, a wrong server key, plain ZMTP).");
  w.sample("ponder_replica_link_refusals_total", static_cast<double>(st.replica_link_refusals));
  w.family("ponder_time_to_first_token_seconds", "histogram",
           "Time from a completion request's arrival to its first generated token.");
  w.histogram("ponder_time_to_first_token_seconds", {}, ttft_.snapshot());
  w.family("ponder_time_per_output_token_seconds", "histogram",
           "Time between generated tokens, per choice (after its first token).");
  w.histogram("ponder_time_per_output_token_seconds", {}, tpot_.snapshot());
  w.family("ponder_request_duration_seconds", "histogram",
           "Time from a completion request's arrival to the end of its response.");
  w.histogram("ponder_request_duration_seconds", {}, duration_.snapshot());
  return w.text();
}

}  // namespace ponder::coordinator::http
