// Buffer ownership and the host memory space.
#include "worker/memory_space.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ponder::worker {

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = other.device_;
    free_ = std::exchange(other.free_, nullptr);
  }
  return *this;
}

void Buffer::reset() {
  if (data_ != nullptr && free_ != nullptr) free_(data_);
  data_ = nullptr;
  size_ = 0;
  free_ = nullptr;
}

namespace {

class HostMemory final : public MemorySpace {
 public:
  Device device() const override { return Device::kHost; }

  Expected<Buffer> allocate(size_t bytes) override {
    constexpr size_t kAlign = 256;
    const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (p == nullptr)
      return error(StatusCode::kResourceExhausted, "host allocation of %zu bytes failed", bytes);
    std::memset(p, 0, rounded);
    return Buffer(p, bytes, Device::kHost, [](void* data) { std::free(data); });
  }

  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }

  void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
               size_t rows) override {
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(static_cast<char*>(dst) + r * dst_pitch,
                  static_cast<const char*>(src) + r * src_pitch, row_bytes);
  }
};

}  // namespace

MemorySpace& host_memory() {
  static HostMemory memory;
  return memory;
}

}  // namespace ponder::worker
