// The shared decoder forward pass and RoPE frequency tables (incl. Llama-3 scaling).
#include "worker/model/decoder_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/check.h"
#include "worker/model/architecture.h"
#include "worker/model/moe_router.h"

namespace ponder::worker {

namespace {

// YaRN's attention scale for a context `scale` times the original: 0.1 · mscale · ln(scale) + 1.
double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

RopeTable make_rope_table(const ModelConfig& c) {
  RopeTable table;
  const int64_t dim = c.rope_dim(), half = dim / 2;
  table.inv_freq.resize(half);
  table.interleaved = c.is_mla() && c.mla.rope_interleave;
  const RopeScaling& s = c.rope_scaling;
  // YaRN: dims that turn fewer than beta_slow times over the original context are interpolated
  // (divided by factor), those turning more than beta_fast times are kept, with a linear ramp
  // between (transformers' _compute_yarn_parameters).
  double ramp_low = 0.0, ramp_high = 0.0;
  if (s.type == RopeScalingType::kYarn) {
    auto correction_dim = [&](double rotations) {
      return dim * std::log(static_cast<double>(s.original_max_position_embeddings) /
                            (rotations * 2.0 * M_PI)) /
             (2.0 * std::log(c.rope_theta));
    };
    ramp_low = correction_dim(s.beta_fast);
    ramp_high = correction_dim(s.beta_slow);
    if (s.truncate) {
      ramp_low = std::floor(ramp_low);
      ramp_high = std::ceil(ramp_high);
    }
    ramp_low = std::max(ramp_low, 0.0);
    ramp_high = std::min(ramp_high, static_cast<double>(dim - 1));
    if (ramp_low == ramp_high) ramp_high += 0.001;
    table.attention_factor = static_cast<float>(
        s.attention_factor > 0.0 ? s.attention_factor
        : s.mscale > 0.0 && s.mscale_all_dim > 0.0
            ? yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim)
            : yarn_mscale(s.factor, 1.0));
  }
  for (int64_t i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / dim);
    if (s.type == RopeScalingType::kLinear) {
      inv /= s.factor;
    } else if (s.type == RopeScalingType::kLlama3) {
      // Long wavelengths are slowed by `factor`, short ones kept, and the band between blends.
      const double old_len = static_cast<double>(s.original_max_position_embeddings);
      const double low_wavelen = old_len / s.low_freq_factor;
      const double high_wavelen = old_len / s.high_freq_factor;
      const double wavelen = 2.0 * M_PI / inv;
      if (wavelen > low_wavelen) {
        inv /= s.factor;
      } else if (wavelen >= high_wavelen) {
        double smooth = (old_len / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
        inv = (1.0 - smooth) * inv / s.factor + smooth * inv;
      }
    } else if (s.type == RopeScalingType::kYarn) {
      const double ramp =
          std::clamp((static_cast<double>(i) - ramp_low) / (ramp_high - ramp_low), 0.0, 1.0);
      const double keep = 1.0 - ramp;  // the extrapolated share
      inv = inv / s.factor * (1.0 - keep) + inv * keep;
    }
    table.inv_freq[i] = static_cast<float>(inv);
  }
  return table;
}

float attention_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  // DeepSeek scales the whole softmax by YaRN's mscale² too (transformers' yarn_apply_mscale).
  const RopeScaling& s = c.rope_scaling;
  if (c.is_mla() && s.type != RopeScalingType::kNone && s.mscale_all_dim > 0.0) {
    const double m = yarn_mscale(s.factor, s.mscale_all_dim);
    scale *= m * m;
  }
  return static_cast<float>(scale);
}

Expected<std::unique_ptr<DecoderModel>> DecoderModel::load(const std::string& model_dir,
                                                           const LoadOptions& options,
                                                           const ShardSpec& shard) {
  std::unique_ptr<DecoderModel> model(new DecoderModel());
  PONDER_ASSIGN_OR_RETURN(model->config_, load_model_config(model_dir));
  PONDER_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::open(model_dir));
  model->shard_ = shard;
  model->dims_ = ShardDims::of(model->config_, shard);
  PONDER_ASSIGN_OR_RETURN(model->weights_,
                          ModelWeights::load(ckpt, model->config_, shard, options));
  PONDER_RETURN_IF_ERROR(model->weights_.quantize(options.quantize));
  if (options.quantize != WeightQuant::kNone) model->config_.weight_quant = options.quantize;
  model->rope_ = make_rope_table(model->config_);
  model->scale_ = attention_scale(model->config_);
  return model;
}

std::unique_ptr<DecoderModel> DecoderModel::create(const ModelConfig& config, ModelWeights weights,
                                                   const ShardSpec& shard) {
  std::unique_ptr<DecoderModel> model(new DecoderModel());
  model->config_ = config;
  model->shard_ = shard;
  model->dims_ = ShardDims::of(config, shard);
  model->weights_ = std::move(weights);
  model->rope_ = make_rope_table(config);
  model->scale_ = attention_scale(config);
  return model;
}

