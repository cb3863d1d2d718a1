// cuda_bench: the CUDA backend on random-weight Llama-shaped models generated on the device
// (Llama-3.2-1B and Llama-3-8B shapes, bf16 weights): decode at batch 1 (with and without CUDA
// graphs) against the device memory bandwidth, and a 2048-token prefill against the bf16 GEMM
// peak — both limits measured in the same run (cuda_roofline.h). One JSON object on stdout.
// Usage: cuda_bench [--models 1b,8b] [--prompt 128] [--decode 128] [--prefill 2048]
//                   [--kv bf16|f32] [--device 0]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/cuda_roofline.h"
#include "common/check.h"
#include "common/strings.h"
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/model/decoder_model.h"
#include "worker/sampler.h"

using namespace ponder;
using namespace ponder::worker;
using Json = nlohmann::ordered_json;

namespace {

struct Options {
  std::vector<std::string> models = {"1b", "8b"};
  int64_t prompt = 128, decode = 128, prefill = 2048;
  DType kv = DType::kBF16;
  int device = 0;
};

Expected<ModelConfig> llama_config(const std::string& name) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = 128256;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.max_position_embeddings = 131072;
  c.rope_scaling = {.type = RopeScalingType::kLlama3,
                    .factor = 8.0,
                    .low_freq_factor = 1.0,
                    .high_freq_factor = 4.0,
                    .original_max_position_embeddings = 8192};
  c.dtype = DType::kBF16;
  if (name == "1b") {  // Llama-3.2-1B
    c.hidden_size = 2048;
    c.intermediate_size = 8192;
    c.n_layers = 16;
    c.head_dim = 64;
    c.tie_word_embeddings = true;
    c.rope_scaling.factor = 32.0;
  } else if (name == "8b") {  // Llama-3-8B (3.1's rope scaling)
    c.hidden_size = 4096;
    c.intermediate_size = 14336;
    c.n_layers = 32;
    c.head_dim = 128;
    c.tie_word_embeddings = false;
  } else {
    return error(StatusCode::kInvalidArgument, "unknown model '%s' (1b or 8b)", name.c_str());
  }
  return c;
}

