// Per-row edit lists and parameters for the sampling kernel, and its results back as
// SampleResults.
#include "worker/backend/cuda/cuda_sampler.h"

#include <algorithm>

#include "common/check.h"
#include "worker/backend/cuda/cuda_check.h"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker {

DeviceSamplerState::DeviceSamplerState(const SamplingParams& params)
    : params_(params), rng_(params.seed) {
  // As Sampler: a resumed sample's RNG and output counts go on where they were.
  if (params.temperature > 0.0f) rng_.skip(params.resumed_draws.size());
  for (int32_t t : params.resumed_draws) accept(t);
}

void DeviceSamplerState::set_prompt(std::span<const int32_t> all) {
  const std::span<const int32_t> prompt = original_prompt(params_, all);
  prompt_tokens_.assign(prompt.begin(), prompt.end());
  std::sort(prompt_tokens_.begin(), prompt_tokens_.end());
  prompt_tokens_.erase(std::unique(prompt_tokens_.begin(), prompt_tokens_.end()),
                       prompt_tokens_.end());
}

void DeviceSamplerState::accept(int32_t token) { ++output_counts_[token]; }

Status CudaSampler::fit(Buffer& buffer, size_t bytes) {
  if (!buffer.empty() && buffer.size() >= bytes) return {};
  buffer.reset();
  // Headroom: every allocation makes the backend re-record its decode graphs.
  PONDER_ASSIGN_OR_RETURN(buffer, backend_.memory().allocate(std::max<size_t>(2 * bytes, 4096)));
  return {};
}

Expected<std::vector<SampleResult>> CudaSampler::sample(
    Tensor logits, std::span<DeviceSamplerState* const> seqs,
    std::span<const std::vector<int32_t>> suppress) {
  const int64_t rows = logits.rows(), vocab = logits.cols();
  PONDER_CHECK(static_cast<int64_t>(seqs.size()) == rows && logits.device == Device::kCuda &&
                   logits.dtype == DType::kF32,
               "sampling %zu sequences from logits%s on %s", seqs.size(),
               logits.shape_string().c_str(), std::string(device_name(logits.device)).c_str());
  PONDER_CHECK(suppress.empty() || static_cast<int64_t>(suppress.size()) == rows,
               "%zu suppress lists for %lld rows", suppress.size(), (long long)rows);
  std::vector<cuda::SampleRowParams> params(rows);
  std::vector<cuda::LogitEdit> edits;
  std::map<int32_t, cuda::LogitEdit> row_edits;
  for (int64_t r = 0; r < rows; ++r) {
    DeviceSamplerState& st = *seqs[r];
    const SamplingParams& p = st.params_;
    // The CPU's order per token: bias, repetition penalty, presence/frequency, suppression.
    row_edits.clear();
    auto edit = [&](int32_t t) -> cuda::LogitEdit& {
      cuda::LogitEdit& e = row_edits[t];
      e.token = t;
      return e;
    };
    for (const auto& [t, bias] : p.logit_bias)
      if (t >= 0 && t < vocab) edit(t).bias += bias;
    if (p.repetition_penalty != 1.0f) {
      for (int32_t t : st.prompt_tokens_)
        if (t >= 0 && t < vocab) edit(t).repetition = p.repetition_penalty;
      for (const auto& [t, count] : st.output_counts_)
        if (t >= 0 && t < vocab) edit(t).repetition = p.repetition_penalty;
    }
    if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
      for (const auto& [t, count] : st.output_counts_)
        if (t >= 0 && t < vocab)
          edit(t).subtract = p.presence_penalty + p.frequency_penalty * static_cast<float>(count);
    }
    if (!suppress.empty())
      for (int32_t t : suppress[r])
        if (t >= 0 && t < vocab) edit(t).suppress = 1;
    cuda::SampleRowParams& rp = params[r];
    rp.temperature = p.temperature;
    rp.top_k = p.top_k;
    rp.top_p = p.top_p;
    rp.min_p = p.min_p;
    rp.uniform = p.temperature == 0.0f ? 0.0 : st.rng_.uniform();
    rp.top_logprobs = std::clamp(p.top_logprobs, 0, cuda::kMaxTopLogprobs);
    rp.edit_begin = static_cast<int32_t>(edits.size());
    for (const auto& [t, e] : row_edits) edits.push_back(e);
    rp.edit_end = static_cast<int32_t>(edits.size());
  }
  PONDER_RETURN_IF_ERROR(fit(params_, params.size() * sizeof(cuda::SampleRowParams)));
  PONDER_RETURN_IF_ERROR(fit(edits_, std::max<size_t>(1, edits.size()) * sizeof(cuda::LogitEdit)));
  PONDER_RETURN_IF_ERROR(fit(work_, static_cast<size_t>(rows * vocab) * sizeof(float)));
  PONDER_RETURN_IF_ERROR(fit(results_, rows * sizeof(cuda::SampleRowResult)));
  MemorySpace& mem = backend_.memory();
  mem.copy(params_.data(), params.data(), params.size() * sizeof(cuda::SampleRowParams));
  if (!edits.empty()) mem.copy(edits_.data(), edits.data(), edits.size() * sizeof(cuda::LogitEdit));
  auto stream = static_cast<cudaStream_t>(backend_.stream());
  PONDER_RETURN_IF_ERROR(cuda::cuda_status(
      cuda::sample(logits.as<float>(), static_cast<int32_t>(rows), static_cast<int32_t>(vocab),
                   params_.as<cuda::SampleRowParams>(), edits_.as<cuda::LogitEdit>(),
                   work_.as<float>(), results_.as<cuda::SampleRowResult>(), stream),
      "sampling kernel"));
  std::vector<cuda::SampleRowResult> back(rows);
  mem.copy(back.data(), results_.data(), rows * sizeof(cuda::SampleRowResult));
  PONDER_RETURN_IF_ERROR(backend_.synchronize());
  std::vector<SampleResult> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    out[r].token = back[r].token;
    out[r].logprob = back[r].logprob;
    for (int32_t i = 0; i < back[r].n_top; ++i)
      out[r].top.push_back({back[r].top_tokens[i], back[r].top_logprobs[i]});
  }
  return out;
}

}  // namespace ponder::worker
