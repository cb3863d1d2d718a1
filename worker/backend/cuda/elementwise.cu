// The CUDA backend's row-wise and elementwise kernels: embedding, RMSNorm (and its fused residual
// add), RoPE, SwiGLU, add, row gather, f32 → bf16/f16 rounding, bias add, random fill. Each
// matches the CPU backend's formula operation for operation (products and sums rounded as there:
// __fmul_rn / __fadd_rn where nvcc would otherwise fuse them).
#include "worker/backend/cuda/device_utils.cuh"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void embedding_kernel(const T* table, int64_t d, const int32_t* ids, float* out) {
  const int64_t row = blockIdx.x;
  const int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  const int32_t id = ids[row];
  out[row * d + j] = id < 0 ? 0.0f : to_f32(table[static_cast<int64_t>(id) * d + j]);
}

// One block per row. In place when out == x: each thread reads an element before writing it.
__global__ void rms_norm_kernel(const float* x, const float* w, float eps, int64_t d, float* out) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * d;
  float* o = out + blockIdx.x * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss = __fmaf_rn(xr[i], xr[i], ss);
  ss = block_sum(ss, red);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

__global__ void add_rms_norm_kernel(float* residual, const float* x, const float* w, float eps,
                                    int64_t d, float* out) {
  __shared__ float red[32];
  float* r = residual + blockIdx.x * d;
  const float* xr = x + blockIdx.x * d;
  float* o = out + blockIdx.x * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = __fadd_rn(r[i], xr[i]);
    r[i] = v;
    ss = __fmaf_rn(v, v, ss);
  }
  ss = block_sum(ss, red);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    o[i] = __fmul_rn(__fmul_rn(r[i], scale), w[i]);
}

// One block per token; each thread one frequency (cos/sin in double, as the CPU backend) for
// every head.
__global__ void rope_kernel(float* x, int64_t heads, int64_t hd, const int32_t* positions,
                            const float* inv_freq, float factor) {
  const int64_t t = blockIdx.x;
  const int32_t pos = positions[t];
  if (pos < 0) return;
  const int64_t half = hd / 2;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double angle = static_cast<double>(pos) * static_cast<double>(inv_freq[i]);
    double sn, cs;
    sincos(angle, &sn, &cs);
    const float c = __fmul_rn(static_cast<float>(cs), factor);
    const float s = __fmul_rn(static_cast<float>(sn), factor);
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * hd;
      const float a = v[i], b = v[i + half];
      v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
      v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    }
  }
}

__global__ void swiglu_kernel(const float* gate_up, int64_t n, int64_t ffn, float* out) {
  const int64_t total = n * ffn;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / ffn, j = e - i * ffn;
    const float g = gate_up[i * 2 * ffn + j], u = gate_up[i * 2 * ffn + ffn + j];
    out[e] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t count) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[e] = __fadd_rn(x[e], y[e]);
}

__global__ void gather_rows_kernel(const float* src, int64_t d, const int32_t* rows, float* dst) {
  const int64_t i = blockIdx.x;
  const int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (j < d) dst[i * d + j] = src[static_cast<int64_t>(rows[i]) * d + j];
}

template <class T>
__global__ void convert_kernel(const float* x, int64_t count, T* out) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = from_f32<T>(x[e]);
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int64_t m) {
  const int64_t total = n * m;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[e] = __fadd_rn(y[e], bias[e % m]);
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <class T>
__global__ void fill_random_kernel(T* data, int64_t count, float mean, float halfwidth,
                                   uint64_t seed) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t bits = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(e)));
    const float u = static_cast<float>(bits >> 40) * 0x1.0p-24f;  // [0, 1)
    data[e] = from_f32<T>(mean + halfwidth * (2.0f * u - 1.0f));
  }
}

unsigned row_blocks(int64_t d) { return static_cast<unsigned>((d + kThreads - 1) / kThreads); }

}  // namespace

