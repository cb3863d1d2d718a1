// CudaMemory: the CUDA backend's MemorySpace — cudaMalloc'd, zero-filled buffers and copies on the
// backend's stream. Every device allocation in the process (through any CudaMemory) advances one
// epoch, which recorded CUDA graphs compare against: a buffer they captured may have been freed
// and replaced, whichever backend did it. Not thread-safe: the engine thread owns it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "worker/memory_space.h"

namespace ponder::worker::cuda {

class CudaMemory final : public MemorySpace {
 public:
  CudaMemory(int device, cudaStream_t stream) : device_(device), stream_(stream) {}

  Device device() const override { return Device::kCuda; }
  Expected<Buffer> allocate(size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
               size_t rows) override;

  static uint64_t epoch();
  static void advance_epoch();
  // Set while a step is being recorded into a graph: allocations and host copies then are bugs.
  void set_recording(bool recording) { recording_ = recording; }

 private:
  int device_;
  cudaStream_t stream_;
  bool recording_ = false;
};

// Whether `p` is host memory (pageable or pinned) rather than device memory.
bool is_host_pointer(const void* p);

}  // namespace ponder::worker::cuda
