// config.json parsing shared by all decoder architectures, and the architecture registry.
#include "worker/model/architecture.h"

#include <filesystem>
#include <fstream>

#include "common/check.h"

namespace ponder::worker {
namespace {

using json = nlohmann::json;

Status get_int(const json& j, const char* key, int64_t& out, bool required, int64_t min_value) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return error(StatusCode::kInvalidArgument, "missing key '%s'", key);
    return {};
  }
  if (!it->is_number_integer() || it->get<int64_t>() < min_value)
    return error(StatusCode::kInvalidArgument, "key '%s': expected an integer >= %lld, got %s", key,
                 (long long)min_value, it->dump().c_str());
  out = it->get<int64_t>();
  return {};
}

Status get_double(const json& j, const char* key, double& out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return error(StatusCode::kInvalidArgument, "missing key '%s'", key);
    return {};
  }
  if (!it->is_number())
    return error(StatusCode::kInvalidArgument, "key '%s': expected a number, got %s", key,
                 it->dump().c_str());
  out = it->get<double>();
  return {};
}

Status get_bool(const json& j, const char* key, bool& out) {
  PONDER_ASSIGN_OR_RETURN(out, config_bool(j, key, out));
  return {};
}

// rope_scaling (transformers 4) or rope_parameters (transformers 5) → RopeScaling and theta.
Status parse_rope(const json& j, ModelConfig& config) {
  PONDER_RETURN_IF_ERROR(get_double(j, "rope_theta", config.rope_theta, false));
  const json* rope = nullptr;
  const char* key = "rope_scaling";
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    rope = &j["rope_scaling"];
  } else if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    rope = &j["rope_parameters"];
    key = "rope_parameters";
  }
  if (rope == nullptr) return {};
  if (!rope->is_object())
    return error(StatusCode::kInvalidArgument, "key '%s': expected an object", key);
  PONDER_RETURN_IF_ERROR(get_double(*rope, "rope_theta", config.rope_theta, false));
  std::string type = "default";
  for (const char* type_key : {"rope_type", "type"}) {
    if (rope->contains(type_key) && (*rope)[type_key].is_string()) {
      type = (*rope)[type_key].get<std::string>();
      break;
    }
  }
  RopeScaling& s = config.rope_scaling;
  if (type == "default") {
    s.type = RopeScalingType::kNone;
    return {};
  }
  if (type == "linear") {
    s.type = RopeScalingType::kLinear;
    return get_double(*rope, "factor", s.factor, true).with_context(key);
  }
  if (type == "llama3") {
    s.type = RopeScalingType::kLlama3;
    PONDER_RETURN_IF_ERROR(get_double(*rope, "factor", s.factor, true).with_context(key));
    PONDER_RETURN_IF_ERROR(
        get_double(*rope, "low_freq_factor", s.low_freq_factor, true).with_context(key));
    PONDER_RETURN_IF_ERROR(
        get_double(*rope, "high_freq_factor", s.high_freq_factor, true).with_context(key));
    PONDER_RETURN_IF_ERROR(get_int(*rope, "original_max_position_embeddings",
                                   s.original_max_position_embeddings, true, 1)
                               .with_context(key));
    if (s.high_freq_factor <= s.low_freq_factor)
      return error(StatusCode::kInvalidArgument,
                   "%s: high_freq_factor must be greater than low_freq_factor", key);
    return {};
  }
  if (type == "yarn") {
    s.type = RopeScalingType::kYarn;
    s.factor = 0.0;  // absent: max_position_embeddings / original_max_position_embeddings
    PONDER_RETURN_IF_ERROR(get_double(*rope, "factor", s.factor, false).with_context(key));
    PONDER_RETURN_IF_ERROR(get_int(*rope, "original_max_position_embeddings",
                                   s.original_max_position_embeddings, true, 1)
                               .with_context(key));
    for (auto [name, field] : {std::pair{"beta_fast", &s.beta_fast}, {"beta_slow", &s.beta_slow},
                               {"attention_factor", &s.attention_factor}, {"mscale", &s.mscale},
                               {"mscale_all_dim", &s.mscale_all_dim}})
      PONDER_RETURN_IF_ERROR(get_double(*rope, name, *field, false).with_context(key));
    PONDER_RETURN_IF_ERROR(get_bool(*rope, "truncate", s.truncate).with_context(key));
    if (s.factor == 0.0)
      s.factor = static_cast<double>(config.max_position_embeddings) /
                 static_cast<double>(s.original_max_position_embeddings);
    if (!(s.factor > 0.0))
      return error(StatusCode::kInvalidArgument, "%s: yarn factor must be positive", key);
    return {};
  }
  return error(StatusCode::kInvalidArgument, "%s: unsupported rope type '%s'", key, type.c_str());
}