KvCacheConfig DecoderModel::kv_cache_config(int64_t n_blocks, int64_t block_size,
                                            DType dtype) const {
  KvCacheConfig kv = kv_cache_layout(config_, dims_.n_layers(), dims_.n_kv_heads);
  kv.block_size = block_size;
  kv.n_blocks = n_blocks;
  kv.dtype = dtype;
  return kv;
}

KvCacheConfig kv_cache_layout(const ModelConfig& c, int64_t n_layers, int64_t n_kv_heads) {
  return {.n_layers = n_layers,
          .n_kv_heads = c.is_mla() ? 1 : n_kv_heads,  // MLA: one latent row, replicated over tp
          .head_dim = c.cache_key_dim(),
          .latent_dim = c.is_mla() ? c.mla.kv_lora_rank : 0};
}

namespace {

// Grows `buffer` to at least `bytes` in `memory` (contents are not kept).
Status fit(Buffer& buffer, size_t bytes, MemorySpace& memory) {
  if (!buffer.empty() && buffer.size() >= bytes && buffer.device() == memory.device()) return {};
  buffer.reset();
  PONDER_ASSIGN_OR_RETURN(buffer, memory.allocate(bytes));
  return {};
}

Tensor f32_view(const Buffer& b, std::initializer_list<int64_t> dims, size_t offset_floats = 0) {
  return Tensor::view(b.as<float>() + offset_floats, DType::kF32, dims, b.device());
}

}  // namespace

Status DecoderModel::resize_buffers(int64_t n, MemorySpace& memory) {
  if (memory_ == &memory && capacity_ >= n) return {};
  const int64_t cap = std::max(n, memory_ == &memory ? capacity_ : int64_t{0});
  const ModelConfig& c = config_;
  const MlaConfig& a = c.mla;
  const int64_t heads = dims_.n_heads;
  const int64_t qd = heads * c.head_dim, kvd = dims_.n_kv_heads * c.head_dim;
  const int64_t ffn = std::max({dims_.ffn, dims_.moe_ffn, dims_.shared_ffn});
  const bool mla = c.is_mla(), moe = c.is_moe();
  const int64_t latent = a.kv_lora_rank + a.qk_rope_head_dim;
  const std::pair<Buffer*, int64_t> buffers[] = {
      {&x_, c.hidden_size},
      {&norm_, c.hidden_size},
      {&qkv_, mla ? 0 : qd + 2 * kvd},
      {&q_, qd},
      {&k_, mla ? 0 : kvd},
      {&v_, mla ? 0 : kvd},
      {&attn_, std::max(qd, heads * a.v_head_dim)},
      {&delta_, c.hidden_size},
      {&gate_up_, 2 * ffn},
      {&act_, ffn},
      {&q_a_, a.q_lora_rank},
      {&latent_, mla ? latent : 0},
      {&latent_norm_, a.kv_lora_rank},
      {&q_latent_, mla ? heads * latent : 0},
      {&attn_latent_, heads * a.kv_lora_rank},
      {&router_, c.moe.n_experts},
      {&expert_in_, moe ? c.hidden_size : 0},
      {&expert_out_, moe ? c.hidden_size : 0}};
  if (memory_ != &memory) {  // another memory space: nothing allocated in the old one may stay
    for (Buffer* b : {&last_, &logits_, &slice_, &gathered_}) b->reset();
  }
  memory_ = nullptr;  // until every buffer is in place
  for (const auto& [buffer, cols] : buffers) {
    buffer->reset();
    if (cols == 0) continue;  // not used by this architecture
    PONDER_RETURN_IF_ERROR(fit(*buffer, static_cast<size_t>(cap * cols) * sizeof(float), memory));
  }
  local_ids_.resize(cap);
  memory_ = &memory;
  capacity_ = cap;
  return {};
}

// A collective reads device memory directly only through NCCL; anything else goes via the host.
namespace {
bool reads_memory_of(const collective::Communicator& comm, const Backend& be) {
  return be.device() == Device::kHost || comm.backend() == "nccl";
}
}  // namespace

Status DecoderModel::all_reduce(Backend& be, collective::Communicator& comm, Tensor t,
                                const ShardComms& comms) {
  if (comm.size() == 1) return {};
  const size_t count = static_cast<size_t>(t.numel());
  if (reads_memory_of(comm, be)) {
    PONDER_RETURN_IF_ERROR(be.synchronize());
    return comm.all_reduce_sum(t.as<float>(), count, collective::deadline_in(comms.timeout));
  }
  std::vector<char>& h = host_stage_[0];
  h.resize(count * sizeof(float));
  be.memory().copy(h.data(), t.data, h.size());
  PONDER_RETURN_IF_ERROR(comm.all_reduce_sum(reinterpret_cast<float*>(h.data()), count,
                                             collective::deadline_in(comms.timeout)));
  be.memory().copy(t.data, h.data(), h.size());
  return {};
}

