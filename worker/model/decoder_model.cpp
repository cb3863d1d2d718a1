// The shared decoder forward pass and RoPE frequency tables (incl. Llama-3 scaling).
#include "worker/model/decoder_model.h"

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

KvCacheConfig DecoderModel::kv_cache_config(int64_t n_blocks, int64_t block_size) const {
  return {.n_layers = dims_.n_layers(),
          .n_kv_heads = dims_.n_kv_heads,
          .head_dim = config_.head_dim,
          .block_size = block_size,
          .n_blocks = n_blocks};
}

void DecoderModel::resize_buffers(int64_t n) {
  const ModelConfig& c = config_;
  const int64_t qd = dims_.n_heads * c.head_dim, kvd = dims_.n_kv_heads * c.head_dim;
  auto fit = [](auto& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(size);
  };
  fit(x_, n * c.hidden_size);
  fit(norm_, n * c.hidden_size);
  fit(qkv_, n * (qd + 2 * kvd));
  fit(q_, n * qd);
  fit(k_, n * kvd);
  fit(v_, n * kvd);
  fit(attn_, n * qd);
  fit(delta_, n * c.hidden_size);
  fit(gate_up_, n * 2 * dims_.ffn);
  fit(act_, n * dims_.ffn);
  fit(local_ids_, n);
}

// Stage input: each TP rank of the previous stage sent its 1/tp column slice of the hidden
// state; the TP group all-gathers the slices back into [n, hidden].
Status DecoderModel::receive_input(int64_t n, const ShardComms& comms) {
  const int64_t h = config_.hidden_size;
  const int tp = comms.tp ? comms.tp->size() : 1;
  const int64_t part = h / tp;
  const int prev = comms.pp->rank() - 1;
  if (tp == 1) {
    return comms.pp->recv(x_.data(), n * h * sizeof(float), prev, /*tag=*/1,
                          collective::deadline_in(comms.timeout));
  }
  if (static_cast<int64_t>(gather_.size()) < n * h) gather_.resize(n * h);
  float* mine = gather_.data() + comms.tp->rank() * n * part;
  PONDER_RETURN_IF_ERROR(comms.pp->recv(mine, n * part * sizeof(float), prev, 1,
                                        collective::deadline_in(comms.timeout)));
  PONDER_RETURN_IF_ERROR(comms.tp->all_gather(mine, gather_.data(), n * part * sizeof(float),
                                              collective::deadline_in(comms.timeout)));
  for (int r = 0; r < tp; ++r)
    for (int64_t t = 0; t < n; ++t)
      std::memcpy(x_.data() + t * h + r * part, gather_.data() + (r * n + t) * part,
                  part * sizeof(float));
  return {};
}

// Stage output: the residual stream after this stage's last layer; each TP rank sends only its
// column slice (tp× fewer bytes between stages).
Status DecoderModel::send_output(int64_t n, const ShardComms& comms) {
  const int64_t h = config_.hidden_size;
  const int tp = comms.tp ? comms.tp->size() : 1;
  const int64_t part = h / tp;
  const int next = comms.pp->rank() + 1;
  if (tp == 1) {
    return comms.pp->send(x_.data(), n * h * sizeof(float), next, 1,
                          collective::deadline_in(comms.timeout));
  }
  if (static_cast<int64_t>(gather_.size()) < n * part) gather_.resize(n * part);
  const int64_t col0 = comms.tp->rank() * part;
  for (int64_t t = 0; t < n; ++t)
    std::memcpy(gather_.data() + t * part, x_.data() + t * h + col0, part * sizeof(float));
  return comms.pp->send(gather_.data(), n * part * sizeof(float), next, 1,
                        collective::deadline_in(comms.timeout));
}

// Final norm is already in norm_; lm_head over this rank's vocabulary slice, then the slices are
// gathered so every rank of the stage holds [n_out, vocab].
Status DecoderModel::compute_logits(Backend& be, std::span<const int32_t> logit_rows,
                                    float* logits, const ShardComms& comms) {
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size;
  const int64_t n_out = static_cast<int64_t>(logit_rows.size());
  if (static_cast<int64_t>(last_.size()) < n_out * h) last_.resize(n_out * h);
  for (int64_t i = 0; i < n_out; ++i)
    std::memcpy(last_.data() + i * h, norm_.data() + logit_rows[i] * h, h * sizeof(float));
  Tensor last = Tensor::view(last_.data(), DType::kF32, {n_out, h});
  const int tp = comms.tp ? comms.tp->size() : 1;
  if (tp == 1) {
    be.matmul(last, weights_.lm_head, Tensor{},
                     Tensor::view(logits, DType::kF32, {n_out, c.vocab_size}));
    return {};
  }
  const int64_t stride = dims_.vocab_stride, local = dims_.vocab_end - dims_.vocab_begin;
  std::vector<float> mine(n_out * stride, 0.0f);
  if (local > 0) {
    be.matmul(last, weights_.lm_head, Tensor{},
                     Tensor::view(mine.data(), DType::kF32, {n_out, local}));
    // matmul wrote [n_out, local] densely; spread the rows to the padded stride.
    for (int64_t i = n_out - 1; i >= 0; --i) {
      std::memmove(mine.data() + i * stride, mine.data() + i * local, local * sizeof(float));
      std::fill(mine.data() + i * stride + local, mine.data() + (i + 1) * stride, 0.0f);
    }
  }
  if (static_cast<int64_t>(gather_.size()) < tp * n_out * stride) gather_.resize(tp * n_out * stride);
  PONDER_RETURN_IF_ERROR(comms.tp->all_gather(mine.data(), gather_.data(),
                                              n_out * stride * sizeof(float),
                                              collective::deadline_in(comms.timeout)));
  for (int r = 0; r < tp; ++r) {
    const int64_t v0 = r * stride, v1 = std::min(c.vocab_size, v0 + stride);
    for (int64_t i = 0; v1 > v0 && i < n_out; ++i)
      std::memcpy(logits + i * c.vocab_size + v0, gather_.data() + (r * n_out + i) * stride,
                  (v1 - v0) * sizeof(float));
  }
  return {};
}

