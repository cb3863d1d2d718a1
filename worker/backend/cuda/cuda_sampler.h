// CudaSampler: sampling on the GPU for a batch of logits rows left there by
// DecoderModel::forward_to — logit bias, repetition/presence/frequency penalties, suppression,
// greedy or temperature with top-k, top-p and min-p, and raw logprobs with the top-N, in one
// kernel (sampling.cu). DeviceSamplerState keeps what Sampler keeps per sequence (prompt tokens,
// generated-token counts, the seeded xoshiro256** RNG); each non-greedy row takes one uniform from
// it, as Sampler::sample does, so a seed gives the CPU's tokens. Only the results (a token, its
// logprob, the top-N) come back to the host. Not thread-safe.
#pragma once

#include <map>
#include <span>
#include <vector>

#include "worker/backend/cuda/cuda_backend.h"
#include "worker/sampler.h"

namespace ponder::worker {

class DeviceSamplerState {
 public:
  explicit DeviceSamplerState(const SamplingParams& params);
  // Tokens the repetition penalty also covers (the prompt).
  void set_prompt(std::span<const int32_t> prompt);
  // Records a generated token for the penalties.
  void accept(int32_t token);
  const SamplingParams& params() const { return params_; }

 private:
  friend class CudaSampler;
  SamplingParams params_;
  Rng rng_;
  std::vector<int32_t> prompt_tokens_;  // sorted, unique
  std::map<int32_t, int32_t> output_counts_;
};

class CudaSampler {
 public:
  explicit CudaSampler(CudaBackend& backend) : backend_(backend) {}

  // Row i of `logits` [rows, vocab] (f32 in the backend's memory, unchanged) for seqs[i]; tokens
  // in suppress[i] (when given) cannot be drawn. Results match Sampler::sample on the same logits
  // and RNG state, up to the rounding of probability sums at a cut or the draw's boundary.
  Expected<std::vector<SampleResult>> sample(Tensor logits,
                                             std::span<DeviceSamplerState* const> seqs,
                                             std::span<const std::vector<int32_t>> suppress = {});

 private:
  Status fit(Buffer& buffer, size_t bytes);
  CudaBackend& backend_;
  Buffer params_, edits_, work_, results_;
};

}  // namespace ponder::worker