// A compressed-tensors scheme ponder runs: int8 symmetric weights per channel (or per tensor),
// activations dynamic (or none: W8A16; ponder quantizes them per block of 32 either way).
Status parse_compressed_tensors(const json& q, ModelConfig& config) {
  constexpr const char* kKey = "key 'quantization_config' (compressed-tensors)";
  const std::string format = q.value("format", std::string("?"));
  if (format != "int-quantized")
    return error(StatusCode::kInvalidArgument,
                 "%s: format '%s' is not supported (int-quantized: int8 weights with per-channel "
                 "scales is)",
                 kKey, format.c_str());
  auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->empty())
    return error(StatusCode::kInvalidArgument, "%s: no config_groups", kKey);
  for (const auto& [name, group] : groups->items()) {
    const json w = group.is_object() ? group.value("weights", json()) : json();
    const bool int8 = w.is_object() && w.value("num_bits", 0) == 8 && w.value("type", "") == "int" &&
                      w.value("symmetric", false) &&
                      (w.value("strategy", "") == "channel" || w.value("strategy", "") == "tensor");
    if (!int8)
      return error(StatusCode::kInvalidArgument,
                   "%s: group '%s' has weights %s; supported: num_bits 8, type int, symmetric, "
                   "strategy channel or tensor",
                   kKey, name.c_str(), w.dump().c_str());
    const json a = group.value("input_activations", json());
    if (a.is_object() && !a.value("dynamic", false))
      return error(StatusCode::kInvalidArgument,
                   "%s: group '%s' has static input activation scales; only dynamic ones (or none) "
                   "are supported",
                   kKey, name.c_str());
  }
  config.int8_checkpoint = true;
  config.weight_quant = WeightQuant::kInt8;
  return {};
}

// quantization_config: FP8 with block scales (DeepSeek-V3/R1, Qwen3 "-FP8") and compressed-tensors
// int8 (the "w8a8" checkpoints).
Status parse_quantization(const json& j, ModelConfig& config) {
  auto it = j.find("quantization_config");
  if (it == j.end() || it->is_null()) return {};
  const json& q = *it;
  const std::string method = q.is_object() && q.contains("quant_method") && q["quant_method"].is_string()
                                 ? q["quant_method"].get<std::string>()
                                 : q.dump();
  if (method == "compressed-tensors") return parse_compressed_tensors(q, config);
  if (method != "fp8")
    return error(StatusCode::kInvalidArgument,
                 "key 'quantization_config': quant_method '%s' is not supported (fp8 with block "
                 "scales and compressed-tensors int8 are)",
                 method.c_str());
  if (q.contains("fmt") && q["fmt"] != "e4m3")
    return error(StatusCode::kInvalidArgument,
                 "key 'quantization_config': fmt %s is not supported (e4m3)", q["fmt"].dump().c_str());
  auto block = q.find("weight_block_size");
  if (block == q.end() || !block->is_array() || block->size() != 2 || !(*block)[0].is_number_integer() ||
      !(*block)[1].is_number_integer() || (*block)[0].get<int64_t>() < 1 || (*block)[1].get<int64_t>() < 1)
    return error(StatusCode::kInvalidArgument,
                 "key 'quantization_config': weight_block_size must be [rows, cols] (per-tensor "
                 "FP8 scales are not supported), got %s",
                 block == q.end() ? "nothing" : block->dump().c_str());
  config.fp8.block_rows = (*block)[0].get<int64_t>();
  config.fp8.block_cols = (*block)[1].get<int64_t>();
  return {};
}

}  // namespace

