// StepPlan: what every rank of a replica runs in one engine step. Only the leader decides; it
// broadcasts the plan and all ranks execute it in the same order. Encoded as a versioned,
// length-checked byte string (both ends are the same binary within a replica; a mismatched
// version is refused).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "worker/sampler.h"

namespace ponder::worker {

struct PlannedSeq {
  int64_t seq_id = 0;
  int32_t start_pos = 0;              // position of tokens[0]
  std::vector<int32_t> tokens;        // tokens to run this step (uncached)
  std::vector<int32_t> block_table;   // KV blocks covering [0, start_pos + tokens.size())
  bool first = false;                 // first step of this sequence: `sampling` is set and
                                      // `tokens` is the whole prompt
  SamplingParams sampling;
};

struct StepPlan {
  static constexpr uint32_t kVersion = 1;
  bool shutdown = false;
  std::vector<std::vector<PlannedSeq>> micro_batches;  // run in order; PP stages overlap them
  std::vector<int64_t> finished;                       // sequences whose samplers can go

  std::vector<uint8_t> encode() const;
  static Expected<StepPlan> decode(std::span<const uint8_t> bytes);
};

// What the sampling rank returns to the leader for each sequence of a plan, in plan order.
struct SampledToken {
  int64_t seq_id = 0;
  int32_t token = 0;
  float logprob = 0.0f;
};

}  // namespace ponder::worker
