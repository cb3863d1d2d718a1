// The forward pass on the CUDA backend against the CPU backend and transformers, for every
// fixture model (tests/data/models): prefill logits at every position, batched greedy decoding
// (recorded and replayed as CUDA graphs), graph replay against the eager step, the replica
// engine end to end (forks copy KV blocks on the device), and device sampling of model logits.
// Skipped without a GPU.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/worker/cuda_test_util.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/backend/cuda/cuda_sampler.h"
#include "worker/batch_runner.h"
#include "worker/engine/engine.h"
#include "worker/model/decoder_model.h"
#include "worker/safetensors.h"

namespace ponder::worker {
namespace {


std::string fixture_dir(const std::string& name) {
  return std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
}

std::vector<float> fixture_logits(const std::string& dir, const std::string& name) {
  auto file = SafetensorsFile::open(dir + "/parity.safetensors", 0);
  EXPECT_TRUE(file.has_value());
  for (const TensorInfo& t : (*file)->tensors()) {
    if (t.name != name) continue;
    std::vector<float> out(t.numel());
    EXPECT_TRUE((*file)->read(t.offset, t.nbytes, out.data()).ok());
    return out;
  }
  ADD_FAILURE() << "no tensor " << name << " in " << dir;
  return {};
}

// A model with its backend and KV cache, on the CPU or the GPU.
struct Rig {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DecoderModel> model;
  std::unique_ptr<KvCache> cache;
};

Rig cpu_rig(const std::string& dir, MatmulPrecision precision = MatmulPrecision::kExact) {
  Rig r;
  r.backend = std::move(*CpuBackend::create({.n_threads = 2, .precision = precision}));
  r.model = std::move(*DecoderModel::load(dir));
  r.cache = std::make_unique<KvCache>(std::move(*KvCache::create(r.model->kv_cache_config(256))));
  return r;
}

Rig gpu_rig(const std::string& dir, int graph_max_batch = 64, DType kv = DType::kF32) {
  Rig r;
  auto backend = CudaBackend::create({.graph_max_batch = graph_max_batch});
  EXPECT_TRUE(backend.has_value()) << backend.error().to_string();
  r.backend = std::move(*backend);
  r.model = std::move(*DecoderModel::load(dir));
  EXPECT_TRUE(r.model->move_to(*r.backend).ok());
  auto cache = KvCache::create(r.model->kv_cache_config(256, 16, kv), r.backend->memory());
  EXPECT_TRUE(cache.has_value()) << cache.error().to_string();
  r.cache = std::make_unique<KvCache>(std::move(*cache));
  return r;
}

// Logits at every position of one prompt, from one prefill.
std::vector<float> prefill_logits(Rig& r, const std::vector<int32_t>& prompt) {
  SequenceState seq{.tokens = prompt};
  EXPECT_TRUE(r.cache->reserve(seq.blocks, prompt.size()).ok());
  BatchLayout batch;
  batch.seqs.push_back({.token_begin = 0,
                        .n_tokens = int32_t(prompt.size()),
                        .start_pos = 0,
                        .block_table = seq.blocks});
  std::vector<int32_t> rows;
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.positions.push_back(int32_t(i));
    rows.push_back(int32_t(i));
  }
  std::vector<float> logits(prompt.size() * r.model->config().vocab_size);
  Status st = r.model->forward(*r.backend, *r.cache, prompt, batch, rows, logits.data());
  EXPECT_TRUE(st.ok()) << st.to_string();
  r.cache->release(seq.blocks);
  return logits;
}

class CudaModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    PONDER_SKIP_WITHOUT_GPU();
    dir_ = fixture_dir(GetParam());
    meta_ = nlohmann::json::parse(std::ifstream(dir_ + "/parity.json"));
    for (const auto& p : meta_["prompts"]) prompts_.push_back(p.get<std::vector<int32_t>>());
    dtype_ = meta_["dtype"].get<std::string>();
  }
  bool f32() const { return dtype_ == "float32"; }

  std::string dir_, dtype_;
  nlohmann::json meta_;
  std::vector<std::vector<int32_t>> prompts_;
};

