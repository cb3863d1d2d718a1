// Paged-KV attention on the GPU: the KV store, the split-K decode kernel (one query token per
// sequence; all query heads of a KV group share each K/V row read; key ranges split across
// blocks and combined), and the tiled causal prefill kernel (flash-attention style: query tile
// and K/V tiles in shared memory, online softmax, f32 throughout). Both read K/V through each
// sequence's block table; the cache holds f32 or bf16.
#include "worker/backend/cuda/device_utils.cuh"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker::cuda {
namespace {

// ---- KV store ----

template <class KV>
__global__ void kv_store_kernel(KvLayer kv, DeviceBatch b, const float* k, const float* v) {
  const int32_t t = blockIdx.x;
  const int32_t seq = b.token_seq[t];
  if (seq < 0) return;
  const int32_t pos = b.token_pos[t];
  const int32_t bs = kv.block_size, hd = kv.head_dim, nkv = kv.n_kv_heads;
  const int64_t block = b.block_tables[b.seq_table[seq] + pos / bs];
  const int64_t slot = pos % bs;
  KV* kd = static_cast<KV*>(kv.k);
  KV* vd = static_cast<KV*>(kv.v);
  const int64_t src = static_cast<int64_t>(t) * nkv * hd;
  for (int32_t e = threadIdx.x; e < nkv * hd; e += blockDim.x) {
    const int32_t h = e / hd, d = e - h * hd;
    const int64_t dst = ((block * nkv + h) * bs + slot) * hd + d;
    kd[dst] = from_f32<KV>(k[src + e]);
    vd[dst] = from_f32<KV>(v[src + e]);
  }
}

// Element offset of key position j's row for kv head `kvh` in a layer.
__device__ __forceinline__ int64_t key_row(const int32_t* table, int32_t j, int32_t kvh,
                                           int32_t nkv, int32_t bs, int32_t hd) {
  return ((static_cast<int64_t>(table[j / bs]) * nkv + kvh) * bs + j % bs) * hd;
}

// ---- decode: one query token, split-K ----

constexpr int kDecodeThreads = 128;
constexpr int kDecodeWarps = kDecodeThreads / 32;
constexpr int kDecodeTile = 64;  // keys scored per round
constexpr int kMaxDimChunks = kMaxHeadDim / 32;

size_t decode_smem_bytes(int32_t group, int32_t head_dim) {
  // row offsets (int64) first, then q, scores, m, l, rescale (floats)
  return kDecodeTile * sizeof(int64_t) +
         (static_cast<size_t>(group) * head_dim + static_cast<size_t>(group) * kDecodeTile +
          3 * static_cast<size_t>(group)) *
             sizeof(float);
}

// grid (n_decode, n_kv_heads, n_splits). Split s takes keys [s·per, (s+1)·per) of the sequence's
// context; each round scores kDecodeTile keys for the group's query heads (one warp per key, lanes
// across head_dim), folds them into a running max/sum (online softmax) and accumulates V; thread
// items are (group head, dim) pairs.
template <class KV, int kItems>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_kernel(KvLayer kv, DeviceBatch b, const float* q, int32_t n_heads, float scale,
                  int32_t n_splits, AttentionScratch scratch, float* out) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int32_t hd = kv.head_dim, nkv = kv.n_kv_heads, bs = kv.block_size;
  const int32_t group = n_heads / nkv, gd = group * hd;
  int64_t* row_s = reinterpret_cast<int64_t*>(smem_raw);       // [kDecodeTile]
  float* q_s = reinterpret_cast<float*>(row_s + kDecodeTile);  // [group, hd]
  float* s_s = q_s + gd;                                       // [group, kDecodeTile]
  float* m_s = s_s + group * kDecodeTile;                      // [group] running max
  float* l_s = m_s + group;                                    // [group] running sum
  float* c_s = l_s + group;                                    // [group] this round's rescale

  const int32_t seq = b.decode_seqs[blockIdx.x], kvh = blockIdx.y, split = blockIdx.z;
  const int32_t t = b.seq_token_begin[seq], ctx = b.seq_ctx[seq];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t per = ((ctx + n_splits - 1) / n_splits + 15) / 16 * 16;
  const int32_t j0 = min(ctx, split * per), j1 = min(ctx, j0 + per);
  const int32_t* table = b.block_tables + b.seq_table[seq];
  const KV* kbase = static_cast<const KV*>(kv.k);
  const KV* vbase = static_cast<const KV*>(kv.v);
  // The group's query heads are contiguous: q[t, kvh·group + g, :].
  const float* qt =
      q + (static_cast<int64_t>(t) * n_heads + static_cast<int64_t>(kvh) * group) * hd;

