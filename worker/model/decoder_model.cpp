// The shared decoder forward pass and RoPE frequency tables (incl. Llama-3 scaling).
#include "worker/model/decoder_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "worker/model/architecture.h"

namespace ponder::worker {

RopeTable make_rope_table(const ModelConfig& c) {
  RopeTable table;
  const int64_t half = c.head_dim / 2;
  table.inv_freq.resize(half);
  const RopeScaling& s = c.rope_scaling;
  for (int64_t i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / c.head_dim);
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
    }
    table.inv_freq[i] = static_cast<float>(inv);
  }
  return table;
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
  model->rope_ = make_rope_table(model->config_);
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
  return model;
}

KvCacheConfig DecoderModel::kv_cache_config(int64_t n_blocks, int64_t block_size,
                                            DType dtype) const {
  return {.n_layers = dims_.n_layers(),
          .n_kv_heads = dims_.n_kv_heads,
          .head_dim = config_.head_dim,
          .block_size = block_size,
          .n_blocks = n_blocks,
          .dtype = dtype};
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
  const int64_t qd = dims_.n_heads * c.head_dim, kvd = dims_.n_kv_heads * c.head_dim;
  const std::pair<Buffer*, int64_t> buffers[] = {
      {&x_, c.hidden_size},  {&norm_, c.hidden_size},      {&qkv_, qd + 2 * kvd},
      {&q_, qd},             {&k_, kvd},                   {&v_, kvd},
      {&attn_, qd},          {&delta_, c.hidden_size},     {&gate_up_, 2 * dims_.ffn},
      {&act_, dims_.ffn}};
  if (memory_ != &memory) {  // another memory space: nothing allocated in the old one may stay
    for (Buffer* b : {&last_, &logits_, &slice_, &gathered_}) b->reset();
  }
  memory_ = nullptr;  // until every buffer is in place
  for (const auto& [buffer, cols] : buffers) {
    buffer->reset();
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
  const int64_t h = c.hidden_size, hd = c.head_dim, nq = dims_.n_heads, nkv = dims_.n_kv_heads;
  const int64_t qd = nq * hd, kvd = nkv * hd, ffn = dims_.ffn;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  Tensor x = f32_view(x_, {n, h});          // residual stream
  Tensor norm = f32_view(norm_, {n, h});
  Tensor delta = f32_view(delta_, {n, h});  // sub-layer output
  Tensor qkv = f32_view(qkv_, {n, qd + 2 * kvd});
  Tensor q = f32_view(q_, {n, nq, hd});
  Tensor k = f32_view(k_, {n, nkv, hd});
  Tensor v = f32_view(v_, {n, nkv, hd});
  Tensor attn = f32_view(attn_, {n, qd});
  Tensor gate_up = f32_view(gate_up_, {n, 2 * ffn});
  Tensor act = f32_view(act_, {n, ffn});

  for (int64_t il = 0; il < dims_.n_layers(); ++il) {
    const LayerWeights& w = weights_.layers[il];
    if (il == 0) {
      be.rms_norm(x, w.attn_norm, eps, norm);
    } else {
      be.add_rms_norm(x, delta, w.attn_norm, eps, norm);
    }
    be.matmul(norm, w.wqkv, w.bqkv, qkv);
    be.copy_columns(qkv, 0, f32_view(q_, {n, qd}), 0, qd);
    be.copy_columns(qkv, qd, f32_view(k_, {n, kvd}), 0, kvd);
    be.copy_columns(qkv, qd + kvd, f32_view(v_, {n, kvd}), 0, kvd);
    if (c.qk_norm) {
      Tensor q_heads = f32_view(q_, {n * nq, hd});
      Tensor k_heads = f32_view(k_, {n * nkv, hd});
      be.rms_norm(q_heads, w.q_norm, eps, q_heads);
      be.rms_norm(k_heads, w.k_norm, eps, k_heads);
    }
    be.rope(q, batch.positions, rope_);
    be.rope(k, batch.positions, rope_);
    be.kv_store(cache, static_cast<int>(il), k, v, batch);
    be.attention(q, cache, static_cast<int>(il), batch, scale, f32_view(attn_, {n, nq, hd}));
    be.matmul(attn, w.wo, w.bo, delta);
    if (comms.tp) PONDER_RETURN_IF_ERROR(all_reduce(be, *comms.tp, delta, comms));
    be.add_rms_norm(x, delta, w.mlp_norm, eps, norm);
    be.matmul(norm, w.w_gate_up, w.b_gate_up, gate_up);
    be.swiglu(gate_up, act);
    be.matmul(act, w.w_down, w.b_down, delta);
    if (comms.tp) PONDER_RETURN_IF_ERROR(all_reduce(be, *comms.tp, delta, comms));
  }
  return {};
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
