// Loading a rank's share of a decoder's weights: plan where every tensor slice goes in one region,
// validate shapes and dtypes against config.json, then read exactly the bytes of each slice.
#include "worker/model/model_weights.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/check.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cpu/kernels.h"

namespace ponder::worker {
namespace {

constexpr size_t kAlign = 64;

// Runs fn(i, thread) for every i in [0, n) on up to available_cores() threads, items handed out
// in order (page cache reads and page faults go in parallel: one thread copies ~1 GB/s of
// checkpoint into fresh pages). After an error no new item starts; the error of the first failing
// item in order is returned (every earlier item was handed out and finished), so it does not
// depend on timing.
Status for_each_parallel(size_t n, const std::function<Status(size_t item, int thread)>& fn) {
  const int threads = static_cast<int>(std::min<size_t>(std::max(1, available_cores()), n));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  size_t first_bad = n;
  Status first_error;
  auto work = [&](int thread) {
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < n;) {
      Status st = fn(i, thread);
      if (st.ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (i < first_bad) {
        first_bad = i;
        first_error = std::move(st);
      }
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& t : pool) t.join();
  return first_error;
}

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
  // An FP8 part's <name>_scale_inv; an int8 part's <name>_scale ([rows, 1], [rows] or one value).
  const TensorInfo* scale = nullptr;
};

// One destination tensor: slices of checkpoint tensors stacked by rows, each cut to the columns
// [col0, col0 + cols) of a tensor `full_cols` wide (cols == 0: a vector).
struct Placement {
  Tensor* dst;
  std::vector<Part> parts;
  int64_t rows = 0, full_cols = 0, col0 = 0, cols = 0;
  bool to_f32 = false;    // a vector (f32), or an int8 matrix the int8 kernels cannot take
  bool quantize = false;  // a float matrix quantized to int8 (row scales) as it is read
  size_t offset = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The dtype a placement has in memory: vectors become f32, FP8 matrices bf16, int8 stay int8.
DType placed_dtype(const Placement& p) {
  if (p.to_f32) return DType::kF32;
  if (p.quantize) return DType::kI8;
  const DType dt = p.parts[0].info->dtype;
  return dt == DType::kF8E4M3 ? DType::kBF16 : dt;
}

// Where an int8 placement's f32 row scales start, after its rows × cols bytes.
size_t int8_scales_at(const Placement& p) {
  return (static_cast<size_t>(p.rows * p.cols) + kAlign - 1) / kAlign * kAlign;
}

class Planner {
 public:
  Planner(const Checkpoint& ckpt, const ModelConfig& config, WeightQuant quantize)
      : ckpt_(ckpt), fp8_(config.fp8), int8_(config.int8_checkpoint), quantize_(quantize) {}

  // A matrix a matmul multiplies by: with LoadOptions::quantize kInt8, f32/f16/bf16 ones whose
  // rows are whole 32-blocks are quantized to int8 with row scales as they are read.
  Status matmul(Tensor* dst, const std::vector<Slice>& slices, int64_t full_cols, int64_t col0 = 0,
                int64_t cols = -1) {
    PONDER_RETURN_IF_ERROR(matrix(dst, slices, full_cols, col0, cols));
    Placement& p = placements_.back();
    const DType dt = p.parts[0].info->dtype;
    if (quantize_ != WeightQuant::kInt8 || p.cols % cpu::kQ8Block != 0 ||
        (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16))
      return {};  // FP8 ones are left to ModelWeights::quantize (after their bf16 dequantization)
    total_ = p.offset;  // re-placed with the int8 layout
    p.quantize = true;
    Placement moved = std::move(p);
    placements_.pop_back();
    add(std::move(moved));
    return {};
  }

  Status matrix(Tensor* dst, const std::vector<Slice>& slices, int64_t full_cols, int64_t col0 = 0,
                int64_t cols = -1) {
    Placement p{.dst = dst, .full_cols = full_cols, .col0 = col0,
                .cols = cols < 0 ? full_cols : cols};
    for (const Slice& s : slices) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info,
                              expect(s.name, {s.full_rows, full_cols}, /*fp8=*/true));
      if (!p.parts.empty() && info->dtype != p.parts[0].info->dtype)
        return error(StatusCode::kInvalidArgument, "%s: tensors '%s' and '%s' have different dtypes",
                     ckpt_.dir().c_str(), p.parts[0].info->name.c_str(), s.name.c_str());
      const TensorInfo* scale = nullptr;
      if (info->dtype == DType::kF8E4M3) {
        PONDER_ASSIGN_OR_RETURN(scale, fp8_scale(*info));
      } else if (info->dtype == DType::kI8) {
        PONDER_ASSIGN_OR_RETURN(scale, int8_scale(*info));
        // The int8 kernels take rows of whole 32-blocks; a narrower slice (a tp shard of a
        // small matrix) is dequantized to f32 instead.
        p.to_f32 = p.cols % cpu::kQ8Block != 0;
      }
      p.parts.push_back({info, s.row0, s.rows, scale});
      p.rows += s.rows;
    }
    add(std::move(p));
    return {};
  }