// f32 weights: f32 GEMMs, the CPU's numbers to rounding. bf16/f16 weights: activations are
// rounded to the weights' dtype before each matmul (PyTorch's bf16 model), so the bounds are the
// CPU bf16 path's (parity_test.cpp) against transformers in f32 and in the native dtype.
TEST_P(CudaModel, PrefillLogitsMatchCpuAndTransformersAtEveryPosition) {
  Rig cpu = cpu_rig(dir_), gpu = gpu_rig(dir_);
  Rig cpu_bf16 = cpu_rig(dir_, MatmulPrecision::kBf16);
  const bool cpu_has_bf16 =
      static_cast<CpuBackend&>(*cpu_bf16.backend).precision() == MatmulPrecision::kBf16;
  for (size_t i = 0; i < prompts_.size(); ++i) {
    const std::vector<float> got = prefill_logits(gpu, prompts_[i]);
    const std::vector<float> want = prefill_logits(cpu, prompts_[i]);
    const std::vector<float> hf = fixture_logits(dir_, "logits." + std::to_string(i));
    RecordProperty("nmse_vs_cpu_" + std::to_string(i), std::to_string(nmse(got, want)));
    if (f32()) {
      EXPECT_LT(nmse(got, want), 1e-9) << "prompt " << i;
      EXPECT_LT(nmse(got, hf), 1e-9) << "prompt " << i;
      continue;
    }
    const std::vector<float> native = fixture_logits(dir_, "logits_native." + std::to_string(i));
    EXPECT_LT(nmse(got, hf), 5e-4) << "prompt " << i;
    EXPECT_LT(nmse(got, native), 2e-3) << "prompt " << i;
    if (dtype_ == "float16") {
      EXPECT_LT(nmse(got, want), 1e-5) << "prompt " << i;
    }
    if (dtype_ == "bfloat16" && cpu_has_bf16) {  // same roundings, different summation order
      EXPECT_LT(nmse(got, prefill_logits(cpu_bf16, prompts_[i])), 1e-5) << "prompt " << i;
    }
  }
}

// All prompts decode together for 32 steps (BatchRunner); each step's logits against the CPU
// fed the same tokens. Decode steps of 3 sequences run padded to 4 and, after a warm-up step
// and a recording, as replays of one CUDA graph.
TEST_P(CudaModel, BatchedGreedyDecodingMatchesCpuThroughGraphReplays) {
  Rig cpu = cpu_rig(dir_), gpu = gpu_rig(dir_);
  BatchRunner cpu_runner(*cpu.model, *cpu.backend, *cpu.cache);
  BatchRunner gpu_runner(*gpu.model, *gpu.backend, *gpu.cache);
  std::vector<SequenceState> a(prompts_.size()), b(prompts_.size());
  std::vector<SequenceState*> pa, pb;
  for (size_t i = 0; i < prompts_.size(); ++i) {
    a[i].tokens = b[i].tokens = prompts_[i];
    pa.push_back(&a[i]);
    pb.push_back(&b[i]);
  }
  const int64_t vocab = cpu.model->config().vocab_size;
  std::vector<float> la, lb;
  for (int step = 0; step < 32; ++step) {
    ASSERT_TRUE(cpu_runner.step(pa, la).ok());
    Status st = gpu_runner.step(pb, lb);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_LT(nmse(lb, la), f32() ? 1e-9 : 1e-3) << "step " << step;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      const float* row = la.data() + i * vocab;
      const int32_t next = int32_t(std::max_element(row, row + vocab) - row);
      if (f32()) {
        const float* grow = lb.data() + i * vocab;
        EXPECT_EQ(int32_t(std::max_element(grow, grow + vocab) - grow), next) << "step " << step;
      }
      a[i].tokens.push_back(next);
      b[i].tokens.push_back(next);
    }
  }
  if (f32()) {
    for (size_t i = 0; i < prompts_.size(); ++i) {
      std::vector<int32_t> got(a[i].tokens.end() - 32, a[i].tokens.end());
      EXPECT_EQ(got, meta_["greedy"][i].get<std::vector<int32_t>>()) << "prompt " << i;
    }
  }
  const cuda::GraphStats& g = static_cast<CudaBackend&>(*gpu.backend).graph_stats();
  EXPECT_EQ(g.recorded_steps, 1);
  EXPECT_EQ(g.replayed_steps, 29);  // step 0 prefills, 1 warms up, 2 records, 3..31 replay
  for (auto& s : b) gpu_runner.release(s);
  EXPECT_EQ(gpu.cache->blocks_used(), 0);
}

