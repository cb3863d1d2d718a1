// Tensor: a typed, shaped view of memory owned elsewhere (a weight arena, an activation buffer).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "worker/dtype.h"

namespace ponder::worker {

inline constexpr int kMaxDims = 4;

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};  // row-major; shape[ndim-1] is contiguous

  static Tensor view(void* data, DType dtype, std::initializer_list<int64_t> dims);

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
