// Sampling pipeline: penalties → temperature → top-k → softmax → top-p → min-p → draw.
#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ponder::worker {

Status SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return error(StatusCode::kInvalidArgument, "temperature must be >= 0 (got %g)", temperature);
  if (top_k < 0) return error(StatusCode::kInvalidArgument, "top_k must be >= 0 (got %d)", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f))
    return error(StatusCode::kInvalidArgument, "top_p must be in (0, 1] (got %g)", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    return error(StatusCode::kInvalidArgument, "min_p must be in [0, 1] (got %g)", min_p);
  if (!(repetition_penalty > 0.0f))
    return error(StatusCode::kInvalidArgument, "repetition_penalty must be > 0 (got %g)",
                 repetition_penalty);
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    return error(StatusCode::kInvalidArgument, "presence_penalty must be in [-2, 2] (got %g)",
                 presence_penalty);
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    return error(StatusCode::kInvalidArgument, "frequency_penalty must be in [-2, 2] (got %g)",
                 frequency_penalty);
  for (const auto& [t, bias] : logit_bias)
    if (!(bias >= -100.0f && bias <= 100.0f))
      return error(StatusCode::kInvalidArgument, "logit_bias for token %d must be in [-100, 100] (got %g)",
                   t, bias);
  if (top_logprobs < 0 || top_logprobs > 20)
    return error(StatusCode::kInvalidArgument, "top_logprobs must be in [0, 20] (got %d)",
                 top_logprobs);
  if (resumed_tail < 0 || resumed_draws.size() > static_cast<size_t>(resumed_tail))
    return error(StatusCode::kInvalidArgument,
                 "resumed_draws (%zu) must not outnumber resumed_tail (%d), which must be >= 0",
                 resumed_draws.size(), resumed_tail);
  return {};
}

void Rng::skip(uint64_t draws) {
  for (uint64_t i = 0; i < draws; ++i) next();
}

std::span<const int32_t> original_prompt(const SamplingParams& params,
                                         std::span<const int32_t> prompt) {
  const size_t tail = std::min<size_t>(static_cast<size_t>(params.resumed_tail), prompt.size());
  return prompt.first(prompt.size() - tail);
}

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> out(n);
  for (auto& t : out) t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(vocab));
  return out;
}

float log_sum_exp(std::span<const float> logits) {
  float m = -std::numeric_limits<float>::infinity();
  for (float v : logits) m = std::max(m, v);
  double s = 0.0;
  for (float v : logits) s += std::exp(static_cast<double>(v - m));
  return m + static_cast<float>(std::log(s));
}

void top_logprobs(std::span<const float> logits, int32_t n, float lse,
                  std::vector<TokenLogprob>* out) {
  out->clear();
  if (n <= 0) return;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  n = std::min<int32_t>(n, static_cast<int32_t>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int32_t i = 0; i < n; ++i) out->push_back({ids[i], logits[ids[i]] - lse});
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  // Each draw above temperature 0 took one uniform.
  if (params.temperature > 0.0f) rng_.skip(params.resumed_draws.size());
  for (int32_t t : params.resumed_draws) accept(t);
}

void Sampler::set_prompt(std::span<const int32_t> all) {
  const std::span<const int32_t> prompt = original_prompt(params_, all);
  prompt_tokens_.assign(prompt.begin(), prompt.end());
  std::sort(prompt_tokens_.begin(), prompt_tokens_.end());
  prompt_tokens_.erase(std::unique(prompt_tokens_.begin(), prompt_tokens_.end()),
                       prompt_tokens_.end());
}

void Sampler::accept(int32_t token) { ++output_counts_[token]; }

void Sampler::apply_penalties(std::span<float> logits) const {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  for (const auto& [t, bias] : params_.logit_bias)
    if (t >= 0 && t < vocab) logits[t] += bias;
  if (params_.repetition_penalty != 1.0f) {
    auto penalize = [&](int32_t t) {
      if (t < 0 || t >= vocab) return;
      float& l = logits[t];
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    };
    // Each token once, whether it was in the prompt, the output or both.
    for (int32_t t : prompt_tokens_) penalize(t);
    for (const auto& [t, count] : output_counts_) {
      if (!std::binary_search(prompt_tokens_.begin(), prompt_tokens_.end(), t)) penalize(t);
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    for (const auto& [t, count] : output_counts_) {
      if (t < 0 || t >= vocab) continue;
      logits[t] -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(count);
    }
  }
}

bool Sampler::modifies_logits() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f || !params_.logit_bias.empty();
}