  for (int32_t e = tid; e < gd; e += kDecodeThreads) q_s[e] = qt[e];
  for (int32_t g = tid; g < group; g += kDecodeThreads) {
    m_s[g] = neg_inf();
    l_s[g] = 0.0f;
  }
  float acc[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) acc[i] = 0.0f;
  __syncthreads();

  for (int32_t tile0 = j0; tile0 < j1; tile0 += kDecodeTile) {
    const int32_t nt = min(kDecodeTile, j1 - tile0);
    for (int32_t jj = tid; jj < nt; jj += kDecodeThreads)
      row_s[jj] = key_row(table, tile0 + jj, kvh, nkv, bs, hd);
    __syncthreads();
    // Scores: warp per key, lanes across head_dim.
    for (int32_t jj = warp; jj < nt; jj += kDecodeWarps) {
      const KV* kr = kbase + row_s[jj];
      float kreg[kMaxDimChunks];
#pragma unroll
      for (int c = 0; c < kMaxDimChunks; ++c) {
        const int32_t d = lane + 32 * c;
        kreg[c] = d < hd ? to_f32(kr[d]) : 0.0f;
      }
      for (int32_t g = 0; g < group; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int c = 0; c < kMaxDimChunks; ++c) {
          const int32_t d = lane + 32 * c;
          if (d < hd) dot = fmaf(q_s[g * hd + d], kreg[c], dot);
        }
        dot = warp_sum(dot);
        if (lane == 0) s_s[g * kDecodeTile + jj] = dot * scale;
      }
    }
    __syncthreads();
    // Online softmax per query head: warp per head.
    for (int32_t g = warp; g < group; g += kDecodeWarps) {
      float* sg = s_s + g * kDecodeTile;
      float mx = neg_inf();
      for (int32_t jj = lane; jj < nt; jj += 32) mx = fmaxf(mx, sg[jj]);
      mx = warp_max(mx);
      const float m_old = m_s[g], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int32_t jj = lane; jj < nt; jj += 32) {
        const float p = expf(sg[jj] - m_new);
        sg[jj] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      __syncwarp();  // every lane has read m_s[g] before lane 0 replaces it
      if (lane == 0) {
        const float corr = m_old == neg_inf() ? 0.0f : expf(m_old - m_new);
        c_s[g] = corr;
        l_s[g] = l_s[g] * corr + sum;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    // acc(g, d) = acc · rescale + Σ_j p(g, j) · V[j, d]
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int32_t it = tid + i * kDecodeThreads;
      if (it < gd) {
        const int32_t g = it / hd, d = it - g * hd;
        const float* pg = s_s + g * kDecodeTile;
        float a = acc[i] * c_s[g];
        for (int32_t jj = 0; jj < nt; ++jj) a = fmaf(pg[jj], to_f32(vbase[row_s[jj] + d]), a);
        acc[i] = a;
      }
    }
    __syncthreads();
  }

  if (n_splits == 1) {
    float* o = out + (static_cast<int64_t>(t) * n_heads + static_cast<int64_t>(kvh) * group) * hd;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int32_t it = tid + i * kDecodeThreads;
      if (it < gd) {
        const float l = l_s[it / hd];
        o[it] = l > 0.0f ? acc[i] / l : 0.0f;
      }
    }
    return;
  }
  const int64_t part = (static_cast<int64_t>(blockIdx.x) * nkv + kvh) * n_splits + split;
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t it = tid + i * kDecodeThreads;
    if (it < gd) scratch.partial_out[part * gd + it] = acc[i];
  }
  for (int32_t g = tid; g < group; g += kDecodeThreads) {
    scratch.partial_ml[(part * group + g) * 2] = m_s[g];
    scratch.partial_ml[(part * group + g) * 2 + 1] = l_s[g];
  }
}

