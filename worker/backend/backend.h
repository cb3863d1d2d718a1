// Backend: the ops of a decoder forward pass. The CPU backend is the reference; others (CUDA) are
// tested op by op against it. All activations are f32 row-major; weights keep their checkpoint
// dtype (f32, f16 or bf16). Every tensor an op takes lives in the backend's memory() (host memory
// for the CPU backend, the GPU's for CUDA); token ids, positions and block tables are host arrays.
// Ops may run asynchronously: results are visible to memory().copy() and after synchronize().
// A backend instance is used by one engine thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "worker/kv_cache.h"
#include "worker/memory_space.h"
#include "worker/tensor.h"

namespace ponder::worker {

// Rotary embedding inverse frequencies for one model (rope scaling already applied).
struct RopeTable {
  std::vector<float> inv_freq;  // [rotated dims / 2]
  float attention_factor = 1.0f;
  // The rotated dims hold interleaved pairs (x0, x1), (x2, x3), ... (DeepSeek); rope() writes
  // them back de-interleaved (evens' rotations, then odds'), as transformers does.
  bool interleaved = false;
};

struct ModelConfig;

// One sequence's slice of a flattened batch: tokens [token_begin, token_begin + n_tokens) sit at
// positions [start_pos, start_pos + n_tokens) and attend to all earlier positions of the sequence.
struct SeqSlice {
  int32_t token_begin = 0;
  int32_t n_tokens = 0;
  int32_t start_pos = 0;
  std::span<const int32_t> block_table;  // KV blocks covering positions [0, start_pos + n_tokens)
};

struct BatchLayout {
  std::vector<SeqSlice> seqs;
  std::vector<int32_t> positions;  // [n_tokens]
  int32_t n_tokens() const { return static_cast<int32_t>(positions.size()); }
};

// What begin_step() tells the forward pass: every activation of the step has `n_tokens` rows, at
// least the batch's tokens (more when the backend pads a decode batch to a recorded graph's size;
// the extra rows are inert: ids -1, no KV written, attention output zero).
struct StepShape {
  int32_t n_tokens = 0;
};

struct StepOptions {
  // Between begin_step and end_step the ops depend only on the batch's shapes and the layout
  // begin_step uploaded: no collective, no copy to the host. A backend may then record the step
  // once and replay it (CUDA graphs) for later steps of the same shape and key.
  bool replayable = false;
  const void* key[2] = {nullptr, nullptr};  // what the recording belongs to (model, KV cache)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // One line for logs: "avx512, 2 threads"; "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB".
  virtual std::string description() const = 0;
  // Where the tensors of this backend's ops live, and how to allocate and copy them.
  virtual MemorySpace& memory() const { return host_memory(); }
  Device device() const { return memory().device(); }

  // Brackets one forward step over `batch`: a device backend uploads the batch's positions and
  // block tables once here (kv_store, attention and rope then use them). end_step() finishes the
  // step's work (a recorded step is launched here) and reports device errors.
  virtual StepShape begin_step(const BatchLayout& batch, const StepOptions& options) {
    return {batch.n_tokens()};
  }
  virtual Status end_step() { return {}; }
  // Waits for every op issued so far (before a collective reads their outputs on the host side).
  virtual Status synchronize() { return {}; }
  // Whether this backend's ops cover `config`'s architecture; an error naming what is missing.
  virtual Status supports(const ModelConfig& config) const { return {}; }

  // out[i, :] = table[ids[i], :], or zeros where ids[i] < 0 (a token outside this rank's
  // vocabulary slice)                       table [vocab, hidden] any float dtype; out [n, hidden]
  virtual void embedding(const Tensor& table, std::span<const int32_t> ids, Tensor out) = 0;
  // out[i] = x[i] / rms(x[i]) * weight      x, out [n, d]; weight [d] f32; out may alias x
  virtual void rms_norm(Tensor x, const Tensor& weight, float eps, Tensor out) = 0;
  // residual += x; out = rms_norm(residual)   (the fused residual add before each norm)
  virtual void add_rms_norm(Tensor residual, Tensor x, const Tensor& weight, float eps,
                            Tensor out) = 0;
  // y[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])   w f32/f16/bf16; bias f32 or empty
  virtual void matmul(Tensor x, const Tensor& w, const Tensor& bias, Tensor y) = 0;
  // Rotates x [n, heads, head_dim] in place at positions[n] (Hugging Face rotate-half layout):
  // the last 2 * inv_freq.size() dims of each head (all of them but for MLA's nope part).
  virtual void rope(Tensor x, std::span<const int32_t> positions, const RopeTable& table) = 0;
  // Writes k, v [n, n_kv_heads, head_dim] of the batch's tokens into the cache at their positions
  // (a latent cache: k only, v empty).
  virtual void kv_store(KvCache& cache, int layer, Tensor k, Tensor v,
                        const BatchLayout& batch) = 0;
  // Causal GQA attention of q [n, n_heads, head_dim] over the cache; out [n, n_heads,
  // cache.value_dim()] (a latent cache: every head attends to the one latent row per position).
  virtual void attention(Tensor q, const KvCache& cache, int layer, const BatchLayout& batch,
                         float scale, Tensor out) = 0;
  // Per-head matmul: for each head h < heads, y[:, h*y_stride + j] = Σ_i w[h*m + j, i] ·
  // x[:, h*x_stride + i] for j < m, i < k      w [heads * m, k]; x [n, *], y [n, *] f32
  // (MLA's absorbed key and value projections).
  virtual void head_matmul(Tensor x, int64_t x_stride, const Tensor& w, int64_t heads, Tensor y,
                           int64_t y_stride) = 0;
  // dst[rows[i], :] += scales[i] * src[i, :]   src [rows.size(), d]; dst [n, d] f32; rows distinct
  virtual void scatter_add_rows(Tensor src, std::span<const int32_t> rows,
                                std::span<const float> scales, Tensor dst) = 0;
  // x = 0                                     x f32
  virtual void zero(Tensor x) = 0;
  // out[i, j] = silu(gate_up[i, j]) * gate_up[i, ffn + j]     gate_up [n, 2*ffn]; out [n, ffn]
  virtual void swiglu(Tensor gate_up, Tensor out) = 0;
  // dst[i, dst_col + j] = src[i, src_col + j] for j < cols and every row   src, dst [n, *] f32
  virtual void copy_columns(Tensor src, int64_t src_col, Tensor dst, int64_t dst_col,
                            int64_t cols) = 0;
  // x += y                                    x, y f32 of the same shape
  virtual void add(Tensor x, Tensor y) = 0;
  // dst[i, :] = src[rows[i], :]               src [n, d]; dst [rows.size(), d] f32
  virtual void gather_rows(Tensor src, std::span<const int32_t> rows, Tensor dst) = 0;
};

}  // namespace ponder::worker
