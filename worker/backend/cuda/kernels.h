// The CUDA backend's kernels as plain launch functions: device pointers, sizes and a stream in, a
// cudaError_t (the launch's) out. This header is shared by the .cu files (nvcc) and the backend
// (host compiler), so it holds only plain types. Layouts follow worker/backend/backend.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ponder::worker::cuda {

enum class Elem : int32_t { kF32, kF16, kBF16 };

// The batch layout as kernels read it: arrays in one device upload (BatchUpload packs them).
// Rows past the batch's tokens and sequences past its sequences are padding: token_seq -1 and
// seq_ctx 0 (no KV written, attention output zero).
struct DeviceBatch {
  int32_t n_tokens = 0;  // rows of every activation this step
  int32_t n_seqs = 0;
  const int32_t* token_pos = nullptr;        // [n_tokens] position, -1 on padding rows
  const int32_t* token_seq = nullptr;        // [n_tokens] sequence index, -1 on padding rows
  const int32_t* seq_token_begin = nullptr;  // [n_seqs] first row
  const int32_t* seq_n_tokens = nullptr;     // [n_seqs]
  const int32_t* seq_ctx = nullptr;          // [n_seqs] start_pos + n_tokens: keys attended
  const int32_t* seq_table = nullptr;        // [n_seqs] offset of the block table in block_tables
  const int32_t* block_tables = nullptr;     // each sequence's ceil(ctx / block_size) block ids
  int32_t n_decode = 0;                      // sequences with one query token ...
  const int32_t* decode_seqs = nullptr;      // ... [n_decode]: the split-K decode kernel's work
  int32_t n_prefill_tiles = 0;               // (sequence, first row) pairs, rows counted as
  const int32_t* prefill_tiles = nullptr;    // token × query head of a group: the tiled kernel's
};

// Query rows (token, query head of a kv group) per prefill tile.
inline constexpr int32_t kPrefillRows = 64;

// One layer of a paged KV cache: K and V are [n_blocks, n_kv_heads, block_size, head_dim].
struct KvLayer {
  void* k = nullptr;
  void* v = nullptr;
  int32_t n_kv_heads = 0;
  int32_t block_size = 0;
  int32_t head_dim = 0;
  Elem dtype = Elem::kF32;  // kF32 or kBF16
};

// ---- elementwise (elementwise.cu) ----
// out[i, :] = f32(table[ids[i], :]), zeros where ids[i] < 0.
cudaError_t embedding(const void* table, Elem dt, int64_t d, const int32_t* ids, int64_t n,
                      float* out, cudaStream_t s);
// out = x * rsqrt(mean(x²) + eps) * w per row; out may alias x.
cudaError_t rms_norm(const float* x, const float* w, float eps, int64_t n, int64_t d, float* out,
                     cudaStream_t s);
// residual += x; out = rms_norm(residual).
cudaError_t add_rms_norm(float* residual, const float* x, const float* w, float eps, int64_t n,
                         int64_t d, float* out, cudaStream_t s);
// Rotate-half RoPE in place on x [n, heads, hd]; angles in double; rows with position < 0 skip.
cudaError_t rope(float* x, int64_t n, int64_t heads, int64_t hd, const int32_t* positions,
                 const float* inv_freq, float attention_factor, cudaStream_t s);
cudaError_t swiglu(const float* gate_up, int64_t n, int64_t ffn, float* out, cudaStream_t s);
cudaError_t add(float* x, const float* y, int64_t count, cudaStream_t s);
cudaError_t gather_rows(const float* src, int64_t d, const int32_t* rows, int64_t n, float* dst,
                        cudaStream_t s);
// out[i] = x[i] rounded to nearest even in `to` (kF16 or kBF16).
cudaError_t convert_f32(const float* x, int64_t count, Elem to, void* out, cudaStream_t s);
// y[i, j] += bias[j] for y [n, m].
cudaError_t add_bias(float* y, const float* bias, int64_t n, int64_t m, cudaStream_t s);
// data[i] = mean + halfwidth * u(seed, i) with u uniform in [-1, 1): random weights on the device.
cudaError_t fill_random(void* data, Elem dt, int64_t count, float mean, float halfwidth,
                        uint64_t seed, cudaStream_t s);

// ---- paged KV cache and attention (attention.cu) ----
// Writes k, v [n_tokens, n_kv_heads, head_dim] f32 of every non-padding row at its position.
cudaError_t kv_store(const KvLayer& kv, const DeviceBatch& b, const float* k, const float* v,
                     cudaStream_t s);

// Scratch for split-K decode: partial outputs and (max, sum) per split.
struct AttentionScratch {
  float* partial_out = nullptr;  // [n_decode, n_kv_heads, n_splits, group * head_dim]
  float* partial_ml = nullptr;   // [n_decode, n_kv_heads, n_splits, group, 2]
};
size_t attention_scratch_floats(int32_t n_decode, int32_t n_kv_heads, int32_t n_splits,
                                int32_t group, int32_t head_dim);
// Largest group × head_dim the decode kernel takes, and largest head_dim of the prefill kernel.
inline constexpr int32_t kMaxDecodeGroupDims = 4096;
inline constexpr int32_t kMaxHeadDim = 256;

// Causal GQA attention of q [n_tokens, n_heads, head_dim] over the cache into out (same shape):
// decode sequences through the split-K kernel (n_splits key ranges, then a combine), the others
// through the tiled prefill kernel. Padding rows of decode sequences get zeros.
cudaError_t attention(const KvLayer& kv, const DeviceBatch& b, const float* q, int32_t n_heads,
                      float scale, int32_t n_splits, AttentionScratch scratch, float* out,
                      cudaStream_t s);

// ---- sampling (sampling.cu) ----
inline constexpr int32_t kMaxTopLogprobs = 20;

// One row's sampling parameters as the kernel reads them.
struct SampleRowParams {
  float temperature = 1.0f;  // 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  double uniform = 0.0;      // the row's draw in [0, 1)
  int32_t top_logprobs = 0;  // [0, kMaxTopLogprobs]
  int32_t edit_begin = 0;    // [edit_begin, edit_end) of the edit list
  int32_t edit_end = 0;
};

// A change to one token's logit before sampling, applied as the CPU Sampler does: add `bias`,
// then the repetition penalty when `repetition` != 1 (divide positive logits, multiply negative
// ones), then subtract `subtract` (presence + frequency × count); `suppress` makes it -inf.
struct LogitEdit {
  int32_t token = 0;
  float bias = 0.0f;
  float repetition = 1.0f;
  float subtract = 0.0f;
  int32_t suppress = 0;
};

struct SampleRowResult {
  int32_t token = 0;
  float logprob = 0.0f;  // raw log-softmax of the chosen token
  int32_t n_top = 0;
  int32_t top_tokens[kMaxTopLogprobs];
  float top_logprobs[kMaxTopLogprobs];
};

// Samples one token per row of logits [n_rows, vocab] (unchanged). `work` is [n_rows, vocab] f32
// scratch. Results for row r go to results[r].
cudaError_t sample(const float* logits, int32_t n_rows, int32_t vocab,
                   const SampleRowParams* params, const LogitEdit* edits, float* work,
                   SampleRowResult* results, cudaStream_t s);

}  // namespace ponder::worker::cuda
