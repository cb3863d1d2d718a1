// Loading a decoder's weights: plan the placement of every tensor in one region, validate shapes
// and dtypes, then read exactly the bytes each tensor needs.
#include "worker/model/model_weights.h"

#include <cstring>
#include <string>

#include "common/check.h"
#include "common/log.h"
#include "worker/backend/cpu/kernels.h"

namespace ponder::worker {
namespace {

constexpr size_t kAlign = 64;

// One destination tensor assembled from one or more checkpoint tensors stacked by rows.
struct Placement {
  Tensor* dst;
  std::vector<const TensorInfo*> parts;
  int64_t rows = 0, cols = 0;  // cols == 0: a vector
  bool to_f32 = false;
  size_t offset = 0;
};

class Planner {
 public:
  Planner(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  // Checks that tensor `name` has `shape`; returns it (nullptr with an error recorded otherwise).
  Expected<const TensorInfo*> expect(const std::string& name, std::vector<int64_t> shape) {
    PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, ckpt_.require(name));
    if (info->shape != shape) {
      std::string want = "[";
      for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
      want += "]";
      return error(StatusCode::kInvalidArgument,
                   "%s: tensor '%s' has shape %s but config.json implies %s",
                   ckpt_.files()[info->file]->path().c_str(), name.c_str(),
                   info->shape_string().c_str(), want.c_str());
    }
    if (info->dtype != DType::kF32 && info->dtype != DType::kF16 && info->dtype != DType::kBF16)
      return error(StatusCode::kInvalidArgument, "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16",
                   ckpt_.files()[info->file]->path().c_str(), name.c_str(),
                   std::string(dtype_name(info->dtype)).c_str());
    return info;
  }

  Status matrix(Tensor* dst, const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols) {
    Placement p{dst, {}, 0, cols, false, 0};
    for (const auto& [name, rows] : parts) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, expect(name, {rows, cols}));
      if (!p.parts.empty() && info->dtype != p.parts[0]->dtype)
        return error(StatusCode::kInvalidArgument, "%s: tensors '%s' and '%s' have different dtypes",
                     ckpt_.dir().c_str(), p.parts[0]->name.c_str(), name.c_str());
      p.parts.push_back(info);
      p.rows += rows;
    }
    add(std::move(p));
    return {};
  }

  Status vector(Tensor* dst, const std::vector<std::pair<std::string, int64_t>>& parts) {
    Placement p{dst, {}, 0, 0, true, 0};
    for (const auto& [name, n] : parts) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, expect(name, {n}));
      p.parts.push_back(info);
      p.rows += n;
    }
    add(std::move(p));
    return {};
  }

  Expected<HostRegion> execute(const LoadOptions& options, size_t* bytes_read) {
    PONDER_ASSIGN_OR_RETURN(HostRegion region, HostRegion::allocate(total_, options.huge_pages));
    std::vector<char> staging;
    const auto& k = cpu::kernels();
    for (Placement& p : placements_) {
      char* dst = region.data() + p.offset;
      DType dt = p.to_f32 ? DType::kF32 : p.parts[0]->dtype;
      size_t row_offset = 0;
      for (const TensorInfo* info : p.parts) {
        if (p.to_f32 && info->dtype != DType::kF32) {
          staging.resize(info->nbytes);
          PONDER_RETURN_IF_ERROR(ckpt_.read(*info, 0, info->nbytes, staging.data()));
          k.to_f32(staging.data(), info->dtype, info->numel(),
                   reinterpret_cast<float*>(dst) + row_offset);
        } else {
          PONDER_RETURN_IF_ERROR(
              ckpt_.read(*info, 0, info->nbytes, dst + row_offset * dtype_size(dt) *
                                                       (p.cols ? p.cols : 1)));
        }
        *bytes_read += info->nbytes;
        row_offset += static_cast<size_t>(info->shape[0]);
      }
      *p.dst = p.cols ? Tensor::view(dst, dt, {p.rows, p.cols}) : Tensor::view(dst, dt, {p.rows});
    }
    return region;
  }

 private:
  void add(Placement p) {
    DType dt = p.to_f32 ? DType::kF32 : p.parts[0]->dtype;
    size_t bytes = static_cast<size_t>(p.rows * (p.cols ? p.cols : 1)) * dtype_size(dt);
    p.offset = total_;
    total_ += (bytes + kAlign - 1) / kAlign * kAlign;
    placements_.push_back(std::move(p));
  }

  const Checkpoint& ckpt_;
  std::vector<Placement> placements_;
  size_t total_ = 0;
};

}  // namespace

