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
                                                           const LoadOptions& options) {
  std::unique_ptr<DecoderModel> model(new DecoderModel());
  PONDER_ASSIGN_OR_RETURN(model->config_, load_model_config(model_dir));
  PONDER_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::open(model_dir));
  PONDER_ASSIGN_OR_RETURN(model->weights_, ModelWeights::load(ckpt, model->config_, options));
  model->rope_ = make_rope_table(model->config_);
  return model;
}

KvCacheConfig DecoderModel::kv_cache_config(int64_t n_blocks, int64_t block_size) const {
  return {.n_layers = config_.n_layers,
          .n_kv_heads = config_.n_kv_heads,
          .head_dim = config_.head_dim,
          .block_size = block_size,
          .n_blocks = n_blocks};
}

void DecoderModel::resize_buffers(int64_t n) {
  const ModelConfig& c = config_;
  auto fit = [](std::vector<float>& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(size);
  };
  fit(x_, n * c.hidden_size);
  fit(norm_, n * c.hidden_size);
  fit(qkv_, n * (c.q_dim() + 2 * c.kv_dim()));
  fit(q_, n * c.q_dim());
  fit(k_, n * c.kv_dim());
  fit(v_, n * c.kv_dim());
  fit(attn_, n * c.q_dim());
  fit(delta_, n * c.hidden_size);
  fit(gate_up_, n * 2 * c.intermediate_size);
  fit(act_, n * c.intermediate_size);
}

void DecoderModel::forward(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                           const BatchLayout& batch, std::span<const int32_t> logit_rows,
                           float* logits) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  PONDER_CHECK(n == batch.n_tokens(), "batch layout has %d tokens, got %lld", batch.n_tokens(),
               (long long)n);
  resize_buffers(n);
  const int64_t h = c.hidden_size, hd = c.head_dim, nq = c.n_heads, nkv = c.n_kv_heads;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), ffn = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

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

  be.embedding(weights_.embed, tokens, x);
  for (int64_t il = 0; il < c.n_layers; ++il) {
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
    be.add_rms_norm(x, delta, w.mlp_norm, eps, norm);
    be.matmul(norm, w.w_gate_up, w.b_gate_up, gate_up);
    be.swiglu(gate_up, act);
    be.matmul(act, w.w_down, w.b_down, delta);
  }
  be.add_rms_norm(x, delta, weights_.final_norm, eps, norm);

  // Only the requested rows go through lm_head (usually the last token of each sequence).
  const int64_t n_out = static_cast<int64_t>(logit_rows.size());
  if (static_cast<int64_t>(last_.size()) < n_out * h) last_.resize(n_out * h);
  for (int64_t i = 0; i < n_out; ++i) {
    PONDER_CHECK(logit_rows[i] >= 0 && logit_rows[i] < n, "logit row %d out of range", logit_rows[i]);
    std::memcpy(last_.data() + i * h, norm_.data() + logit_rows[i] * h, h * sizeof(float));
  }
  be.matmul(Tensor::view(last_.data(), DType::kF32, {n_out, h}), weights_.lm_head, Tensor{},
            Tensor::view(logits, DType::kF32, {n_out, c.vocab_size}));
}

}  // namespace ponder::worker