// grid (n_decode, n_kv_heads): out = Σ_s e^{m_s − M} acc_s / Σ_s e^{m_s − M} l_s.
__global__ void combine_kernel(DeviceBatch b, int32_t n_heads, int32_t nkv, int32_t hd,
                               int32_t n_splits, AttentionScratch scratch, float* out) {
  const int32_t group = n_heads / nkv, gd = group * hd;
  const int32_t seq = b.decode_seqs[blockIdx.x], kvh = blockIdx.y;
  const int32_t t = b.seq_token_begin[seq];
  const int64_t base = (static_cast<int64_t>(blockIdx.x) * nkv + kvh) * n_splits;
  float* o = out + (static_cast<int64_t>(t) * n_heads + static_cast<int64_t>(kvh) * group) * hd;
  for (int32_t it = threadIdx.x; it < gd; it += blockDim.x) {
    const int32_t g = it / hd;
    float mx = neg_inf();
    for (int32_t s = 0; s < n_splits; ++s)
      mx = fmaxf(mx, scratch.partial_ml[((base + s) * group + g) * 2]);
    float l = 0.0f, a = 0.0f;
    if (mx != neg_inf()) {
      for (int32_t s = 0; s < n_splits; ++s) {
        const float ls = scratch.partial_ml[((base + s) * group + g) * 2 + 1];
        if (ls > 0.0f) {
          const float w = expf(scratch.partial_ml[((base + s) * group + g) * 2] - mx);
          l += ls * w;
          a += scratch.partial_out[(base + s) * gd + it] * w;
        }
      }
    }
    o[it] = l > 0.0f ? a / l : 0.0f;
  }
}

// ---- prefill: tiled causal attention with online softmax ----

constexpr int kPrefillThreads = 256;  // 16 × 16: ty owns 4 query rows, tx 2 keys / kCols dims
constexpr int kKeyTile = 32;
constexpr int kRows = kPrefillRows;  // 64
constexpr int kPStride = kKeyTile + 1;

size_t prefill_smem_bytes(int32_t head_dim) {
  // key row offsets (int64) and row positions (int32), then Qᵀ, Kᵀ, V and P (floats)
  return kKeyTile * sizeof(int64_t) + kRows * sizeof(int32_t) +
         (static_cast<size_t>(head_dim) * (kRows + 2 * kKeyTile) + kRows * kPStride) *
             sizeof(float);
}