Status DecoderModel::all_gather(Backend& be, collective::Communicator& comm, const void* send,
                                void* recv, size_t bytes, const ShardComms& comms) {
  if (reads_memory_of(comm, be)) {
    PONDER_RETURN_IF_ERROR(be.synchronize());
    return comm.all_gather(send, recv, bytes, collective::deadline_in(comms.timeout));
  }
  std::vector<char>&mine = host_stage_[0], &all = host_stage_[1];
  mine.resize(bytes);
  all.resize(bytes * comm.size());
  be.memory().copy(mine.data(), send, bytes);
  PONDER_RETURN_IF_ERROR(
      comm.all_gather(mine.data(), all.data(), bytes, collective::deadline_in(comms.timeout)));
  be.memory().copy(recv, all.data(), all.size());
  return {};
}

Status DecoderModel::send(Backend& be, const void* data, size_t bytes, int peer,
                          const ShardComms& comms) {
  collective::Communicator& comm = *comms.pp;
  if (reads_memory_of(comm, be)) {
    PONDER_RETURN_IF_ERROR(be.synchronize());
    return comm.send(data, bytes, peer, /*tag=*/1, collective::deadline_in(comms.timeout));
  }
  std::vector<char>& h = host_stage_[0];
  h.resize(bytes);
  be.memory().copy(h.data(), data, bytes);
  return comm.send(h.data(), bytes, peer, /*tag=*/1, collective::deadline_in(comms.timeout));
}

Status DecoderModel::recv(Backend& be, void* data, size_t bytes, int peer,
                          const ShardComms& comms) {
  collective::Communicator& comm = *comms.pp;
  if (reads_memory_of(comm, be)) {
    PONDER_RETURN_IF_ERROR(be.synchronize());
    return comm.recv(data, bytes, peer, /*tag=*/1, collective::deadline_in(comms.timeout));
  }
  std::vector<char>& h = host_stage_[0];
  h.resize(bytes);
  PONDER_RETURN_IF_ERROR(
      comm.recv(h.data(), bytes, peer, /*tag=*/1, collective::deadline_in(comms.timeout)));
  be.memory().copy(data, h.data(), bytes);
  return {};
}

// Stage input: each TP rank of the previous stage sent its 1/tp column slice of the hidden
// state; the TP group all-gathers the slices back into [n, hidden].
Status DecoderModel::receive_input(Backend& be, int64_t n, const ShardComms& comms) {
  const int64_t h = config_.hidden_size;
  const int tp = comms.tp ? comms.tp->size() : 1;
  const int64_t part = h / tp;
  const int prev = comms.pp->rank() - 1;
  if (tp == 1) return recv(be, x_.data(), n * h * sizeof(float), prev, comms);
  PONDER_RETURN_IF_ERROR(fit(gathered_, n * h * sizeof(float), be.memory()));
  float* mine = gathered_.as<float>() + comms.tp->rank() * n * part;
  PONDER_RETURN_IF_ERROR(recv(be, mine, n * part * sizeof(float), prev, comms));
  PONDER_RETURN_IF_ERROR(
      all_gather(be, *comms.tp, mine, gathered_.data(), n * part * sizeof(float), comms));
  Tensor x = f32_view(x_, {n, h});
  for (int r = 0; r < tp; ++r)
    be.copy_columns(f32_view(gathered_, {n, part}, r * n * part), 0, x, r * part, part);
  return {};
}

// Stage output: the residual stream after this stage's last layer; each TP rank sends only its
// column slice (tp× fewer bytes between stages).
Status DecoderModel::send_output(Backend& be, int64_t n, const ShardComms& comms) {
  const int64_t h = config_.hidden_size;
  const int tp = comms.tp ? comms.tp->size() : 1;
  const int64_t part = h / tp;
  const int next = comms.pp->rank() + 1;
  if (tp == 1) return send(be, x_.data(), n * h * sizeof(float), next, comms);
  PONDER_RETURN_IF_ERROR(fit(slice_, n * part * sizeof(float), be.memory()));
  be.copy_columns(f32_view(x_, {n, h}), comms.tp->rank() * part, f32_view(slice_, {n, part}), 0,
                  part);
  return send(be, slice_.data(), n * part * sizeof(float), next, comms);
}

// Final norm is already in norm_; lm_head over this rank's vocabulary slice for the rows asked
// for, then the slices are gathered so every rank of the stage holds logits [rows, vocab].
Status DecoderModel::compute_logits(Backend& be, std::span<const int32_t> rows, Tensor logits,
                                    const ShardComms& comms) {
  const int64_t h = config_.hidden_size, vocab = config_.vocab_size;
  const int64_t n_out = static_cast<int64_t>(rows.size());
  PONDER_RETURN_IF_ERROR(fit(last_, n_out * h * sizeof(float), be.memory()));
  Tensor last = f32_view(last_, {n_out, h});
  be.gather_rows(f32_view(norm_, {capacity_, h}), rows, last);
  const int tp = comms.tp ? comms.tp->size() : 1;
  if (tp == 1) {
    be.matmul(last, weights_.lm_head, Tensor{}, logits);
    return {};
  }
  const int64_t stride = dims_.vocab_stride, local = dims_.vocab_end - dims_.vocab_begin;
  PONDER_RETURN_IF_ERROR(fit(slice_, n_out * stride * sizeof(float), be.memory()));
  PONDER_RETURN_IF_ERROR(fit(gathered_, tp * n_out * stride * sizeof(float), be.memory()));
  Tensor mine = f32_view(slice_, {n_out, stride});
  if (local > 0) {
    // The matmul writes [n_out, local] densely (into `logits`, overwritten below); each row goes
    // to the padded stride that the gather expects. Columns past `local` are never read.
    Tensor dense = Tensor::view(logits.data, DType::kF32, {n_out, local}, logits.device);
    be.matmul(last, weights_.lm_head, Tensor{}, dense);
    be.copy_columns(dense, 0, mine, 0, local);
  }
  PONDER_RETURN_IF_ERROR(all_gather(be, *comms.tp, slice_.data(), gathered_.data(),
                                    n_out * stride * sizeof(float), comms));
  for (int r = 0; r < tp; ++r) {
    const int64_t v0 = r * stride, v1 = std::min(vocab, v0 + stride);
    if (v1 > v0)
      be.copy_columns(f32_view(gathered_, {n_out, stride}, r * n_out * stride), 0, logits, v0,
                      v1 - v0);
  }
  return {};
}

