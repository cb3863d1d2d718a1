// PlanRunner: executes StepPlans on one rank — block copies, the forward pass of each
// micro-batch, and on the sampling rank the per-sequence samplers, forks and prefill-only scores.
// Shared by the single-process executor and every rank of a replica. Not thread-safe.
#pragma once

#include <map>

#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/decoder_model.h"
#include "worker/sampler.h"
#include "worker/step_plan.h"

namespace ponder::worker {

class PlanRunner {
 public:
  // `samples`: this rank holds the samplers (the last stage's tp rank 0).
  PlanRunner(DecoderModel& model, Backend& backend, KvCache& cache, ShardComms comms, bool samples)
      : model_(model), backend_(backend), cache_(cache), comms_(comms), samples_(samples) {}

  // Results are filled on the sampling rank only.
  Expected<StepResult> run(const StepPlan& plan);

  // On the sampling rank: the logits at the end of each sequence's first sampled step, by
  // sequence id, when `capture_first_logits` is set (parity tests; the first capture of an id
  // stays).
  bool capture_first_logits = false;
  const std::map<int64_t, std::vector<float>>& first_logits() const { return first_logits_; }

 private:
  DecoderModel& model_;
  Backend& backend_;
  KvCache& cache_;
  ShardComms comms_;
  bool samples_;
  std::map<int64_t, Sampler> samplers_;
  std::map<int64_t, std::vector<float>> first_logits_;
  std::vector<float> logits_;
};

}  // namespace ponder::worker