// Matrices uniform with variance 1/k (k = input width), norm weights 1.
Expected<std::unique_ptr<DecoderModel>> random_model(CudaBackend& be, const ModelConfig& c) {
  PONDER_ASSIGN_OR_RETURN(ModelWeights w, ModelWeights::allocate(c, {}, DType::kBF16, be.memory()));
  uint64_t seed = 1;
  for (Tensor* t : w.tensors()) {
    if (t->ndim == 1) {
      be.fill_random(*t, 1.0f, 0.0f, seed++);
    } else {
      be.fill_random(*t, 0.0f, std::sqrt(3.0f / static_cast<float>(t->cols())), seed++);
    }
  }
  PONDER_RETURN_IF_ERROR(be.synchronize());
  return DecoderModel::create(c, std::move(w));
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One step of one sequence: `tokens` at [start, start + n), logits of the last row left in
// `logits` on the device.
Status step(CudaBackend& be, DecoderModel& model, KvCache& cache, const std::vector<int32_t>& table,
            std::span<const int32_t> tokens, int32_t start, Tensor logits) {
  BatchLayout batch;
  const int32_t n = static_cast<int32_t>(tokens.size());
  batch.seqs.push_back({.token_begin = 0, .n_tokens = n, .start_pos = start, .block_table = table});
  for (int32_t i = 0; i < n; ++i) batch.positions.push_back(start + i);
  const int32_t row[] = {n - 1};
  return model.forward_to(be, cache, tokens, batch, row, logits);
}

// Decode at batch 1: a prompt prefilled, warm-up steps (which record the CUDA graph when the
// backend makes them), then `o.decode` timed steps; logits stay on the device (device sampling
// would read them there).
Expected<Json> decode_batch1(CudaBackend& be, DecoderModel& model, const Options& o,
                             const bench::GpuLimits& limits) {
  const ModelConfig& c = model.config();
  const int64_t warmup = 4, total = o.prompt + warmup + o.decode;
  PONDER_ASSIGN_OR_RETURN(
      KvCache cache, KvCache::create(model.kv_cache_config(total / 16 + 2, 16, o.kv), be.memory()));
  std::vector<int32_t> table;
  PONDER_RETURN_IF_ERROR(cache.reserve(table, total));
  PONDER_ASSIGN_OR_RETURN(Buffer logits_buf, be.memory().allocate(c.vocab_size * sizeof(float)));
  const Tensor logits =
      Tensor::view(logits_buf.data(), DType::kF32, {1, c.vocab_size}, Device::kCuda);
  const std::vector<int32_t> tokens = random_tokens(total, c.vocab_size, 7);
  PONDER_RETURN_IF_ERROR(
      step(be, model, cache, table, std::span(tokens).first(o.prompt), 0, logits));
  int32_t pos = static_cast<int32_t>(o.prompt);
  for (int64_t i = 0; i < warmup; ++i, ++pos)
    PONDER_RETURN_IF_ERROR(
        step(be, model, cache, table, std::span(tokens).subspan(pos, 1), pos, logits));
  PONDER_RETURN_IF_ERROR(be.synchronize());
  const auto before = be.graph_stats();
  const auto t0 = std::chrono::steady_clock::now();
  const int32_t first = pos;
  for (int64_t i = 0; i < o.decode; ++i, ++pos)
    PONDER_RETURN_IF_ERROR(
        step(be, model, cache, table, std::span(tokens).subspan(pos, 1), pos, logits));
  PONDER_RETURN_IF_ERROR(be.synchronize());
  const double secs = since(t0);
  const double tok_s = static_cast<double>(o.decode) / secs;
  // Bytes a step must read: every matrix once, plus the K/V of the context so far.
  const double kv_per_position =
      2.0 * c.n_layers * c.n_kv_heads * c.head_dim * static_cast<double>(dtype_size(o.kv));
  const double mean_context = first + (o.decode + 1) / 2.0;
  const double bytes =
      static_cast<double>(model.weights().matmul_bytes(c)) + kv_per_position * mean_context;
  const auto after = be.graph_stats();
  return Json{{"tokens_per_s", tok_s},
              {"ms_per_token", 1e3 / tok_s},
              {"bytes_per_token", bytes},
              {"fraction_of_read_bandwidth", tok_s * bytes / limits.read_bytes_per_s},
              {"fraction_of_d2d_copy_bandwidth", tok_s * bytes / limits.copy_bytes_per_s},
              {"context", {first, pos}},
              {"graph_replays", after.replayed_steps - before.replayed_steps},
              {"eager_steps", after.eager_steps - before.eager_steps}};
}

// One forward pass over a fresh `o.prefill`-token prompt (logits of its last row), best of 3.
Expected<Json> prefill(CudaBackend& be, DecoderModel& model, const Options& o,
                       const bench::GpuLimits& limits) {
  const ModelConfig& c = model.config();
  PONDER_ASSIGN_OR_RETURN(
      KvCache cache,
      KvCache::create(model.kv_cache_config(o.prefill / 16 + 2, 16, o.kv), be.memory()));
  std::vector<int32_t> table;
  PONDER_RETURN_IF_ERROR(cache.reserve(table, o.prefill));
  PONDER_ASSIGN_OR_RETURN(Buffer logits_buf, be.memory().allocate(c.vocab_size * sizeof(float)));
  const Tensor logits =
      Tensor::view(logits_buf.data(), DType::kF32, {1, c.vocab_size}, Device::kCuda);
  const std::vector<int32_t> tokens = random_tokens(o.prefill, c.vocab_size, 9);
  PONDER_RETURN_IF_ERROR(step(be, model, cache, table, tokens, 0, logits));  // warm-up
  PONDER_RETURN_IF_ERROR(be.synchronize());
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    PONDER_RETURN_IF_ERROR(step(be, model, cache, table, tokens, 0, logits));
    PONDER_RETURN_IF_ERROR(be.synchronize());
    best = std::min(best, since(t0));
  }
  double layer_params = 0;
  for (const LayerWeights& l : model.weights().layers)
    layer_params +=
        static_cast<double>(l.wqkv.numel() + l.wo.numel() + l.w_gate_up.numel() + l.w_down.numel());
  const double n = static_cast<double>(o.prefill);
  const double matmul_flops =
      2.0 * layer_params * n + 2.0 * static_cast<double>(model.weights().lm_head.numel());
  // Causal attention: QKᵀ and PV over n(n+1)/2 (query, key) pairs per head and layer.
  const double attention_flops = 4.0 * c.n_layers * c.n_heads * c.head_dim * n * (n + 1) / 2.0;
  return Json{{"tokens", o.prefill},
              {"seconds", best},
              {"tokens_per_s", n / best},
              {"matmul_flops_per_s", matmul_flops / best},
              {"fraction_of_bf16_gemm_peak", matmul_flops / best / limits.bf16_gemm_flops},
              {"attention_flops", attention_flops},
              {"all_flops_per_s", (matmul_flops + attention_flops) / best}};
}

