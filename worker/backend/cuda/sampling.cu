// Logits processing and sampling on the GPU, one block per row, reproducing the CPU Sampler's
// pipeline (worker/sampler.cpp): logit edits (bias, repetition/presence/frequency penalties,
// suppression) → greedy argmax, or temperature → top-k → top-p → min-p → draw with the row's
// uniform. The CPU walks candidates sorted by probability (ties: lower id first); here every
// cut and the draw are found by radix selection on the probabilities' bit patterns (8 bits per
// pass, counts and masses per bucket) followed by the tie rank in id order, so no sort is needed
// and the chosen token is the one the CPU's walk would reach, up to the rounding of the mass sums.
#include "worker/backend/cuda/device_utils.cuh"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

struct SampleShared {
  double mass[256];
  int32_t count[256];
  double red_d[32];
  float red_f[32];
  int32_t red_i[32];
  int32_t scan_total;
  int32_t digit;
  double digit_above;
  int32_t found;
  int32_t n_top;
  int32_t top_ids[kMaxTopLogprobs];
  float top_vals[kMaxTopLogprobs];
  float best_val[32];
  int32_t best_idx[32];
};

// Order-preserving keys: probabilities (>= 0) by their bits; logits of any sign flipped so that
// unsigned order is float order.
__device__ __forceinline__ uint32_t logit_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Candidate probabilities: p >= 0; an excluded token holds -1.
struct ProbKeys {
  bool mass;  // weight by probability (else count)
  __device__ bool operator()(float v, uint32_t* key, double* weight) const {
    if (!(v >= 0.0f)) return false;
    *key = __float_as_uint(v);
    *weight = mass ? static_cast<double>(v) : 1.0;
    return true;
  }
};

struct LogitKeys {
  __device__ bool operator()(float v, uint32_t* key, double* weight) const {
    if (isnan(v)) return false;
    *key = logit_key(v);
    *weight = 1.0;
    return true;
  }
};

struct Selection {
  uint32_t key;  // the selected element's key
  double above;  // weight of included elements with larger keys
  int32_t ties;  // included elements with exactly this key
};

// Warp 0: the digit (scanning 255 → 0) whose bucket holds the element where the running weight
// first reaches `target` (> when strict, >= otherwise). Without one (rounding pushed the target
// past the total) the last non-empty bucket: the last element in order.
__device__ void find_digit(SampleShared& sh, double above, double target, bool strict) {
  const int lane = threadIdx.x & 31;
  double m[8];
  int32_t c[8];
  double lane_mass = 0.0;
  int32_t lane_count = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int d = 255 - 8 * lane - i;
    m[i] = sh.mass[d];
    c[i] = sh.count[d];
    lane_mass += m[i];
    lane_count += c[i];
  }
  double incl = lane_mass;
  for (int o = 1; o < 32; o <<= 1) {
    const double y = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += y;
  }
  const double excl = incl - lane_mass;
  const bool cross = lane_count > 0 && (strict ? above + incl > target : above + incl >= target);
  const unsigned crossing = __ballot_sync(kFullMask, cross);
  const unsigned nonempty = __ballot_sync(kFullMask, lane_count > 0);
  int chosen_lane;
  bool fallback = false;
  if (crossing != 0) {
    chosen_lane = __ffs(crossing) - 1;
  } else {
    chosen_lane = nonempty != 0 ? 31 - __clz(nonempty) : 31;
    fallback = true;
  }
  if (lane == chosen_lane) {
    double cum = above + excl;
    int digit = -1, last = -1;
    double last_above = cum;
    for (int i = 0; i < 8; ++i) {
      if (c[i] == 0) continue;
      if (!fallback && (strict ? cum + m[i] > target : cum + m[i] >= target)) {
        digit = 255 - 8 * lane - i;
        break;
      }
      last = 255 - 8 * lane - i;
      last_above = cum;
      cum += m[i];
    }
    if (digit < 0) {  // fallback, or rounding inside the lane: the lane's last element
      digit = last >= 0 ? last : 0;
      cum = last_above;
    }
    sh.digit = digit;
    sh.digit_above = cum;
  }
}

