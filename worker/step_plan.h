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

// A sequence that starts from another's logits: n-way sampling forks after the shared prompt.
struct ForkedSeq {
  int64_t seq_id = 0;
  SamplingParams sampling;
};

struct PlannedSeq {
  int64_t seq_id = 0;
  int32_t start_pos = 0;              // position of tokens[0]
  std::vector<int32_t> tokens;        // tokens to run this step (uncached)
  std::vector<int32_t> block_table;   // KV blocks covering [0, start_pos + tokens.size())
  bool first = false;                 // the sampling rank creates this sequence's sampler now
  SamplingParams sampling;            // set when `first`
  std::vector<int32_t> history;       // when `first`: tokens before this step (for penalties)
  bool sample = true;                 // draw a token after the last one (false mid-prefill)
  std::vector<int32_t> suppress;      // tokens that cannot be drawn this step
  std::vector<ForkedSeq> forks;       // also draw a first token for each of these
  // Prefill-only scoring: the logprob of tokens[i] given everything before it, for
  // i in [score_from, tokens.size()) (row i − 1 of this step, so score_from >= 1).
  int32_t score_from = -1;
};

// Copy-on-write of a shared partial block: the first `slots` positions of `src` go to `dst`.
struct BlockCopy {
  int32_t src = 0;
  int32_t dst = 0;
  int32_t slots = 0;
};

struct StepPlan {
  static constexpr uint32_t kVersion = 1;
  bool shutdown = false;
  bool ping = false;  // no work: every rank joins a barrier (the leader's liveness check)
  std::vector<std::vector<PlannedSeq>> micro_batches;  // run in order; PP stages overlap them
  std::vector<int64_t> finished;                       // sequences whose samplers can go
  std::vector<BlockCopy> block_copies;                 // done on every rank before the forward

  std::vector<uint8_t> encode() const;
  static Expected<StepPlan> decode(std::span<const uint8_t> bytes);
};

// What the sampling rank returns to the leader for each sequence of a plan, in plan order.
struct SampledToken {
  int64_t seq_id = 0;
  int32_t token = 0;
  float logprob = 0.0f;
  int32_t n_top = 0;  // its top-logprob alternatives: the next n_top entries of StepResult::top
  int32_t reserved = 0;
};

// A prefill-only score: logprob of the token at `position` of sequence `seq_id`.
struct ScoredToken {
  int64_t seq_id = 0;
  int32_t position = 0;
  float logprob = 0.0f;
};

struct StepResult {
  std::vector<SampledToken> sampled;
  std::vector<ScoredToken> scores;
  std::vector<TokenLogprob> top;  // the sampled tokens' alternatives, in `sampled` order
};

}  // namespace ponder::worker
