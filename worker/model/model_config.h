// ModelConfig: the hyper-parameters of a decoder-only transformer, parsed from a Hugging Face
// config.json by the architecture that owns the "architectures" entry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/dtype.h"

namespace ponder::worker {

enum class RopeScalingType { kNone, kLinear, kLlama3, kYarn };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  double beta_fast = 32.0;        // yarn: the ramp between extrapolated and interpolated bands
  double beta_slow = 1.0;
  bool truncate = true;           // yarn: round the ramp's ends to whole dimensions
  double attention_factor = 0.0;  // yarn: cos/sin scale; 0: derived from factor and mscale
  double mscale = 0.0;            // yarn (DeepSeek): 0 when absent
  double mscale_all_dim = 0.0;    // yarn (DeepSeek): also scales the softmax (MLA models)
};

// Multi-head Latent Attention (DeepSeek-V2/V3): keys and values come from one compressed latent
// per token (kv_lora_rank wide, RMS-normed) plus a shared rotary key (qk_rope_head_dim); the KV
// cache holds only those. Queries come from q_proj, or through a q_lora_rank bottleneck.
struct MlaConfig {
  int64_t q_lora_rank = 0;  // 0: a direct q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool rope_interleave = false;  // the rotary dims are stored as interleaved pairs
};

// FP8 block-quantized weights (quantization_config.quant_method "fp8", DeepSeek's format): an
// F8_E4M3 matrix W comes with W_scale_inv [ceil(rows / block_rows), ceil(cols / block_cols)], and
// W[i, j] = fp8(W[i, j]) · scale_inv[i / block_rows, j / block_cols].
struct Fp8Config {
  int64_t block_rows = 0;  // 0: not an FP8 checkpoint
  int64_t block_cols = 0;
};

// How the matmul weights are held once loaded: as the checkpoint has them (f32/f16/bf16), or
// int8 with one scale per output row (load-time quantization, `--quantize int8`; CPU only).
enum class WeightQuant : uint8_t { kNone, kInt8 };
std::string_view weight_quant_name(WeightQuant quant);      // "none", "int8"
Expected<WeightQuant> parse_weight_quant(std::string_view text);

enum class MoeScoring { kSoftmax, kSigmoid };

// A mixture of experts replacing the dense MLP in some layers: a router scores n_experts, each
// token goes to its top_k (optionally only within the topk_group best of n_group groups), and
// the experts' outputs are summed with the routing weights; shared experts see every token.
struct MoeConfig {
  int64_t n_experts = 0;  // 0: a dense model
  int64_t top_k = 0;
  int64_t ffn = 0;        // moe_intermediate_size: each routed expert's intermediate rows
  int64_t shared_ffn = 0; // the shared experts' intermediate rows together (0: none)
  MoeScoring scoring = MoeScoring::kSoftmax;
  bool score_bias = false;  // e_score_correction_bias shifts the choice, not the weights
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool group_by_max = false;  // a group's score: its best expert (DeepSeek-V2), else its best two
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  std::vector<bool> layer_is_moe;  // [n_layers]
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections carry a bias (Qwen2; Llama with attention_bias)
  bool o_bias = false;    // o_proj carries a bias (Llama with attention_bias)
  bool mlp_bias = false;  // gate/up/down carry biases (Llama with mlp_bias)
  bool qk_norm = false;   // per-head RMSNorm on q and k before RoPE (Qwen3)
  MlaConfig mla;          // kv_lora_rank > 0: MLA attention (head_dim is then nope + rope)
  MoeConfig moe;          // n_experts > 0: MoE layers where moe.layer_is_moe says
  Fp8Config fp8;          // FP8 checkpoints: dequantized to bf16 while loading
  // compressed-tensors int8 checkpoints (quant_method "compressed-tensors", format
  // "int-quantized"): I8 matrices W with W_scale [rows, 1] (or one per tensor), W = q · scale.
  bool int8_checkpoint = false;
  // kInt8 for an int8 checkpoint or after load-time quantization (DecoderModel::load).
  WeightQuant weight_quant = WeightQuant::kNone;
  DType dtype = DType::kBF16;  // torch_dtype of the checkpoint
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;

  bool is_mla() const { return mla.kv_lora_rank > 0; }
  bool is_moe() const { return moe.n_experts > 0; }
  bool layer_is_moe(int64_t layer) const { return is_moe() && moe.layer_is_moe[layer]; }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // The dimensions RoPE rotates per head (MLA: only the qk_rope_head_dim tail).
  int64_t rope_dim() const { return is_mla() ? mla.qk_rope_head_dim : head_dim; }
  // What the KV cache holds per token and layer: heads × key width, and values alongside unless
  // MLA, whose cache is one latent row (kv_lora_rank + qk_rope_head_dim) that is both.
  int64_t cache_heads() const { return is_mla() ? 1 : n_kv_heads; }
  int64_t cache_key_dim() const { return is_mla() ? mla.kv_lora_rank + mla.qk_rope_head_dim : head_dim; }
  // Parameters in matmuls per token (excluding the embedding lookup), for FLOP accounting: the
  // active ones (a token's top_k routed experts, not all of them).
  int64_t matmul_params() const;
  // Every parameter, all experts included.
  int64_t total_params() const;
  // Attention FLOPs of one token over `keys` cached positions, every layer.
  double attention_flops(int64_t keys) const;
};

}  // namespace ponder::worker