// Radix selection over v[0, n): the included element where the running weight, in order of
// decreasing key, first reaches `target`. All threads call it and get the same result.
template <class Keys>
__device__ Selection radix_select(const float* v, int32_t n, Keys keys, double target, bool strict,
                                  SampleShared& sh) {
  uint32_t prefix = 0, mask = 0;
  double above = 0.0;
  int32_t ties = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) {
      sh.mass[d] = 0.0;
      sh.count[d] = 0;
    }
    __syncthreads();
    for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
      uint32_t key;
      double w;
      if (!keys(v[i], &key, &w) || (key & mask) != prefix) continue;
      const int d = (key >> shift) & 255;
      atomicAdd(&sh.mass[d], w);
      atomicAdd(&sh.count[d], 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) find_digit(sh, above, target, strict);
    __syncthreads();
    prefix |= static_cast<uint32_t>(sh.digit) << shift;
    mask |= 255u << shift;
    above = sh.digit_above;
    ties = sh.count[sh.digit];
    __syncthreads();
  }
  return {prefix, above, ties};
}

// Exclusive prefix sum of `flag` over the block in thread order; *total gets the sum.
__device__ int32_t block_exclusive_scan(int32_t flag, SampleShared& sh, int32_t* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int32_t incl = flag;
  for (int o = 1; o < 32; o <<= 1) {
    const int32_t y = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += y;
  }
  if (lane == 31) sh.red_i[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const int32_t w = lane < kWarps ? sh.red_i[lane] : 0;
    int32_t wi = w;
    for (int o = 1; o < 32; o <<= 1) {
      const int32_t y = __shfl_up_sync(kFullMask, wi, o);
      if (lane >= o) wi += y;
    }
    sh.red_i[lane] = wi - w;
    if (lane == 31) sh.scan_total = wi;
  }
  __syncthreads();
  const int32_t excl = sh.red_i[warp] + incl - flag;
  *total = sh.scan_total;
  __syncthreads();
  return excl;
}

// Index of the j-th (1-based) included element with key `key`, counting in id order.
template <class Keys>
__device__ int32_t nth_with_key(const float* v, int32_t n, Keys keys, uint32_t key, int32_t j,
                                SampleShared& sh) {
  if (threadIdx.x == 0) sh.found = -1;
  __syncthreads();
  int32_t seen = 0;
  for (int32_t base = 0; base < n && seen < j; base += blockDim.x) {
    const int32_t i = base + threadIdx.x;
    uint32_t k = 0;
    double w;
    const int32_t flag = i < n && keys(v[i], &k, &w) && k == key ? 1 : 0;
    int32_t total;
    const int32_t rank = seen + block_exclusive_scan(flag, sh, &total);
    if (flag && rank == j - 1) sh.found = i;
    seen += total;
  }
  __syncthreads();
  const int32_t found = sh.found;
  __syncthreads();  // a following call may reset sh.found
  return found;
}

// Keeps the candidates of the prefix that `sel` ends with its first `take` ties (in id order);
// the others become -1. Returns the kept mass.
__device__ double keep_prefix(float* p, int32_t n, const Selection& sel, int32_t take,
                              SampleShared& sh) {
  const int32_t last_tie =
      take < sel.ties ? nth_with_key(p, n, ProbKeys{true}, sel.key, take, sh) : n;
  double kept = 0.0;
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = p[i];
    if (!(v >= 0.0f)) continue;
    const uint32_t k = __float_as_uint(v);
    if (k < sel.key || (k == sel.key && i > last_tie)) {
      p[i] = -1.0f;
    } else {
      kept += v;
    }
  }
  return block_sum(kept, sh.red_d);
}

__device__ double candidate_mass(const float* p, int32_t n, SampleShared& sh) {
  double total = 0.0;
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x)
    if (p[i] >= 0.0f) total += p[i];
  return block_sum(total, sh.red_d);
}

