// CPU implementation of the Backend ops.
#include "worker/backend/cpu/cpu_backend.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::worker {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

std::string_view matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::kBf16 ? "bf16" : "exact";
}

Expected<MatmulPrecision> parse_matmul_precision(std::string_view text) {
  if (text == "exact") return MatmulPrecision::kExact;
  if (text == "bf16") return MatmulPrecision::kBf16;
  return error(StatusCode::kInvalidArgument, "precision '%.*s' is not 'exact' or 'bf16'",
               static_cast<int>(text.size()), text.data());
}

Expected<std::unique_ptr<CpuBackend>> CpuBackend::create(const CpuBackendOptions& options) {
  const cpu::Kernels* k = options.isa ? cpu::kernels_for(options.isa) : &cpu::kernels();
  if (k == nullptr)
    return error(StatusCode::kInvalidArgument, "this CPU cannot run the '%s' kernels",
                 options.isa);
  int n = options.n_threads > 0 ? options.n_threads : available_cores();
  MatmulPrecision precision = options.precision;
  if (k->matmul_bf16 == nullptr) precision = MatmulPrecision::kExact;
  std::unique_ptr<CpuBackend> backend(new CpuBackend(k, n, precision));
  backend->scratch_.resize(n);
  return backend;
}

std::string CpuBackend::description() const {
  return strformat("%s kernels, %d threads, %s bf16 matmuls", isa(), n_threads(),
                   std::string(matmul_precision_name(precision_)).c_str());
}

void CpuBackend::embedding(const Tensor& table, std::span<const int32_t> ids, Tensor out) {
  const int64_t d = table.cols();
  const size_t row_bytes = static_cast<size_t>(d) * dtype_size(table.dtype);
  for (size_t i = 0; i < ids.size(); ++i) {
    PONDER_CHECK(ids[i] < table.rows(), "token id %d out of range", ids[i]);
    if (ids[i] < 0) {
      std::memset(out.as<float>() + i * d, 0, d * sizeof(float));
      continue;
    }
    const char* row = static_cast<const char*>(table.data) + row_bytes * ids[i];
    k_->to_f32(row, table.dtype, d, out.as<float>() + i * d);
  }
}

void CpuBackend::rms_norm(Tensor x, const Tensor& weight, float eps, Tensor out) {
  const int64_t d = x.cols();
  pool_.parallel_for(x.rows(), 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      k_->rms_norm_row(x.as<float>() + i * d, weight.as<float>(), eps, d, out.as<float>() + i * d);
  });
}

void CpuBackend::add_rms_norm(Tensor residual, Tensor x, const Tensor& weight, float eps,
                              Tensor out) {
  const int64_t d = x.cols();
  pool_.parallel_for(x.rows(), 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* r = residual.as<float>() + i * d;
      k_->axpy(1.0f, x.as<float>() + i * d, r, d);
      k_->rms_norm_row(r, weight.as<float>(), eps, d, out.as<float>() + i * d);
    }
  });
}

