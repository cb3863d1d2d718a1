// CpuBackend: the reference Backend. Vectorized kernels picked at run time (kernels.h), work split
// over a ThreadPool. Used by one engine thread at a time.
#pragma once

#include <memory>

#include "worker/backend/backend.h"
#include "worker/backend/cpu/kernels.h"
#include "worker/backend/cpu/thread_pool.h"

namespace ponder::worker {

// How matmuls with bf16 weights treat their f32 activations.
enum class MatmulPrecision {
  kExact,  // activations stay f32, weights widen to f32: the reference path
  kBf16,   // activations round to bf16 and products use the bf16 dot instruction (AVX512_BF16),
           // accumulating in f32 — what a bf16 model does in PyTorch, at twice the FMA rate
};

std::string_view matmul_precision_name(MatmulPrecision precision);  // "exact", "bf16"
Expected<MatmulPrecision> parse_matmul_precision(std::string_view text);

struct CpuBackendOptions {
  int n_threads = 0;           // 0: every core the process may use
  const char* isa = nullptr;   // force "avx512", "avx2" or "generic"; nullptr: best available
  MatmulPrecision precision = MatmulPrecision::kExact;
};

class CpuBackend final : public Backend {
 public:
  static Expected<std::unique_ptr<CpuBackend>> create(const CpuBackendOptions& options);

  std::string_view name() const override { return "cpu"; }
  std::string description() const override;
  const char* isa() const { return k_->isa; }
  int n_threads() const { return pool_.size(); }
  // The precision bf16-weight matmuls really use (kExact where the CPU lacks bf16 dot products).
  MatmulPrecision precision() const { return precision_; }

  void embedding(const Tensor& table, std::span<const int32_t> ids, Tensor out) override;
  void rms_norm(Tensor x, const Tensor& weight, float eps, Tensor out) override;
  void add_rms_norm(Tensor residual, Tensor x, const Tensor& weight, float eps,
                    Tensor out) override;
  void matmul(Tensor x, const Tensor& w, const Tensor& bias, Tensor y) override;
  void rope(Tensor x, std::span<const int32_t> positions, const RopeTable& table) override;
  void kv_store(KvCache& cache, int layer, Tensor k, Tensor v, const BatchLayout& batch) override;
  void attention(Tensor q, const KvCache& cache, int layer, const BatchLayout& batch, float scale,
                 Tensor out) override;
  void swiglu(Tensor gate_up, Tensor out) override;
  void copy_columns(Tensor src, int64_t src_col, Tensor dst, int64_t dst_col,
                    int64_t cols) override;
  void add(Tensor x, Tensor y) override;
  void gather_rows(Tensor src, std::span<const int32_t> rows, Tensor dst) override;
  void head_matmul(Tensor x, int64_t x_stride, const Tensor& w, int64_t heads, Tensor y,
                   int64_t y_stride) override;
  void scatter_add_rows(Tensor src, std::span<const int32_t> rows, std::span<const float> scales,
                        Tensor dst) override;
  void zero(Tensor x) override;

 private:
  CpuBackend(const cpu::Kernels* k, int n_threads, MatmulPrecision precision)
      : k_(k), pool_(n_threads), precision_(precision) {}
  const cpu::Kernels* k_;
  ThreadPool pool_;
  MatmulPrecision precision_;
  std::vector<uint16_t> x_bf16_;  // activations rounded for the bf16 matmul path
  std::vector<int8_t> x_q8_;      // activations quantized for int8 weights (cpu::QuantizedRows)
  std::vector<float> x_q8_scale_, x_q8_sum_;
  std::vector<std::vector<float>> scratch_;  // per thread: attention scores
};

// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

}  // namespace ponder::worker
