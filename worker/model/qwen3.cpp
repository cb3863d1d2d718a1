// Qwen3ForCausalLM: per-head RMSNorm on q and k before RoPE, explicit head_dim, optional
// attention_bias on q/k/v/o.
#include "worker/model/architecture.h"

#include "common/check.h"

namespace ponder::worker {

Status configure_qwen3(const nlohmann::json& json, ModelConfig& config) {
  config.qk_norm = true;
  PONDER_ASSIGN_OR_RETURN(bool attention_bias, config_bool(json, "attention_bias", false));
  config.qkv_bias = attention_bias;
  config.o_bias = attention_bias;
  PONDER_ASSIGN_OR_RETURN(bool sliding, config_bool(json, "use_sliding_window", false));
  if (sliding)
    return error(StatusCode::kInvalidArgument,
                 "use_sliding_window=true is not supported (full attention only)");
  return {};
}

}  // namespace ponder::worker
