// Loading a rank's share of a decoder's weights: plan where every tensor slice goes in one region,
// validate shapes and dtypes against config.json, then read exactly the bytes of each slice.
#include "worker/model/model_weights.h"

#include <cstring>
#include <string>

#include "common/check.h"
#include "worker/backend/cpu/kernels.h"

namespace ponder::worker {
namespace {

constexpr size_t kAlign = 64;

// Rows [row0, row0 + rows) of checkpoint tensor `name`, whose full row count is `full_rows`.
struct Slice {
  std::string name;
  int64_t full_rows;
  int64_t row0;
  int64_t rows;
};

struct Part {
  const TensorInfo* info;
  int64_t row0, rows;
};

// One destination tensor: slices of checkpoint tensors stacked by rows, each cut to the columns
// [col0, col0 + cols) of a tensor `full_cols` wide (cols == 0: a vector).
struct Placement {
  Tensor* dst;
  std::vector<Part> parts;
  int64_t rows = 0, full_cols = 0, col0 = 0, cols = 0;
  bool to_f32 = false;
  size_t offset = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class Planner {
 public:
  explicit Planner(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  Status matrix(Tensor* dst, const std::vector<Slice>& slices, int64_t full_cols, int64_t col0 = 0,
                int64_t cols = -1) {
    Placement p{.dst = dst, .full_cols = full_cols, .col0 = col0,
                .cols = cols < 0 ? full_cols : cols};
    for (const Slice& s : slices) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, expect(s.name, {s.full_rows, full_cols}));
      if (!p.parts.empty() && info->dtype != p.parts[0].info->dtype)
        return error(StatusCode::kInvalidArgument, "%s: tensors '%s' and '%s' have different dtypes",
                     ckpt_.dir().c_str(), p.parts[0].info->name.c_str(), s.name.c_str());
      p.parts.push_back({info, s.row0, s.rows});
      p.rows += s.rows;
    }
    add(std::move(p));
    return {};
  }

  Status vector(Tensor* dst, const std::vector<Slice>& slices) {
    Placement p{.dst = dst, .to_f32 = true};
    for (const Slice& s : slices) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, expect(s.name, {s.full_rows}));
      p.parts.push_back({info, s.row0, s.rows});
      p.rows += s.rows;
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
      const DType dt = p.to_f32 ? DType::kF32 : p.parts[0].info->dtype;
      const int64_t width = p.cols ? p.cols : 1;
      int64_t row = 0;
      for (const Part& part : p.parts) {
        const size_t es = dtype_size(part.info->dtype);
        const int64_t full = p.full_cols ? p.full_cols : 1;
        if (p.to_f32 && part.info->dtype != DType::kF32) {
          staging.resize(part.rows * es);
          PONDER_RETURN_IF_ERROR(ckpt_.read(*part.info, part.row0 * es, part.rows * es, staging.data()));
          k.to_f32(staging.data(), part.info->dtype, part.rows, reinterpret_cast<float*>(dst) + row);
          *bytes_read += part.rows * es;
        } else if (width == full) {
          // Whole rows: one contiguous range.
          const size_t n = part.rows * full * es;
          PONDER_RETURN_IF_ERROR(
              ckpt_.read(*part.info, part.row0 * full * es, n, dst + row * width * es));
          *bytes_read += n;
        } else {
          // A column slice: each row's share is its own range.
          for (int64_t r = 0; r < part.rows; ++r) {
            PONDER_RETURN_IF_ERROR(ckpt_.read(*part.info, ((part.row0 + r) * full + p.col0) * es,
                                              width * es, dst + (row + r) * width * es));
          }
          *bytes_read += part.rows * width * es;
        }
        row += part.rows;
      }
      *p.dst = p.cols ? Tensor::view(dst, dt, {p.rows, p.cols}) : Tensor::view(dst, dt, {p.rows});
    }
    return region;
  }

