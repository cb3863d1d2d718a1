// Corrupt and mismatched checkpoints must produce clear errors that name the file and the problem,
// never a crash: every case below is a file a user could really have on disk.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "worker/model/decoder_model.h"
#include "worker/safetensors.h"

namespace ponder::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class CheckpointErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("ckpt_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // A safetensors file with the given header text and `data_bytes` zero bytes after it.
  std::string write_safetensors(const std::string& name, const std::string& header,
                                size_t data_bytes, uint64_t claimed_len = UINT64_MAX) {
    uint64_t len = claimed_len == UINT64_MAX ? header.size() : claimed_len;
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    return write_file(name, bytes + header + std::string(data_bytes, '\0'));
  }
  // Copies a parity fixture model into the temp dir to be damaged.
  void copy_model(const std::string& fixture) {
    fs::copy(fs::path(PONDER_TEST_DATA_DIR) / "models" / fixture, dir_,
             fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  }
  // Rewrites model.safetensors' header without tensor `name`; the data section stays as it was.
  void drop_tensor(const std::string& name) {
    std::ifstream in(dir_ / "model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(bytes[i]);
    json header = json::parse(bytes.substr(8, len));
    ASSERT_EQ(header.erase(name), 1u) << name;
    write_safetensors("model.safetensors", header.dump(), 0);
    std::ofstream(dir_ / "model.safetensors", std::ios::binary | std::ios::app) << bytes.substr(8 + len);
  }
  json read_json(const std::string& name) { return json::parse(std::ifstream(dir_ / name)); }
  void write_json(const std::string& name, const json& j) { std::ofstream(dir_ / name) << j.dump(); }

  static void expect_error(const Status& st, StatusCode code, std::initializer_list<const char*> parts) {
    EXPECT_EQ(st.code(), code) << st.to_string();
    for (const char* part : parts) EXPECT_NE(st.message().find(part), std::string::npos)
        << "'" << part << "' not in: " << st.message();
  }
  Status open_file(const std::string& path) {
    auto f = SafetensorsFile::open(path, 0);
    return f ? Status() : f.error();
  }
  Status load_model() {
    auto m = DecoderModel::load(dir_.string());
    return m ? Status() : m.error();
  }

  fs::path dir_;
};

TEST_F(CheckpointErrors, TruncatedBeforeHeaderLength) {
  std::string path = write_file("model.safetensors", "abc");
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"model.safetensors", "truncated"});
}

TEST_F(CheckpointErrors, HeaderLengthPastEndOfFile) {
  std::string path = write_safetensors("model.safetensors", "{}", 0, 1000);
  expect_error(open_file(path), StatusCode::kInvalidArgument,
               {"model.safetensors", "header length 1000 runs past the end"});
}

TEST_F(CheckpointErrors, MalformedJsonHeader) {
  std::string path = write_safetensors("model.safetensors", "{\"a\": [1, 2", 0);
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"model.safetensors", "malformed JSON"});
}

TEST_F(CheckpointErrors, UnknownDtype) {
  std::string path = write_safetensors(
      "model.safetensors", R"({"w": {"dtype": "F7", "shape": [2], "data_offsets": [0, 2]}})", 2);
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"tensor 'w'", "unknown dtype 'F7'"});
}

TEST_F(CheckpointErrors, OverlappingTensors) {
  std::string path = write_safetensors("model.safetensors",
                                       R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                           "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                                       24);
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"'a' and 'b' overlap"});
}

TEST_F(CheckpointErrors, OffsetsOutOfBoundsOfATruncatedFile) {
  std::string path = write_safetensors(
      "model.safetensors", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 10);
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"tensor 'a'", "out of bounds", "truncated"});
}

TEST_F(CheckpointErrors, OffsetsThatDisagreeWithShape) {
  std::string path = write_safetensors(
      "model.safetensors", R"({"a": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 16]}})", 16);
  expect_error(open_file(path), StatusCode::kInvalidArgument, {"tensor 'a'", "needs 12"});
}

