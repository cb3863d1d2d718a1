// Scheduling decisions.
#include "worker/engine/scheduler.h"

#include <algorithm>

namespace ponder::worker {

int32_t blocks_for(int32_t n_tokens, int32_t block_size) {
  return (n_tokens + block_size - 1) / block_size;
}

ScheduleDecision schedule(const std::vector<SchedSeq>& running, const std::vector<SchedSeq>& waiting,
                          int32_t free_blocks, const SchedulerLimits& limits) {
  ScheduleDecision d;
  int32_t budget = limits.token_budget;
  // Candidates for preemption: the running list from the youngest end.
  std::vector<bool> gone(running.size(), false);
  size_t youngest = running.size();
  auto preempt_youngest = [&]() -> bool {
    while (youngest > 0) {
      --youngest;
      if (gone[youngest]) continue;
      gone[youngest] = true;
      d.preempted.push_back(running[youngest].id);
      // Give back what it held and anything scheduled for it this step.
      free_blocks += running[youngest].n_exclusive;
      for (auto it = d.runs.begin(); it != d.runs.end(); ++it) {
        if (it->id == running[youngest].id) {
          free_blocks += it->new_blocks;
          budget += it->n_tokens;
          d.runs.erase(it);
          break;
        }
      }
      return true;
    }
    return false;
  };

  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    if (gone[i]) continue;
    const SchedSeq& s = running[i];
    const int32_t remaining = s.n_tokens - s.n_computed;
    if (remaining <= 0) continue;
    if (s.unchunked && remaining > budget) continue;
    const int32_t n = std::min(remaining, budget);
    const int32_t need = std::max(0, blocks_for(s.n_computed + n, limits.block_size) - s.n_blocks);
    bool self_preempted = false;
    while (need > free_blocks) {
      if (!preempt_youngest()) break;
      if (gone[i]) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted || need > free_blocks) continue;
    free_blocks -= need;
    budget -= n;
    d.runs.push_back({s.id, n, need});
  }
  // No admissions in a step that had to preempt: memory is short.
  if (!d.preempted.empty()) return d;
  int32_t n_running = static_cast<int32_t>(running.size());
  for (const SchedSeq& s : waiting) {
    if (budget <= 0 || n_running >= limits.max_running) break;
    const int32_t remaining = s.n_tokens - s.n_computed;
    if (remaining <= 0) continue;
    if (s.unchunked && remaining > budget) break;
    const int32_t n = std::min(remaining, budget);
    const int32_t need = std::max(0, blocks_for(s.n_computed + n, limits.block_size) - s.n_blocks);
    if (need > free_blocks) break;  // first come, first served: nobody overtakes
    free_blocks -= need;
    budget -= n;
    ++n_running;
    d.admitted.push_back(s.id);
    d.runs.push_back({s.id, n, need});
  }
  return d;
}

std::vector<std::vector<ScheduledRun>> form_micro_batches(const std::vector<ScheduledRun>& runs,
                                                          int stages) {
  std::vector<std::vector<ScheduledRun>> out;
  if (runs.empty()) return out;
  const int n_mb = std::max(1, std::min<int>(stages, static_cast<int>(runs.size())));
  int64_t total = 0;
  for (const auto& r : runs) total += r.n_tokens;
  out.resize(n_mb);
  // Greedy by running token count: move to the next micro-batch when this one has its share.
  int64_t done = 0;
  size_t mb = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const size_t left_runs = runs.size() - i, left_mbs = n_mb - mb;
    if (mb + 1 < static_cast<size_t>(n_mb) && !out[mb].empty() &&
        (done >= total * static_cast<int64_t>(mb + 1) / n_mb || left_runs <= left_mbs - 1))
      ++mb;
    out[mb].push_back(runs[i]);
    done += runs[i].n_tokens;
  }
  out.erase(std::remove_if(out.begin(), out.end(), [](const auto& v) { return v.empty(); }), out.end());
  return out;
}

}  // namespace ponder::worker