 private:
  Expected<const TensorInfo*> expect(const std::string& name, const std::vector<int64_t>& shape) {
    PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, ckpt_.require(name));
    const std::string& path = ckpt_.files()[info->file]->path();
    if (info->shape != shape)
      return error(StatusCode::kInvalidArgument,
                   "%s: tensor '%s' has shape %s but config.json implies %s", path.c_str(),
                   name.c_str(), info->shape_string().c_str(), shape_text(shape).c_str());
    if (info->dtype != DType::kF32 && info->dtype != DType::kF16 && info->dtype != DType::kBF16)
      return error(StatusCode::kInvalidArgument,
                   "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", path.c_str(),
                   name.c_str(), std::string(dtype_name(info->dtype)).c_str());
    return info;
  }

  void add(Placement p) {
    const DType dt = p.to_f32 ? DType::kF32 : p.parts[0].info->dtype;
    const size_t bytes = static_cast<size_t>(p.rows * (p.cols ? p.cols : 1)) * dtype_size(dt);
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
                                          const ShardSpec& shard, const LoadOptions& options) {
  ModelWeights w;
  Planner plan(ckpt);
  const ShardDims d = ShardDims::of(c, shard);
  const int64_t h = c.hidden_size, hd = c.head_dim, ffn = c.intermediate_size;
  const int64_t q_rows = d.n_heads * hd, q0 = d.q_head_begin * hd;
  const int64_t kv_rows = d.n_kv_heads * hd, kv0 = d.kv_head_begin * hd;
  const int64_t q_full = c.q_dim(), kv_full = c.kv_dim();
  const int64_t vocab_rows = d.vocab_end - d.vocab_begin;
  const bool bias_owner = shard.tp_rank == 0;  // row-parallel biases are added once

  if (shard.first_stage || (shard.last_stage && c.tie_word_embeddings)) {
    PONDER_RETURN_IF_ERROR(plan.matrix(
        &w.embed, {{"model.embed_tokens.weight", c.vocab_size, d.vocab_begin, vocab_rows}}, h));
  }
  w.layers.resize(d.n_layers());
  for (int64_t i = d.layer_begin; i < d.layer_end; ++i) {
    LayerWeights& l = w.layers[i - d.layer_begin];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string a = p + "self_attn.", m = p + "mlp.";
    PONDER_RETURN_IF_ERROR(plan.vector(&l.attn_norm, {{p + "input_layernorm.weight", h, 0, h}}));
    PONDER_RETURN_IF_ERROR(plan.matrix(&l.wqkv,
                                       {{a + "q_proj.weight", q_full, q0, q_rows},
                                        {a + "k_proj.weight", kv_full, kv0, kv_rows},
                                        {a + "v_proj.weight", kv_full, kv0, kv_rows}},
                                       h));
    if (c.qkv_bias) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.bqkv, {{a + "q_proj.bias", q_full, q0, q_rows},
                                                   {a + "k_proj.bias", kv_full, kv0, kv_rows},
                                                   {a + "v_proj.bias", kv_full, kv0, kv_rows}}));
    }
    if (c.qk_norm) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.q_norm, {{a + "q_norm.weight", hd, 0, hd}}));
      PONDER_RETURN_IF_ERROR(plan.vector(&l.k_norm, {{a + "k_norm.weight", hd, 0, hd}}));
    }
    PONDER_RETURN_IF_ERROR(plan.matrix(&l.wo, {{a + "o_proj.weight", h, 0, h}}, q_full, q0, q_rows));
    if (c.o_bias && bias_owner)
      PONDER_RETURN_IF_ERROR(plan.vector(&l.bo, {{a + "o_proj.bias", h, 0, h}}));
    PONDER_RETURN_IF_ERROR(
        plan.vector(&l.mlp_norm, {{p + "post_attention_layernorm.weight", h, 0, h}}));
    PONDER_RETURN_IF_ERROR(plan.matrix(&l.w_gate_up,
                                       {{m + "gate_proj.weight", ffn, d.ffn_begin, d.ffn},
                                        {m + "up_proj.weight", ffn, d.ffn_begin, d.ffn}},
                                       h));
    PONDER_RETURN_IF_ERROR(
        plan.matrix(&l.w_down, {{m + "down_proj.weight", h, 0, h}}, ffn, d.ffn_begin, d.ffn));
    if (c.mlp_bias) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.b_gate_up, {{m + "gate_proj.bias", ffn, d.ffn_begin, d.ffn},
                                                        {m + "up_proj.bias", ffn, d.ffn_begin, d.ffn}}));
      if (bias_owner) PONDER_RETURN_IF_ERROR(plan.vector(&l.b_down, {{m + "down_proj.bias", h, 0, h}}));
    }
  }
  if (shard.last_stage) {
    PONDER_RETURN_IF_ERROR(plan.vector(&w.final_norm, {{"model.norm.weight", h, 0, h}}));
    // Tied checkpoints may still carry a copy of lm_head; the embedding is what the model uses.
    if (!c.tie_word_embeddings) {
      PONDER_RETURN_IF_ERROR(plan.matrix(
          &w.lm_head, {{"lm_head.weight", c.vocab_size, d.vocab_begin, vocab_rows}}, h));
    }
  }
  PONDER_ASSIGN_OR_RETURN(w.storage, plan.execute(options, &w.bytes_read));
  if (shard.last_stage && c.tie_word_embeddings) w.lm_head = w.embed;
  if (!shard.first_stage) w.embed = Tensor{};
  return w;
}

namespace {

// Every tensor slot, empty ones and the tied lm_head included.
std::vector<Tensor*> all_slots(ModelWeights& w) {
  std::vector<Tensor*> out = {&w.embed};
  for (LayerWeights& l : w.layers) {
    for (Tensor* t : {&l.attn_norm, &l.wqkv, &l.bqkv, &l.q_norm, &l.k_norm, &l.wo, &l.bo,
                      &l.mlp_norm, &l.w_gate_up, &l.b_gate_up, &l.w_down, &l.b_down})
      out.push_back(t);
  }
  out.push_back(&w.final_norm);
  out.push_back(&w.lm_head);
  return out;
}

}  // namespace