Status config_int(const json& j, const char* key, int64_t& out, bool required, int64_t min_value) {
  return get_int(j, key, out, required, min_value);
}

Status config_double(const json& j, const char* key, double& out, bool required) {
  return get_double(j, key, out, required);
}

Expected<bool> config_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    return error(StatusCode::kInvalidArgument, "key '%s': expected true or false, got %s", key,
                 it->dump().c_str());
  return it->get<bool>();
}

namespace {

// Matmul parameters of one layer's attention.
int64_t attention_params(const ModelConfig& c) {
  if (!c.is_mla()) return c.hidden_size * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.hidden_size;
  const MlaConfig& m = c.mla;
  const int64_t q_out = c.n_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim);
  const int64_t q = m.q_lora_rank ? c.hidden_size * m.q_lora_rank + m.q_lora_rank * q_out
                                  : c.hidden_size * q_out;
  return q + c.hidden_size * (m.kv_lora_rank + m.qk_rope_head_dim) +
         m.kv_lora_rank * c.n_heads * (m.qk_nope_head_dim + m.v_head_dim) +
         c.n_heads * m.v_head_dim * c.hidden_size;
}

// Matmul parameters of one layer's MLP: with `active`, only the experts one token uses.
int64_t mlp_params(const ModelConfig& c, int64_t layer, bool active) {
  if (!c.layer_is_moe(layer)) return 3 * c.hidden_size * c.intermediate_size;
  const MoeConfig& m = c.moe;
  const int64_t routed = (active ? m.top_k : m.n_experts) * 3 * c.hidden_size * m.ffn;
  return m.n_experts * c.hidden_size + routed + 3 * c.hidden_size * m.shared_ffn;
}

}  // namespace

int64_t ModelConfig::matmul_params() const {
  int64_t total = vocab_size * hidden_size;
  for (int64_t l = 0; l < n_layers; ++l)
    total += attention_params(*this) + mlp_params(*this, l, /*active=*/true);
  return total;
}

int64_t ModelConfig::total_params() const {
  int64_t norms = 2 * hidden_size + (qk_norm ? 2 * head_dim : 0) + mla.q_lora_rank + mla.kv_lora_rank;
  int64_t total = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + hidden_size;
  for (int64_t l = 0; l < n_layers; ++l) {
    total += norms + attention_params(*this) + mlp_params(*this, l, /*active=*/false);
    if (layer_is_moe(l) && moe.score_bias) total += moe.n_experts;
  }
  return total;
}

double ModelConfig::attention_flops(int64_t keys) const {
  // QKᵀ over the query/key width and AV over the value width, 2 FLOPs per multiply-add (MLA: the
  // model's per-head widths, whatever form the kernel computes it in).
  const int64_t per_key = is_mla() ? 2 * n_heads * (head_dim + mla.v_head_dim) : 4 * q_dim();
  return static_cast<double>(n_layers) * static_cast<double>(per_key) * static_cast<double>(keys);
}

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> kArchitectures = {
      {"LlamaForCausalLM", &configure_llama},
      {"Qwen2ForCausalLM", &configure_qwen2},
      {"Qwen3ForCausalLM", &configure_qwen3},
      {"Qwen3MoeForCausalLM", &configure_qwen3_moe},
      {"DeepseekV3ForCausalLM", &configure_deepseek_v3},
      {"DeepseekV2ForCausalLM", &configure_deepseek_v2},
  };
  return kArchitectures;
}