Status DecoderModel::forward_layers(Backend& be, KvCache& cache, const BatchLayout& batch,
                                    int64_t n, const ShardComms& comms) {
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  Tensor x = f32_view(x_, {n, h});          // residual stream
  Tensor norm = f32_view(norm_, {n, h});
  Tensor delta = f32_view(delta_, {n, h});  // sub-layer output
  for (int64_t il = 0; il < dims_.n_layers(); ++il) {
    const LayerWeights& w = weights_.layers[il];
    const int layer = static_cast<int>(il);
    if (il == 0) {
      be.rms_norm(x, w.attn_norm, eps, norm);
    } else {
      be.add_rms_norm(x, delta, w.attn_norm, eps, norm);
    }
    if (c.is_mla()) {
      mla_attention(be, cache, layer, batch, n);
    } else {
      attention(be, cache, layer, batch, n);
    }
    if (comms.tp) PONDER_RETURN_IF_ERROR(all_reduce(be, *comms.tp, delta, comms));
    be.add_rms_norm(x, delta, w.mlp_norm, eps, norm);
    if (w.experts.empty()) {
      mlp(be, w.w_gate_up, w.b_gate_up, w.w_down, w.b_down, norm, delta);
    } else {
      PONDER_RETURN_IF_ERROR(moe(be, w, n, comms));
    }
    if (comms.tp) PONDER_RETURN_IF_ERROR(all_reduce(be, *comms.tp, delta, comms));
  }
  return {};
}

// Grouped-query attention of the layer's norm_ rows into delta_.
void DecoderModel::attention(Backend& be, KvCache& cache, int layer, const BatchLayout& batch,
                             int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  const int64_t h = c.hidden_size, hd = c.head_dim, nq = dims_.n_heads, nkv = dims_.n_kv_heads;
  const int64_t qd = nq * hd, kvd = nkv * hd;
  const float eps = static_cast<float>(c.rms_norm_eps);
  Tensor qkv = f32_view(qkv_, {n, qd + 2 * kvd});
  be.matmul(f32_view(norm_, {n, h}), w.wqkv, w.bqkv, qkv);
  be.copy_columns(qkv, 0, f32_view(q_, {n, qd}), 0, qd);
  be.copy_columns(qkv, qd, f32_view(k_, {n, kvd}), 0, kvd);
  be.copy_columns(qkv, qd + kvd, f32_view(v_, {n, kvd}), 0, kvd);
  if (c.qk_norm) {
    Tensor q_heads = f32_view(q_, {n * nq, hd});
    Tensor k_heads = f32_view(k_, {n * nkv, hd});
    be.rms_norm(q_heads, w.q_norm, eps, q_heads);
    be.rms_norm(k_heads, w.k_norm, eps, k_heads);
  }
  Tensor q = f32_view(q_, {n, nq, hd}), k = f32_view(k_, {n, nkv, hd});
  be.rope(q, batch.positions, rope_);
  be.rope(k, batch.positions, rope_);
  be.kv_store(cache, layer, k, f32_view(v_, {n, nkv, hd}), batch);
  be.attention(q, cache, layer, batch, scale_, f32_view(attn_, {n, nq, hd}));
  be.matmul(f32_view(attn_, {n, qd}), w.wo, w.bo, f32_view(delta_, {n, h}));
}

