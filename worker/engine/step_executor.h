// StepExecutor: where the engine's StepPlans run. LocalExecutor runs them on this process;
// Replica (worker/replica.h) broadcasts them to tp × pp ranks. Either way the engine allocates KV
// blocks from cache() — the leader's pool, whose ids every rank uses.
#pragma once

#include "worker/engine/plan_runner.h"
#include "worker/kv_cache.h"
#include "worker/model/model_config.h"
#include "worker/step_plan.h"

namespace ponder::worker {

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual const ModelConfig& config() const = 0;
  virtual KvCache& cache() = 0;
  // Pipeline stages: the engine splits a step into up to this many micro-batches.
  virtual int stages() const = 0;
  virtual Expected<StepResult> step(const StepPlan& plan) = 0;
};

class LocalExecutor final : public StepExecutor {
 public:
  LocalExecutor(DecoderModel& model, Backend& backend, KvCache& cache)
      : model_(model), cache_(cache), runner_(model, backend, cache, ShardComms{}, true) {}
  const ModelConfig& config() const override { return model_.config(); }
  KvCache& cache() override { return cache_; }
  int stages() const override { return 1; }
  Expected<StepResult> step(const StepPlan& plan) override { return runner_.run(plan); }
  PlanRunner& runner() { return runner_; }

 private:
  DecoderModel& model_;
  KvCache& cache_;
  PlanRunner runner_;
};

}  // namespace ponder::worker
