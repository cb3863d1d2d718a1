// Tensor view helpers.
#include "worker/tensor.h"

namespace ponder::worker {

std::string_view device_name(Device device) { return device == Device::kCuda ? "cuda" : "host"; }

Tensor Tensor::view(void* data, DType dtype, std::initializer_list<int64_t> dims, Device device) {
  Tensor t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  for (int64_t d : dims) t.shape[t.ndim++] = d;
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace ponder::worker