// Multi-head Latent Attention in the absorbed form: the cache holds each position's latent row
// [c_kv | k_rope]; a query becomes [W_ukᵀ q_nope | q_rope] per head, attends over the latent
// rows (values: their c_kv part), and W_uv lifts each head's output back to v_head_dim. No
// per-head K or V is ever made for the context.
void DecoderModel::mla_attention(Backend& be, KvCache& cache, int layer, const BatchLayout& batch,
                                 int64_t n) {
  const ModelConfig& c = config_;
  const MlaConfig& a = c.mla;
  const LayerWeights& w = weights_.layers[layer];
  const int64_t h = c.hidden_size, heads = dims_.n_heads, qk = c.head_dim;
  const int64_t nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim, lora = a.kv_lora_rank;
  const int64_t d = lora + rope;
  const float eps = static_cast<float>(c.rms_norm_eps);
  Tensor norm = f32_view(norm_, {n, h});
  Tensor q = f32_view(q_, {n, heads * qk});
  if (a.q_lora_rank) {
    Tensor qa = f32_view(q_a_, {n, a.q_lora_rank});
    be.matmul(norm, w.wq_a, Tensor{}, qa);
    be.rms_norm(qa, w.q_a_norm, eps, qa);
    be.matmul(qa, w.wq, Tensor{}, q);
  } else {
    be.matmul(norm, w.wq, Tensor{}, q);
  }
  Tensor latent = f32_view(latent_, {n, d});
  be.matmul(norm, w.wkv_a, Tensor{}, latent);
  Tensor c_kv = f32_view(latent_norm_, {n, lora});
  be.copy_columns(latent, 0, c_kv, 0, lora);
  be.rms_norm(c_kv, w.kv_a_norm, eps, c_kv);
  be.copy_columns(c_kv, 0, latent, 0, lora);
  be.rope(f32_view(q_, {n, heads, qk}), batch.positions, rope_);  // each head's rope tail
  be.rope(f32_view(latent_, {n, 1, d}), batch.positions, rope_);  // the shared rotary key
  be.kv_store(cache, layer, f32_view(latent_, {n, 1, d}), Tensor{}, batch);
  Tensor q_latent = f32_view(q_latent_, {n, heads * d});
  be.head_matmul(q, qk, w.w_uk, heads, q_latent, d);
  for (int64_t hh = 0; hh < heads; ++hh)
    be.copy_columns(q, hh * qk + nope, q_latent, hh * d + lora, rope);
  be.attention(f32_view(q_latent_, {n, heads, d}), cache, layer, batch, scale_,
               f32_view(attn_latent_, {n, heads, lora}));
  Tensor out = f32_view(attn_, {n, heads * a.v_head_dim});
  be.head_matmul(f32_view(attn_latent_, {n, heads * lora}), lora, w.w_uv, heads, out,
                 a.v_head_dim);
  be.matmul(out, w.wo, w.bo, f32_view(delta_, {n, h}));
}

// out = down(silu(gate(x)) * up(x)) for the rows of x.
void DecoderModel::mlp(Backend& be, const Tensor& w_gate_up, const Tensor& b_gate_up,
                       const Tensor& w_down, const Tensor& b_down, Tensor x, Tensor out) {
  const int64_t n = x.rows(), ffn = w_gate_up.rows() / 2;
  Tensor gate_up = f32_view(gate_up_, {n, 2 * ffn});
  Tensor act = f32_view(act_, {n, ffn});
  be.matmul(x, w_gate_up, b_gate_up, gate_up);
  be.swiglu(gate_up, act);
  be.matmul(act, w_down, b_down, out);
}