Status parse_decoder_fields(const json& j, ModelConfig& c) {
  PONDER_RETURN_IF_ERROR(get_int(j, "vocab_size", c.vocab_size, true, 1));
  PONDER_RETURN_IF_ERROR(get_int(j, "hidden_size", c.hidden_size, true, 1));
  PONDER_RETURN_IF_ERROR(get_int(j, "intermediate_size", c.intermediate_size, true, 1));
  PONDER_RETURN_IF_ERROR(get_int(j, "num_hidden_layers", c.n_layers, true, 1));
  PONDER_RETURN_IF_ERROR(get_int(j, "num_attention_heads", c.n_heads, true, 1));
  c.n_kv_heads = c.n_heads;
  PONDER_RETURN_IF_ERROR(get_int(j, "num_key_value_heads", c.n_kv_heads, false, 1));
  if (c.n_heads % c.n_kv_heads != 0)
    return error(StatusCode::kInvalidArgument,
                 "num_attention_heads (%lld) is not a multiple of num_key_value_heads (%lld)",
                 (long long)c.n_heads, (long long)c.n_kv_heads);
  c.head_dim = c.hidden_size / c.n_heads;
  PONDER_RETURN_IF_ERROR(get_int(j, "head_dim", c.head_dim, false, 2));
  if (c.head_dim % 2 != 0)
    return error(StatusCode::kInvalidArgument, "head_dim %lld must be even for RoPE",
                 (long long)c.head_dim);
  c.max_position_embeddings = 4096;
  PONDER_RETURN_IF_ERROR(get_int(j, "max_position_embeddings", c.max_position_embeddings, false, 1));
  PONDER_RETURN_IF_ERROR(get_double(j, "rms_norm_eps", c.rms_norm_eps, false));
  PONDER_RETURN_IF_ERROR(parse_rope(j, c));
  PONDER_RETURN_IF_ERROR(get_bool(j, "tie_word_embeddings", c.tie_word_embeddings));
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (j.contains(key) && j[key].is_string()) {
      auto dtype = parse_torch_dtype(j[key].get<std::string>());
      if (!dtype) return dtype.error().with_context(std::string("key '") + key + "'");
      c.dtype = *dtype;
      break;
    }
  }
  PONDER_RETURN_IF_ERROR(parse_quantization(j, c));
  int64_t bos = -1;
  PONDER_RETURN_IF_ERROR(get_int(j, "bos_token_id", bos, false, 0));
  c.bos_token_id = static_cast<int32_t>(bos);
  if (auto it = j.find("eos_token_id"); it != j.end()) {
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<int32_t>());
    } else if (it->is_array()) {
      for (const json& id : *it) {
        if (!id.is_number_integer())
          return error(StatusCode::kInvalidArgument, "key 'eos_token_id': expected integers");
        c.eos_token_ids.push_back(id.get<int32_t>());
      }
    }
  }
  return {};
}

Expected<ModelConfig> load_model_config(const std::string& model_dir) {
  std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot open", path.c_str());
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return error(StatusCode::kInvalidArgument, "%s: malformed JSON", path.c_str());
  auto arch_it = j.find("architectures");
  if (arch_it == j.end() || !arch_it->is_array() || arch_it->empty() ||
      !(*arch_it)[0].is_string())
    return error(StatusCode::kInvalidArgument,
                 "%s: key 'architectures': expected a list with the model class name",
                 path.c_str());
  std::string name = (*arch_it)[0].get<std::string>();
  for (const Architecture& arch : architectures()) {
    if (name != arch.name) continue;
    ModelConfig config;
    config.architecture = name;
    Status st = parse_decoder_fields(j, config);
    if (st.ok()) st = arch.configure(j, config);
    if (!st.ok()) return tl::unexpected(st.with_context(path));
    return config;
  }
  std::string supported;
  for (const Architecture& arch : architectures()) supported += std::string(" ") + arch.name;
  return error(StatusCode::kInvalidArgument, "%s: unsupported architecture '%s' (supported:%s)",
               path.c_str(), name.c_str(), supported.c_str());
}

std::string_view weight_quant_name(WeightQuant quant) {
  return quant == WeightQuant::kInt8 ? "int8" : "none";
}

Expected<WeightQuant> parse_weight_quant(std::string_view text) {
  if (text == "none") return WeightQuant::kNone;
  if (text == "int8") return WeightQuant::kInt8;
  return error(StatusCode::kInvalidArgument, "quantize '%.*s' is not 'none' or 'int8'",
               static_cast<int>(text.size()), text.data());
}

}  // namespace ponder::worker
