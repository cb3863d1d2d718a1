// Running a StepPlan's micro-batches, then sampling and scoring from their logits.
#include "worker/engine/plan_runner.h"

#include "common/check.h"

namespace ponder::worker {

Expected<StepResult> PlanRunner::run(const StepPlan& plan) {
  StepResult result;
  const int64_t vocab = model_.config().vocab_size;
  for (const BlockCopy& c : plan.block_copies) cache_.copy_block(c.src, c.dst, c.slots);
  for (int64_t id : plan.finished) samplers_.erase(id);
  for (const auto& mb : plan.micro_batches) {
    std::vector<int32_t> tokens, rows;
    std::vector<int32_t> first_row(mb.size());  // row of each sequence's first token
    BatchLayout batch;
    for (size_t k = 0; k < mb.size(); ++k) {
      const PlannedSeq& s = mb[k];
      PONDER_CHECK(!s.tokens.empty(), "planned sequence %lld has no tokens", (long long)s.seq_id);
      const int32_t begin = static_cast<int32_t>(tokens.size());
      batch.seqs.push_back({.token_begin = begin,
                            .n_tokens = static_cast<int32_t>(s.tokens.size()),
                            .start_pos = s.start_pos,
                            .block_table = s.block_table});
      for (size_t i = 0; i < s.tokens.size(); ++i) {
        tokens.push_back(s.tokens[i]);
        batch.positions.push_back(s.start_pos + static_cast<int32_t>(i));
      }
      first_row[k] = static_cast<int32_t>(rows.size());
      if (s.score_from >= 1)
        for (int32_t i = s.score_from; i < static_cast<int32_t>(s.tokens.size()); ++i)
          rows.push_back(begin + i - 1);
      if (s.sample) rows.push_back(begin + static_cast<int32_t>(s.tokens.size()) - 1);
    }
    if (rows.empty()) rows.push_back(0);  // the forward pass always yields at least one row
    logits_.resize(rows.size() * vocab);
    PONDER_RETURN_IF_ERROR(
        model_.forward(backend_, cache_, tokens, batch, rows, logits_.data(), comms_));
    if (!samples_) continue;
    for (size_t k = 0; k < mb.size(); ++k) {
      const PlannedSeq& s = mb[k];
      int32_t row = first_row[k];
      if (s.score_from >= 1) {
        for (int32_t i = s.score_from; i < static_cast<int32_t>(s.tokens.size()); ++i, ++row) {
          std::span<const float> r(logits_.data() + row * vocab, vocab);
          result.scores.push_back({s.seq_id, s.start_pos + i, r[s.tokens[i]] - log_sum_exp(r)});
        }
      }
      std::vector<int32_t> prompt;
      if (s.first || !s.forks.empty()) {
        prompt = s.history;
        prompt.insert(prompt.end(), s.tokens.begin(), s.tokens.end());
      }
      if (s.first) {
        samplers_.insert_or_assign(s.seq_id, Sampler(s.sampling));
        samplers_.at(s.seq_id).set_prompt(prompt);
      }
      if (!s.sample) continue;
      std::span<float> r(logits_.data() + row * vocab, vocab);
      if (capture_first_logits && s.first) first_logits_.try_emplace(s.seq_id, r.begin(), r.end());
      auto draw = [&](int64_t seq_id, Sampler& sampler) {
        SampleResult res = sampler.sample(r, s.suppress);
        sampler.accept(res.token);
        result.sampled.push_back({.seq_id = seq_id,
                                  .token = res.token,
                                  .logprob = res.logprob,
                                  .n_top = static_cast<int32_t>(res.top.size())});
        result.top.insert(result.top.end(), res.top.begin(), res.top.end());
      };
      auto it = samplers_.find(s.seq_id);
      PONDER_CHECK(it != samplers_.end(), "no sampler for sequence %lld", (long long)s.seq_id);
      draw(s.seq_id, it->second);
      for (const ForkedSeq& f : s.forks) {
        Sampler& child = samplers_.insert_or_assign(f.seq_id, Sampler(f.sampling)).first->second;
        child.set_prompt(prompt);
        draw(f.seq_id, child);
      }
    }
  }
  return result;
}

}  // namespace ponder::worker