void CpuBackend::matmul(Tensor x, const Tensor& w, const Tensor& bias, Tensor y) {
  const int64_t n = x.rows(), k = x.cols(), m = w.rows();
  PONDER_CHECK(w.cols() == k && y.cols() == m && y.rows() == n, "matmul shapes x%s w%s y%s",
               x.shape_string().c_str(), w.shape_string().c_str(), y.shape_string().c_str());
  const float* b = bias.empty() ? nullptr : bias.as<float>();
  if (w.dtype == DType::kI8) {
    PONDER_CHECK(w.scale != nullptr && k % cpu::kQ8Block == 0,
                 "int8 weights %s need per-row scales and a multiple of %lld columns",
                 w.shape_string().c_str(), (long long)cpu::kQ8Block);
    x_q8_.resize(n * k);
    x_q8_scale_.resize(n * k / cpu::kQ8Block);
    x_q8_sum_.resize(n);
    pool_.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      k_->quantize_rows_q8(x.as<float>(), k, t0, t1, x_q8_.data(), x_q8_scale_.data(),
                           x_q8_sum_.data());
    });
    const cpu::QuantizedRows xq{x_q8_.data(), x_q8_scale_.data(), x_q8_sum_.data(), n, k};
    pool_.parallel_for(m, 16, [&](int64_t r0, int64_t r1, int) {
      k_->matmul_q8(xq, w.as<const int8_t>(), w.scale, b, y.as<float>(), m, r0, r1);
    });
    return;
  }
  if (w.dtype == DType::kBF16 && precision_ == MatmulPrecision::kBf16) {
    x_bf16_.resize(n * k);
    const float* xf = x.as<float>();
    for (int64_t i = 0; i < n * k; ++i) x_bf16_[i] = f32_to_bf16(xf[i]);
    pool_.parallel_for(m, 16, [&](int64_t r0, int64_t r1, int) {
      k_->matmul_bf16(x_bf16_.data(), n, k, w.as<const uint16_t>(), b, y.as<float>(), m, r0, r1);
    });
    return;
  }
  // Split output rows (weights) between threads: each weight byte is read by one thread only.
  pool_.parallel_for(m, 16, [&](int64_t r0, int64_t r1, int) {
    k_->matmul(x.as<float>(), n, k, w.data, w.dtype, b, y.as<float>(), m, r0, r1);
  });
}

void CpuBackend::rope(Tensor x, std::span<const int32_t> positions, const RopeTable& table) {
  const int64_t n = x.dim(0), heads = x.dim(1), hd = x.dim(2);
  const int64_t half = static_cast<int64_t>(table.inv_freq.size()), skip = hd - 2 * half;
  PONDER_CHECK(skip >= 0, "rope over %lld dims of a %lld-wide head", (long long)(2 * half),
               (long long)hd);
  pool_.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
    std::vector<float> cos_v(half), sin_v(half), pairs(2 * half);
    for (int64_t t = b; t < e; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        // Angles in double: positions reach 10^5+ and f32 phase error would grow with them.
        double angle = static_cast<double>(positions[t]) * static_cast<double>(table.inv_freq[i]);
        cos_v[i] = static_cast<float>(std::cos(angle)) * table.attention_factor;
        sin_v[i] = static_cast<float>(std::sin(angle)) * table.attention_factor;
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x.as<float>() + (t * heads + h) * hd + skip;
        if (table.interleaved) {
          // Pair i is (v[2i], v[2i+1]); the rotated pair goes to (v[i], v[i + half]).
          std::copy(v, v + 2 * half, pairs.begin());
          for (int64_t i = 0; i < half; ++i) {
            float a = pairs[2 * i], c = pairs[2 * i + 1];
            v[i] = a * cos_v[i] - c * sin_v[i];
            v[i + half] = c * cos_v[i] + a * sin_v[i];
          }
          continue;
        }
        for (int64_t i = 0; i < half; ++i) {
          float a = v[i], c = v[i + half];
          v[i] = a * cos_v[i] - c * sin_v[i];
          v[i + half] = c * cos_v[i] + a * sin_v[i];
        }
      }
    }
  });
}

namespace {

// Writes one row of hd f32 values into a cache row of the cache's dtype (bf16: rounded).
void store_row(void* dst, const float* src, int64_t hd, DType dtype) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, hd * sizeof(float));
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < hd; ++i) d[i] = f32_to_bf16(src[i]);
}

}  // namespace

