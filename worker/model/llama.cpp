// LlamaForCausalLM (Llama 2/3, TinyLlama, R1-Distill-Llama): optional attention/MLP biases;
// Llama-3 rope scaling is handled by the shared rope parser.
#include "worker/model/architecture.h"

namespace ponder::worker {

Status configure_llama(const nlohmann::json& json, ModelConfig& config) {
  bool attention_bias = json.value("attention_bias", false);
  config.qkv_bias = attention_bias;
  config.o_bias = attention_bias;
  config.mlp_bias = json.value("mlp_bias", false);
  return {};
}

}  // namespace ponder::worker
