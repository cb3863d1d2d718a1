// Where to sample when the lm_head is split over the vocabulary (TP): gather the logits and
// sample on one rank (what ponder does), or sample on the shards and combine small candidates.
// Run under MPI, one rank per TP shard:
//   scripts/mpirun.sh -np 2 build/release/bench/tp_sampling_bench [--vocab 151936] [--rows 64]
// Each rank holds a [rows, vocab/tp] f32 shard of random logits (fixed seed; peaked like a
// language model's: a few plausible tokens over a noise background). Timed per
// step of `rows` sequences, median of --iters:
//   gather   all-gather of the shards (rows × vocab/tp × 4 B per rank), the transpose into full
//            rows, then the sampling rank's Sampler on each row (greedy; and T 0.8, top-p 0.95);
//   shards   greedy: each rank's (max, index) per row, all-gathered (8 B per row per rank) and
//            reduced; sampled: each rank's top-64 candidates per row plus its row log-sum-exp
//            (the logprob's normalizer), all-gathered (64 × 8 + 4 B per row per rank), then
//            top-p and the draw over the merged candidates (exact whenever the nucleus lies in
//            the global top 64, as it does here).
// Prints one JSON object: per strategy, milliseconds per step and bytes per rank per step, plus
// the measured all-gather bandwidth of this machine's MPI for the gather's message size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collective/mpi_communicator.h"
#include "common/check.h"
#include "worker/sampler.h"

namespace ponder {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kCandidates = 64;

struct Candidate {
  float logit;
  int32_t token;
};

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Top-k of one row by logit (ties to the lower id), written to out in descending order: one pass
// with a k-entry min-heap (most logits fall below its root and cost one comparison).
void top_candidates(const float* row, int64_t n, int32_t first_id, int k, Candidate* out) {
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
  };
  std::vector<Candidate> heap;
  heap.reserve(k);
  for (int64_t i = 0; i < n; ++i) {
    const Candidate c{row[i], first_id + static_cast<int32_t>(i)};
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  std::copy(heap.begin(), heap.end(), out);
}

// log Σ exp(row[i] · scale)
float log_sum_exp(const float* row, int64_t n, float scale) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, row[i] * scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(row[i] * scale - m));
  return m + static_cast<float>(std::log(s));
}

