// Qwen2ForCausalLM (Qwen2/2.5, the DeepSeek-R1-Distill-Qwen family): biases on q/k/v only.
#include "worker/model/architecture.h"

#include "common/check.h"

namespace ponder::worker {

Status configure_qwen2(const nlohmann::json& json, ModelConfig& config) {
  config.qkv_bias = true;
  PONDER_ASSIGN_OR_RETURN(bool sliding, config_bool(json, "use_sliding_window", false));
  if (sliding)
    return error(StatusCode::kInvalidArgument,
                 "use_sliding_window=true is not supported (full attention only)");
  return {};
}

}  // namespace ponder::worker
