// StepGraphs: CUDA graphs of whole decode steps, one per (key, padded batch size). A step shape
// runs eagerly the first time (sizing every scratch buffer and planning the matmuls), is recorded
// by stream capture the next time no device allocation happened since the end of that warm-up
// (the memory epoch), and is replayed from then on while the epoch stays the same: a recording
// holds raw pointers to every buffer it touched. Not thread-safe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "common/status.h"
#include "worker/backend/cuda/graph_stats.h"

namespace ponder::worker::cuda {

class StepGraphs {
 public:
  enum class Mode { kEager, kRecord, kReplay };
  struct Key {
    const void* a = nullptr;
    const void* b = nullptr;
    int32_t rows = 0;
    bool operator<(const Key& o) const { return std::tie(a, b, rows) < std::tie(o.a, o.b, o.rows); }
  };

  StepGraphs() = default;
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // What to do with a graph-eligible step of `key` at memory epoch `epoch`; kRecord starts the
  // capture on `stream`.
  Expected<Mode> begin(const Key& key, uint64_t epoch, cudaStream_t stream);
  // Ends the step begun in `mode`: a recording is closed, instantiated, kept and launched; a
  // replay is launched. Eager steps only count.
  Status end(Mode mode, const Key& key, uint64_t epoch, cudaStream_t stream);
  void count_eager() { ++stats_.eager_steps; }
  const GraphStats& stats() const { return stats_; }
  void clear();

 private:
  struct Entry {
    uint64_t epoch = 0;
    bool warmed = false;
    cudaGraphExec_t exec = nullptr;
  };
  std::map<Key, Entry> entries_;
  GraphStats stats_;
};

}  // namespace ponder::worker::cuda