// Found by fuzz/safetensors_fuzzer: after a 0 dimension any other was accepted, and one past
// int64 became a negative entry of TensorInfo::shape.
TEST_F(CheckpointErrors, HugeDimensionOfAnEmptyTensor) {
  for (const char* dim : {"18446744073709551615", "9223372036854775808", "281474976710657"}) {
    std::string path = write_safetensors(
        "model.safetensors",
        std::string(R"({"e": {"dtype": "F32", "shape": [0, )") + dim + R"(], "data_offsets": [0, 0]}})",
        0);
    expect_error(open_file(path), StatusCode::kInvalidArgument, {"tensor 'e'", "too large"});
  }
  std::string path = write_safetensors(
      "model.safetensors", R"({"e": {"dtype": "F32", "shape": [0, 7], "data_offsets": [0, 0]}})", 0);
  auto file = SafetensorsFile::open(path, 0);
  ASSERT_TRUE(file.has_value()) << file.error().to_string();
  EXPECT_EQ((*file)->tensors().at(0).shape, (std::vector<int64_t>{0, 7}));
}

TEST_F(CheckpointErrors, MissingTensor) {
  copy_model("llama_f32");
  drop_tensor("model.layers.1.mlp.up_proj.weight");
  expect_error(load_model(), StatusCode::kNotFound, {"missing tensor 'model.layers.1.mlp.up_proj.weight'"});
}

TEST_F(CheckpointErrors, MoeCheckpointMissingAnExpert) {
  copy_model("deepseek_v3_f32");
  drop_tensor("model.layers.2.mlp.experts.5.down_proj.weight");
  expect_error(load_model(), StatusCode::kNotFound,
               {"missing tensor 'model.layers.2.mlp.experts.5.down_proj.weight'"});
  copy_model("qwen3_moe_f32");
  drop_tensor("model.layers.0.mlp.gate.weight");
  expect_error(load_model(), StatusCode::kNotFound, {"missing tensor 'model.layers.0.mlp.gate.weight'"});
}

TEST_F(CheckpointErrors, Fp8ScalesMissingMisshapenOrBadAreNamed) {
  const std::string w = "model.layers.1.self_attn.kv_b_proj.weight";
  copy_model("deepseek_v3_fp8");
  drop_tensor(w + "_scale_inv");
  expect_error(load_model(), StatusCode::kNotFound, {w.c_str(), "no block scales", "_scale_inv"});
  // Blocks of 32 rows need a [2, 4] scale grid for q_a_proj [48, 64]; the file has [3, 4].
  copy_model("deepseek_v3_fp8");
  json config = read_json("config.json");
  config["quantization_config"]["weight_block_size"] = {32, 16};
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"model.layers.0.self_attn.q_a_proj.weight_scale_inv", "[3, 4]", "need F32 [2, 4]"});
  config["quantization_config"]["weight_block_size"] = 128;
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"weight_block_size", "per-tensor"});
  // A NaN block scale.
  copy_model("deepseek_v3_fp8");
  auto file = SafetensorsFile::open((dir_ / "model.safetensors").string(), 0);
  ASSERT_TRUE(file.has_value());
  for (const TensorInfo& t : (*file)->tensors()) {
    if (t.name != w + "_scale_inv") continue;
    std::fstream f(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(t.offset + 4 * 3));  // block [1, 1] of a [8, 2] grid
    const float nan = std::nanf("");
    f.write(reinterpret_cast<const char*>(&nan), 4);
  }
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {(w + "_scale_inv").c_str(), "block [1, 1]", "finite and positive"});
  // FP8 tensors without a quantization_config.
  copy_model("deepseek_v3_fp8");
  config = read_json("config.json");
  config.erase("quantization_config");
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"F8_E4M3", "quantization_config", "weight_block_size"});
}

TEST_F(CheckpointErrors, Int8ScalesAndSchemesThatCannotRunAreNamed) {
  const std::string w = "model.layers.1.self_attn.o_proj.weight";
  copy_model("llama3_w8a8");
  drop_tensor(w + "_scale");
  expect_error(load_model(), StatusCode::kNotFound, {w.c_str(), "no scales", "_scale"});
  // A negative scale (row 2 of o_proj's [96, 1]).
  copy_model("llama3_w8a8");
  auto file = SafetensorsFile::open((dir_ / "model.safetensors").string(), 0);
  ASSERT_TRUE(file.has_value());
  for (const TensorInfo& t : (*file)->tensors()) {
    if (t.name != w + "_scale") continue;
    std::fstream f(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(t.offset + 4 * 2));
    const float bad = -1.0f;
    f.write(reinterpret_cast<const char*>(&bad), 4);
  }
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {(w + "_scale").c_str(), "row 2", "finite and >= 0"});
  // Schemes the int8 kernels do not run: a packed int4 format, group-wise or asymmetric weights,
  // static activation scales.
  copy_model("llama3_w8a8");
  const json config = read_json("config.json");
  json bad = config;
  bad["quantization_config"]["format"] = "pack-quantized";
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"compressed-tensors", "pack-quantized"});
  bad = config;
  bad["quantization_config"]["config_groups"]["group_0"]["weights"]["strategy"] = "group";
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"group_0", "\"group\"", "channel or tensor"});
  bad = config;
  bad["quantization_config"]["config_groups"]["group_0"]["input_activations"]["dynamic"] = false;
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"group_0", "static input activation"});
  // I8 tensors without a quantization_config.
  bad = config;
  bad.erase("quantization_config");
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"has dtype I8", "compressed-tensors quantization_config"});
}

