// Staging: pinned host memory mirrored by device memory, for the small host arrays a step
// uploads (token ids, logit rows, prefill tiles, the packed batch). put() writes the host side
// and, unless the step is a replayed graph, enqueues the copy on the stream; slots are handed out
// in call order from reset(), so a replayed step's ops write the slots its recording's copy nodes
// read. Growing replaces both buffers; the old ones are kept until release_retired(), when the
// caller knows the stream no longer reads them. Not thread-safe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "common/status.h"

namespace ponder::worker::cuda {

class Staging {
 public:
  Staging() = default;
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // Makes room for `bytes` in total; returns whether the buffers were replaced.
  Expected<bool> reserve(size_t bytes);
  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  // Copies `bytes` from src into the next slot (16-byte aligned) and, when `upload`, enqueues its
  // copy to the device; returns the slot's device address. Fails only when the slot does not fit
  // (callers reserve first).
  Expected<void*> put(const void* src, size_t bytes, cudaStream_t stream, bool upload);
  void release_retired();

 private:
  struct Pair {
    char* host = nullptr;
    char* device = nullptr;
  };
  static void free_pair(Pair& p);
  Pair current_;
  size_t capacity_ = 0, used_ = 0;
  std::vector<Pair> retired_;
};

}  // namespace ponder::worker::cuda
