// Architecture registry: each supported Hugging Face architecture (one file each under
// worker/model/) turns config.json into a ModelConfig. The forward pass is shared
// (decoder_model.h); architectures differ in config fields and which optional tensors exist.
// Adding one: docs/adding-a-model.md.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "worker/model/model_config.h"

namespace ponder::worker {

struct Architecture {
  const char* name;  // the config.json "architectures" entry
  // Fills the architecture-specific fields; `config` already holds the common decoder fields.
  Status (*configure)(const nlohmann::json& json, ModelConfig& config);
};

const std::vector<Architecture>& architectures();

// A boolean config key: `fallback` when absent or null, an error naming the key when not a bool.
Expected<bool> config_bool(const nlohmann::json& json, const char* key, bool fallback);

// Parses the common decoder fields (sizes, norms, rope) every architecture shares.
Status parse_decoder_fields(const nlohmann::json& json, ModelConfig& config);

// Reads DIR/config.json and dispatches on "architectures"[0]; errors name the file and key.
Expected<ModelConfig> load_model_config(const std::string& model_dir);

// Architecture entry points, one per file.
Status configure_llama(const nlohmann::json& json, ModelConfig& config);
Status configure_qwen2(const nlohmann::json& json, ModelConfig& config);
Status configure_qwen3(const nlohmann::json& json, ModelConfig& config);
Status configure_qwen3_moe(const nlohmann::json& json, ModelConfig& config);
Status configure_deepseek_v3(const nlohmann::json& json, ModelConfig& config);
Status configure_deepseek_v2(const nlohmann::json& json, ModelConfig& config);
// DeepSeek's MLA + MoE fields, V2's rules or V3's (deepseek_v3.cpp).
Status configure_deepseek(const nlohmann::json& json, ModelConfig& config, bool v3);

// Config readers the architecture files share (errors name the key).
Status config_int(const nlohmann::json& json, const char* key, int64_t& out, bool required,
                  int64_t min_value);
Status config_double(const nlohmann::json& json, const char* key, double& out, bool required);

}  // namespace ponder::worker