std::vector<Tensor*> ModelWeights::tensors() {
  std::vector<Tensor*> out;
  for (Tensor* t : all_slots(*this)) {
    if (t->empty()) continue;
    bool seen = false;
    for (const Tensor* o : out) seen = seen || o->data == t->data;  // the tied lm_head
    if (!seen) out.push_back(t);
  }
  return out;
}

Device ModelWeights::device() const {
  return device_storage.empty() ? Device::kHost : device_storage.device();
}

Status ModelWeights::move_to(MemorySpace& memory) {
  if (memory.device() == device()) return {};
  if (device() != Device::kHost)
    return error(StatusCode::kFailedPrecondition, "weights are already on %s; cannot move to %s",
                 std::string(device_name(device())).c_str(),
                 std::string(device_name(memory.device())).c_str());
  PONDER_ASSIGN_OR_RETURN(Buffer moved, memory.allocate(storage.size()));
  memory.copy(moved.data(), storage.data(), storage.size());
  // Every tensor (the tied lm_head too, and a dropped embedding's share) keeps its offset.
  const char* old_base = storage.data();
  for (Tensor* t : all_slots(*this)) {
    if (t->empty()) continue;
    t->data = moved.as<char>() + (static_cast<const char*>(t->data) - old_base);
    t->device = memory.device();
  }
  device_storage = std::move(moved);
  storage = HostRegion();
  return {};
}

Expected<ModelWeights> ModelWeights::allocate(const ModelConfig& c, const ShardSpec& shard,
                                              DType dtype, MemorySpace& memory) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return error(StatusCode::kInvalidArgument, "weights dtype %s is not F32, F16 or BF16",
                 std::string(dtype_name(dtype)).c_str());
  ModelWeights w;
  const ShardDims d = ShardDims::of(c, shard);
  const int64_t h = c.hidden_size, hd = c.head_dim;
  const int64_t qkv_rows = (d.n_heads + 2 * d.n_kv_heads) * hd;
  const int64_t vocab_rows = d.vocab_end - d.vocab_begin;
  const bool bias_owner = shard.tp_rank == 0;
  struct Planned {
    Tensor* t;
    DType dt;
    int64_t rows, cols;  // cols 0: a vector of `rows`
    size_t offset;
  };
  std::vector<Planned> plan;
  size_t total = 0;
  auto add = [&](Tensor* t, DType dt, int64_t rows, int64_t cols) {
    const size_t bytes = static_cast<size_t>(rows * (cols ? cols : 1)) * dtype_size(dt);
    plan.push_back({t, dt, rows, cols, total});
    total += (bytes + 255) / 256 * 256;
  };
  if (shard.first_stage || (shard.last_stage && c.tie_word_embeddings))
    add(&w.embed, dtype, vocab_rows, h);
  w.layers.resize(d.n_layers());
  for (LayerWeights& l : w.layers) {
    add(&l.attn_norm, DType::kF32, h, 0);
    add(&l.wqkv, dtype, qkv_rows, h);
    if (c.qkv_bias) add(&l.bqkv, DType::kF32, qkv_rows, 0);
    if (c.qk_norm) {
      add(&l.q_norm, DType::kF32, hd, 0);
      add(&l.k_norm, DType::kF32, hd, 0);
    }
    add(&l.wo, dtype, h, d.n_heads * hd);
    if (c.o_bias && bias_owner) add(&l.bo, DType::kF32, h, 0);
    add(&l.mlp_norm, DType::kF32, h, 0);
    add(&l.w_gate_up, dtype, 2 * d.ffn, h);
    add(&l.w_down, dtype, h, d.ffn);
    if (c.mlp_bias) {
      add(&l.b_gate_up, DType::kF32, 2 * d.ffn, 0);
      if (bias_owner) add(&l.b_down, DType::kF32, h, 0);
    }
  }
  if (shard.last_stage) {
    add(&w.final_norm, DType::kF32, h, 0);
    if (!c.tie_word_embeddings) add(&w.lm_head, dtype, vocab_rows, h);
  }
  char* base = nullptr;
  if (memory.device() == Device::kHost) {
    PONDER_ASSIGN_OR_RETURN(w.storage, HostRegion::allocate(total, /*huge_pages=*/true));
    base = w.storage.data();
  } else {
    PONDER_ASSIGN_OR_RETURN(w.device_storage, memory.allocate(total));
    base = w.device_storage.as<char>();
  }
  for (const Planned& p : plan) {
    *p.t = p.cols ? Tensor::view(base + p.offset, p.dt, {p.rows, p.cols}, memory.device())
                  : Tensor::view(base + p.offset, p.dt, {p.rows}, memory.device());
  }
  if (shard.last_stage && c.tie_word_embeddings) w.lm_head = w.embed;
  if (!shard.first_stage) w.embed = Tensor{};
  return w;
}

size_t ModelWeights::matmul_bytes() const {
  size_t total = lm_head.empty() ? 0 : lm_head.nbytes();
  for (const LayerWeights& l : layers)
    total += l.wqkv.nbytes() + l.wo.nbytes() + l.w_gate_up.nbytes() + l.w_down.nbytes();
  return total;
}

}  // namespace ponder::worker
