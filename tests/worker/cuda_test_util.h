// Helpers of the CUDA backend's tests: the skip when no GPU is visible, device copies of host
// arrays, NaN-poisoned outputs, and NMSE.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "worker/backend/cuda/cuda_backend.h"
#include "tests/worker/nmse.h"

// Skips the test, with the reason, where no CUDA device is visible (CI, this VM).
#define PONDER_SKIP_WITHOUT_GPU()                                                               \
  do {                                                                                          \
    if (::ponder::worker::cuda_device_count() == 0) {                                           \
      GTEST_SKIP() << "no CUDA device visible (" << ::ponder::worker::cuda_unavailable_reason() \
                   << "); gpu tests run on a GPU machine";                                      \
    }                                                                                           \
  } while (0)

namespace ponder::worker::testing {

inline std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// Device buffers owned by a test, released with it.
class DeviceArrays {
 public:
  explicit DeviceArrays(CudaBackend& backend) : backend_(backend) {}

  // A device tensor holding `bytes` of host data at byte `offset` of a fresh buffer (offsets
  // test unaligned operands).
  Tensor upload(const void* data, size_t bytes, DType dt, std::initializer_list<int64_t> dims,
                size_t offset = 0) {
    auto buf = backend_.memory().allocate(bytes + offset);
    EXPECT_TRUE(buf.has_value());
    char* at = buf->as<char>() + offset;
    backend_.memory().copy(at, data, bytes);
    owned_.push_back(std::move(*buf));
    return Tensor::view(at, dt, dims, Device::kCuda);
  }
  template <class T>
  Tensor upload(const std::vector<T>& v, DType dt, std::initializer_list<int64_t> dims,
                size_t offset = 0) {
    return upload(v.data(), v.size() * sizeof(T), dt, dims, offset);
  }
  // An f32 device tensor of NaNs: an element the op under test does not write stays NaN.
  Tensor poisoned(std::initializer_list<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> nan(n, std::numeric_limits<float>::quiet_NaN());
    return upload(nan, DType::kF32, dims);
  }
  std::vector<float> download(const Tensor& t) {
    std::vector<float> out(t.numel());
    backend_.memory().copy(out.data(), t.data, out.size() * sizeof(float));
    return out;
  }

 private:
  CudaBackend& backend_;
  std::vector<Buffer> owned_;
};

}  // namespace ponder::worker::testing