// Largest value, lowest index on ties (the CPU's first strict maximum).
__device__ int32_t block_argmax(const float* v, int32_t n, SampleShared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float best = neg_inf();
  int32_t idx = 0x7fffffff;
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float x = v[i];
    if (x > best || (x == best && i < idx)) {
      best = x;
      idx = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(kFullMask, best, o);
    const int32_t oi = __shfl_xor_sync(kFullMask, idx, o);
    if (ob > best || (ob == best && oi < idx)) {
      best = ob;
      idx = oi;
    }
  }
  if (lane == 0) {
    sh.best_val[warp] = best;
    sh.best_idx[warp] = idx;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      if (sh.best_val[w] > sh.best_val[0] ||
          (sh.best_val[w] == sh.best_val[0] && sh.best_idx[w] < sh.best_idx[0])) {
        sh.best_val[0] = sh.best_val[w];
        sh.best_idx[0] = sh.best_idx[w];
      }
    }
  }
  __syncthreads();
  const int32_t r = sh.best_idx[0] == 0x7fffffff ? 0 : sh.best_idx[0];
  __syncthreads();
  return r;
}

// The row's top-N raw logits (ties: lower id), sorted, as log-probabilities.
__device__ void top_logprobs(const float* raw, int32_t vocab, int32_t n_top, float lse,
                             SampleShared& sh, SampleRowResult& out) {
  const Selection sel = radix_select(raw, vocab, LogitKeys{}, n_top, false, sh);
  const int32_t take = n_top - static_cast<int32_t>(sel.above);
  const int32_t last_tie =
      take < sel.ties ? nth_with_key(raw, vocab, LogitKeys{}, sel.key, take, sh) : vocab;
  if (threadIdx.x == 0) sh.n_top = 0;
  __syncthreads();
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = raw[i];
    if (isnan(x)) continue;
    const uint32_t k = logit_key(x);
    if (k > sel.key || (k == sel.key && i <= last_tie)) {
      const int32_t slot = atomicAdd(&sh.n_top, 1);
      if (slot < kMaxTopLogprobs) {
        sh.top_ids[slot] = i;
        sh.top_vals[slot] = x;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int32_t n = min(sh.n_top, n_top);
    for (int32_t a = 1; a < n; ++a) {  // insertion sort: value descending, id ascending
      const int32_t id = sh.top_ids[a];
      const float val = sh.top_vals[a];
      int32_t b = a - 1;
      while (b >= 0 && (sh.top_vals[b] < val || (sh.top_vals[b] == val && sh.top_ids[b] > id))) {
        sh.top_ids[b + 1] = sh.top_ids[b];
        sh.top_vals[b + 1] = sh.top_vals[b];
        --b;
      }
      sh.top_ids[b + 1] = id;
      sh.top_vals[b + 1] = val;
    }
    out.n_top = n;
    for (int32_t a = 0; a < n; ++a) {
      out.top_tokens[a] = sh.top_ids[a];
      out.top_logprobs[a] = sh.top_vals[a] - lse;
    }
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int32_t vocab, const SampleRowParams* params,
                  const LogitEdit* edits, float* work, SampleRowResult* results) {
  __shared__ SampleShared sh;
  const int32_t row = blockIdx.x;
  const float* raw = logits + static_cast<int64_t>(row) * vocab;
  float* w = work + static_cast<int64_t>(row) * vocab;
  const SampleRowParams P = params[row];
  SampleRowResult& out = results[row];

  // Raw log-sum-exp, as log_sum_exp() does it: float max, double sum of exp(v - max).
  float mx = neg_inf();
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) mx = fmaxf(mx, raw[i]);
  mx = block_max(mx, sh.red_f);
  double se = 0.0;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x)
    se += exp(static_cast<double>(raw[i] - mx));
  se = block_sum(se, sh.red_d);
  const float lse = mx + static_cast<float>(log(se));
  if (threadIdx.x == 0) out.n_top = 0;
  if (P.top_logprobs > 0) top_logprobs(raw, vocab, min(P.top_logprobs, vocab), lse, sh, out);

  // Working logits with the row's edits (distinct tokens, so no two threads touch one).
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) w[i] = raw[i];
  __syncthreads();
  for (int32_t e = P.edit_begin + threadIdx.x; e < P.edit_end; e += blockDim.x) {
    const LogitEdit ed = edits[e];
    if (ed.token < 0 || ed.token >= vocab) continue;
    float l = w[ed.token] + ed.bias;
    if (ed.repetition != 1.0f) l = l > 0.0f ? l / ed.repetition : l * ed.repetition;
    l -= ed.subtract;
    w[ed.token] = ed.suppress ? neg_inf() : l;
  }
  __syncthreads();

  int32_t token;
  if (P.temperature == 0.0f) {
    token = block_argmax(w, vocab, sh);
  } else {
    // Probabilities at this temperature, relative to the most likely token (which gets 1).
    const float inv_t = 1.0f / P.temperature;
    float ms = neg_inf();
    for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x)
      ms = fmaxf(ms, __fmul_rn(w[i], inv_t));
    ms = block_max(ms, sh.red_f);
    // Rounded as the CPU rounds (no fused multiply-add), so the most likely token gets exactly 1.
    for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x)
      w[i] = expf(__fsub_rn(__fmul_rn(w[i], inv_t), ms));
    __syncthreads();
    double total = candidate_mass(w, vocab, sh);
    if (P.top_k > 0 && P.top_k < vocab) {
      const Selection sel = radix_select(w, vocab, ProbKeys{false}, P.top_k, false, sh);
      total = keep_prefix(w, vocab, sel, P.top_k - static_cast<int32_t>(sel.above), sh);
    }
    if (P.top_p < 1.0f) {
      // The shortest prefix whose mass reaches top_p of the candidates' mass.
      const double target = static_cast<double>(P.top_p) * total;
      const Selection sel = radix_select(w, vocab, ProbKeys{true}, target, false, sh);
      const double pk = __uint_as_float(sel.key);
      int32_t take = sel.ties;
      if (pk > 0.0) take = static_cast<int32_t>(ceil((target - sel.above) / pk));
      take = max(1, min(take, sel.ties));
      total = keep_prefix(w, vocab, sel, take, sh);
    }
    if (P.min_p > 0.0f) {
      const float threshold = P.min_p;  // × the most likely token's probability, 1
      double kept = 0.0;
      for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float v = w[i];
        if (!(v >= 0.0f)) continue;
        if (v < threshold) {
          w[i] = -1.0f;
        } else {
          kept += v;
        }
      }
      total = block_sum(kept, sh.red_d);
    }
    // The draw: the first candidate, in order, whose running mass exceeds u × total.
    const double target = P.uniform * total;
    const Selection sel = radix_select(w, vocab, ProbKeys{true}, target, true, sh);
    const double pk = __uint_as_float(sel.key);
    int32_t j = sel.ties;
    if (pk > 0.0) j = static_cast<int32_t>(floor((target - sel.above) / pk)) + 1;
    j = max(1, min(j, sel.ties));
    token = nth_with_key(w, vocab, ProbKeys{true}, sel.key, j, sh);
    if (token < 0) token = 0;
  }
  if (threadIdx.x == 0) {
    out.token = token;
    out.logprob = raw[token] - lse;
  }
}

}  // namespace

cudaError_t sample(const float* logits, int32_t n_rows, int32_t vocab,
                   const SampleRowParams* params, const LogitEdit* edits, float* work,
                   SampleRowResult* results, cudaStream_t s) {
  if (n_rows == 0) return cudaSuccess;
  sample_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, s>>>(logits, vocab, params, edits,
                                                                   work, results);
  return cudaGetLastError();
}

}  // namespace ponder::worker::cuda
