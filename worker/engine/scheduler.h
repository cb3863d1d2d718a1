// Scheduler: the pure decisions of one engine step, on plain numbers (no model, no blocks), so
// each is tested with tables. Continuous batching: running sequences first (oldest first: one
// decode token each, or the next chunk of their prefill) under a per-step token budget; when KV
// blocks run out the youngest running sequence is preempted (its blocks freed, recomputed later);
// waiting sequences are admitted in order while budget, blocks and the running cap allow.
#pragma once

#include <cstdint>
#include <vector>

namespace ponder::worker {

struct SchedSeq {
  int64_t id = 0;
  int32_t n_tokens = 0;    // known tokens (prompt + generated + forced)
  int32_t n_computed = 0;  // tokens whose K/V are cached
  int32_t n_blocks = 0;    // blocks it holds now
  int32_t n_exclusive = 0; // of those, blocks nobody else references (freed if it is preempted)
  bool unchunked = false;  // must run all its remaining tokens in one step (prefill scoring)
};

struct ScheduledRun {
  int64_t id = 0;
  int32_t n_tokens = 0;  // tokens to run this step
  int32_t new_blocks = 0;
};

struct ScheduleDecision {
  std::vector<ScheduledRun> runs;  // running ones first, then admitted ones, in order
  std::vector<int64_t> preempted;  // running sequences to free and send back to waiting
  std::vector<int64_t> admitted;   // waiting sequences that start running
};

struct SchedulerLimits {
  int32_t block_size = 16;
  int32_t token_budget = 512;  // tokens per step, all sequences together
  int32_t max_running = 256;
};

int32_t blocks_for(int32_t n_tokens, int32_t block_size);

// `running` in arrival order (oldest first), `waiting` in queue order; `free_blocks` is what the
// pool can hand out now.
ScheduleDecision schedule(const std::vector<SchedSeq>& running, const std::vector<SchedSeq>& waiting,
                          int32_t free_blocks, const SchedulerLimits& limits);

// Splits runs into up to `stages` micro-batches of similar token counts, keeping their order, so
// pipeline stages overlap.
std::vector<std::vector<ScheduledRun>> form_micro_batches(const std::vector<ScheduledRun>& runs,
                                                          int stages);

}  // namespace ponder::worker
