// One batched forward step over sequences' uncached tokens.
#include "worker/batch_runner.h"

#include "common/check.h"

namespace ponder::worker {

Status BatchRunner::step(std::span<SequenceState* const> seqs, std::vector<float>& logits) {
  const int64_t max_pos = model_.config().max_position_embeddings;
  for (SequenceState* s : seqs) {
    if (s->tokens.empty())
      return error(StatusCode::kInvalidArgument, "a sequence needs at least one token");
    if (static_cast<int64_t>(s->tokens.size()) > max_pos)
      return error(StatusCode::kInvalidArgument,
                   "sequence of %zu tokens exceeds the model's context of %lld", s->tokens.size(),
                   (long long)max_pos);
    for (int32_t t : s->tokens) {
      if (t < 0 || t >= model_.config().vocab_size)
        return error(StatusCode::kInvalidArgument, "token id %d is outside the vocabulary [0, %lld)",
                     t, (long long)model_.config().vocab_size);
    }
  }
  // Reserve blocks for all sequences first so that a failure leaves every table as it was.
  std::vector<size_t> before;
  for (SequenceState* s : seqs) before.push_back(s->blocks.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    Status st = cache_.reserve(seqs[i]->blocks, static_cast<int64_t>(seqs[i]->tokens.size()));
    if (!st.ok()) {
      for (size_t j = 0; j <= i; ++j) {
        std::vector<int32_t> extra(seqs[j]->blocks.begin() + before[j], seqs[j]->blocks.end());
        seqs[j]->blocks.resize(before[j]);
        cache_.release(extra);
      }
      return st;
    }
  }
  tokens_.clear();
  logit_rows_.clear();
  batch_.seqs.clear();
  batch_.positions.clear();
  for (SequenceState* s : seqs) {
    PONDER_CHECK(s->n_cached < static_cast<int32_t>(s->tokens.size()),
                 "sequence has no uncached token");
    SeqSlice slice;
    slice.token_begin = static_cast<int32_t>(tokens_.size());
    slice.start_pos = s->n_cached;
    slice.n_tokens = static_cast<int32_t>(s->tokens.size()) - s->n_cached;
    slice.block_table = s->blocks;
    for (int32_t i = 0; i < slice.n_tokens; ++i) {
      tokens_.push_back(s->tokens[s->n_cached + i]);
      batch_.positions.push_back(s->n_cached + i);
    }
    logit_rows_.push_back(static_cast<int32_t>(tokens_.size()) - 1);
    batch_.seqs.push_back(slice);
  }
  logits.resize(seqs.size() * model_.config().vocab_size);
  PONDER_RETURN_IF_ERROR(model_.forward(backend_, cache_, tokens_, batch_, logit_rows_, logits.data()));
  for (SequenceState* s : seqs) s->n_cached = static_cast<int32_t>(s->tokens.size());
  return {};
}

}  // namespace ponder::worker
