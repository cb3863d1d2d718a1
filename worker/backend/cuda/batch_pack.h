// PackedBatch: a BatchLayout as the CUDA kernels read it (DeviceBatch), packed into one int32
// image uploaded once per step. Optionally padded to more rows and sequences (a recorded graph's
// size): padding sequences are inert one-token decodes with no context. Array offsets depend only
// on the padded sizes, so a recorded step finds every array where it was at recording time; the
// block tables, whose length varies, come last, whole (the KV block size is not known yet:
// covers() checks them against it). Host code only.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "worker/backend/backend.h"
#include "worker/backend/cuda/kernels.h"

namespace ponder::worker::cuda {

struct PackedBatch {
  std::vector<int32_t> image;
  int32_t n_tokens = 0, n_seqs = 0;  // padded
  int32_t real_tokens = 0, real_seqs = 0;
  int32_t n_decode = 0;     // sequences with one token (padding included)
  int32_t max_context = 0;  // longest context of a real decode sequence
  bool all_decode = false;  // every real sequence has exactly one token
  // Offsets into image (int32 elements).
  int64_t token_pos = 0, token_seq = 0, seq_token_begin = 0, seq_n_tokens = 0, seq_ctx = 0,
          seq_table = 0, seq_blocks = 0, decode_seqs = 0, block_tables = 0;

  // The kernels' view, arrays at `device_image` (the uploaded copy of image).
  DeviceBatch at(const int32_t* device_image) const;
  // (sequence, first row) pairs of 64 query rows (token × head of a group of `group` query heads
  // per KV head) for every sequence that is not a one-token decode.
  std::vector<int32_t> prefill_tiles(int32_t group) const;
  // kInvalidArgument naming the first sequence whose block table is too short for its context
  // with blocks of `block_size` tokens.
  Status covers(int64_t block_size) const;
};

// Packs `batch` padded to n_tokens rows and n_seqs sequences (>= the batch's, one row per padding
// sequence). kInvalidArgument when the layout is inconsistent: a token in no sequence or in two,
// or positions that are not start_pos + i.
Status pack_batch(const BatchLayout& batch, int32_t n_tokens, int32_t n_seqs, PackedBatch* out);

}  // namespace ponder::worker::cuda
