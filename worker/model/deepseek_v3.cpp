// DeepseekV3ForCausalLM (DeepSeek-V3, R1): Multi-head Latent Attention, then a dense MLP for the
// first first_k_dense_replace layers and a mixture of experts after — sigmoid scores, a correction
// bias for the choice, group-limited top-k (noaux_tc), shared experts, routed_scaling_factor.
// The multi-token-prediction layers after num_hidden_layers are not loaded.
#include "worker/model/architecture.h"

#include <string>

#include "common/check.h"
#include "common/log.h"

namespace ponder::worker {

namespace {

Status require_string(const nlohmann::json& json, const char* key, const char* expected,
                      const char* what) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return {};
  if (!it->is_string() || it->get<std::string>() != expected)
    return error(StatusCode::kInvalidArgument,
                 "key '%s': %s is not supported (DeepseekV3ForCausalLM %s '%s')", key,
                 it->dump().c_str(), what, expected);
  return {};
}

}  // namespace

Status configure_deepseek_v3(const nlohmann::json& json, ModelConfig& config) {
  MlaConfig& a = config.mla;
  PONDER_RETURN_IF_ERROR(config_int(json, "q_lora_rank", a.q_lora_rank, false, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "kv_lora_rank", a.kv_lora_rank, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "qk_nope_head_dim", a.qk_nope_head_dim, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "qk_rope_head_dim", a.qk_rope_head_dim, true, 2));
  PONDER_RETURN_IF_ERROR(config_int(json, "v_head_dim", a.v_head_dim, true, 1));
  if (a.qk_rope_head_dim % 2 != 0)
    return error(StatusCode::kInvalidArgument, "qk_rope_head_dim %lld must be even for RoPE",
                 (long long)a.qk_rope_head_dim);
  a.rope_interleave = true;
  PONDER_ASSIGN_OR_RETURN(a.rope_interleave, config_bool(json, "rope_interleave", true));
  config.head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
  config.n_kv_heads = config.n_heads;  // every head reads the one latent
  PONDER_ASSIGN_OR_RETURN(bool attention_bias, config_bool(json, "attention_bias", false));
  if (attention_bias)
    return error(StatusCode::kInvalidArgument,
                 "key 'attention_bias': true is not supported for DeepseekV3ForCausalLM");

  MoeConfig& m = config.moe;
  PONDER_RETURN_IF_ERROR(require_string(json, "scoring_func", "sigmoid", "scores experts with"));
  PONDER_RETURN_IF_ERROR(require_string(json, "topk_method", "noaux_tc", "routes with"));
  int64_t layer_freq = 1;
  PONDER_RETURN_IF_ERROR(config_int(json, "moe_layer_freq", layer_freq, false, 1));
  if (layer_freq != 1)
    return error(StatusCode::kInvalidArgument, "key 'moe_layer_freq': %lld is not supported (1)",
                 (long long)layer_freq);
  m.scoring = MoeScoring::kSigmoid;
  m.score_bias = true;
  PONDER_RETURN_IF_ERROR(config_int(json, "n_routed_experts", m.n_experts, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "num_experts_per_tok", m.top_k, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "moe_intermediate_size", m.ffn, true, 1));
  int64_t n_shared = 1;
  PONDER_RETURN_IF_ERROR(config_int(json, "n_shared_experts", n_shared, false, 0));
  m.shared_ffn = n_shared * m.ffn;
  m.n_group = 8;
  m.topk_group = 4;
  PONDER_RETURN_IF_ERROR(config_int(json, "n_group", m.n_group, false, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "topk_group", m.topk_group, false, 1));
  PONDER_ASSIGN_OR_RETURN(m.norm_topk_prob, config_bool(json, "norm_topk_prob", true));
  m.routed_scaling_factor = 2.5;
  PONDER_RETURN_IF_ERROR(config_double(json, "routed_scaling_factor", m.routed_scaling_factor, false));
  if (m.n_experts % m.n_group != 0 || m.topk_group > m.n_group)
    return error(StatusCode::kInvalidArgument,
                 "n_routed_experts (%lld) must split into n_group (%lld) groups, of which "
                 "topk_group (%lld) are kept",
                 (long long)m.n_experts, (long long)m.n_group, (long long)m.topk_group);
  if (m.n_experts / m.n_group < 2)
    return error(StatusCode::kInvalidArgument,
                 "n_group %lld leaves fewer than 2 experts per group (a group scores its top 2)",
                 (long long)m.n_group);
  if (m.top_k > m.topk_group * (m.n_experts / m.n_group))
    return error(StatusCode::kInvalidArgument,
                 "num_experts_per_tok (%lld) is more than the %lld experts of topk_group groups",
                 (long long)m.top_k, (long long)(m.topk_group * (m.n_experts / m.n_group)));
  int64_t first_dense = 3;
  PONDER_RETURN_IF_ERROR(config_int(json, "first_k_dense_replace", first_dense, false, 0));
  m.layer_is_moe.assign(config.n_layers, false);
  for (int64_t l = first_dense; l < config.n_layers; ++l) m.layer_is_moe[l] = true;

  int64_t mtp = 0;
  PONDER_RETURN_IF_ERROR(config_int(json, "num_nextn_predict_layers", mtp, false, 0));
  if (mtp > 0)
    PONDER_LOG(kInfo, "model",
               "DeepseekV3ForCausalLM: skipping %lld multi-token-prediction layer(s) after layer "
               "%lld (not used for decoding)",
               (long long)mtp, (long long)config.n_layers - 1);
  return {};
}

}  // namespace ponder::worker