// grid (n_prefill_tiles, n_kv_heads). A tile is 64 query rows of one sequence, row r meaning
// token r / group and query head r % group of KV head blockIdx.y; every K/V tile loaded serves
// all of them. Scores are Q·Kᵀ with Q pre-scaled; keys past a row's position are masked.
template <class KV, int kCols>
__global__ void __launch_bounds__(kPrefillThreads)
    prefill_kernel(KvLayer kv, DeviceBatch b, const float* q, int32_t n_heads, float scale,
                   float* out) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int32_t hd = kv.head_dim, nkv = kv.n_kv_heads, bs = kv.block_size;
  const int32_t group = n_heads / nkv;
  int64_t* koff_s = reinterpret_cast<int64_t*>(smem_raw);          // [kKeyTile]
  int32_t* pos_s = reinterpret_cast<int32_t*>(koff_s + kKeyTile);  // [kRows]
  float* qt_s = reinterpret_cast<float*>(pos_s + kRows);           // [hd][kRows]
  float* kt_s = qt_s + hd * kRows;                                 // [hd][kKeyTile]
  float* v_s = kt_s + hd * kKeyTile;                               // [kKeyTile][hd]
  float* p_s = v_s + kKeyTile * hd;                                // [kRows][kPStride]

  const int32_t seq = b.prefill_tiles[2 * blockIdx.x], row0 = b.prefill_tiles[2 * blockIdx.x + 1];
  const int32_t kvh = blockIdx.y;
  const int32_t tok0 = b.seq_token_begin[seq], n_tok = b.seq_n_tokens[seq];
  const int32_t start = b.seq_ctx[seq] - n_tok;
  const int32_t n_rows = n_tok * group;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int32_t* table = b.block_tables + b.seq_table[seq];
  const KV* kbase = static_cast<const KV*>(kv.k);
  const KV* vbase = static_cast<const KV*>(kv.v);

  for (int32_t r = tid; r < kRows; r += kPrefillThreads) {
    const int32_t row = row0 + r;
    pos_s[r] = row < n_rows ? start + row / group : -1;
  }
  for (int32_t e = tid; e < kRows * hd; e += kPrefillThreads) {
    const int32_t r = e % kRows, d = e / kRows, row = row0 + r;
    float val = 0.0f;
    if (row < n_rows) {
      const int64_t tok = tok0 + row / group,
                    head = static_cast<int64_t>(kvh) * group + row % group;
      val = q[(tok * n_heads + head) * hd + d] * scale;
    }
    qt_s[d * kRows + r] = val;
  }
  __syncthreads();
  const int32_t last_row = min(n_rows - 1, row0 + kRows - 1);
  const int32_t kmax = start + last_row / group;  // the last key any row of the tile sees
  int32_t my_pos[4];
  float m[4], l[4], acc[4][kCols];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    my_pos[r] = pos_s[ty * 4 + r];
    m[r] = neg_inf();
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[r][c] = 0.0f;
  }

  for (int32_t k0 = 0; k0 <= kmax; k0 += kKeyTile) {
    if (tid < kKeyTile) {
      const int32_t j = k0 + tid;
      koff_s[tid] = j <= kmax ? key_row(table, j, kvh, nkv, bs, hd) : -1;
    }
    __syncthreads();
    for (int32_t e = tid; e < kKeyTile * hd; e += kPrefillThreads) {
      {  // Kᵀ: keys fastest, so the shared stores do not conflict
        const int32_t kk = e % kKeyTile, d = e / kKeyTile;
        const int64_t off = koff_s[kk];
        kt_s[d * kKeyTile + kk] = off >= 0 ? to_f32(kbase[off + d]) : 0.0f;
      }
      {  // V: dims fastest
        const int32_t kk = e / hd, d = e - kk * hd;
        const int64_t off = koff_s[kk];
        v_s[kk * hd + d] = off >= 0 ? to_f32(vbase[off + d]) : 0.0f;
      }
    }
    __syncthreads();
    // S[4 rows][2 keys] = Q·Kᵀ
    float sc[4][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f}};
    for (int32_t d = 0; d < hd; ++d) {
      const float4 qv = *reinterpret_cast<const float4*>(qt_s + d * kRows + ty * 4);
      const float2 kv2 = *reinterpret_cast<const float2*>(kt_s + d * kKeyTile + tx * 2);
      sc[0][0] = fmaf(qv.x, kv2.x, sc[0][0]);
      sc[0][1] = fmaf(qv.x, kv2.y, sc[0][1]);
      sc[1][0] = fmaf(qv.y, kv2.x, sc[1][0]);
      sc[1][1] = fmaf(qv.y, kv2.y, sc[1][1]);
      sc[2][0] = fmaf(qv.z, kv2.x, sc[2][0]);
      sc[2][1] = fmaf(qv.z, kv2.y, sc[2][1]);
      sc[3][0] = fmaf(qv.w, kv2.x, sc[3][0]);
      sc[3][1] = fmaf(qv.w, kv2.y, sc[3][1]);
    }
    // Causal mask and online softmax; a row's 16 tx threads hold its 32 scores.
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int32_t j = k0 + tx * 2;
      const float s0 = j <= my_pos[r] ? sc[r][0] : neg_inf();
      const float s1 = j + 1 <= my_pos[r] ? sc[r][1] : neg_inf();
      float mx = fmaxf(s0, s1);
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, o));
      const float m_new = fmaxf(m[r], mx);
      const float corr = m[r] == neg_inf() ? 0.0f : expf(m[r] - m_new);
      const float p0 = s0 == neg_inf() ? 0.0f : expf(s0 - m_new);
      const float p1 = s1 == neg_inf() ? 0.0f : expf(s1 - m_new);
      float sum = p0 + p1;
      for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(kFullMask, sum, o);
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[r][c] *= corr;
      p_s[(ty * 4 + r) * kPStride + tx * 2] = p0;
      p_s[(ty * 4 + r) * kPStride + tx * 2 + 1] = p1;
    }
    __syncthreads();
    // O[4 rows][kCols dims] += P·V
    for (int32_t kk = 0; kk < kKeyTile; ++kk) {
      float p[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) p[r] = p_s[(ty * 4 + r) * kPStride + kk];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int32_t d = tx + 16 * c;
        if (d < hd) {
          const float vv = v_s[kk * hd + d];
#pragma unroll
          for (int r = 0; r < 4; ++r) acc[r][c] = fmaf(p[r], vv, acc[r][c]);
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int32_t row = row0 + ty * 4 + r;
    if (row >= n_rows) continue;
    const int64_t tok = tok0 + row / group, head = static_cast<int64_t>(kvh) * group + row % group;
    float* o = out + (tok * n_heads + head) * hd;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int32_t d = tx + 16 * c;
      if (d < hd) o[d] = acc[r][c] * inv;
    }
  }
}

template <class KV, int kItems>
cudaError_t launch_decode(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                          float scale, int32_t n_splits, AttentionScratch scratch, float* out,
                          cudaStream_t s) {
  const int32_t group = n_heads / kv.n_kv_heads;
  const dim3 grid(static_cast<unsigned>(b.n_decode), static_cast<unsigned>(kv.n_kv_heads),
                  static_cast<unsigned>(n_splits));
  decode_kernel<KV, kItems><<<grid, kDecodeThreads, decode_smem_bytes(group, kv.head_dim), s>>>(
      kv, b, q, n_heads, scale, n_splits, scratch, out);
  return cudaGetLastError();
}

