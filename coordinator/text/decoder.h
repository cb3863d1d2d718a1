// The decoder of a tokenizer.json (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and
// Sequences of them) as a chain of streaming stages: tokens go in one at a time and text comes
// out as soon as no later token can change it. decode(ids) is the same stream run to the end, so
// streamed and whole-sequence decoding always agree. Immutable after from_json; per-stream state
// lives in DecoderState.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::text {

class Decoder;

// Per-stream state of a Decoder (one per generation stream). Not thread-safe.
class DecoderState {
 public:
  DecoderState() = default;

 private:
  friend class Decoder;
  struct Chunk {
    std::string text;
    bool starts_token;  // first chunk of a token (later chunks continue it after a Fuse)
  };
  struct Stage {
    std::string held;  // ByteLevel: undecoded bytes; ByteFallback: byte group;
                       // Replace: possible start of a match; Strip: trailing strip characters
    int count = 0;     // Strip: characters still strippable at the start; Metaspace: tokens seen
    bool any = false;  // a chunk has been emitted
  };
  std::vector<Stage> stages_;
  std::vector<Chunk> current_, next_;
  bool raw_ = false;  // bytes pass through as they are (token_bytes), no U+FFFD
};

class Decoder {
 public:
  // `config` is the "decoder" value of tokenizer.json; null joins tokens with spaces (as
  // Hugging Face does without a decoder).
  static Expected<Decoder> from_json(const nlohmann::json& config);

  DecoderState start() const;
  // Feeds one token's vocabulary text; appends the text that became final to *out.
  void push(DecoderState* state, std::string_view token, std::string* out) const;
  // Ends the stream: appends everything still held back.
  void finish(DecoderState* state, std::string* out) const;
  // The bytes one token decodes to on its own, before any UTF-8 repair: a byte-level token that
  // is part of a multi-byte character gives that byte, not U+FFFD (the OpenAI logprobs "bytes").
  std::string token_bytes(std::string_view token) const;

 private:
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace, kJoinSpaces };
  struct Stage {
    Kind kind = Kind::kJoinSpaces;
    bool whole_tokens = true;  // input chunks are complete tokens (no Fuse/ByteLevel before)
    std::string pattern{};     // kReplace
    std::string content{};     // kReplace replacement; kStrip / kMetaspace character (UTF-8)
    int strip_start = 0;       // kStrip
    int strip_stop = 0;
    bool drop_in_first = true;  // kMetaspace: replacement dropped in the first token
  };
  using Chunk = DecoderState::Chunk;

  Status add_stages(const nlohmann::json& config);
  void feed(size_t index, DecoderState* state, Chunk&& chunk, std::vector<Chunk>* out) const;
  void end(size_t index, DecoderState* state, std::vector<Chunk>* out) const;
  void run(DecoderState* state, bool finishing, std::string* out) const;

  std::vector<Stage> stages_;
};

}  // namespace ponder::text
