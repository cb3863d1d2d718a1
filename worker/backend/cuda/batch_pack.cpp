// Packing a BatchLayout for the CUDA kernels.
#include "worker/backend/cuda/batch_pack.h"

#include <algorithm>

namespace ponder::worker::cuda {

DeviceBatch PackedBatch::at(const int32_t* d) const {
  DeviceBatch b;
  b.n_tokens = n_tokens;
  b.n_seqs = n_seqs;
  b.token_pos = d + token_pos;
  b.token_seq = d + token_seq;
  b.seq_token_begin = d + seq_token_begin;
  b.seq_n_tokens = d + seq_n_tokens;
  b.seq_ctx = d + seq_ctx;
  b.seq_table = d + seq_table;
  b.block_tables = d + block_tables;
  b.n_decode = n_decode;
  b.decode_seqs = d + decode_seqs;
  return b;
}

std::vector<int32_t> PackedBatch::prefill_tiles(int32_t group) const {
  std::vector<int32_t> tiles;
  for (int32_t s = 0; s < real_seqs; ++s) {
    const int32_t n = image[seq_n_tokens + s];
    if (n == 1) continue;
    for (int32_t row = 0; row < n * group; row += kPrefillRows) {
      tiles.push_back(s);
      tiles.push_back(row);
    }
  }
  return tiles;
}

Status PackedBatch::covers(int64_t block_size) const {
  for (int32_t s = 0; s < real_seqs; ++s) {
    if (static_cast<int64_t>(image[seq_blocks + s]) * block_size < image[seq_ctx + s])
      return error(StatusCode::kInvalidArgument,
                   "sequence %d: %d KV blocks of %lld tokens cannot hold a context of %d", s,
                   image[seq_blocks + s], (long long)block_size, image[seq_ctx + s]);
  }
  return {};
}

Status pack_batch(const BatchLayout& batch, int32_t n_tokens, int32_t n_seqs, PackedBatch* out) {
  const int32_t real_tokens = batch.n_tokens();
  const int32_t real_seqs = static_cast<int32_t>(batch.seqs.size());
  if (n_tokens < real_tokens || n_seqs < real_seqs || n_tokens - real_tokens != n_seqs - real_seqs)
    return error(StatusCode::kInvalidArgument,
                 "padding %d tokens / %d sequences to %d / %d: each padding sequence is one row",
                 real_tokens, real_seqs, n_tokens, n_seqs);
  PackedBatch& p = *out;
  p.n_tokens = n_tokens;
  p.n_seqs = n_seqs;
  p.real_tokens = real_tokens;
  p.real_seqs = real_seqs;
  p.token_pos = 0;
  p.token_seq = p.token_pos + n_tokens;
  p.seq_token_begin = p.token_seq + n_tokens;
  p.seq_n_tokens = p.seq_token_begin + n_seqs;
  p.seq_ctx = p.seq_n_tokens + n_seqs;
  p.seq_table = p.seq_ctx + n_seqs;
  p.seq_blocks = p.seq_table + n_seqs;
  p.decode_seqs = p.seq_blocks + n_seqs;
  p.block_tables = p.decode_seqs + n_seqs;
  int64_t table_entries = 0;
  for (const SeqSlice& s : batch.seqs) table_entries += static_cast<int64_t>(s.block_table.size());
  std::vector<int32_t>& img = p.image;
  img.assign(p.block_tables + table_entries, 0);
  std::fill(img.begin() + p.token_pos, img.begin() + p.token_seq + n_tokens, -1);

  p.n_decode = 0;
  p.max_context = 0;
  p.all_decode = true;
  int64_t table_at = p.block_tables;
  for (int32_t si = 0; si < real_seqs; ++si) {
    const SeqSlice& s = batch.seqs[si];
    const int64_t ctx = static_cast<int64_t>(s.start_pos) + s.n_tokens;
    const int64_t blocks = static_cast<int64_t>(s.block_table.size());
    if (s.n_tokens < 1 || s.start_pos < 0 || s.token_begin < 0 ||
        s.token_begin + s.n_tokens > real_tokens)
      return error(StatusCode::kInvalidArgument,
                   "sequence %d: tokens [%d, %d) outside the batch's %d tokens", si, s.token_begin,
                   s.token_begin + s.n_tokens, real_tokens);
    for (int32_t i = 0; i < s.n_tokens; ++i) {
      const int32_t t = s.token_begin + i;
      if (img[p.token_seq + t] != -1)
        return error(StatusCode::kInvalidArgument, "token %d is in two sequences", t);
      if (batch.positions[t] != s.start_pos + i)
        return error(StatusCode::kInvalidArgument,
                     "token %d: position %d, but its sequence starts at %d", t, batch.positions[t],
                     s.start_pos);
      img[p.token_pos + t] = s.start_pos + i;
      img[p.token_seq + t] = si;
    }
    img[p.seq_token_begin + si] = s.token_begin;
    img[p.seq_n_tokens + si] = s.n_tokens;
    img[p.seq_ctx + si] = static_cast<int32_t>(ctx);
    img[p.seq_table + si] = static_cast<int32_t>(table_at - p.block_tables);
    img[p.seq_blocks + si] = static_cast<int32_t>(blocks);
    std::copy(s.block_table.begin(), s.block_table.end(), img.begin() + table_at);
    table_at += blocks;
    if (s.n_tokens == 1) {
      img[p.decode_seqs + p.n_decode++] = si;
      p.max_context = std::max(p.max_context, static_cast<int32_t>(ctx));
    } else {
      p.all_decode = false;
    }
  }
  for (int32_t t = 0; t < real_tokens; ++t)
    if (img[p.token_seq + t] == -1)
      return error(StatusCode::kInvalidArgument, "token %d belongs to no sequence", t);
  // Padding: sequence real_seqs + i is row real_tokens + i, no context, nothing stored.
  for (int32_t si = real_seqs; si < n_seqs; ++si) {
    img[p.seq_token_begin + si] = real_tokens + (si - real_seqs);
    img[p.seq_n_tokens + si] = 1;
    img[p.seq_ctx + si] = 0;
    img[p.seq_table + si] = 0;
    img[p.seq_blocks + si] = 0;
    img[p.decode_seqs + p.n_decode++] = si;
  }
  return {};
}

}  // namespace ponder::worker::cuda
