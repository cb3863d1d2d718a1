// GPU bandwidth and bf16 GEMM probes (cuda_roofline.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <memory>

#include "bench/cuda_roofline.h"
#include "worker/backend/cuda/cuda_check.h"
#include "worker/backend/cuda/kernels.h"
#include "worker/backend/cuda/matmul.h"

namespace ponder::bench {
namespace {

// Reads 16 bytes per thread per step and folds them into one word per block (written only when
// impossible, so the loads cannot be dropped).
__global__ void read_kernel(const uint4* data, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

struct DeviceBuffer {
  void* p = nullptr;
  ~DeviceBuffer() {
    if (p != nullptr) cudaFree(p);
  }
};

// Seconds of the fastest of `repeats` runs of `run` (enqueued on `s`) after one warm-up.
template <class F>
Expected<double> best_seconds(cudaStream_t s, int repeats, F run) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  run();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    run();
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, static_cast<double>(ms) * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaGetLastError(), "roofline probe"));
  return best;
}

}  // namespace

Expected<GpuLimits> measure_gpu_limits(void* stream_ptr, size_t bytes, int gemm_size, int repeats) {
  auto s = static_cast<cudaStream_t>(stream_ptr);
  GpuLimits limits;
  DeviceBuffer src, dst, sink;
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaMalloc(&src.p, bytes), "cudaMalloc"));
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaMalloc(&dst.p, bytes), "cudaMalloc"));
  CUDA_CHECK(cudaMemsetAsync(src.p, 1, bytes, s));
  PONDER_ASSIGN_OR_RETURN(
      double copy_s, best_seconds(s, repeats, [&] {
        CUDA_CHECK(cudaMemcpyAsync(dst.p, src.p, bytes, cudaMemcpyDeviceToDevice, s));
      }));
  limits.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / copy_s;

  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const unsigned blocks = static_cast<unsigned>(sms) * 8;
  PONDER_RETURN_IF_ERROR(
      worker::cuda::cuda_status(cudaMalloc(&sink.p, blocks * sizeof(uint32_t)), "cudaMalloc"));
  const size_t n16 = bytes / 16;
  PONDER_ASSIGN_OR_RETURN(double read_s, best_seconds(s, repeats, [&] {
                            read_kernel<<<blocks, 512, 0, s>>>(static_cast<const uint4*>(src.p),
                                                               n16, static_cast<uint32_t*>(sink.p));
                          }));
  limits.read_bytes_per_s = static_cast<double>(n16 * 16) / read_s;

  // bf16 GEMM through the backend's own cuBLASLt wrapper: A, B bf16 (src reused), C f32.
  const int64_t g = gemm_size;
  const size_t ab_bytes = static_cast<size_t>(g * g) * 2, c_bytes = static_cast<size_t>(g * g) * 4;
  DeviceBuffer a, b, c;
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaMalloc(&a.p, ab_bytes), "cudaMalloc"));
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaMalloc(&b.p, ab_bytes), "cudaMalloc"));
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(cudaMalloc(&c.p, c_bytes), "cudaMalloc"));
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(
      worker::cuda::fill_random(a.p, worker::cuda::Elem::kBF16, g * g, 0.0f, 1.0f, 1, s), "fill"));
  PONDER_RETURN_IF_ERROR(worker::cuda::cuda_status(
      worker::cuda::fill_random(b.p, worker::cuda::Elem::kBF16, g * g, 0.0f, 1.0f, 2, s), "fill"));
  PONDER_ASSIGN_OR_RETURN(auto gemm, worker::cuda::Matmul::create());
  Status gemm_status;
  PONDER_ASSIGN_OR_RETURN(double gemm_s, best_seconds(s, repeats, [&] {
                            Status st = gemm->run(a.p, b.p, nullptr, static_cast<float*>(c.p), g, g,
                                                  g, worker::cuda::Elem::kBF16, s);
                            if (!st.ok() && gemm_status.ok()) gemm_status = st;
                          }));
  PONDER_RETURN_IF_ERROR(gemm_status);
  limits.bf16_gemm_flops = 2.0 * static_cast<double>(g) * g * g / gemm_s;
  limits.gemm_size = gemm_size;
  CUDA_CHECK(cudaStreamSynchronize(s));
  return limits;
}

}  // namespace ponder::bench
