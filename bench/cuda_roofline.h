// Physical-limit probes on the GPU, measured in the same run as the CUDA benchmark: device memory
// bandwidth (a device-to-device copy and a read-only streaming kernel) and the bf16 matmul peak
// of cuBLASLt in the configuration the CUDA backend uses (bf16 inputs, f32 accumulate and out).
#pragma once

#include <cstddef>

#include "common/status.h"

namespace ponder::bench {

struct GpuLimits {
  double copy_bytes_per_s = 0;  // cudaMemcpy device→device, bytes read + written per second
  double read_bytes_per_s = 0;  // a streaming read kernel: bytes read per second
  double bf16_gemm_flops = 0;   // cuBLASLt bf16 GEMM (f32 accumulate and output), FLOP/s
  int gemm_size = 0;            // m = n = k of that GEMM
};

// Best of `repeats` timed runs after a warm-up, on a buffer of `bytes` (and a gemm_size³ GEMM),
// on the current device and `stream` (a cudaStream_t).
Expected<GpuLimits> measure_gpu_limits(void* stream, size_t bytes = size_t{2} << 30,
                                       int gemm_size = 8192, int repeats = 10);

}  // namespace ponder::bench