template <class KV>
cudaError_t decode(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                   float scale, int32_t n_splits, AttentionScratch scratch, float* out,
                   cudaStream_t s) {
  const int32_t gd = n_heads / kv.n_kv_heads * kv.head_dim;
  if (gd <= kDecodeThreads)
    return launch_decode<KV, 1>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  if (gd <= 2 * kDecodeThreads)
    return launch_decode<KV, 2>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  if (gd <= 4 * kDecodeThreads)
    return launch_decode<KV, 4>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  if (gd <= 8 * kDecodeThreads)
    return launch_decode<KV, 8>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  if (gd <= 16 * kDecodeThreads)
    return launch_decode<KV, 16>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  return launch_decode<KV, 32>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
}

template <class KV, int kCols>
cudaError_t launch_prefill(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                           float scale, float* out, cudaStream_t s) {
  const size_t smem = prefill_smem_bytes(kv.head_dim);
  // More than 48 KiB of dynamic shared memory must be asked for; the largest head_dim this
  // instantiation serves is 16·kCols, so one request per instantiation covers every call.
  static const cudaError_t raised =
      cudaFuncSetAttribute(prefill_kernel<KV, kCols>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(prefill_smem_bytes(16 * kCols)));
  if (raised != cudaSuccess) return raised;
  const dim3 grid(static_cast<unsigned>(b.n_prefill_tiles), static_cast<unsigned>(kv.n_kv_heads));
  prefill_kernel<KV, kCols><<<grid, kPrefillThreads, smem, s>>>(kv, b, q, n_heads, scale, out);
  return cudaGetLastError();
}

template <class KV>
cudaError_t prefill(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                    float scale, float* out, cudaStream_t s) {
  const int32_t hd = kv.head_dim;
  if (hd <= 16) return launch_prefill<KV, 1>(kv, b, q, n_heads, scale, out, s);
  if (hd <= 32) return launch_prefill<KV, 2>(kv, b, q, n_heads, scale, out, s);
  if (hd <= 64) return launch_prefill<KV, 4>(kv, b, q, n_heads, scale, out, s);
  if (hd <= 128) return launch_prefill<KV, 8>(kv, b, q, n_heads, scale, out, s);
  return launch_prefill<KV, 16>(kv, b, q, n_heads, scale, out, s);
}

template <class KV>
cudaError_t attention_typed(const KvLayer& kv, const DeviceBatch& b, const float* q,
                            int32_t n_heads, float scale, int32_t n_splits,
                            AttentionScratch scratch, float* out, cudaStream_t s) {
  if (b.n_decode > 0) {
    cudaError_t err = decode<KV>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
    if (err != cudaSuccess) return err;
    if (n_splits > 1) {
      combine_kernel<<<dim3(static_cast<unsigned>(b.n_decode),
                            static_cast<unsigned>(kv.n_kv_heads)),
                       kDecodeThreads, 0, s>>>(b, n_heads, kv.n_kv_heads, kv.head_dim, n_splits,
                                               scratch, out);
      err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
  }
  if (b.n_prefill_tiles > 0) return prefill<KV>(kv, b, q, n_heads, scale, out, s);
  return cudaSuccess;
}

}  // namespace

cudaError_t kv_store(const KvLayer& kv, const DeviceBatch& b, const float* k, const float* v,
                     cudaStream_t s) {
  if (b.n_tokens == 0) return cudaSuccess;
  const int threads = kv.n_kv_heads * kv.head_dim >= 256 ? 256 : 128;
  if (kv.dtype == Elem::kBF16) {
    kv_store_kernel<__nv_bfloat16>
        <<<static_cast<unsigned>(b.n_tokens), threads, 0, s>>>(kv, b, k, v);
  } else {
    kv_store_kernel<float><<<static_cast<unsigned>(b.n_tokens), threads, 0, s>>>(kv, b, k, v);
  }
  return cudaGetLastError();
}

size_t attention_scratch_floats(int32_t n_decode, int32_t n_kv_heads, int32_t n_splits,
                                int32_t group, int32_t head_dim) {
  return static_cast<size_t>(n_decode) * n_kv_heads * n_splits *
         (static_cast<size_t>(group) * head_dim + 2 * static_cast<size_t>(group));
}

cudaError_t attention(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                      float scale, int32_t n_splits, AttentionScratch scratch, float* out,
                      cudaStream_t s) {
  if (kv.head_dim > kMaxHeadDim || n_heads / kv.n_kv_heads * kv.head_dim > kMaxDecodeGroupDims)
    return cudaErrorInvalidValue;
  if (kv.dtype == Elem::kBF16)
    return attention_typed<__nv_bfloat16>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
  return attention_typed<float>(kv, b, q, n_heads, scale, n_splits, scratch, out, s);
}

}  // namespace ponder::worker::cuda
