// Matmul: y[n, m] (f32) = x[n, k] · w[m, k]ᵀ (+ bias[m]) through cuBLASLt, f32 accumulation,
// x and w both f32, f16 or bf16. Row-major operands are cuBLASLt's column-major ones transposed,
// so this is D[m, n] = op(W)ᵀ·X with W as a k×m column-major matrix (a "TN" GEMM). Plans (layouts
// and the heuristic's algorithm) are cached per shape, dtype and pointer alignment; the bias is
// fused as the epilogue where cuBLASLt offers one, else added by a kernel. Calls are stream
// ordered and CUDA-graph capturable (fixed workspace). Not thread-safe.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "common/status.h"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker::cuda {

class Matmul {
 public:
  static Expected<std::unique_ptr<Matmul>> create(size_t workspace_bytes = size_t{32} << 20);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  Status run(const void* x, const void* w, const float* bias, float* y, int64_t n, int64_t m,
             int64_t k, Elem dt, cudaStream_t stream);

 private:
  Matmul() = default;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool fused_bias = false;
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool, int, int, int, int>;
  Status make_plan(const Key& key, const float* bias, Plan& p);
  static void destroy(Plan& p);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace ponder::worker::cuda