  Status vector(Tensor* dst, const std::vector<Slice>& slices) {
    Placement p{.dst = dst, .to_f32 = true};
    for (const Slice& s : slices) {
      PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, expect(s.name, {s.full_rows}, /*fp8=*/false));
      p.parts.push_back({info, s.row0, s.rows});
      p.rows += s.rows;
    }
    add(std::move(p));
    return {};
  }

  Expected<HostRegion> execute(const LoadOptions& options, size_t* bytes_read) {
    PONDER_ASSIGN_OR_RETURN(HostRegion region, HostRegion::allocate(total_, options.huge_pages));
    const int threads = std::max(1, available_cores());
    std::vector<std::vector<char>> stagings(threads);
    std::vector<size_t> read_by(threads, 0);
    PONDER_RETURN_IF_ERROR(for_each_parallel(placements_.size(), [&](size_t i, int thread) {
      return place(placements_[i], region.data(), stagings[thread], &read_by[thread]);
    }));
    for (size_t n : read_by) *bytes_read += n;
    return region;
  }

 private:
  // Reads one placement's parts into the region (converting or dequantizing them as planned).
  Status place(Placement& p, char* base, std::vector<char>& staging, size_t* bytes_read) const {
    const auto& k = cpu::kernels();
    char* dst = base + p.offset;
    const DType dt = placed_dtype(p);
    const int64_t width = p.cols ? p.cols : 1;
    int64_t row = 0;
    if (p.quantize) return quantize_int8(p, dst, staging, bytes_read);
    for (const Part& part : p.parts) {
      const size_t es = dtype_size(part.info->dtype);
      const int64_t full = p.full_cols ? p.full_cols : 1;
      if (part.info->dtype == DType::kF8E4M3) {
        PONDER_RETURN_IF_ERROR(dequantize_fp8(p, part, reinterpret_cast<uint16_t*>(dst) + row * width,
                                              staging, bytes_read));
      } else if (part.info->dtype == DType::kI8 && p.to_f32) {
        PONDER_RETURN_IF_ERROR(dequantize_int8(p, part, reinterpret_cast<float*>(dst) + row * width,
                                               staging, bytes_read));
      } else if (p.to_f32 && part.info->dtype != DType::kF32) {
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
    if (dt == DType::kI8) {
      auto* scales = reinterpret_cast<float*>(dst + int8_scales_at(p));
      row = 0;
      for (const Part& part : p.parts) {
        PONDER_RETURN_IF_ERROR(read_int8_scales(part, scales + row, staging, bytes_read));
        row += part.rows;
      }
      p.dst->scale = scales;
    }
    return {};
  }

  // A float placement read row by row (its columns), each row quantized to int8 into dst with
  // its scale after the rows (the int8 layout).
  Status quantize_int8(Placement& p, char* dst, std::vector<char>& staging,
                       size_t* bytes_read) const {
    auto* q = reinterpret_cast<int8_t*>(dst);
    auto* scales = reinterpret_cast<float*>(dst + int8_scales_at(p));
    std::vector<float> row(static_cast<size_t>(p.cols));
    int64_t out = 0;
    for (const Part& part : p.parts) {
      const size_t es = dtype_size(part.info->dtype), row_bytes = static_cast<size_t>(p.cols) * es;
      // Whole rows come ~1 MiB at a time; a column slice row by row.
      const bool whole = p.cols == p.full_cols;
      const int64_t chunk = whole ? std::max<int64_t>(1, (int64_t{1} << 20) / row_bytes) : 1;
      for (int64_t r0 = 0; r0 < part.rows; r0 += chunk) {
        const int64_t n = std::min(chunk, part.rows - r0);
        staging.resize(static_cast<size_t>(n) * row_bytes);
        if (whole) {
          PONDER_RETURN_IF_ERROR(ckpt_.read(*part.info, (part.row0 + r0) * row_bytes, staging.size(),
                                            staging.data()));
        } else {
          PONDER_RETURN_IF_ERROR(ckpt_.read(
              *part.info, ((part.row0 + r0) * p.full_cols + p.col0) * es, row_bytes, staging.data()));
        }
        for (int64_t r = 0; r < n; ++r, ++out) {
          cpu::kernels().to_f32(staging.data() + r * row_bytes, part.info->dtype, p.cols, row.data());
          scales[out] = quantize_row_int8(row.data(), p.cols, q + out * p.cols);
        }
      }
      *bytes_read += static_cast<size_t>(part.rows) * row_bytes;
    }
    *p.dst = Tensor::view(q, DType::kI8, {p.rows, p.cols});
    p.dst->scale = scales;
    return {};
  }

  // Rows of an int8 part cut to the placement's columns, times their scales, into dst [rows, cols].
  Status dequantize_int8(const Placement& p, const Part& part, float* dst,
                         std::vector<char>& staging, size_t* bytes_read) const {
    std::vector<float> scales(static_cast<size_t>(part.rows));
    PONDER_RETURN_IF_ERROR(read_int8_scales(part, scales.data(), staging, bytes_read));
    staging.resize(static_cast<size_t>(p.cols));
    for (int64_t r = 0; r < part.rows; ++r) {
      PONDER_RETURN_IF_ERROR(
          ckpt_.read(*part.info, (part.row0 + r) * p.full_cols + p.col0, p.cols, staging.data()));
      for (int64_t c = 0; c < p.cols; ++c)
        dst[r * p.cols + c] = static_cast<float>(static_cast<int8_t>(staging[c])) * scales[r];
    }
    *bytes_read += static_cast<size_t>(part.rows * p.cols);
    return {};
  }

  // An int8 part's row scales as f32 (a per-tensor scale repeated), each finite and >= 0.
  Status read_int8_scales(const Part& part, float* out, std::vector<char>& staging,
                          size_t* bytes_read) const {
    const TensorInfo& s = *part.scale;
    const bool per_tensor = s.numel() == 1;
    const size_t es = dtype_size(s.dtype);
    const int64_t n = per_tensor ? 1 : part.rows;
    staging.resize(static_cast<size_t>(n) * es);
    PONDER_RETURN_IF_ERROR(
        ckpt_.read(s, per_tensor ? 0 : part.row0 * es, staging.size(), staging.data()));
    *bytes_read += staging.size();
    cpu::kernels().to_f32(staging.data(), s.dtype, n, out);
    for (int64_t r = 0; r < n; ++r) {
      if (!std::isfinite(out[r]) || out[r] < 0.0f)
        return error(StatusCode::kInvalidArgument,
                     "%s: '%s' row %lld is %g; an int8 scale must be finite and >= 0",
                     ckpt_.files()[s.file]->path().c_str(), s.name.c_str(),
                     (long long)(part.row0 + r), out[r]);
    }
    if (per_tensor) std::fill(out + 1, out + part.rows, out[0]);
    return {};
  }

  Expected<const TensorInfo*> expect(const std::string& name, const std::vector<int64_t>& shape,
                                     bool fp8) {
    PONDER_ASSIGN_OR_RETURN(const TensorInfo* info, ckpt_.require(name));
    const std::string& path = ckpt_.files()[info->file]->path();
    if (info->shape != shape)
      return error(StatusCode::kInvalidArgument,
                   "%s: tensor '%s' has shape %s but config.json implies %s", path.c_str(),
                   name.c_str(), info->shape_string().c_str(), shape_text(shape).c_str());
    if (info->dtype == DType::kF8E4M3 && fp8 && fp8_.block_rows > 0) return info;
    if (info->dtype == DType::kI8 && fp8 && int8_) return info;
    if (info->dtype != DType::kF32 && info->dtype != DType::kF16 && info->dtype != DType::kBF16)
      return error(StatusCode::kInvalidArgument,
                   "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16%s", path.c_str(),
                   name.c_str(), std::string(dtype_name(info->dtype)).c_str(),
                   info->dtype == DType::kF8E4M3
                       ? (!fp8 ? " (an FP8 vector)"
                               : " (F8_E4M3 needs a quantization_config with weight_block_size)")
                   : info->dtype == DType::kI8
                       ? (!fp8 ? " (an int8 vector)"
                               : " (I8 needs a compressed-tensors quantization_config)")
                       : "");
    return info;
  }

  // An int8 matrix's scales: `<name>_scale`, one per row ([rows, 1] or [rows]) or one in all.
  Expected<const TensorInfo*> int8_scale(const TensorInfo& weight) {
    const std::string name = weight.name + "_scale";
    const TensorInfo* scale = ckpt_.find(name);
    const std::string& path = ckpt_.files()[weight.file]->path();
    if (scale == nullptr)
      return error(StatusCode::kNotFound, "%s: int8 tensor '%s' has no scales '%s'", path.c_str(),
                   weight.name.c_str(), name.c_str());
    const int64_t rows = weight.shape[0];
    const bool shape_ok = scale->numel() == 1 || scale->shape == std::vector<int64_t>{rows, 1} ||
                          scale->shape == std::vector<int64_t>{rows};
    const bool dtype_ok = scale->dtype == DType::kF32 || scale->dtype == DType::kBF16 ||
                          scale->dtype == DType::kF16;
    if (!shape_ok || !dtype_ok)
      return error(StatusCode::kInvalidArgument,
                   "%s: '%s' is %s %s; %s's scales are F32, BF16 or F16 of shape [%lld, 1] "
                   "(per channel) or [1] (per tensor)",
                   ckpt_.files()[scale->file]->path().c_str(), name.c_str(),
                   std::string(dtype_name(scale->dtype)).c_str(), scale->shape_string().c_str(),
                   weight.shape_string().c_str(), (long long)rows);
    return scale;
  }

  // An FP8 matrix's block scales: `<name>_scale_inv`, one per weight_block_size block.
  Expected<const TensorInfo*> fp8_scale(const TensorInfo& weight) {
    const std::string name = weight.name + "_scale_inv";
    const TensorInfo* scale = ckpt_.find(name);
    const std::string& path = ckpt_.files()[weight.file]->path();
    if (scale == nullptr)
      return error(StatusCode::kNotFound, "%s: FP8 tensor '%s' has no block scales '%s'",
                   path.c_str(), weight.name.c_str(), name.c_str());
    const std::vector<int64_t> want = {
        (weight.shape[0] + fp8_.block_rows - 1) / fp8_.block_rows,
        (weight.shape[1] + fp8_.block_cols - 1) / fp8_.block_cols};
    if (scale->shape != want || (scale->dtype != DType::kF32 && scale->dtype != DType::kBF16))
      return error(StatusCode::kInvalidArgument,
                   "%s: '%s' is %s %s; blocks of %lldx%lld over %s need F32 %s",
                   ckpt_.files()[scale->file]->path().c_str(), name.c_str(),
                   std::string(dtype_name(scale->dtype)).c_str(), scale->shape_string().c_str(),
                   (long long)fp8_.block_rows, (long long)fp8_.block_cols,
                   weight.shape_string().c_str(), shape_text(want).c_str());
    return scale;
  }

  // Rows [row0, row0 + rows) × columns [col0, col0 + width) of an FP8 part, times their block
  // scales, rounded to bf16 into dst [rows, width].
  Status dequantize_fp8(const Placement& p, const Part& part, uint16_t* dst,
                        std::vector<char>& staging, size_t* bytes_read) const {
    const int64_t full = p.full_cols, width = p.cols;
    const int64_t br = fp8_.block_rows, bc = fp8_.block_cols;
    const int64_t scale_cols = part.scale->shape[1];
    const int64_t s0 = part.row0 / br, s1 = (part.row0 + part.rows - 1) / br + 1;
    const size_t ses = dtype_size(part.scale->dtype);
    std::vector<char> raw(static_cast<size_t>((s1 - s0) * scale_cols) * ses);
    PONDER_RETURN_IF_ERROR(ckpt_.read(*part.scale, s0 * scale_cols * ses, raw.size(), raw.data()));
    std::vector<float> scales(static_cast<size_t>((s1 - s0) * scale_cols));
    for (size_t i = 0; i < scales.size(); ++i) {
      scales[i] = part.scale->dtype == DType::kF32
                      ? reinterpret_cast<const float*>(raw.data())[i]
                      : bf16_to_f32(reinterpret_cast<const uint16_t*>(raw.data())[i]);
      if (!std::isfinite(scales[i]) || scales[i] <= 0.0f)
        return error(StatusCode::kInvalidArgument,
                     "%s: '%s' block [%lld, %lld] is %g; a block scale must be finite and positive",
                     ckpt_.files()[part.scale->file]->path().c_str(), part.scale->name.c_str(),
                     (long long)(s0 + static_cast<int64_t>(i) / scale_cols),
                     (long long)(static_cast<int64_t>(i) % scale_cols), scales[i]);
    }
    *bytes_read += raw.size();
    // Whole rows come in one read; a column slice row by row.
    const bool whole = width == full;
    staging.resize(static_cast<size_t>(whole ? part.rows * full : width));
    if (whole)
      PONDER_RETURN_IF_ERROR(ckpt_.read(*part.info, part.row0 * full, staging.size(), staging.data()));
    for (int64_t r = 0; r < part.rows; ++r) {
      const int64_t src_row = part.row0 + r;
      if (!whole)
        PONDER_RETURN_IF_ERROR(ckpt_.read(*part.info, src_row * full + p.col0, width, staging.data()));
      const uint8_t* in = reinterpret_cast<const uint8_t*>(staging.data()) + (whole ? r * full : 0);
      const float* srow = scales.data() + (src_row / br - s0) * scale_cols;
      uint16_t* out = dst + r * width;
      for (int64_t c = 0; c < width; ++c)
        out[c] = f32_to_bf16(f8e4m3_to_f32(in[c]) * srow[(p.col0 + c) / bc]);
    }
    *bytes_read += static_cast<size_t>(part.rows * width);
    return {};
  }

  void add(Placement p) {
    const DType dt = placed_dtype(p);
    const size_t bytes =
        dt == DType::kI8 ? int8_scales_at(p) + static_cast<size_t>(p.rows) * sizeof(float)
                         : static_cast<size_t>(p.rows * (p.cols ? p.cols : 1)) * dtype_size(dt);
    p.offset = total_;
    total_ += (bytes + kAlign - 1) / kAlign * kAlign;
    placements_.push_back(std::move(p));
  }

  const Checkpoint& ckpt_;
  const Fp8Config fp8_;
  const bool int8_;  // a compressed-tensors int8 checkpoint: I8 matrices are allowed
  const WeightQuant quantize_;
  std::vector<Placement> placements_;
  size_t total_ = 0;
};

// MLA's projections for this rank's heads. kv_b_proj [heads * (nope + v), kv_lora] is split per
// head into its key rows (w_uk, transposed after reading) and value rows (w_uv).
Status plan_mla(Planner& plan, const std::string& a, const ModelConfig& c, const ShardDims& d,
                LayerWeights& l) {
  const MlaConfig& m = c.mla;
  const int64_t h = c.hidden_size, qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
  const int64_t heads = d.n_heads, h0 = d.q_head_begin;
  if (m.q_lora_rank) {
    PONDER_RETURN_IF_ERROR(
        plan.matmul(&l.wq_a, {{a + "q_a_proj.weight", m.q_lora_rank, 0, m.q_lora_rank}}, h));
    PONDER_RETURN_IF_ERROR(
        plan.vector(&l.q_a_norm, {{a + "q_a_layernorm.weight", m.q_lora_rank, 0, m.q_lora_rank}}));
    PONDER_RETURN_IF_ERROR(plan.matmul(
        &l.wq, {{a + "q_b_proj.weight", c.n_heads * qk, h0 * qk, heads * qk}}, m.q_lora_rank));
  } else {
    PONDER_RETURN_IF_ERROR(
        plan.matmul(&l.wq, {{a + "q_proj.weight", c.n_heads * qk, h0 * qk, heads * qk}}, h));
  }
  const int64_t latent = m.kv_lora_rank + m.qk_rope_head_dim;
  PONDER_RETURN_IF_ERROR(
      plan.matmul(&l.wkv_a, {{a + "kv_a_proj_with_mqa.weight", latent, 0, latent}}, h));
  PONDER_RETURN_IF_ERROR(plan.vector(
      &l.kv_a_norm, {{a + "kv_a_layernorm.weight", m.kv_lora_rank, 0, m.kv_lora_rank}}));
  const int64_t per_head = m.qk_nope_head_dim + m.v_head_dim, rows = c.n_heads * per_head;
  std::vector<Slice> keys, values;
  for (int64_t hh = h0; hh < h0 + heads; ++hh) {
    keys.push_back({a + "kv_b_proj.weight", rows, hh * per_head, m.qk_nope_head_dim});
    values.push_back({a + "kv_b_proj.weight", rows, hh * per_head + m.qk_nope_head_dim, m.v_head_dim});
  }
  PONDER_RETURN_IF_ERROR(plan.matrix(&l.w_uk, keys, m.kv_lora_rank));
  PONDER_RETURN_IF_ERROR(plan.matrix(&l.w_uv, values, m.kv_lora_rank));
  return plan.matmul(&l.wo, {{a + "o_proj.weight", h, 0, h}}, c.n_heads * m.v_head_dim,
                     h0 * m.v_head_dim, heads * m.v_head_dim);
}

// t [heads * rows, cols] → [heads * cols, rows]: each head's block transposed in place.
void transpose_heads(Tensor& t, int64_t heads) {
  const int64_t rows = t.rows() / heads, cols = t.cols();
  const size_t es = dtype_size(t.dtype);
  std::vector<char> block(static_cast<size_t>(rows * cols) * es);
  char* base = static_cast<char*>(t.data);
  for (int64_t hh = 0; hh < heads; ++hh) {
    char* b = base + static_cast<size_t>(hh * rows * cols) * es;
    std::memcpy(block.data(), b, block.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col)
        std::memcpy(b + (col * rows + r) * es, block.data() + (r * cols + col) * es, es);
  }
  t = Tensor::view(t.data, t.dtype, {heads * cols, rows}, t.device);
}

}  // namespace

Expected<ModelWeights> ModelWeights::load(const Checkpoint& ckpt, const ModelConfig& c,
                                          const ShardSpec& shard, const LoadOptions& options) {
  ModelWeights w;
  Planner plan(ckpt, c, options.quantize);
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
  // A SwiGLU MLP of `full` intermediate rows, this rank's [begin, begin + rows) of them.
  auto mlp = [&](const std::string& m, Tensor* gate_up, Tensor* down, int64_t full, int64_t begin,
                 int64_t rows) -> Status {
    PONDER_RETURN_IF_ERROR(plan.matmul(gate_up,
                                       {{m + "gate_proj.weight", full, begin, rows},
                                        {m + "up_proj.weight", full, begin, rows}},
                                       h));
    return plan.matmul(down, {{m + "down_proj.weight", h, 0, h}}, full, begin, rows);
  };
  w.layers.resize(d.n_layers());
  for (int64_t i = d.layer_begin; i < d.layer_end; ++i) {
    LayerWeights& l = w.layers[i - d.layer_begin];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string a = p + "self_attn.", m = p + "mlp.";
    PONDER_RETURN_IF_ERROR(plan.vector(&l.attn_norm, {{p + "input_layernorm.weight", h, 0, h}}));
    if (c.is_mla()) {
      PONDER_RETURN_IF_ERROR(plan_mla(plan, a, c, d, l));
    } else {
      PONDER_RETURN_IF_ERROR(plan.matmul(&l.wqkv,
                                         {{a + "q_proj.weight", q_full, q0, q_rows},
                                          {a + "k_proj.weight", kv_full, kv0, kv_rows},
                                          {a + "v_proj.weight", kv_full, kv0, kv_rows}},
                                         h));
      PONDER_RETURN_IF_ERROR(
          plan.matmul(&l.wo, {{a + "o_proj.weight", h, 0, h}}, q_full, q0, q_rows));
    }
    if (c.qkv_bias) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.bqkv, {{a + "q_proj.bias", q_full, q0, q_rows},
                                                   {a + "k_proj.bias", kv_full, kv0, kv_rows},
                                                   {a + "v_proj.bias", kv_full, kv0, kv_rows}}));
    }
    if (c.qk_norm) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.q_norm, {{a + "q_norm.weight", hd, 0, hd}}));
      PONDER_RETURN_IF_ERROR(plan.vector(&l.k_norm, {{a + "k_norm.weight", hd, 0, hd}}));
    }
    if (c.o_bias && bias_owner)
      PONDER_RETURN_IF_ERROR(plan.vector(&l.bo, {{a + "o_proj.bias", h, 0, h}}));
    PONDER_RETURN_IF_ERROR(
        plan.vector(&l.mlp_norm, {{p + "post_attention_layernorm.weight", h, 0, h}}));
    if (c.layer_is_moe(i)) {
      const MoeConfig& moe = c.moe;
      PONDER_RETURN_IF_ERROR(
          plan.matrix(&l.router, {{m + "gate.weight", moe.n_experts, 0, moe.n_experts}}, h));
      if (moe.score_bias)
        PONDER_RETURN_IF_ERROR(plan.vector(
            &l.router_bias,
            {{m + "gate.e_score_correction_bias", moe.n_experts, 0, moe.n_experts}}));
      l.experts.resize(d.expert_end - d.expert_begin);  // only this rank's (expert parallelism)
      for (int64_t e = d.expert_begin; e < d.expert_end; ++e) {
        ExpertWeights& x = l.experts[e - d.expert_begin];
        PONDER_RETURN_IF_ERROR(mlp(m + "experts." + std::to_string(e) + ".", &x.w_gate_up,
                                   &x.w_down, moe.ffn, d.moe_ffn_begin, d.moe_ffn));
      }
      if (moe.shared_ffn > 0)
        PONDER_RETURN_IF_ERROR(mlp(m + "shared_experts.", &l.w_gate_up, &l.w_down,
                                   moe.shared_ffn, d.shared_ffn_begin, d.shared_ffn));
    } else {
      PONDER_RETURN_IF_ERROR(mlp(m, &l.w_gate_up, &l.w_down, ffn, d.ffn_begin, d.ffn));
    }
    if (c.mlp_bias) {
      PONDER_RETURN_IF_ERROR(plan.vector(&l.b_gate_up, {{m + "gate_proj.bias", ffn, d.ffn_begin, d.ffn},
                                                        {m + "up_proj.bias", ffn, d.ffn_begin, d.ffn}}));
      if (bias_owner) PONDER_RETURN_IF_ERROR(plan.vector(&l.b_down, {{m + "down_proj.bias", h, 0, h}}));
    }
  }
  if (shard.last_stage) {
    PONDER_RETURN_IF_ERROR(plan.vector(&w.final_norm, {{"model.norm.weight", h, 0, h}}));
    // Tied checkpoints may still carry a copy of lm_head; the embedding is what the model uses
    // (read a second time as an int8 lm_head when quantizing, where its rows are whole blocks).
    if (!c.tie_word_embeddings) {
      PONDER_RETURN_IF_ERROR(plan.matmul(
          &w.lm_head, {{"lm_head.weight", c.vocab_size, d.vocab_begin, vocab_rows}}, h));
    } else if (options.quantize == WeightQuant::kInt8 && h % cpu::kQ8Block == 0) {
      PONDER_RETURN_IF_ERROR(plan.matmul(
          &w.lm_head, {{"model.embed_tokens.weight", c.vocab_size, d.vocab_begin, vocab_rows}}, h));
    }
  }
  PONDER_ASSIGN_OR_RETURN(w.storage, plan.execute(options, &w.bytes_read));
  if (c.is_mla()) {
    for (LayerWeights& l : w.layers) transpose_heads(l.w_uk, d.n_heads);
  }
  if (shard.last_stage && c.tie_word_embeddings && w.lm_head.empty()) w.lm_head = w.embed;
  if (!shard.first_stage) w.embed = Tensor{};
  return w;
}