Expected<Json> run(const Options& o) {
  PONDER_ASSIGN_OR_RETURN(auto graphs, CudaBackend::create({.device = o.device}));
  PONDER_ASSIGN_OR_RETURN(auto eager,
                          CudaBackend::create({.device = o.device, .graph_max_batch = 0}));
  PONDER_ASSIGN_OR_RETURN(bench::GpuLimits limits, bench::measure_gpu_limits(graphs->stream()));
  Json out{{"device", graphs->description()},
           {"kv_cache", std::string(dtype_name(o.kv))},
           {"limits",
            {{"d2d_copy_bytes_per_s", limits.copy_bytes_per_s},
             {"read_bytes_per_s", limits.read_bytes_per_s},
             {"bf16_gemm_flops", limits.bf16_gemm_flops},
             {"gemm_size", limits.gemm_size}}},
           {"models", Json::array()}};
  for (const std::string& name : o.models) {
    PONDER_ASSIGN_OR_RETURN(ModelConfig c, llama_config(name));
    PONDER_ASSIGN_OR_RETURN(auto model, random_model(*graphs, c));
    Json m{{"model", "llama-" + name + " shape, random bf16 weights"},
           {"params", c.total_params()},
           {"matmul_weight_bytes", model->weights().matmul_bytes(c)}};
    PONDER_ASSIGN_OR_RETURN(m["decode_batch1"], decode_batch1(*graphs, *model, o, limits));
    PONDER_ASSIGN_OR_RETURN(m["decode_batch1_no_graphs"], decode_batch1(*eager, *model, o, limits));
    PONDER_ASSIGN_OR_RETURN(m["prefill"], prefill(*graphs, *model, o, limits));
    out["models"].push_back(m);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--models") {
      o.models = split(value(), ',');
    } else if (a == "--prompt") {
      o.prompt = std::stoll(value());
    } else if (a == "--decode") {
      o.decode = std::stoll(value());
    } else if (a == "--prefill") {
      o.prefill = std::stoll(value());
    } else if (a == "--kv") {
      const std::string kv = value();
      o.kv = kv == "f32" ? DType::kF32 : DType::kBF16;
    } else if (a == "--device") {
      o.device = std::stoi(value());
    } else {
      std::fprintf(stderr,
                   "usage: cuda_bench [--models 1b,8b] [--prompt 128] [--decode 128] "
                   "[--prefill 2048] [--kv bf16|f32] [--device 0]\n");
      return 2;
    }
  }
  auto result = run(o);
  if (!result) {
    std::fprintf(stderr, "cuda_bench: %s\n", result.error().to_string().c_str());
    return 1;
  }
  std::printf("%s\n", result->dump(2).c_str());
  return 0;
}
