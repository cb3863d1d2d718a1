// DeepseekV3ForCausalLM (DeepSeek-V3, R1): Multi-head Latent Attention, then a dense MLP for the
// first first_k_dense_replace layers and a mixture of experts after — sigmoid scores, a correction
// bias for the choice, group-limited top-k (noaux_tc), shared experts, routed_scaling_factor.
// The multi-token-prediction layers after num_hidden_layers are not loaded. configure_deepseek
// also reads DeepSeek-V2's variant (deepseek_v2.cpp): softmax, greedy or group_limited_greedy.
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

Status configure_deepseek(const nlohmann::json& json, ModelConfig& config, bool v3) {
  MlaConfig& a = config.mla;
  PONDER_RETURN_IF_ERROR(config_int(json, "q_lora_rank", a.q_lora_rank, false, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "kv_lora_rank", a.kv_lora_rank, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "qk_nope_head_dim", a.qk_nope_head_dim, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "qk_rope_head_dim", a.qk_rope_head_dim, true, 2));
  PONDER_RETURN_IF_ERROR(config_int(json, "v_head_dim", a.v_head_dim, true, 1));
  if (a.qk_rope_head_dim % 2 != 0)
    return error(StatusCode::kInvalidArgument, "qk_rope_head_dim %lld must be even for RoPE",
                 (long long)a.qk_rope_head_dim);
  // V2 rotates pairs as complex numbers: the interleaved layout, always.
  a.rope_interleave = true;
  if (v3) {
    PONDER_ASSIGN_OR_RETURN(a.rope_interleave, config_bool(json, "rope_interleave", true));
  }
  config.head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
  config.n_kv_heads = config.n_heads;  // every head reads the one latent
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    PONDER_ASSIGN_OR_RETURN(bool bias, config_bool(json, key, false));
    if (bias)
      return error(StatusCode::kInvalidArgument, "key '%s': true is not supported for %s", key,
                   config.architecture.c_str());
  }

  MoeConfig& m = config.moe;
  bool grouped = v3;  // V3 always limits the groups; V2 with group_limited_greedy
  if (v3) {
    PONDER_RETURN_IF_ERROR(require_string(json, "scoring_func", "sigmoid", "scores experts with"));
    PONDER_RETURN_IF_ERROR(require_string(json, "topk_method", "noaux_tc", "routes with"));
    m.scoring = MoeScoring::kSigmoid;
    m.score_bias = true;
  } else {
    PONDER_RETURN_IF_ERROR(require_string(json, "scoring_func", "softmax", "scores experts with"));
    std::string method = "greedy";
    if (json.contains("topk_method") && json["topk_method"].is_string())
      method = json["topk_method"].get<std::string>();
    if (method != "greedy" && method != "group_limited_greedy")
      return error(StatusCode::kInvalidArgument,
                   "key 'topk_method': '%s' is not supported (DeepseekV2ForCausalLM routes with "
                   "'greedy' or 'group_limited_greedy')",
                   method.c_str());
    m.scoring = MoeScoring::kSoftmax;
    m.group_by_max = true;
    grouped = method == "group_limited_greedy";
  }
  int64_t layer_freq = 1;
  PONDER_RETURN_IF_ERROR(config_int(json, "moe_layer_freq", layer_freq, false, 1));
  if (layer_freq != 1)
    return error(StatusCode::kInvalidArgument, "key 'moe_layer_freq': %lld is not supported (1)",
                 (long long)layer_freq);
  PONDER_RETURN_IF_ERROR(config_int(json, "n_routed_experts", m.n_experts, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "num_experts_per_tok", m.top_k, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "moe_intermediate_size", m.ffn, true, 1));
  int64_t n_shared = v3 ? 1 : 2;
  PONDER_RETURN_IF_ERROR(config_int(json, "n_shared_experts", n_shared, false, 0));
  m.shared_ffn = n_shared * m.ffn;
  if (grouped) {
    m.n_group = v3 ? 8 : 1;
    m.topk_group = v3 ? 4 : 1;
    PONDER_RETURN_IF_ERROR(config_int(json, "n_group", m.n_group, false, 1));
    PONDER_RETURN_IF_ERROR(config_int(json, "topk_group", m.topk_group, false, 1));
  }
  PONDER_ASSIGN_OR_RETURN(m.norm_topk_prob, config_bool(json, "norm_topk_prob", v3));
  if (!v3 && m.norm_topk_prob)
    return error(StatusCode::kInvalidArgument,
                 "key 'norm_topk_prob': true is not supported for DeepseekV2ForCausalLM "
                 "(transformers does not normalise V2's weights)");
  m.routed_scaling_factor = v3 ? 2.5 : 1.0;
  PONDER_RETURN_IF_ERROR(config_double(json, "routed_scaling_factor", m.routed_scaling_factor, false));
  if (m.n_experts % m.n_group != 0 || m.topk_group > m.n_group)
    return error(StatusCode::kInvalidArgument,
                 "n_routed_experts (%lld) must split into n_group (%lld) groups, of which "
                 "topk_group (%lld) are kept",
                 (long long)m.n_experts, (long long)m.n_group, (long long)m.topk_group);
  if (v3 && m.n_experts / m.n_group < 2)
    return error(StatusCode::kInvalidArgument,
                 "n_group %lld leaves fewer than 2 experts per group (a group scores its top 2)",
                 (long long)m.n_group);
  if (m.top_k > m.topk_group * (m.n_experts / m.n_group))
    return error(StatusCode::kInvalidArgument,
                 "num_experts_per_tok (%lld) is more than the %lld experts of topk_group groups",
                 (long long)m.top_k, (long long)(m.topk_group * (m.n_experts / m.n_group)));
  int64_t first_dense = v3 ? 3 : 0;
  PONDER_RETURN_IF_ERROR(config_int(json, "first_k_dense_replace", first_dense, false, 0));
  m.layer_is_moe.assign(config.n_layers, false);
  for (int64_t l = first_dense; l < config.n_layers; ++l) m.layer_is_moe[l] = true;

  int64_t mtp = 0;
  PONDER_RETURN_IF_ERROR(config_int(json, "num_nextn_predict_layers", mtp, false, 0));
  if (mtp > 0)
    PONDER_LOG(kInfo, "model",
               "%s: skipping %lld multi-token-prediction layer(s) after layer %lld (not used for "
               "decoding)",
               config.architecture.c_str(), (long long)mtp, (long long)config.n_layers - 1);
  return {};
}

Status configure_deepseek_v3(const nlohmann::json& json, ModelConfig& config) {
  return configure_deepseek(json, config, /*v3=*/true);
}

}  // namespace ponder::worker