cudaError_t embedding(const void* table, Elem dt, int64_t d, const int32_t* ids, int64_t n,
                      float* out, cudaStream_t s) {
  if (n == 0 || d == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(n), row_blocks(d));
  switch (dt) {
    case Elem::kBF16:
      embedding_kernel<<<grid, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(table), d, ids,
                                                 out);
      break;
    case Elem::kF16:
      embedding_kernel<<<grid, kThreads, 0, s>>>(static_cast<const __half*>(table), d, ids, out);
      break;
    default:
      embedding_kernel<<<grid, kThreads, 0, s>>>(static_cast<const float*>(table), d, ids, out);
      break;
  }
  return cudaGetLastError();
}

cudaError_t rms_norm(const float* x, const float* w, float eps, int64_t n, int64_t d, float* out,
                     cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  rms_norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(x, w, eps, d, out);
  return cudaGetLastError();
}

cudaError_t add_rms_norm(float* residual, const float* x, const float* w, float eps, int64_t n,
                         int64_t d, float* out, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  add_rms_norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(residual, x, w, eps, d, out);
  return cudaGetLastError();
}

cudaError_t rope(float* x, int64_t n, int64_t heads, int64_t hd, const int32_t* positions,
                 const float* inv_freq, float attention_factor, cudaStream_t s) {
  if (n == 0 || hd < 2) return cudaSuccess;
  const int threads = hd / 2 >= 128 ? 128 : 64;
  rope_kernel<<<static_cast<unsigned>(n), threads, 0, s>>>(x, heads, hd, positions, inv_freq,
                                                           attention_factor);
  return cudaGetLastError();
}

cudaError_t swiglu(const float* gate_up, int64_t n, int64_t ffn, float* out, cudaStream_t s) {
  if (n * ffn == 0) return cudaSuccess;
  swiglu_kernel<<<grid_for(n * ffn, kThreads), kThreads, 0, s>>>(gate_up, n, ffn, out);
  return cudaGetLastError();
}

cudaError_t add(float* x, const float* y, int64_t count, cudaStream_t s) {
  if (count == 0) return cudaSuccess;
  add_kernel<<<grid_for(count, kThreads), kThreads, 0, s>>>(x, y, count);
  return cudaGetLastError();
}

cudaError_t gather_rows(const float* src, int64_t d, const int32_t* rows, int64_t n, float* dst,
                        cudaStream_t s) {
  if (n == 0 || d == 0) return cudaSuccess;
  gather_rows_kernel<<<dim3(static_cast<unsigned>(n), row_blocks(d)), kThreads, 0, s>>>(src, d,
                                                                                        rows, dst);
  return cudaGetLastError();
}

cudaError_t convert_f32(const float* x, int64_t count, Elem to, void* out, cudaStream_t s) {
  if (count == 0) return cudaSuccess;
  const unsigned grid = grid_for(count, kThreads);
  if (to == Elem::kBF16) {
    convert_kernel<<<grid, kThreads, 0, s>>>(x, count, static_cast<__nv_bfloat16*>(out));
  } else if (to == Elem::kF16) {
    convert_kernel<<<grid, kThreads, 0, s>>>(x, count, static_cast<__half*>(out));
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t add_bias(float* y, const float* bias, int64_t n, int64_t m, cudaStream_t s) {
  if (n * m == 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(n * m, kThreads), kThreads, 0, s>>>(y, bias, n, m);
  return cudaGetLastError();
}

cudaError_t fill_random(void* data, Elem dt, int64_t count, float mean, float halfwidth,
                        uint64_t seed, cudaStream_t s) {
  if (count == 0) return cudaSuccess;
  const unsigned grid = grid_for(count, kThreads);
  switch (dt) {
    case Elem::kBF16:
      fill_random_kernel<<<grid, kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(data), count, mean,
                                                   halfwidth, seed);
      break;
    case Elem::kF16:
      fill_random_kernel<<<grid, kThreads, 0, s>>>(static_cast<__half*>(data), count, mean,
                                                   halfwidth, seed);
      break;
    default:
      fill_random_kernel<<<grid, kThreads, 0, s>>>(static_cast<float*>(data), count, mean,
                                                   halfwidth, seed);
      break;
  }
  return cudaGetLastError();
}

}  // namespace ponder::worker::cuda