Expected<ModelWeights> ModelWeights::load(const Checkpoint& ckpt, const ModelConfig& c,
                                          const LoadOptions& options) {
  ModelWeights w;
  Planner plan(ckpt);
  const int64_t h = c.hidden_size, ffn = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  PONDER_RETURN_IF_ERROR(plan.matrix(&w.embed, {{"model.embed_tokens.weight", c.vocab_size}}, h));
  w.layers.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string a = p + "self_attn.", m = p + "mlp.";
    PONDER_RETURN_IF_ERROR(plan.vector(&l.attn_norm, {{p + "input_layernorm.weight", h}}));
    PONDER_RETURN_IF_ERROR(plan.matrix(
        &l.wqkv, {{a + "q_proj.weight", q}, {a + "k_proj.weight", kv}, {a + "v_proj.weight", kv}}, h));
    if (c.qkv_bias) {
      PONDER_RETURN_IF_ERROR(plan.vector(
          &l.bqkv, {{a + "q_proj.bias", q}, {a + "k_proj.bias", kv}, {a + "v_proj.bias", kv}}));
    }
    if (c.qk_norm) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.q_norm, {{a + "q_norm.weight", c.head_dim}}));
      PONDER_RETURN_IF_ERROR(plan.vector(&l.k_norm, {{a + "k_norm.weight", c.head_dim}}));
    }
    PONDER_RETURN_IF_ERROR(plan.matrix(&l.wo, {{a + "o_proj.weight", h}}, q));
    if (c.o_bias) PONDER_RETURN_IF_ERROR(plan.vector(&l.bo, {{a + "o_proj.bias", h}}));
    PONDER_RETURN_IF_ERROR(plan.vector(&l.mlp_norm, {{p + "post_attention_layernorm.weight", h}}));
    PONDER_RETURN_IF_ERROR(
        plan.matrix(&l.w_gate_up, {{m + "gate_proj.weight", ffn}, {m + "up_proj.weight", ffn}}, h));
    PONDER_RETURN_IF_ERROR(plan.matrix(&l.w_down, {{m + "down_proj.weight", h}}, ffn));
    if (c.mlp_bias) {
      PONDER_RETURN_IF_ERROR(
          plan.vector(&l.b_gate_up, {{m + "gate_proj.bias", ffn}, {m + "up_proj.bias", ffn}}));
      PONDER_RETURN_IF_ERROR(plan.vector(&l.b_down, {{m + "down_proj.bias", h}}));
    }
  }
  PONDER_RETURN_IF_ERROR(plan.vector(&w.final_norm, {{"model.norm.weight", h}}));
  // Tied checkpoints may still carry a copy of lm_head; the embedding is what the model uses.
  if (!c.tie_word_embeddings) {
    PONDER_RETURN_IF_ERROR(plan.matrix(&w.lm_head, {{"lm_head.weight", c.vocab_size}}, h));
  }
  PONDER_ASSIGN_OR_RETURN(w.storage, plan.execute(options, &w.bytes_read));
  if (c.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

size_t ModelWeights::matmul_bytes() const {
  size_t total = lm_head.nbytes();
  for (const LayerWeights& l : layers) total += l.wqkv.nbytes() + l.wo.nbytes() + l.w_gate_up.nbytes() + l.w_down.nbytes();
  return total;
}

}  // namespace ponder::worker