void CpuBackend::kv_store(KvCache& cache, int layer, Tensor k, Tensor v, const BatchLayout& batch) {
  const DType dt = cache.config().dtype;
  PONDER_CHECK(cache.device() == Device::kHost && (dt == DType::kF32 || dt == DType::kBF16),
               "the CPU backend needs a host f32 or bf16 KV cache");
  const int64_t n_kv = k.dim(1), hd = k.dim(2), bs = cache.block_size();
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  for (const SeqSlice& s : batch.seqs) {
    for (int32_t i = 0; i < s.n_tokens; ++i) {
      int64_t t = s.token_begin + i, pos = s.start_pos + i;
      int32_t block = s.block_table[pos / bs];
      const int64_t off = (pos % bs) * hd * es;
      for (int64_t h = 0; h < n_kv; ++h) {
        store_row(static_cast<char*>(cache.k_at(layer, block, h)) + off,
                  k.as<float>() + (t * n_kv + h) * hd, hd, dt);
        if (!cache.latent())
          store_row(static_cast<char*>(cache.v_at(layer, block, h)) + off,
                    v.as<float>() + (t * n_kv + h) * hd, hd, dt);
      }
    }
  }
}

void CpuBackend::attention(Tensor q, const KvCache& cache, int layer, const BatchLayout& batch,
                           float scale, Tensor out) {
  const DType dt = cache.config().dtype;
  PONDER_CHECK(cache.device() == Device::kHost && (dt == DType::kF32 || dt == DType::kBF16),
               "the CPU backend needs a host f32 or bf16 KV cache");
  const int64_t n_heads = q.dim(1), hd = q.dim(2), vd = out.dim(2);
  const int64_t n_kv = cache.config().n_kv_heads, group = n_heads / n_kv;
  const int64_t bs = cache.block_size();
  PONDER_CHECK(hd == cache.config().head_dim && vd == cache.value_dim(),
               "attention q%s out%s over a cache of %lld-wide keys and %lld-wide values",
               q.shape_string().c_str(), out.shape_string().c_str(),
               (long long)cache.config().head_dim, (long long)cache.value_dim());
  // Work items: (token, kv head); each handles the `group` query heads that share the kv head.
  std::vector<int32_t> seq_of(batch.n_tokens());
  for (size_t s = 0; s < batch.seqs.size(); ++s)
    for (int32_t i = 0; i < batch.seqs[s].n_tokens; ++i)
      seq_of[batch.seqs[s].token_begin + i] = static_cast<int32_t>(s);
  const int64_t items = static_cast<int64_t>(batch.n_tokens()) * n_kv;
  pool_.parallel_for(items, 1, [&](int64_t b, int64_t e, int thread) {
    std::vector<float>& scores = scratch_[thread];
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / n_kv, kvh = item % n_kv;
      const SeqSlice& s = batch.seqs[seq_of[t]];
      const int64_t pos = batch.positions[t], len = pos + 1;
      if (static_cast<int64_t>(scores.size()) < group * len) scores.resize(group * len);
      // The group's query heads are consecutive rows of q: each cache block's keys meet all of
      // them in one matmul (scores [group, len]), and each value row is read once for all.
      const float* qg = q.as<float>() + (t * n_heads + kvh * group) * hd;
      for (int64_t j0 = 0; j0 < len; j0 += bs) {
        const void* kb = cache.k_at(layer, s.block_table[j0 / bs], kvh);
        k_->matmul(qg, group, hd, kb, dt, nullptr, scores.data() + j0, len, 0,
                   std::min(bs, len - j0));
      }
      for (int64_t g = 0; g < group; ++g) {
        float* sc = scores.data() + g * len;
        float max_score = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          sc[j] *= scale;
          max_score = std::max(max_score, sc[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < len; ++j) {
          sc[j] = std::exp(sc[j] - max_score);
          sum += sc[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < len; ++j) sc[j] *= inv;
      }
      float* og = out.as<float>() + (t * n_heads + kvh * group) * vd;
      std::memset(og, 0, group * vd * sizeof(float));
      for (int64_t j0 = 0; j0 < len; j0 += bs) {
        const void* vb = cache.v_at(layer, s.block_table[j0 / bs], kvh);
        k_->weighted_rows(scores.data() + j0, len, group, vb, dt, hd, std::min(bs, len - j0), vd,
                          og);
      }
    }
  });
}

void CpuBackend::swiglu(Tensor gate_up, Tensor out) {
  const int64_t n = out.rows(), ffn = out.cols();
  pool_.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gate_up.as<float>() + i * 2 * ffn;
      const float* u = g + ffn;
      float* o = out.as<float>() + i * ffn;
      for (int64_t j = 0; j < ffn; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  });
}

