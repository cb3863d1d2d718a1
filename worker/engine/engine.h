// Engine: the replica's serving loop — continuous batching over a paged KV cache with prefix
// sharing, n-way forks, thinking budgets, stop conditions, prefill-only scoring and per-request
// accounting — on top of a StepExecutor (this process, or tp × pp MPI ranks). Executor-style
// API: enqueue → id, outputs streamed to a callback, cancel, stats.
//
// Threading: enqueue(), cancel() and stats() may be called from any thread; step() and run()
// belong to one engine thread, which is also the thread that calls the output callbacks.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "worker/engine/request.h"
#include "worker/engine/scheduler.h"
#include "worker/engine/step_executor.h"

namespace ponder::worker {

struct EngineOptions {
  int32_t token_budget = 512;   // tokens per step (decode tokens + prefill chunks)
  int32_t max_running = 256;    // sequences running at once
  int32_t max_n = 64;           // largest n a request may ask for
  std::vector<int32_t> eos_token_ids;  // empty: the model's config.json eos_token_id
  std::vector<int32_t> think_end;      // the model's end-of-thinking delimiter, e.g. "</think>"
  // Its start delimiter, e.g. "<think>": a sample whose output opens with it is thinking from
  // there (Qwen3 writes it itself; R1's template writes it into the prompt), so its thinking
  // tokens are counted and its budgets apply.
  std::vector<int32_t> think_start;
  std::vector<int32_t> wait_tokens;    // what extend_thinking inserts, e.g. "\nWait"
  // Bytes of a token's text, for stop strings; requests with stop strings need it.
  std::function<std::string(int32_t)> token_bytes;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t waiting = 0;
  int64_t running = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_free = 0;
  int64_t prefix_cache_queries = 0;  // full prompt blocks looked up
  int64_t prefix_cache_hits = 0;
  int64_t preemptions = 0;
  int64_t tokens_processed = 0;      // through the forward pass
  // Sequences whose prompt began running through the forward pass: one per request (its n-way
  // fork children take the parent's blocks and are not prefills), and once more each time a
  // preempted sequence is recomputed (or a sample forked off a waiting one computes its own).
  int64_t prefills = 0;
  // Prompt tokens run through the forward pass (prefix-cache hits and a fork's shared prompt
  // excluded; recomputation after a preemption included). Score tokens are not prompt tokens.
  int64_t prompt_tokens_computed = 0;
  int64_t tokens_generated = 0;
  int64_t last_step_tokens = 0;      // batch size of the latest step, in tokens
  int64_t last_step_sequences = 0;
};

class Engine {
 public:
  using OutputFn = std::function<void(const EngineOutput&)>;

  Engine(StepExecutor& executor, EngineOptions options);
  ~Engine();

  // Validates the request (kInvalidArgument naming the field) and queues it.
  Expected<int64_t> enqueue(EngineRequest request, OutputFn on_output);
  // Ends the request with finish_reason "cancelled"; its blocks are freed at the start of the
  // next step. Unknown or finished ids are ignored.
  void cancel(int64_t request_id);
  // Cancels every request queued or running (shutdown).
  void cancel_all();
  EngineStats stats() const;

  // Beam-style control, from the engine thread between step() calls (e.g. an output callback's
  // caller). fork() splits running sample `index` of a request into `count` more samples that
  // continue from its tokens so far, sharing its KV blocks (the partial last block is copied on
  // write); each draws with seed + its new index, and its outputs start after the fork point.
  // Returns the new indexes. prune() ends one sample ("pruned") and frees its blocks at once.
  Expected<std::vector<int32_t>> fork(int64_t request_id, int32_t index, int32_t count);
  Status prune(int64_t request_id, int32_t index);

  // Runs one step: admits, schedules, executes, emits outputs. Returns false when there was
  // nothing to do. An executor error fails every live request with finish_reason "error" and is
  // returned.
  Expected<bool> step();
  // Steps until `stop` is set, sleeping while idle.
  Status run(const std::atomic<bool>& stop);
  bool idle() const;

 private:
  struct Request;
  struct Seq;

  Status validate(const EngineRequest& r) const;
  void drain_inbox();
  void lookup_prefix(Seq& s);
  void preempt(Seq& s);
  void fork(Seq& parent, std::vector<ForkedSeq>* forks);
  Expected<Seq*> find_live(int64_t request_id, int32_t index);
  void on_token(Seq& s, int32_t token, float logprob, std::span<const TokenLogprob> top);
  void check_stop(Seq& s);
  void finish(Seq& s, const std::string& reason);
  void emit(Seq& s);
  void register_full_blocks(Seq& s);
  std::vector<int32_t> suppressed(const Seq& s) const;
  // The constraint's bans for `s` this step: every token that leaves its shape and end of
  // sequence until it is complete; while thinking, end of sequence only.
  void constrain(const Seq& s, std::vector<int32_t>* banned) const;
  const std::string& bytes_of(int32_t token) const;  // options_.token_bytes, cached
  void fail_all(const Status& status);
  void retire();  // erases requests whose sequences all finished
  void publish_stats();  // the pool and queue numbers of stats()
  double token_flops(int64_t position, bool logits) const;
  bool scored_row(const Seq& s, int64_t position) const;  // logits computed for a scored token
  // Adds positions [s.nominal_done, end) to s.usage.nominal_flops as a standalone run computes
  // them: logits at end − 1 when a token is drawn there (`draws`), and at scored rows.
  void count_nominal(Seq& s, int32_t end, bool draws);

  StepExecutor& executor_;
  EngineOptions options_;
  KvCache& cache_;
  BlockPool& pool_;

  mutable std::mutex inbox_mu_;
  std::vector<std::unique_ptr<Request>> inbox_;
  std::vector<int64_t> cancels_;
  bool cancel_all_ = false;
  std::atomic<int64_t> next_request_id_{1};
  std::atomic<bool> has_work_{false};

  std::map<int64_t, std::unique_ptr<Request>> requests_;
  std::list<Seq*> waiting_;   // queue order; preempted sequences go back to the front
  std::list<Seq*> running_;   // arrival order, oldest first
  int64_t next_seq_id_ = 1;
  int64_t next_arrival_ = 0;
  std::vector<int64_t> finished_seqs_;   // samplers to drop with the next plan
  std::vector<int64_t> retired_;         // requests to erase at the end of the step
  std::vector<BlockCopy> pending_copies_;
  EngineStats stats_;
  mutable std::vector<std::string> token_bytes_;  // bytes_of's cache, the whole vocabulary
  mutable std::mutex stats_mu_;
};

}  // namespace ponder::worker
