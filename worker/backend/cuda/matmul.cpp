// cuBLASLt plans and calls for the CUDA backend's matmul.
#include "worker/backend/cuda/matmul.h"

#include <bit>

#include "worker/backend/cuda/cuda_check.h"

namespace ponder::worker::cuda {
namespace {

Status lt_status(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return {};
  return error(
      st == CUBLAS_STATUS_ALLOC_FAILED ? StatusCode::kResourceExhausted : StatusCode::kInternal,
      "%s: %s", what, cublasLtGetStatusString(st));
}

#define LT_RETURN_IF_ERROR(expr) PONDER_RETURN_IF_ERROR(lt_status((expr), #expr))

cudaDataType_t data_type(Elem dt) {
  switch (dt) {
    case Elem::kBF16:
      return CUDA_R_16BF;
    case Elem::kF16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

// Largest power of two (up to 256) dividing the address: what cuBLASLt may assume of it.
int alignment(const void* p) {
  if (p == nullptr) return 256;
  const auto a = reinterpret_cast<uintptr_t>(p);
  const int low = std::countr_zero(a);
  return low >= 8 ? 256 : 1 << low;
}

}  // namespace

Expected<std::unique_ptr<Matmul>> Matmul::create(size_t workspace_bytes) {
  std::unique_ptr<Matmul> m(new Matmul());
  LT_RETURN_IF_ERROR(cublasLtCreate(&m->handle_));
  PONDER_RETURN_IF_ERROR(
      cuda_status(cudaMalloc(&m->workspace_, workspace_bytes), "cudaMalloc (cuBLASLt workspace)"));
  m->workspace_bytes_ = workspace_bytes;
  return m;
}

Matmul::~Matmul() {
  for (auto& [key, p] : plans_) destroy(p);
  if (workspace_ != nullptr) (void)cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void Matmul::destroy(Plan& p) {
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  p = {};
}

Status Matmul::make_plan(const Key& key, const float* bias, Plan& p) {
  [[maybe_unused]] const auto [n, m, k, dt_int, has_bias, ax, aw, ay, ab] = key;
  const cudaDataType_t in = data_type(static_cast<Elem>(dt_int));
  LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  LT_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  LT_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  // A = W: k × m column-major (ld k), transposed; B = X: k × n (ld k); C = D = Y: m × n (ld m).
  LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.a, in, k, m, k));
  LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.b, in, k, n, k));
  LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, m, n, m));

  struct Preference {
    cublasLtMatmulPreference_t pref = nullptr;
    ~Preference() {
      if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
    }
  } pref;
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref.pref));
  const uint64_t ws = workspace_bytes_;
  const uint32_t align_a = aw, align_b = ax, align_c = ay;
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)));
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)));
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)));
  LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)));

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (has_bias) {
    // The bias epilogue where an algorithm offers it (the heuristic reads the bias pointer's
    // alignment), else the plain GEMM and a bias kernel.
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_32F;
    LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                      &bias_type, sizeof(bias_type)));
    LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)));
    if (cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref.pref, 1, &result,
                                       &found) != CUBLAS_STATUS_SUCCESS)
      found = 0;
    p.fused_bias = found > 0;
    if (!p.fused_bias) {
      const cublasLtEpilogue_t plain = CUBLASLT_EPILOGUE_DEFAULT;
      LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                        &plain, sizeof(plain)));
    }
  }
  if (found == 0) {
    LT_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c,
                                                      pref.pref, 1, &result, &found));
  }
  if (found == 0)
    return error(StatusCode::kInternal,
                 "cuBLASLt has no algorithm for y[%lld, %lld] = x[%lld, %lld]·wᵀ (dtype %d, "
                 "alignments x %d w %d y %d)",
                 (long long)n, (long long)m, (long long)n, (long long)k, dt_int, ax, aw, ay);
  p.algo = result.algo;
  return {};
}

Status Matmul::run(const void* x, const void* w, const float* bias, float* y, int64_t n, int64_t m,
                   int64_t k, Elem dt, cudaStream_t stream) {
  if (n == 0 || m == 0) return {};
  const Key key{n,
                m,
                k,
                static_cast<int>(dt),
                bias != nullptr,
                alignment(x),
                alignment(w),
                alignment(y),
                alignment(bias)};
  Plan* p = nullptr;
  if (auto it = plans_.find(key); it != plans_.end()) {
    p = &it->second;
  } else {
    Plan fresh;
    if (Status st = make_plan(key, bias, fresh); !st.ok()) {
      destroy(fresh);
      return st;
    }
    p = &plans_.emplace(key, fresh).first->second;
  }
  if (p->fused_bias)
    LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)));
  const float alpha = 1.0f, beta = 0.0f;
  LT_RETURN_IF_ERROR(cublasLtMatmul(handle_, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y,
                                    p->c, &p->algo, workspace_, workspace_bytes_, stream));
  if (bias != nullptr && !p->fused_bias)
    PONDER_RETURN_IF_ERROR(cuda_status(add_bias(y, bias, n, m, stream), "add_bias"));
  return {};
}

}  // namespace ponder::worker::cuda
