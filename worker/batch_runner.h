// BatchRunner: runs one forward step over several sequences at once, each contributing the tokens
// it has not yet cached (a whole prompt on its first step, one token per decode step), and returns
// the logits of each sequence's last token. The building block of `ponder generate`, the benchmark
// and the tests; the replica engine's scheduler drives the same model call. Not thread-safe.
#pragma once

#include <span>
#include <vector>

#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/decoder_model.h"

namespace ponder::worker {

struct SequenceState {
  std::vector<int32_t> tokens;   // prompt + generated
  std::vector<int32_t> blocks;   // KV block table
  int32_t n_cached = 0;          // tokens whose K/V are in the cache
};

class BatchRunner {
 public:
  BatchRunner(DecoderModel& model, Backend& backend, KvCache& cache)
      : model_(model), backend_(backend), cache_(cache) {}

  // Forwards every sequence's uncached tokens in one batch; logits [seqs.size(), vocab].
  // kResourceExhausted (and nothing changed) when the KV cache cannot hold them.
  Status step(std::span<SequenceState* const> seqs, std::vector<float>& logits);
  void release(SequenceState& seq) { cache_.release(seq.blocks); seq.n_cached = 0; }

 private:
  DecoderModel& model_;
  Backend& backend_;
  KvCache& cache_;
  std::vector<int32_t> tokens_, logit_rows_;
  BatchLayout batch_;
};

}  // namespace ponder::worker