// The same decode step (same token, position and cache) four times: eager warm-up, recording,
// replay, replay — bitwise the same logits; and the same as a backend without graphs.
TEST_P(CudaModel, GraphReplayGivesTheEagerStepsLogits) {
  Rig gpu = gpu_rig(dir_), plain = gpu_rig(dir_, /*graph_max_batch=*/0);
  auto run = [&](Rig& r, int times) {
    SequenceState seq{.tokens = prompts_[1]};
    std::vector<float> logits;
    BatchRunner runner(*r.model, *r.backend, *r.cache);
    SequenceState* one[] = {&seq};
    EXPECT_TRUE(runner.step(one, logits).ok());
    seq.tokens.push_back(3);
    std::vector<std::vector<float>> out;
    for (int i = 0; i < times; ++i) {
      seq.n_cached = static_cast<int32_t>(seq.tokens.size()) - 1;
      Status st = runner.step(one, logits);
      EXPECT_TRUE(st.ok()) << st.to_string();
      out.push_back(logits);
    }
    runner.release(seq);
    return out;
  };
  const auto graphed = run(gpu, 4);
  const auto eager = run(plain, 1);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(graphed[i], graphed[0]) << "run " << i;
  EXPECT_LT(nmse(graphed[0], eager[0]), f32() ? 1e-10 : 1e-6);
  const cuda::GraphStats& g = static_cast<CudaBackend&>(*gpu.backend).graph_stats();
  EXPECT_EQ(g.recorded_steps, 1);
  EXPECT_EQ(g.replayed_steps, 2);
}

// A bf16 KV cache: K/V rounded once more; logits stay close to the f32 cache's.
TEST_P(CudaModel, Bf16KvCacheStaysCloseToF32) {
  Rig f = gpu_rig(dir_), h = gpu_rig(dir_, 64, DType::kBF16);
  for (size_t i = 0; i < prompts_.size(); ++i)
    EXPECT_LT(nmse(prefill_logits(h, prompts_[i]), prefill_logits(f, prompts_[i])), 1e-3)
        << "prompt " << i;
}

// The replica engine in this process on the GPU: n = 2 forks (the partial block copied on the
// device), greedy and seeded sampling, top logprobs — the CPU engine's outputs exactly (f32).
TEST_P(CudaModel, EngineOnTheGpuGivesTheCpuEnginesOutputs) {
  if (!f32()) GTEST_SKIP() << "seeded draws compare exactly only with f32 weights";
  auto outputs = [&](Rig& r) {
    LocalExecutor executor(*r.model, *r.backend, *r.cache);
    Engine engine(executor, {.token_budget = 16});
    std::map<std::pair<int64_t, int32_t>, std::vector<int32_t>> out;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      EngineRequest req{
          .prompt = prompts_[i],
          .n = 2,
          .sampling = {.temperature = i % 2 ? 0.8f : 0.0f, .seed = 3 + i, .top_logprobs = 2},
          .max_tokens = 12,
          .ignore_eos = true};
      auto id = engine.enqueue(req, [&out](const EngineOutput& o) {
        auto& v = out[{o.request_id, o.index}];
        v.insert(v.end(), o.tokens.begin(), o.tokens.end());
        for (const auto& top : o.top_logprobs)
          for (const TokenLogprob& t : top) v.push_back(-1 - t.token);
      });
      EXPECT_TRUE(id.has_value());
    }
    while (!engine.idle()) {
      auto worked = engine.step();
      EXPECT_TRUE(worked.has_value()) << worked.error().to_string();
      if (!worked) break;
    }
    return out;
  };
  Rig cpu = cpu_rig(dir_), gpu = gpu_rig(dir_);
  const auto want = outputs(cpu);
  EXPECT_EQ(outputs(gpu), want);
  EXPECT_EQ(want.size(), prompts_.size() * 2);
}

