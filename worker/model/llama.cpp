// LlamaForCausalLM (Llama 2/3, TinyLlama, R1-Distill-Llama): optional attention/MLP biases;
// Llama-3 rope scaling is handled by the shared rope parser.
#include "worker/model/architecture.h"

#include "common/check.h"

namespace ponder::worker {

Status configure_llama(const nlohmann::json& json, ModelConfig& config) {
  PONDER_ASSIGN_OR_RETURN(bool attention_bias, config_bool(json, "attention_bias", false));
  config.qkv_bias = attention_bias;
  config.o_bias = attention_bias;
  PONDER_ASSIGN_OR_RETURN(config.mlp_bias, config_bool(json, "mlp_bias", false));
  return {};
}

}  // namespace ponder::worker