namespace {

// Every tensor slot, empty ones and the tied lm_head included.
std::vector<Tensor*> all_slots(ModelWeights& w) {
  std::vector<Tensor*> out = {&w.embed};
  for (LayerWeights& l : w.layers) {
    for (Tensor* t : {&l.attn_norm, &l.wqkv, &l.bqkv, &l.q_norm, &l.k_norm, &l.wq_a, &l.q_a_norm,
                      &l.wq, &l.wkv_a, &l.kv_a_norm, &l.w_uk, &l.w_uv, &l.wo, &l.bo, &l.mlp_norm,
                      &l.w_gate_up, &l.b_gate_up, &l.w_down, &l.b_down, &l.router, &l.router_bias})
      out.push_back(t);
    for (ExpertWeights& e : l.experts) {
      out.push_back(&e.w_gate_up);
      out.push_back(&e.w_down);
    }
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
    if (t->scale != nullptr)
      t->scale = reinterpret_cast<const float*>(
          moved.as<char>() + (reinterpret_cast<const char*>(t->scale) - old_base));
    t->device = memory.device();
  }
  device_storage = std::move(moved);
  storage = HostRegion();
  return {};
}

float quantize_row_int8(const float* w, int64_t k, int8_t* q) {
  return cpu::kernels().quantize_row_i8(w, k, q);
}

Status ModelWeights::quantize(WeightQuant quant) {
  if (quant == WeightQuant::kNone) return {};
  if (device() != Device::kHost)
    return error(StatusCode::kFailedPrecondition,
                 "weights are quantized on the host, before they move to a device");
  std::vector<const Tensor*> matmuls = {&lm_head};
  for (const LayerWeights& l : layers) {
    for (const Tensor* t : {&l.wqkv, &l.wq_a, &l.wq, &l.wkv_a, &l.wo, &l.w_gate_up, &l.w_down})
      matmuls.push_back(t);
    for (const ExpertWeights& e : l.experts) {
      matmuls.push_back(&e.w_gate_up);
      matmuls.push_back(&e.w_down);
    }
  }
  auto to_int8 = [&](const Tensor* t) {
    return t->ndim == 2 && t->dtype != DType::kI8 && t->cols() % cpu::kQ8Block == 0 &&
           std::find(matmuls.begin(), matmuls.end(), t) != matmuls.end();
  };
  // The loader quantizes what it reads (LoadOptions::quantize); what is left is what it could
  // not (FP8 matrices, dequantized to bf16 first) or weights made elsewhere.
  if (std::none_of(matmuls.begin(), matmuls.end(),
                   [&](const Tensor* t) { return !t->empty() && to_int8(t); }))
    return {};
  // The new region: int8 rows then their scales for each quantized matrix, every other live
  // tensor copied once (tensors that share bytes — a kept tied lm_head — share them again).
  struct Place {
    Tensor* t;
    size_t offset;
    bool int8;
    bool copy;  // false: another place copies these bytes (the tensors share them)
  };
  std::vector<Place> places;
  std::vector<std::pair<const void*, size_t>> copied;  // old data -> offset
  size_t total = 0;
  auto reserve = [&total](size_t bytes) {
    const size_t at = total;
    total += (bytes + 63) & ~size_t{63};
    return at;
  };
  // An int8 matrix (made here or read from an int8 checkpoint) is its rows, then its row scales.
  auto scales_at = [](const Tensor& t) { return (static_cast<size_t>(t.numel()) + 63) & ~size_t{63}; };
  auto int8_bytes = [&](const Tensor& t) { return scales_at(t) + t.rows() * sizeof(float); };
  for (Tensor* t : all_slots(*this)) {
    if (t->empty()) continue;
    if (to_int8(t)) {
      places.push_back({t, reserve(int8_bytes(*t)), true, false});
      continue;
    }
    auto it = std::find_if(copied.begin(), copied.end(),
                           [t](const auto& c) { return c.first == t->data; });
    const bool first = it == copied.end();
    const size_t at = first ? reserve(t->scale ? int8_bytes(*t) : t->nbytes()) : it->second;
    if (first) copied.emplace_back(t->data, at);
    places.push_back({t, at, false, first});
  }
  PONDER_ASSIGN_OR_RETURN(HostRegion region, HostRegion::allocate(total, /*huge_pages=*/true));
  const cpu::Kernels& k = cpu::kernels();
  std::vector<std::vector<float>> rows_f32(std::max(1, available_cores()));
  PONDER_RETURN_IF_ERROR(for_each_parallel(places.size(), [&](size_t i, int thread) {
    Place& p = places[i];
    Tensor& t = *p.t;
    char* dst = region.data() + p.offset;
    if (!p.int8) {
      if (p.copy) std::memcpy(dst, t.data, t.nbytes());
      t.data = dst;
      if (t.scale != nullptr) {
        auto* scales = reinterpret_cast<float*>(dst + scales_at(t));
        if (p.copy) std::memcpy(scales, t.scale, t.rows() * sizeof(float));
        t.scale = scales;
      }
      return Status{};
    }
    const int64_t rows = t.rows(), cols = t.cols();
    auto* q = reinterpret_cast<int8_t*>(dst);
    auto* scales = reinterpret_cast<float*>(dst + scales_at(t));
    std::vector<float>& row = rows_f32[thread];
    row.resize(cols);
    const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(t.dtype);
    for (int64_t r = 0; r < rows; ++r) {
      k.to_f32(static_cast<const char*>(t.data) + r * row_bytes, t.dtype, cols, row.data());
      scales[r] = quantize_row_int8(row.data(), cols, q + r * cols);
    }
    t = Tensor::view(q, DType::kI8, {rows, cols});
    t.scale = scales;
    return Status{};
  }));
  storage = std::move(region);
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
  for (int64_t i = d.layer_begin; i < d.layer_end; ++i) {
    LayerWeights& l = w.layers[i - d.layer_begin];
    add(&l.attn_norm, DType::kF32, h, 0);
    if (c.is_mla()) {
      const MlaConfig& m = c.mla;
      const int64_t q_rows = d.n_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim);
      if (m.q_lora_rank) {
        add(&l.wq_a, dtype, m.q_lora_rank, h);
        add(&l.q_a_norm, DType::kF32, m.q_lora_rank, 0);
      }
      add(&l.wq, dtype, q_rows, m.q_lora_rank ? m.q_lora_rank : h);
      add(&l.wkv_a, dtype, m.kv_lora_rank + m.qk_rope_head_dim, h);
      add(&l.kv_a_norm, DType::kF32, m.kv_lora_rank, 0);
      add(&l.w_uk, dtype, d.n_heads * m.kv_lora_rank, m.qk_nope_head_dim);
      add(&l.w_uv, dtype, d.n_heads * m.v_head_dim, m.kv_lora_rank);
      add(&l.wo, dtype, h, d.n_heads * m.v_head_dim);
    } else {
      add(&l.wqkv, dtype, qkv_rows, h);
      add(&l.wo, dtype, h, d.n_heads * hd);
    }
    if (c.qkv_bias) add(&l.bqkv, DType::kF32, qkv_rows, 0);
    if (c.qk_norm) {
      add(&l.q_norm, DType::kF32, hd, 0);
      add(&l.k_norm, DType::kF32, hd, 0);
    }
    if (c.o_bias && bias_owner) add(&l.bo, DType::kF32, h, 0);
    add(&l.mlp_norm, DType::kF32, h, 0);
    if (c.layer_is_moe(i)) {
      add(&l.router, dtype, c.moe.n_experts, h);
      if (c.moe.score_bias) add(&l.router_bias, DType::kF32, c.moe.n_experts, 0);
      l.experts.resize(d.expert_end - d.expert_begin);
      for (ExpertWeights& e : l.experts) {
        add(&e.w_gate_up, dtype, 2 * d.moe_ffn, h);
        add(&e.w_down, dtype, h, d.moe_ffn);
      }
      if (d.shared_ffn > 0) {
        add(&l.w_gate_up, dtype, 2 * d.shared_ffn, h);
        add(&l.w_down, dtype, h, d.shared_ffn);
      }
    } else {
      add(&l.w_gate_up, dtype, 2 * d.ffn, h);
      add(&l.w_down, dtype, h, d.ffn);
    }
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

size_t ModelWeights::matmul_bytes(const ModelConfig& c) const {
  // An int8 matrix streams its row scales too.
  auto bytes = [](const Tensor& t) {
    return t.nbytes() + (t.scale ? static_cast<size_t>(t.rows()) * sizeof(float) : 0);
  };
  size_t total = lm_head.empty() ? 0 : bytes(lm_head);
  for (const LayerWeights& l : layers) {
    for (const Tensor* t : {&l.wqkv, &l.wq_a, &l.wq, &l.wkv_a, &l.w_uk, &l.w_uv, &l.wo,
                            &l.w_gate_up, &l.w_down, &l.router})
      total += bytes(*t);
    if (!l.experts.empty())
      total += static_cast<size_t>(c.moe.top_k) *
               (bytes(l.experts[0].w_gate_up) + bytes(l.experts[0].w_down));
  }
  return total;
}

}  // namespace ponder::worker