// Logits left on the device (forward_to) and sampled there: greedy is the CPU logits' argmax;
// seeded draws are the CPU Sampler's on the CPU logits.
TEST_P(CudaModel, DeviceSamplingOfModelLogitsMatchesTheCpuSampler) {
  if (!f32()) GTEST_SKIP() << "seeded draws compare exactly only with f32 weights";
  Rig cpu = cpu_rig(dir_), gpu = gpu_rig(dir_);
  CudaBackend& cuda = static_cast<CudaBackend&>(*gpu.backend);
  const int64_t vocab = cpu.model->config().vocab_size;
  const std::vector<int32_t>& prompt = prompts_[2];
  std::vector<int32_t> blocks;
  ASSERT_TRUE(gpu.cache->reserve(blocks, prompt.size()).ok());
  BatchLayout batch;
  batch.seqs.push_back({.token_begin = 0,
                        .n_tokens = int32_t(prompt.size()),
                        .start_pos = 0,
                        .block_table = blocks});
  for (size_t i = 0; i < prompt.size(); ++i) batch.positions.push_back(int32_t(i));
  const std::vector<int32_t> rows = {int32_t(prompt.size()) - 1};
  auto dev_logits = gpu.backend->memory().allocate(vocab * sizeof(float));
  ASSERT_TRUE(dev_logits.has_value());
  Tensor logits = Tensor::view(dev_logits->data(), DType::kF32, {1, vocab}, Device::kCuda);
  ASSERT_TRUE(gpu.model->forward_to(*gpu.backend, *gpu.cache, prompt, batch, rows, logits).ok());
  const std::vector<float> cpu_logits = prefill_logits(cpu, prompt);
  const std::vector<float> last(cpu_logits.end() - vocab, cpu_logits.end());
  CudaSampler sampler(cuda);
  for (float temperature : {0.0f, 0.7f, 1.3f}) {
    const SamplingParams params{
        .temperature = temperature, .top_k = 20, .top_p = 0.9f, .seed = 11, .top_logprobs = 3};
    Sampler reference(params);
    DeviceSamplerState state(params);
    for (int draw = 0; draw < 20; ++draw) {
      std::vector<float> scratch = last;
      const SampleResult want = reference.sample(scratch);
      DeviceSamplerState* one[] = {&state};
      auto got = sampler.sample(logits, one);
      ASSERT_TRUE(got.has_value()) << got.error().to_string();
      EXPECT_EQ((*got)[0].token, want.token) << "T=" << temperature << " draw " << draw;
      EXPECT_NEAR((*got)[0].logprob, want.logprob, 1e-4);
      ASSERT_EQ((*got)[0].top.size(), want.top.size());
      for (size_t i = 0; i < want.top.size(); ++i)
        EXPECT_EQ((*got)[0].top[i].token, want.top[i].token);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModel,
                         ::testing::Values("llama_f32", "llama3_bf16", "llama_f16", "qwen2_f32",
                                           "qwen2_bf16", "qwen3_f32", "qwen3_bf16_sharded"));

TEST(CudaModelErrors, WeightsLeftOnTheHostAreAClearError) {
  PONDER_SKIP_WITHOUT_GPU();
  auto backend = CudaBackend::create();
  ASSERT_TRUE(backend.has_value());
  auto model = DecoderModel::load(fixture_dir("qwen3_f32"));
  ASSERT_TRUE(model.has_value());
  auto cache = KvCache::create((*model)->kv_cache_config(8), (*backend)->memory());
  std::vector<int32_t> blocks;
  ASSERT_TRUE(cache->reserve(blocks, 1).ok());
  BatchLayout batch;
  batch.seqs.push_back({.token_begin = 0, .n_tokens = 1, .start_pos = 0, .block_table = blocks});
  batch.positions = {0};
  std::vector<float> logits((*model)->config().vocab_size);
  const std::vector<int32_t> tokens = {1}, rows = {0};
  const Status st = (*model)->forward(**backend, *cache, tokens, batch, rows, logits.data());
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.to_string();
  EXPECT_NE(st.message().find("move_to"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ponder::worker
