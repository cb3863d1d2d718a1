// How the CUDA backend ran its forward steps (tests and benchmarks read it).
#pragma once

#include <cstdint>

namespace ponder::worker::cuda {

struct GraphStats {
  int64_t eager_steps = 0;     // run op by op (graphs off, not replayable, or warming up a shape)
  int64_t recorded_steps = 0;  // captured into a CUDA graph, then launched
  int64_t replayed_steps = 0;  // launched from a recorded graph
};

}  // namespace ponder::worker::cuda
