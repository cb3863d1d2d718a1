// Device sampling (CudaSampler) against the CPU Sampler on the same logits and seeds: every
// processing step alone and combined, penalties over several steps, suppression, ties (where
// the CPU takes lower ids first), vocabularies from 1 to 152 064 tokens, and the top-N
// logprobs. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/worker/cuda_test_util.h"
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/backend/cuda/cuda_sampler.h"

namespace ponder::worker {
namespace {

using testing::DeviceArrays;
using testing::random_vec;

struct Case {
  const char* name;
  SamplingParams params;
  bool ties = false;  // logits on a coarse grid, so many tokens share a probability
};

class CudaSampling : public ::testing::Test {
 protected:
  void SetUp() override {
    PONDER_SKIP_WITHOUT_GPU();
    auto gpu = CudaBackend::create();
    ASSERT_TRUE(gpu.has_value()) << gpu.error().to_string();
    gpu_ = std::move(*gpu);
    dev_ = std::make_unique<DeviceArrays>(*gpu_);
  }

  // `rows` sequences with their own seeds sample `steps` tokens each from fresh random logits
  // (same on both sides), accepting what they draw; every result must match.
  void expect_same_as_cpu(const Case& c, int64_t vocab, int rows, int steps, uint32_t seed) {
    std::vector<Sampler> cpu;
    std::vector<DeviceSamplerState> dev;
    std::vector<int32_t> prompt = {0, 3, 3, 7, int32_t(vocab - 1)};
    for (int r = 0; r < rows; ++r) {
      SamplingParams p = c.params;
      p.seed = 1000 + r;
      cpu.emplace_back(p);
      dev.emplace_back(p);
      cpu.back().set_prompt(prompt);
      dev.back().set_prompt(prompt);
    }
    CudaSampler sampler(*gpu_);
    int mismatches = 0;
    for (int step = 0; step < steps; ++step) {
      std::vector<float> logits = random_vec(rows * vocab, seed + step, 3.0f);
      if (c.ties)
        for (float& x : logits) x = std::round(x * 2.0f) / 2.0f;
      std::vector<std::vector<int32_t>> suppress(rows);
      for (int r = 0; r < rows; ++r)  // (never the whole vocabulary: then nothing is drawable)
        if (r % 3 == 1 && vocab > 8) suppress[r] = {int32_t(r % vocab), int32_t((7 * r) % vocab)};
      Tensor dl = dev_->upload(logits, DType::kF32, {rows, vocab});
      std::vector<DeviceSamplerState*> ptrs;
      for (auto& d : dev) ptrs.push_back(&d);
      auto got = sampler.sample(dl, ptrs, suppress);
      ASSERT_TRUE(got.has_value()) << got.error().to_string();
      // The logits on the device are unchanged.
      EXPECT_EQ(dev_->download(dl), logits);
      for (int r = 0; r < rows; ++r) {
        std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
        const SampleResult want = cpu[r].sample(row, suppress[r]);
        const SampleResult& g = (*got)[r];
        if (g.token != want.token) ++mismatches;
        EXPECT_EQ(g.token, want.token)
            << c.name << " vocab " << vocab << " row " << r << " step " << step;
        EXPECT_NEAR(g.logprob, want.logprob, 1e-4) << c.name;
        ASSERT_EQ(g.top.size(), want.top.size()) << c.name;
        for (size_t i = 0; i < want.top.size(); ++i) {
          EXPECT_EQ(g.top[i].token, want.top[i].token) << c.name << " top " << i;
          EXPECT_NEAR(g.top[i].logprob, want.top[i].logprob, 1e-4) << c.name;
        }
        cpu[r].accept(want.token);
        dev[r].accept(want.token);
      }
    }
    RecordProperty(std::string(c.name) + "_mismatches", mismatches);
  }

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<DeviceArrays> dev_;
};

const Case kCases[] = {
    {"greedy", {.temperature = 0.0f}},
    {"greedy_ties", {.temperature = 0.0f}, true},
    {"temperature", {.temperature = 0.7f}},
    {"hot", {.temperature = 1.5f}},
    {"top_k_1", {.temperature = 1.0f, .top_k = 1}},
    {"top_k_50", {.temperature = 0.8f, .top_k = 50}},
    {"top_k_ties", {.temperature = 1.0f, .top_k = 7}, true},
    {"top_p", {.temperature = 1.0f, .top_p = 0.9f}},
    {"top_p_small", {.temperature = 1.0f, .top_p = 0.3f}},
    {"top_p_ties", {.temperature = 1.0f, .top_p = 0.5f}, true},
    {"min_p", {.temperature = 1.0f, .min_p = 0.1f}},
    {"min_p_ties", {.temperature = 1.0f, .min_p = 0.25f}, true},
    {"combined", {.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f}},
    {"penalties",
     {.temperature = 0.8f,
      .repetition_penalty = 1.3f,
      .presence_penalty = 0.5f,
      .frequency_penalty = 0.3f}},
    {"greedy_penalties",
     {.temperature = 0.0f, .repetition_penalty = 1.2f, .frequency_penalty = 1.0f}},
    {"bias", {.temperature = 1.0f, .logit_bias = {{5, 8.0f}, {6, -100.0f}, {5, 1.0f}}}},
    {"top_logprobs", {.temperature = 0.6f, .top_logprobs = 20}},
    {"top_logprobs_ties", {.temperature = 0.6f, .top_logprobs = 5}, true},
};

TEST_F(CudaSampling, EveryPipelineStepMatchesTheCpuSampler) {
  for (const Case& c : kCases) {
    for (int64_t vocab : {1, 2, 1000, 50257}) {
      expect_same_as_cpu(c, vocab, /*rows=*/8, /*steps=*/4, 7);
    }
  }
}

TEST_F(CudaSampling, LargeVocabularyBatch) {
  expect_same_as_cpu(kCases[12], 152064, /*rows=*/64, /*steps=*/3, 11);
  expect_same_as_cpu(kCases[16], 128256, /*rows=*/16, /*steps=*/2, 13);
}

}  // namespace
}  // namespace ponder::worker