SampleResult Sampler::sample(std::span<float> logits, std::span<const int32_t> suppress) {
  SampleResult result;
  const float lse = log_sum_exp(logits);
  top_logprobs(logits, params_.top_logprobs, lse, &result.top);
  // Penalties work on a copy so that `logits` keeps the raw values the logprobs report.
  std::span<float> work = logits;
  if (modifies_logits() || !suppress.empty()) {
    penalized_.assign(logits.begin(), logits.end());
    work = penalized_;
    apply_penalties(work);
    for (int32_t t : suppress)
      if (t >= 0 && t < static_cast<int32_t>(work.size())) work[t] = -INFINITY;
  }
  const int32_t vocab = static_cast<int32_t>(work.size());
  if (params_.temperature == 0.0f) {
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; ++i) {
      if (work[i] > work[best]) best = i;
    }
    result.token = best;
  } else {
    // Probabilities at this temperature, then truncation and the draw, all walking candidates
    // in one fixed order (most likely first, lower id on ties). The order is built lazily: only
    // as far as the walk goes (a few hundred tokens, not the whole vocabulary, in practice).
    const float inv_t = 1.0f / params_.temperature;
    candidates_.resize(vocab);
    float max_logit = -INFINITY;
    for (int32_t i = 0; i < vocab; ++i) max_logit = std::max(max_logit, work[i] * inv_t);
    for (int32_t i = 0; i < vocab; ++i)
      candidates_[i] = {std::exp(work[i] * inv_t - max_logit), i};
    auto by_prob = [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t n = candidates_.size(), sorted = 0;
    // Makes [0, want) the `want` most likely candidates, in order.
    auto sort_prefix = [&](size_t want) {
      want = std::min(want, candidates_.size());
      if (want <= sorted) return;
      if (want < candidates_.size())
        std::nth_element(candidates_.begin() + sorted, candidates_.begin() + want,
                         candidates_.end(), by_prob);
      std::sort(candidates_.begin() + sorted, candidates_.begin() + want, by_prob);
      sorted = want;
    };
    auto at = [&](size_t i) -> const std::pair<float, int32_t>& {
      if (i >= sorted) sort_prefix(std::max<size_t>(2 * sorted, 1024));
      return candidates_[i];
    };
    auto mass_of_prefix = [&](size_t count) {
      double m = 0.0;
      for (size_t i = 0; i < count; ++i) m += candidates_[i].first;
      return m;
    };
    double total = 0.0;
    for (const auto& c : candidates_) total += c.first;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
      n = static_cast<size_t>(params_.top_k);
      sort_prefix(n);
      total = mass_of_prefix(n);
    }
    // top-p: the smallest prefix whose mass reaches top_p (always at least one token).
    if (params_.top_p < 1.0f) {
      double mass = 0.0;
      size_t i = 0;
      while (i < n) {
        mass += at(i).first / total;
        ++i;
        if (mass >= params_.top_p) break;
      }
      n = i;
      total = mass_of_prefix(n);
    }
    // min-p relative to the most likely token.
    if (params_.min_p > 0.0f) {
      const float threshold = params_.min_p * at(0).first;
      size_t i = 1;
      while (i < n && at(i).first >= threshold) ++i;
      n = i;
      total = mass_of_prefix(n);
    }
    double u = rng_.uniform() * total;
    result.token = -1;
    for (size_t i = 0; i < n; ++i) {
      u -= at(i).first;
      if (u < 0.0) {
        result.token = at(i).second;
        break;
      }
    }
    if (result.token < 0) result.token = at(n - 1).second;  // rounding left u at the very end
  }
  result.logprob = logits[result.token] - lse;
  return result;
}

}  // namespace ponder::worker