Status run(int argc, char** argv) {
  int64_t vocab = 151936, rows = 64;
  int iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--vocab") vocab = std::atoll(argv[i + 1]);
    else if (a == "--rows") rows = std::atoll(argv[i + 1]);
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
    else return error(StatusCode::kInvalidArgument, "unknown option %s", a.c_str());
  }
  PONDER_ASSIGN_OR_RETURN(auto mpi, collective::MpiRuntime::init(&argc, &argv));
  PONDER_ASSIGN_OR_RETURN(auto world, collective::MpiCommunicator::world());
  const int tp = world->size(), rank = world->rank();
  if (vocab % tp != 0)
    return error(StatusCode::kInvalidArgument, "--vocab %lld is not a multiple of %d ranks",
                 (long long)vocab, tp);
  const int64_t local = vocab / tp;
  auto deadline = [] { return collective::deadline_in(std::chrono::seconds(60)); };

  // A language model's next-token distribution is peaked: per row, 8 plausible tokens (logits
  // N(14, 2), anywhere in the vocabulary) over a background of N(0, 2).
  std::vector<float> shard(rows * local);
  std::mt19937_64 gen(1234 + rank);
  std::normal_distribution<float> background(0.0f, 2.0f), plausible(14.0f, 2.0f);
  for (float& x : shard) x = background(gen);
  std::mt19937_64 shared(99);  // the same draw on every rank: which tokens are plausible
  std::uniform_int_distribution<int64_t> any_token(0, vocab - 1);
  for (int64_t row = 0; row < rows; ++row)
    for (int i = 0; i < 8; ++i) {
      const int64_t token = any_token(shared);
      const float logit = plausible(shared);
      if (token / local == rank) shard[row * local + token % local] = logit;
    }

  const worker::SamplingParams greedy{.temperature = 0.0f};
  const worker::SamplingParams nucleus{.temperature = 0.8f, .top_p = 0.95f, .seed = 7};
  nlohmann::json report = {{"vocab", vocab}, {"rows", rows}, {"tp", tp}, {"iters", iters}};

  // --- gather: all-gather, transpose, sample on rank 0 -------------------------------------
  std::vector<float> gathered(tp * rows * local), full(rows * vocab);
  std::vector<int32_t> greedy_gathered(rows, -1), greedy_shards(rows, -2);
  for (const auto& [name, params] : {std::pair{"greedy", greedy}, std::pair{"top_p", nucleus}}) {
    std::vector<double> total, comm;
    for (int it = 0; it < iters; ++it) {
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      auto t0 = Clock::now();
      PONDER_RETURN_IF_ERROR(world->all_gather(shard.data(), gathered.data(),
                                               shard.size() * sizeof(float), deadline()));
      auto t1 = Clock::now();
      if (rank == 0) {
        for (int r = 0; r < tp; ++r)
          for (int64_t row = 0; row < rows; ++row)
            std::memcpy(&full[row * vocab + r * local], &gathered[(r * rows + row) * local],
                        local * sizeof(float));
        for (int64_t row = 0; row < rows; ++row) {
          worker::Sampler s(params);
          const int32_t token = s.sample(std::span<float>(&full[row * vocab], vocab)).token;
          if (params.temperature == 0.0f) greedy_gathered[row] = token;
        }
      }
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      auto t2 = Clock::now();
      total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
      comm.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    const double bytes = static_cast<double>(shard.size() * sizeof(float));
    report["gather"][name] = {{"ms_per_step", median_ms(total)},
                              {"all_gather_ms", median_ms(comm)},
                              {"bytes_sent_per_rank", bytes},
                              {"all_gather_gb_per_s", bytes * tp / (median_ms(comm) * 1e6)}};
  }

  // --- shards: local candidates, small all-gather, combine on rank 0 -----------------------
  {
    std::vector<double> total;
    std::vector<Candidate> mine(rows), all(tp * rows);
    for (int it = 0; it < iters; ++it) {
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      auto t0 = Clock::now();
      for (int64_t row = 0; row < rows; ++row) {
        const float* x = &shard[row * local];
        int64_t best = std::max_element(x, x + local) - x;
        mine[row] = {x[best], static_cast<int32_t>(rank * local + best)};
      }
      PONDER_RETURN_IF_ERROR(world->all_gather(mine.data(), all.data(),
                                               mine.size() * sizeof(Candidate), deadline()));
      if (rank == 0) {
        for (int64_t row = 0; row < rows; ++row) {
          Candidate best = all[row];
          for (int r = 1; r < tp; ++r)
            if (all[r * rows + row].logit > best.logit) best = all[r * rows + row];
          greedy_shards[row] = best.token;
        }
      }
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      total.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    report["shards"]["greedy"] = {{"ms_per_step", median_ms(total)},
                                  {"bytes_sent_per_rank", rows * sizeof(Candidate)},
                                  {"same_tokens_as_gather", greedy_shards == greedy_gathered}};
  }
  {
    constexpr float kInvT = 1.0f / 0.8f;
    struct RowCandidates {
      float lse;    // of the raw logits: the chosen token's logprob
      float lse_t;  // of logits / T: the sampling distribution's normalizer
      Candidate top[kCandidates];
    };
    std::vector<double> total;
    std::vector<RowCandidates> mine(rows), all(tp * rows);
    std::vector<Candidate> merged(tp * kCandidates);
    worker::Rng rng(7);
    int outside = 0;
    double logprob_sum = 0;  // keeps the draw and its logprob from being optimized away
    for (int it = 0; it < iters; ++it) {
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      auto t0 = Clock::now();
      for (int64_t row = 0; row < rows; ++row) {
        const float* x = &shard[row * local];
        mine[row].lse = log_sum_exp(x, local, 1.0f);
        mine[row].lse_t = log_sum_exp(x, local, kInvT);
        top_candidates(x, local, static_cast<int32_t>(rank * local), kCandidates, mine[row].top);
      }
      PONDER_RETURN_IF_ERROR(world->all_gather(mine.data(), all.data(),
                                               mine.size() * sizeof(RowCandidates), deadline()));
      if (rank == 0) {
        for (int64_t row = 0; row < rows; ++row) {
          // Temperature 0.8 probabilities of the merged candidates over the whole vocabulary:
          // the global normalizer is the sum of the shards' exp(lse_t).
          for (int r = 0; r < tp; ++r)
            std::copy_n(all[r * rows + row].top, kCandidates, &merged[r * kCandidates]);
          std::sort(merged.begin(), merged.end(),
                    [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; });
          double z = 0;
          double z_raw = 0;
          for (int r = 0; r < tp; ++r) {
            z += std::exp(static_cast<double>(all[r * rows + row].lse_t));
            z_raw += std::exp(static_cast<double>(all[r * rows + row].lse));
          }
          double mass = 0;
          int cut = 0;
          for (; cut < kCandidates && mass < 0.95; ++cut)
            mass += std::exp(static_cast<double>(merged[cut].logit * kInvT)) / z;
          if (mass < 0.95) ++outside;
          double u = rng.uniform() * mass, acc = 0;
          int chosen = 0;
          for (; chosen + 1 < cut; ++chosen) {
            acc += std::exp(static_cast<double>(merged[chosen].logit * kInvT)) / z;
            if (acc >= u) break;
          }
          logprob_sum += merged[chosen].logit - std::log(z_raw);
        }
      }
      PONDER_RETURN_IF_ERROR(world->barrier(deadline()));
      total.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    report["shards"]["top_p"] = {{"ms_per_step", median_ms(total)},
                                 {"bytes_sent_per_rank", rows * sizeof(RowCandidates)},
                                 {"rows_whose_nucleus_left_the_candidates", outside},
                                 {"mean_logprob", logprob_sum / (rows * iters)}};
  }
  if (rank == 0) std::printf("%s\n", report.dump(2).c_str());
  return {};
}

}  // namespace
}  // namespace ponder

int main(int argc, char** argv) {
  ponder::Status st = ponder::run(argc, argv);
  if (!st.ok()) {
    std::fprintf(stderr, "tp_sampling_bench: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}