Status DecoderModel::forward(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                             const BatchLayout& batch, std::span<const int32_t> logit_rows,
                             float* logits, const ShardComms& comms) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  PONDER_CHECK(n == batch.n_tokens(), "batch layout has %d tokens, got %lld", batch.n_tokens(),
               (long long)n);
  for (int32_t row : logit_rows)
    PONDER_CHECK(row >= 0 && row < n, "logit row %d out of range", row);
  resize_buffers(n);
  const int64_t h = c.hidden_size, hd = c.head_dim, nq = dims_.n_heads, nkv = dims_.n_kv_heads;
  const int64_t qd = nq * hd, kvd = nkv * hd, ffn = dims_.ffn;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto all_reduce = [&](std::vector<float>& buf) -> Status {
    if (comms.tp == nullptr || comms.tp->size() == 1) return {};
    return comms.tp->all_reduce_sum(buf.data(), n * h, collective::deadline_in(comms.timeout));
  };

  Tensor x = Tensor::view(x_.data(), DType::kF32, {n, h});          // residual stream
  Tensor norm = Tensor::view(norm_.data(), DType::kF32, {n, h});
  Tensor delta = Tensor::view(delta_.data(), DType::kF32, {n, h});  // sub-layer output
  Tensor qkv = Tensor::view(qkv_.data(), DType::kF32, {n, qd + 2 * kvd});
  Tensor q = Tensor::view(q_.data(), DType::kF32, {n, nq, hd});
  Tensor k = Tensor::view(k_.data(), DType::kF32, {n, nkv, hd});
  Tensor v = Tensor::view(v_.data(), DType::kF32, {n, nkv, hd});
  Tensor attn = Tensor::view(attn_.data(), DType::kF32, {n, qd});
  Tensor gate_up = Tensor::view(gate_up_.data(), DType::kF32, {n, 2 * ffn});
  Tensor act = Tensor::view(act_.data(), DType::kF32, {n, ffn});

  if (shard_.first_stage) {
    // Vocabulary-parallel embedding: rows outside this rank's slice are zero, then summed.
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = tokens[i];
      local_ids_[i] = id >= dims_.vocab_begin && id < dims_.vocab_end
                          ? static_cast<int32_t>(id - dims_.vocab_begin)
                          : -1;
    }
    be.embedding(weights_.embed, std::span<const int32_t>(local_ids_.data(), n), x);
    PONDER_RETURN_IF_ERROR(all_reduce(x_));
  } else {
    PONDER_RETURN_IF_ERROR(receive_input(n, comms));
  }
  for (int64_t il = 0; il < dims_.n_layers(); ++il) {
    const LayerWeights& w = weights_.layers[il];
    if (il == 0) {
      be.rms_norm(x, w.attn_norm, eps, norm);
    } else {
      be.add_rms_norm(x, delta, w.attn_norm, eps, norm);
    }
    be.matmul(norm, w.wqkv, w.bqkv, qkv);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = qkv_.data() + t * (qd + 2 * kvd);
      std::memcpy(q_.data() + t * qd, row, qd * sizeof(float));
      std::memcpy(k_.data() + t * kvd, row + qd, kvd * sizeof(float));
      std::memcpy(v_.data() + t * kvd, row + qd + kvd, kvd * sizeof(float));
    }
    if (c.qk_norm) {
      Tensor q_heads = Tensor::view(q_.data(), DType::kF32, {n * nq, hd});
      Tensor k_heads = Tensor::view(k_.data(), DType::kF32, {n * nkv, hd});
      be.rms_norm(q_heads, w.q_norm, eps, q_heads);
      be.rms_norm(k_heads, w.k_norm, eps, k_heads);
    }
    be.rope(q, batch.positions, rope_);
    be.rope(k, batch.positions, rope_);
    be.kv_store(cache, static_cast<int>(il), k, v, batch);
    be.attention(q, cache, static_cast<int>(il), batch, scale,
                 Tensor::view(attn_.data(), DType::kF32, {n, nq, hd}));
    be.matmul(attn, w.wo, w.bo, delta);
    PONDER_RETURN_IF_ERROR(all_reduce(delta_));
    be.add_rms_norm(x, delta, w.mlp_norm, eps, norm);
    be.matmul(norm, w.w_gate_up, w.b_gate_up, gate_up);
    be.swiglu(gate_up, act);
    be.matmul(act, w.w_down, w.b_down, delta);
    PONDER_RETURN_IF_ERROR(all_reduce(delta_));
  }
  if (!shard_.last_stage) {
    // Fold the last sub-layer output into the residual stream and hand it to the next stage.
    if (dims_.n_layers() > 0) {
      for (int64_t i = 0; i < n * h; ++i) x_[i] += delta_[i];
    }
    return send_output(n, comms);
  }
  if (dims_.n_layers() > 0) {
    be.add_rms_norm(x, delta, weights_.final_norm, eps, norm);
  } else {
    be.rms_norm(x, weights_.final_norm, eps, norm);
  }
  return compute_logits(be, logit_rows, logits, comms);
}

}  // namespace ponder::worker
