// Device allocations and stream-ordered copies for the CUDA backend.
#include "worker/backend/cuda/cuda_memory.h"

#include <atomic>

#include "worker/backend/cuda/cuda_check.h"

namespace ponder::worker::cuda {

namespace {
std::atomic<uint64_t> g_epoch{0};
}  // namespace

uint64_t CudaMemory::epoch() { return g_epoch.load(std::memory_order_relaxed); }
void CudaMemory::advance_epoch() { g_epoch.fetch_add(1, std::memory_order_relaxed); }

bool is_host_pointer(const void* p) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();  // older runtimes reject unregistered host memory
    return true;
  }
  return attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged;
}

Expected<Buffer> CudaMemory::allocate(size_t bytes) {
  PONDER_CHECK(!recording_, "device allocation of %zu bytes while recording a CUDA graph", bytes);
  CUDA_CHECK(cudaSetDevice(device_));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes > 0 ? bytes : 1);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    (void)cudaMemGetInfo(&free_bytes, &total);
    return error(StatusCode::kResourceExhausted,
                 "cudaMalloc of %zu bytes on device %d failed: %s (%zu of %zu bytes free)", bytes,
                 device_, cudaGetErrorString(err), free_bytes, total);
  }
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes > 0 ? bytes : 1, stream_));
  advance_epoch();
  return Buffer(p, bytes, Device::kCuda, [](void* data) { (void)cudaFree(data); });
}

void CudaMemory::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const bool host = is_host_pointer(dst) || is_host_pointer(src);
  PONDER_CHECK(!(recording_ && host), "host copy while recording a CUDA graph");
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_));
  if (host) CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaMemory::copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
                         size_t row_bytes, size_t rows) {
  if (row_bytes == 0 || rows == 0) return;
  PONDER_CHECK(!recording_, "KV block copy while recording a CUDA graph");
  CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows,
                               cudaMemcpyDeviceToDevice, stream_));
}

}  // namespace ponder::worker::cuda