void CpuBackend::copy_columns(Tensor src, int64_t src_col, Tensor dst, int64_t dst_col,
                              int64_t cols) {
  const int64_t n = src.rows(), sw = src.cols(), dw = dst.cols();
  PONDER_CHECK(dst.rows() == n && src_col + cols <= sw && dst_col + cols <= dw,
               "copy_columns src%s [%lld, +%lld) dst%s [%lld, ...)", src.shape_string().c_str(),
               (long long)src_col, (long long)cols, dst.shape_string().c_str(), (long long)dst_col);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst.as<float>() + i * dw + dst_col, src.as<float>() + i * sw + src_col,
                cols * sizeof(float));
}

void CpuBackend::add(Tensor x, Tensor y) {
  PONDER_CHECK(x.numel() == y.numel(), "add x%s y%s", x.shape_string().c_str(),
               y.shape_string().c_str());
  float* xd = x.as<float>();
  const float* yd = y.as<float>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) xd[i] += yd[i];
}

void CpuBackend::gather_rows(Tensor src, std::span<const int32_t> rows, Tensor dst) {
  const int64_t d = src.cols();
  PONDER_CHECK(dst.cols() == d && dst.rows() == static_cast<int64_t>(rows.size()),
               "gather_rows src%s dst%s of %zu rows", src.shape_string().c_str(),
               dst.shape_string().c_str(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    PONDER_CHECK(rows[i] >= 0 && rows[i] < src.rows(), "row %d out of range", rows[i]);
    std::memcpy(dst.as<float>() + i * d, src.as<float>() + rows[i] * d, d * sizeof(float));
  }
}

void CpuBackend::head_matmul(Tensor x, int64_t x_stride, const Tensor& w, int64_t heads, Tensor y,
                             int64_t y_stride) {
  const int64_t n = x.rows(), k = w.cols(), m = w.rows() / heads;
  PONDER_CHECK(y.rows() == n && w.rows() == heads * m && (heads - 1) * x_stride + k <= x.cols() &&
                   (heads - 1) * y_stride + m <= y.cols(),
               "head_matmul x%s w%s y%s over %lld heads", x.shape_string().c_str(),
               w.shape_string().c_str(), y.shape_string().c_str(), (long long)heads);
  const size_t head_bytes = static_cast<size_t>(m * k) * dtype_size(w.dtype);
  pool_.parallel_for(heads, 1, [&](int64_t h0, int64_t h1, int) {
    std::vector<float> xs(n * k);  // head h's input columns, contiguous
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < n; ++t)
        std::memcpy(xs.data() + t * k, x.as<float>() + t * x.cols() + h * x_stride,
                    k * sizeof(float));
      k_->matmul(xs.data(), n, k, static_cast<const char*>(w.data) + h * head_bytes, w.dtype,
                 nullptr, y.as<float>() + h * y_stride, y.cols(), 0, m);
    }
  });
}

void CpuBackend::scatter_add_rows(Tensor src, std::span<const int32_t> rows,
                                  std::span<const float> scales, Tensor dst) {
  const int64_t d = src.cols();
  PONDER_CHECK(dst.cols() == d && src.rows() == static_cast<int64_t>(rows.size()) &&
                   scales.size() == rows.size(),
               "scatter_add_rows src%s dst%s of %zu rows", src.shape_string().c_str(),
               dst.shape_string().c_str(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    PONDER_CHECK(rows[i] >= 0 && rows[i] < dst.rows(), "row %d out of range", rows[i]);
    k_->axpy(scales[i], src.as<float>() + i * d, dst.as<float>() + rows[i] * d, d);
  }
}

void CpuBackend::zero(Tensor x) { std::memset(x.data, 0, x.numel() * sizeof(float)); }

}  // namespace ponder::worker
