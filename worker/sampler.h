// Sampler: turns one sequence's logits into its next token. Greedy, temperature, top-k, top-p,
// min-p, repetition/presence/frequency penalties, a per-sequence seeded RNG (same seed, same
// tokens), and logprobs of the chosen token with the top-N alternatives. One per sequence; not
// thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace ponder::worker {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;                // 0: all tokens
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1]: drop tokens below min_p × p(most likely)
  float repetition_penalty = 1.0f;  // > 0; applies to prompt and generated tokens (HF/vLLM rule)
  float presence_penalty = 0.0f;    // [-2, 2]; generated tokens only (OpenAI rule)
  float frequency_penalty = 0.0f;   // [-2, 2]; generated tokens only
  uint64_t seed = 0;
  int32_t top_logprobs = 0;         // alternatives to report, [0, 20]
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits before sampling
  // A sample that continues here after its replica was lost: the prompt's last `resumed_tail`
  // tokens are what it generated before, and `resumed_draws` the ones among them it drew (in
  // order; the engine inserted the others). The sampler counts those draws as its outputs (the
  // penalties) and its RNG resumes after them, so the sample goes on as it would have.
  int32_t resumed_tail = 0;
  std::vector<int32_t> resumed_draws;

  // kInvalidArgument naming the first field that is out of range.
  Status validate() const;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;            // log-softmax of the raw model logits (before any processing)
  std::vector<TokenLogprob> top;   // the top_logprobs most likely tokens under the same
};

// xoshiro256** seeded through splitmix64: fixed, portable sequence for a given seed.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits
  void skip(uint64_t draws);  // as `draws` calls of next()
 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Tokens the repetition penalty also covers (the prompt).
  void set_prompt(std::span<const int32_t> prompt);
  // Picks the next token; `logits` [vocab] is used as scratch and modified.
  // Tokens in `suppress` cannot be drawn this time (their logits become -inf after the logprobs
  // are taken).
  SampleResult sample(std::span<float> logits, std::span<const int32_t> suppress = {});
  // Records a generated token for the penalties (sample() does not, so callers may override).
  void accept(int32_t token);

 private:
  void apply_penalties(std::span<float> logits) const;
  bool modifies_logits() const;
  SamplingParams params_;
  Rng rng_;
  std::unordered_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> prompt_tokens_;  // unique
  std::vector<std::pair<float, int32_t>> candidates_;
  std::vector<float> penalized_;
};

// The prompt without the tail a resumed sample generated itself (SamplingParams::resumed_tail).
std::span<const int32_t> original_prompt(const SamplingParams& params, std::span<const int32_t> prompt);

// n token ids uniform in [0, vocab) from `seed` (benchmarks and tests).
std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed);

// Log-softmax of one logit and the top-n entries of a row (helpers shared with scoring).
void top_logprobs(std::span<const float> logits, int32_t n, float log_sum_exp,
                  std::vector<TokenLogprob>* out);
float log_sum_exp(std::span<const float> logits);

}  // namespace ponder::worker
