// MemorySpace: where a backend's tensors live — host memory for the CPU backend, a GPU's memory
// for the CUDA backend — with allocation and copies ordered with that backend's work; Buffer:
// memory owned in one space. Weights, KV caches and activation buffers are allocated through the
// backend's space so that the forward pass itself never needs to know which device it runs on.
#pragma once

#include <cstddef>

#include "common/status.h"
#include "worker/tensor.h"

namespace ponder::worker {

// Memory owned on one device, released with the function it was allocated with (which needs no
// allocator object: a Buffer may outlive the backend that made it, not the process's device).
// Move-only.
class Buffer {
 public:
  using FreeFn = void (*)(void* data);
  Buffer() = default;
  Buffer(void* data, size_t size, Device device, FreeFn free)
      : data_(data), size_(size), device_(device), free_(free) {}
  ~Buffer() { reset(); }
  Buffer(Buffer&& other) noexcept { *this = static_cast<Buffer&&>(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }
  bool empty() const { return data_ == nullptr; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void reset();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
  Device device_ = Device::kHost;
  FreeFn free_ = nullptr;
};

class MemorySpace {
 public:
  virtual ~MemorySpace() = default;
  virtual Device device() const = 0;
  // Zero-filled, aligned to at least 256 bytes. kResourceExhausted when the space is full.
  virtual Expected<Buffer> allocate(size_t bytes) = 0;
  // Copies `bytes`; each side may be host memory or this space's memory. Ordered after the work
  // the backend issued before it; returns once a host `dst` holds the bytes and a host `src` may
  // be reused.
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  // `rows` rows of `row_bytes` bytes from rows `src_pitch` bytes apart to rows `dst_pitch` apart,
  // both in this space (block copies of a KV cache).
  virtual void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
                       size_t row_bytes, size_t rows) = 0;
};

// The process's host memory (the CPU backend's space): aligned_alloc, memcpy.
MemorySpace& host_memory();

}  // namespace ponder::worker
