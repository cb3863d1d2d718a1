// Tensor: a typed, shaped view of memory owned elsewhere (a weight arena, an activation buffer),
// on the host or on a GPU (`device`; a backend's ops take tensors on its own device).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "worker/dtype.h"

namespace ponder::worker {

inline constexpr int kMaxDims = 4;

// Where a tensor's bytes are: host memory, or the memory of the CUDA device the process uses.
enum class Device : uint8_t { kHost, kCuda };
std::string_view device_name(Device device);  // "host", "cuda"

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};  // row-major; shape[ndim-1] is contiguous
  Device device = Device::kHost;
  // An int8 weight matrix (dtype kI8) is quantized per row: row r is scale[r] · data[r, :]
  // (`rows()` f32 values, beside the data in the same memory). Null for every other tensor.
  const float* scale = nullptr;

  static Tensor view(void* data, DType dtype, std::initializer_list<int64_t> dims,
                     Device device = Device::kHost);

  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t rows() const { return ndim == 0 ? 1 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  bool empty() const { return data == nullptr; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::string shape_string() const;  // "[4096, 128]"
};

}  // namespace ponder::worker