// A mixture-of-experts layer over norm_ into delta_: route the rows on the host, then each
// expert that got rows runs its MLP on just those rows and adds them back with their weights
// (experts in index order, as transformers sums them), then the shared experts. Under expert
// parallelism every rank of the EP group holds the same rows; each routes a contiguous 1/ep of
// them, sends their pairs to the experts' ranks and back (moe_exchange), and the EP group
// all-gathers the blocks of delta_.
Status DecoderModel::moe(Backend& be, const LayerWeights& w, int64_t n, const ShardComms& comms) {
  const MoeConfig& m = config_.moe;
  const int64_t h = config_.hidden_size, e_count = m.n_experts, k = m.top_k;
  Tensor norm = f32_view(norm_, {n, h}), delta = f32_view(delta_, {n, h});
  Tensor logits = f32_view(router_, {n, e_count});
  be.matmul(norm, w.router, Tensor{}, logits);
  PONDER_RETURN_IF_ERROR(be.synchronize());
  route_logits_.resize(n * e_count);
  be.memory().copy(route_logits_.data(), logits.data, route_logits_.size() * sizeof(float));
  route_bias_.resize(w.router_bias.empty() ? 0 : e_count);
  if (!route_bias_.empty())
    be.memory().copy(route_bias_.data(), w.router_bias.data, e_count * sizeof(float));
  const int ep = comms.ep ? comms.ep->size() : 1;
  const int64_t per = (n + ep - 1) / ep;
  const int64_t row0 = std::min<int64_t>(n, (comms.ep ? comms.ep->rank() : 0) * per);
  const int64_t rows = std::min(n, row0 + per) - row0;
  route_experts_.resize(rows * k);
  route_weights_.resize(rows * k);
  route_tokens(m, route_logits_.data() + row0 * e_count, rows, route_bias_, route_experts_.data(),
               route_weights_.data());
  be.zero(delta);
  if (ep == 1) {
    // Rows per expert, in row order (a counting sort of the (row, expert) pairs).
    expert_begin_.assign(e_count + 1, 0);
    for (int32_t e : route_experts_) ++expert_begin_[e + 1];
    for (int64_t e = 0; e < e_count; ++e) expert_begin_[e + 1] += expert_begin_[e];
    expert_rows_.resize(n * k);
    expert_scales_.resize(n * k);
    std::vector<int32_t> fill(expert_begin_.begin(), expert_begin_.end() - 1);
    for (int64_t i = 0; i < n * k; ++i) {
      const int32_t e = route_experts_[i];
      expert_rows_[fill[e]] = static_cast<int32_t>(i / k);
      expert_scales_[fill[e]++] = route_weights_[i];
    }
    for (int64_t e = 0; e < e_count; ++e) {
      const int32_t begin = expert_begin_[e], count = expert_begin_[e + 1] - begin;
      if (count == 0) continue;
      const std::span<const int32_t> which(expert_rows_.data() + begin, count);
      const ExpertWeights& x = w.experts[e];
      Tensor in = f32_view(expert_in_, {count, h}), out = f32_view(expert_out_, {count, h});
      be.gather_rows(norm, which, in);
      mlp(be, x.w_gate_up, Tensor{}, x.w_down, Tensor{}, in, out);
      be.scatter_add_rows(out, which, std::span<const float>(expert_scales_.data() + begin, count),
                          delta);
    }
  } else {
    PONDER_RETURN_IF_ERROR(moe_exchange(be, w, row0, rows, comms));
  }
  if (!w.w_gate_up.empty() && rows > 0) {
    Tensor shared = f32_view(expert_out_, {rows, h});
    mlp(be, w.w_gate_up, Tensor{}, w.w_down, Tensor{}, f32_view(norm_, {rows, h}, row0 * h),
        shared);
    be.add(f32_view(delta_, {rows, h}, row0 * h), shared);
  }
  if (ep == 1) return {};
  // Every rank's block of rows (the last ones padded) back to all of the EP group.
  const size_t block = static_cast<size_t>(per * h) * sizeof(float);
  PONDER_RETURN_IF_ERROR(fit(slice_, block, be.memory()));
  PONDER_RETURN_IF_ERROR(fit(gathered_, block * ep, be.memory()));
  be.zero(f32_view(slice_, {per, h}));
  if (rows > 0)
    be.memory().copy(slice_.data(), delta_.as<float>() + row0 * h, rows * h * sizeof(float));
  PONDER_RETURN_IF_ERROR(all_gather(be, *comms.ep, slice_.data(), gathered_.data(), block, comms));
  be.memory().copy(delta_.data(), gathered_.data(), static_cast<size_t>(n * h) * sizeof(float));
  return {};
}