TEST_F(CheckpointErrors, UnsupportedRoutingIsNamed) {
  copy_model("deepseek_v3_f32");
  json config = read_json("config.json");
  json bad = config;
  bad["scoring_func"] = "softmax";
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"config.json", "scoring_func", "\"softmax\"", "sigmoid"});
  bad = config;
  bad["topk_method"] = "group_limited_greedy";
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"topk_method", "group_limited_greedy", "noaux_tc"});
  bad = config;
  bad["n_group"] = 3;  // 8 experts do not split into 3 groups
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"n_routed_experts (8)", "n_group (3)"});
  bad = config;
  bad["quantization_config"] = {{"quant_method", "awq"}};
  write_json("config.json", bad);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"quantization_config", "awq"});

  copy_model("qwen3_moe_f32");
  config = read_json("config.json");
  config["num_experts_per_tok"] = 9;
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"num_experts_per_tok (9)", "(8)"});
  config["num_experts_per_tok"] = 2;
  config["mlp_only_layers"] = {7};
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"mlp_only_layers", "7"});
}

TEST_F(CheckpointErrors, ShapeThatDisagreesWithConfig) {
  copy_model("llama_f32");
  json config = read_json("config.json");
  config["intermediate_size"] = config["intermediate_size"].get<int>() + 8;
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"model.safetensors", "gate_proj.weight", "config.json implies"});
}

TEST_F(CheckpointErrors, UnsupportedArchitecture) {
  copy_model("llama_f32");
  json config = read_json("config.json");
  config["architectures"] = {"MambaForCausalLM"};
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument,
               {"config.json", "unsupported architecture 'MambaForCausalLM'", "LlamaForCausalLM"});
}

TEST_F(CheckpointErrors, ConfigWithWrongTypes) {
  copy_model("qwen3_f32");
  json config = read_json("config.json");
  config["num_hidden_layers"] = "two";
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"config.json", "num_hidden_layers"});
  config["num_hidden_layers"] = 2;
  config["attention_bias"] = "yes";
  write_json("config.json", config);
  expect_error(load_model(), StatusCode::kInvalidArgument, {"config.json", "attention_bias"});
}

TEST_F(CheckpointErrors, NoWeightsInDirectory) {
  copy_model("llama_f32");
  fs::remove(dir_ / "model.safetensors");
  expect_error(load_model(), StatusCode::kNotFound, {"no model.safetensors"});
}

TEST_F(CheckpointErrors, ShardIndexNamingAMissingShard) {
  copy_model("qwen3_bf16_sharded");
  fs::remove(dir_ / "model-00002-of-00004.safetensors");
  expect_error(load_model(), StatusCode::kNotFound, {"model-00002-of-00004.safetensors"});
}

TEST_F(CheckpointErrors, ShardIndexMappingATensorToTheWrongShard) {
  copy_model("qwen3_bf16_sharded");
  json index = read_json("model.safetensors.index.json");
  std::string actual = index["weight_map"]["model.norm.weight"];
  std::string other = actual == "model-00001-of-00004.safetensors" ? "model-00002-of-00004.safetensors"
                                                                    : "model-00001-of-00004.safetensors";
  index["weight_map"]["model.norm.weight"] = other;
  write_json("model.safetensors.index.json", index);
  expect_error(load_model(), StatusCode::kNotFound, {"model.norm.weight", other.c_str(), "does not hold it"});
}

}  // namespace
}  // namespace ponder::worker
