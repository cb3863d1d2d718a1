// Pinned upload slots for the CUDA backend.
#include "worker/backend/cuda/staging.h"

#include <algorithm>
#include <cstring>

#include "worker/backend/cuda/cuda_check.h"

namespace ponder::worker::cuda {

namespace {
constexpr size_t kAlign = 16;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Staging::~Staging() {
  release_retired();
  free_pair(current_);
}

void Staging::free_pair(Pair& p) {
  if (p.host != nullptr) (void)cudaFreeHost(p.host);
  if (p.device != nullptr) (void)cudaFree(p.device);
  p = {};
}

void Staging::release_retired() {
  for (Pair& p : retired_) free_pair(p);
  retired_.clear();
}

Expected<bool> Staging::reserve(size_t bytes) {
  if (bytes <= capacity_) return false;
  const size_t cap = round_up(std::max(bytes, capacity_ + capacity_ / 2));
  Pair next;
  void* host = nullptr;
  void* device = nullptr;
  PONDER_RETURN_IF_ERROR(cuda_status(cudaMallocHost(&host, cap), "cudaMallocHost (staging)"));
  next.host = static_cast<char*>(host);
  if (cudaError_t err = cudaMalloc(&device, cap); err != cudaSuccess) {
    (void)cudaFreeHost(next.host);
    return tl::unexpected(cuda_status(err, "cudaMalloc (staging)"));
  }
  next.device = static_cast<char*>(device);
  // Slots already handed out this step keep pointing into the old pair, which is retired (not
  // freed) until the stream is done with it; new slots continue at the same offset.
  if (current_.host != nullptr) retired_.push_back(current_);
  current_ = next;
  capacity_ = cap;
  return true;
}

Expected<void*> Staging::put(const void* src, size_t bytes, cudaStream_t stream, bool upload) {
  const size_t at = used_;
  if (at + bytes > capacity_)
    return error(StatusCode::kInternal, "staging slot of %zu bytes at %zu exceeds %zu", bytes, at,
                 capacity_);
  if (bytes > 0) {
    std::memcpy(current_.host + at, src, bytes);
    if (upload)
      CUDA_CHECK(cudaMemcpyAsync(current_.device + at, current_.host + at, bytes,
                                 cudaMemcpyHostToDevice, stream));
  }
  used_ = round_up(at + bytes);
  return static_cast<void*>(current_.device + at);
}

}  // namespace ponder::worker::cuda