Status DecoderModel::moe_exchange(Backend& be, const LayerWeights& w, int64_t row0, int64_t rows,
                                  const ShardComms& comms) {
  collective::Communicator& ep = *comms.ep;
  const int ranks = ep.size();
  const int64_t h = config_.hidden_size, k = config_.moe.top_k;
  const int64_t per_rank = dims_.expert_end - dims_.expert_begin, pairs = rows * k;
  const int64_t stride = h + 1;  // a pair on the wire: [its expert on the receiver | the row]
  ep_rows_.resize(rows * h);
  if (rows > 0)
    be.memory().copy(ep_rows_.data(), norm_.as<float>() + row0 * h, rows * h * sizeof(float));
  // Pairs by destination rank, in pair order; ep_pair_of_[slot] is the pair sent in that slot.
  std::vector<uint64_t> send_n(ranks, 0), recv_n(ranks, 0);
  for (int32_t e : route_experts_) ++send_n[e / per_rank];
  std::vector<int64_t> fill(ranks, 0);
  for (int q = 1; q < ranks; ++q) fill[q] = fill[q - 1] + static_cast<int64_t>(send_n[q - 1]);
  ep_pair_of_.resize(pairs);
  ep_send_.resize(pairs * stride);
  for (int64_t i = 0; i < pairs; ++i) {
    const int32_t e = route_experts_[i], dest = static_cast<int32_t>(e / per_rank);
    const int64_t slot = fill[dest]++;
    ep_pair_of_[slot] = static_cast<int32_t>(i);
    const int32_t local = static_cast<int32_t>(e - dest * per_rank);
    std::memcpy(ep_send_.data() + slot * stride, &local, sizeof(local));
    std::memcpy(ep_send_.data() + slot * stride + 1, ep_rows_.data() + (i / k) * h, h * sizeof(float));
  }
  const auto deadline = [&] { return collective::deadline_in(comms.timeout); };
  std::vector<size_t> count_bytes(ranks, sizeof(uint64_t));
  PONDER_RETURN_IF_ERROR(
      ep.all_to_all(send_n.data(), count_bytes.data(), recv_n.data(), count_bytes.data(), deadline()));
  std::vector<size_t> send_bytes(ranks), recv_bytes(ranks);
  int64_t received = 0;
  for (int q = 0; q < ranks; ++q) {
    send_bytes[q] = send_n[q] * stride * sizeof(float);
    recv_bytes[q] = recv_n[q] * stride * sizeof(float);
    received += static_cast<int64_t>(recv_n[q]);
  }
  ep_recv_.resize(received * stride);
  PONDER_RETURN_IF_ERROR(ep.all_to_all(ep_send_.data(), send_bytes.data(), ep_recv_.data(),
                                       recv_bytes.data(), deadline()));
  // This rank's experts over what came in.
  ep_expert_of_.resize(received);
  for (int64_t j = 0; j < received; ++j) {
    int32_t local = 0;
    std::memcpy(&local, ep_recv_.data() + j * stride, sizeof(local));
    if (local < 0 || local >= per_rank)
      return error(StatusCode::kInternal, "expert-parallel pair names local expert %d of %lld",
                   local, (long long)per_rank);
    ep_expert_of_[j] = local;
  }
  ep_out_.resize(received * h);
  run_local_experts(be, w, ep_expert_of_, ep_recv_.data() + 1, stride, ep_out_.data());
  // Outputs back to where the pairs came from, in the order they came.
  for (int q = 0; q < ranks; ++q) {
    std::swap(send_bytes[q], recv_bytes[q]);
    send_bytes[q] = send_bytes[q] / stride * h;
    recv_bytes[q] = recv_bytes[q] / stride * h;
  }
  ep_send_.resize(pairs * h);
  PONDER_RETURN_IF_ERROR(ep.all_to_all(ep_out_.data(), send_bytes.data(), ep_send_.data(),
                                       recv_bytes.data(), deadline()));
  // Weighted sums, each row's experts in index order (as the single-rank path adds them): the
  // j-th smallest expert of every row in one scatter-add.
  std::vector<int64_t> slot_of(pairs);
  for (int64_t slot = 0; slot < pairs; ++slot) slot_of[ep_pair_of_[slot]] = slot;
  std::vector<int32_t> which(rows);
  std::vector<float> scales(rows);
  ep_rows_.resize(rows * h);
  std::vector<std::vector<int32_t>> sorted(rows);
  for (int64_t t = 0; t < rows; ++t) {
    sorted[t].resize(k);
    std::iota(sorted[t].begin(), sorted[t].end(), 0);
    std::sort(sorted[t].begin(), sorted[t].end(), [&](int32_t a, int32_t b) {
      return route_experts_[t * k + a] < route_experts_[t * k + b];
    });
    which[t] = static_cast<int32_t>(row0 + t);
  }
  for (int64_t j = 0; j < k && rows > 0; ++j) {
    for (int64_t t = 0; t < rows; ++t) {
      const int64_t pair = t * k + sorted[t][j];
      scales[t] = route_weights_[pair];
      std::memcpy(ep_rows_.data() + t * h, ep_send_.data() + slot_of[pair] * h, h * sizeof(float));
    }
    Tensor out = f32_view(expert_out_, {rows, h});
    be.memory().copy(out.data, ep_rows_.data(), rows * h * sizeof(float));
    be.scatter_add_rows(out, which, scales, f32_view(delta_, {capacity_, h}));
  }
  return {};
}

void DecoderModel::run_local_experts(Backend& be, const LayerWeights& w,
                                     std::span<const int32_t> expert_of, const float* in,
                                     int64_t in_stride, float* out) {
  const int64_t h = config_.hidden_size, n_local = static_cast<int64_t>(w.experts.size());
  const int64_t count = static_cast<int64_t>(expert_of.size());
  std::vector<std::vector<int64_t>> by_expert(n_local);
  for (int64_t j = 0; j < count; ++j) by_expert[expert_of[j]].push_back(j);
  std::vector<float> rows;
  for (int64_t e = 0; e < n_local; ++e) {
    const std::vector<int64_t>& js = by_expert[e];
    const int64_t m = static_cast<int64_t>(js.size());
    if (m == 0) continue;
    rows.resize(m * h);
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(rows.data() + i * h, in + js[i] * in_stride, h * sizeof(float));
    Tensor x = f32_view(expert_in_, {m, h}), y = f32_view(expert_out_, {m, h});
    be.memory().copy(x.data, rows.data(), rows.size() * sizeof(float));
    mlp(be, w.experts[e].w_gate_up, Tensor{}, w.experts[e].w_down, Tensor{}, x, y);
    be.memory().copy(rows.data(), y.data, rows.size() * sizeof(float));
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(out + js[i] * h, rows.data() + i * h, h * sizeof(float));
  }
}

Status DecoderModel::forward(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                             const BatchLayout& batch, std::span<const int32_t> logit_rows,
                             float* logits, const ShardComms& comms) {
  const int64_t n_out = static_cast<int64_t>(logit_rows.size()), vocab = config_.vocab_size;
  if (be.device() == Device::kHost)
    return forward_to(be, cache, tokens, batch, logit_rows,
                      Tensor::view(logits, DType::kF32, {n_out, vocab}), comms);
  // A device backend leaves the logits in its memory (padded rows too); the rows asked for come
  // back to the host.
  Tensor out;
  PONDER_RETURN_IF_ERROR(run(be, cache, tokens, batch, logit_rows, Tensor{}, comms, &out));
  if (shard_.last_stage)
    be.memory().copy(logits, out.data, static_cast<size_t>(n_out * vocab) * sizeof(float));
  return {};
}

Status DecoderModel::forward_to(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                                const BatchLayout& batch, std::span<const int32_t> logit_rows,
                                Tensor logits, const ShardComms& comms) {
  const int64_t n_out = static_cast<int64_t>(logit_rows.size()), vocab = config_.vocab_size;
  PONDER_CHECK(!shard_.last_stage || logits.numel() == n_out * vocab,
               "logits%s for %lld rows of %lld", logits.shape_string().c_str(), (long long)n_out,
               (long long)vocab);
  Tensor out;
  PONDER_RETURN_IF_ERROR(run(be, cache, tokens, batch, logit_rows, logits, comms, &out));
  if (shard_.last_stage && out.data != logits.data)
    be.memory().copy(logits.data, out.data, static_cast<size_t>(n_out * vocab) * sizeof(float));
  return {};
}

Status DecoderModel::run(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                         const BatchLayout& batch, std::span<const int32_t> logit_rows,
                         Tensor dest, const ShardComms& comms, Tensor* out) {
  const int64_t n_real = static_cast<int64_t>(tokens.size());
  PONDER_CHECK(n_real == batch.n_tokens(), "batch layout has %d tokens, got %lld",
               batch.n_tokens(), (long long)n_real);
  for (int32_t row : logit_rows)
    PONDER_CHECK(row >= 0 && row < n_real, "logit row %d out of range", row);
  if (weights_.device() != be.device() || cache.device() != be.device())
    return error(StatusCode::kFailedPrecondition,
                 "backend '%.*s' computes on %s but the weights are on %s and the KV cache on %s "
                 "(DecoderModel::move_to and KvCache::create with the backend's memory)",
                 static_cast<int>(be.name().size()), be.name().data(),
                 std::string(device_name(be.device())).c_str(),
                 std::string(device_name(weights_.device())).c_str(),
                 std::string(device_name(cache.device())).c_str());
  // Replayable: no collectives, and (so that a padded step has exactly one logit row per row)
  // no more logit rows than tokens.
  const StepOptions options{.replayable = comms.tp == nullptr && comms.pp == nullptr &&
                                          logit_rows.size() <= tokens.size(),
                            .key = {this, &cache}};
  const int64_t n = be.begin_step(batch, options).n_tokens;
  PONDER_CHECK(n >= n_real, "step of %lld rows for %lld tokens", (long long)n, (long long)n_real);
  Status st = run_step(be, cache, tokens, batch, logit_rows, n, dest, comms, out);
  Status ended = be.end_step();
  PONDER_RETURN_IF_ERROR(st);
  return ended;
}

Status DecoderModel::run_step(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                              const BatchLayout& batch, std::span<const int32_t> logit_rows,
                              int64_t n, Tensor dest, const ShardComms& comms, Tensor* out) {
  const ModelConfig& c = config_;
  const int64_t n_real = static_cast<int64_t>(tokens.size()), h = c.hidden_size;
  PONDER_RETURN_IF_ERROR(resize_buffers(n, be.memory()));
  Tensor x = f32_view(x_, {n, h});
  if (shard_.first_stage) {
    // Vocabulary-parallel embedding: rows outside this rank's slice (and padded rows) are zero,
    // then summed over the TP group.
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = i < n_real ? tokens[i] : -1;
      local_ids_[i] = id >= dims_.vocab_begin && id < dims_.vocab_end
                          ? static_cast<int32_t>(id - dims_.vocab_begin)
                          : -1;
    }
    be.embedding(weights_.embed, std::span<const int32_t>(local_ids_.data(), n), x);
    if (comms.tp) PONDER_RETURN_IF_ERROR(all_reduce(be, *comms.tp, x, comms));
  } else {
    PONDER_RETURN_IF_ERROR(receive_input(be, n, comms));
  }
  PONDER_RETURN_IF_ERROR(forward_layers(be, cache, batch, n, comms));
  Tensor delta = f32_view(delta_, {n, h}), norm = f32_view(norm_, {n, h});
  if (!shard_.last_stage) {
    // Fold the last sub-layer output into the residual stream and hand it to the next stage.
    if (dims_.n_layers() > 0) be.add(x, delta);
    return send_output(be, n, comms);
  }
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (dims_.n_layers() > 0) {
    be.add_rms_norm(x, delta, weights_.final_norm, eps, norm);
  } else {
    be.rms_norm(x, weights_.final_norm, eps, norm);
  }
  // Padded steps compute logits for every row (a fixed shape for a recorded step); the caller's
  // rows come first.
  rows_.assign(logit_rows.begin(), logit_rows.end());
  if (n > n_real) rows_.resize(n, 0);
  const int64_t n_rows = static_cast<int64_t>(rows_.size());
  // A device backend may record the step (CUDA graphs): it must write a buffer of the model's own,
  // not the caller's, which can differ from step to step.
  *out = dest;
  if (dest.empty() || n_rows != dest.rows() || be.device() != Device::kHost) {
    PONDER_RETURN_IF_ERROR(
        fit(logits_, static_cast<size_t>(n_rows * c.vocab_size) * sizeof(float), be.memory()));
    *out = f32_view(logits_, {n_rows, c.vocab_size});
  }
  return compute_logits(be, rows_, *out, comms);
}

}  // namespace ponder::worker
