// Streaming decoder stages with Hugging Face's decode_chain semantics.
#include "coordinator/text/decoder.h"

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/text/bpe_byte_level.h"
#include "coordinator/text/tokenizer_json.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xNN>" -> NN, as Hugging Face parses it (Rust's u8::from_str_radix, which also takes "+N").
int byte_token_value(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  if (token[3] == '+') return hex_value(token[4]);
  int hi = hex_value(token[3]), lo = hex_value(token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Appends the complete part of `bytes` to *out as UTF-8 (maximal invalid subparts become
// U+FFFD) and returns how many bytes were used; an incomplete tail is left unless `final`.
size_t decode_lossy(std::string_view bytes, bool final, std::string* out) {
  size_t i = 0;
  while (i < bytes.size()) {
    Utf8Step step = utf8_step(bytes, i);
    if (step.kind == Utf8Step::kIncomplete && !final) break;
    if (step.kind == Utf8Step::kValid) {
      out->append(bytes.data() + i, step.length);
    } else {
      out->append(kUtf8Replacement);
    }
    i += step.length;
  }
  return i;
}

}  // namespace

Expected<Decoder> Decoder::from_json(const nlohmann::json& config) {
  Decoder decoder;
  if (config.is_null()) {
    decoder.stages_.push_back(Stage{.kind = Kind::kJoinSpaces});
    return decoder;
  }
  PONDER_RETURN_IF_ERROR(decoder.add_stages(config));
  return decoder;
}

Status Decoder::add_stages(const nlohmann::json& config) {
  PONDER_ASSIGN_OR_RETURN(std::string type, json_type_of(config, "decoder"));
  if (type == "Sequence") {
    PONDER_ASSIGN_OR_RETURN(const nlohmann::json* list,
                            json_array_member(config, "decoders", "decoder Sequence"));
    for (const nlohmann::json& item : *list) PONDER_RETURN_IF_ERROR(add_stages(item));
    return Status::ok_status();
  }
  bool fused = false;
  for (const Stage& s : stages_)
    fused = fused || s.kind == Kind::kByteLevel || s.kind == Kind::kFuse;
  Stage stage{.whole_tokens = !fused};
  if (type == "ByteLevel") {
    if (!stages_.empty()) {
      return error(StatusCode::kInvalidArgument, "decoder ByteLevel must be the first decoder");
    }
    stage.kind = Kind::kByteLevel;
  } else if (type == "Replace") {
    stage.kind = Kind::kReplace;
    PONDER_ASSIGN_OR_RETURN(JsonPattern pattern, json_pattern(config, "decoder Replace"));
    if (pattern.is_regex) {
      return error(StatusCode::kInvalidArgument,
                   "decoder Replace with a Regex pattern is not supported");
    }
    if (pattern.text.empty()) {
      return error(StatusCode::kInvalidArgument, "decoder Replace has an empty pattern");
    }
    stage.pattern = pattern.text;
    PONDER_ASSIGN_OR_RETURN(stage.content,
                            json_string_member(config, "content", "decoder Replace"));
  } else if (type == "ByteFallback") {
    if (fused) {
      return error(StatusCode::kInvalidArgument,
                   "decoder ByteFallback after Fuse or ByteLevel is not supported");
    }
    stage.kind = Kind::kByteFallback;
  } else if (type == "Fuse") {
    stage.kind = Kind::kFuse;
  } else if (type == "Strip") {
    stage.kind = Kind::kStrip;
    PONDER_ASSIGN_OR_RETURN(stage.content, json_string_member(config, "content", "decoder Strip"));
    size_t pos = 0;
    if (!utf8_is_valid(stage.content) || stage.content.empty() ||
        (utf8_decode(stage.content, &pos), pos != stage.content.size())) {
      return error(StatusCode::kInvalidArgument,
                   "decoder Strip: \"content\" must be one character");
    }
    PONDER_ASSIGN_OR_RETURN(int64_t start, json_optional_int(config, "start", 0, "decoder Strip"));
    PONDER_ASSIGN_OR_RETURN(int64_t stop, json_optional_int(config, "stop", 0, "decoder Strip"));
    if (start < 0 || stop < 0 || start > 1 << 20 || stop > 1 << 20) {
      return error(StatusCode::kInvalidArgument, "decoder Strip: start/stop out of range");
    }
    stage.strip_start = static_cast<int>(start);
    stage.strip_stop = static_cast<int>(stop);
  } else if (type == "Metaspace") {
    stage.kind = Kind::kMetaspace;
    PONDER_ASSIGN_OR_RETURN(
        stage.content, json_optional_string(config, "replacement", "\u2581", "decoder Metaspace"));
    PONDER_ASSIGN_OR_RETURN(bool add_prefix_space, json_optional_bool(config, "add_prefix_space",
                                                                      true, "decoder Metaspace"));
    PONDER_ASSIGN_OR_RETURN(
        std::string scheme,
        json_optional_string(config, "prepend_scheme", add_prefix_space ? "always" : "never",
                             "decoder Metaspace"));
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      return error(StatusCode::kInvalidArgument, "decoder Metaspace: unknown prepend_scheme '%s'",
                   scheme.c_str());
    }
    if (stage.content.empty()) {
      return error(StatusCode::kInvalidArgument, "decoder Metaspace: empty replacement");
    }
    stage.drop_in_first = scheme != "never";
  } else {
    return error(StatusCode::kInvalidArgument,
                 "decoder type '%s' is not supported (supported: Sequence, ByteLevel, Replace, "
                 "ByteFallback, Fuse, Strip, Metaspace)",
                 type.c_str());
  }
  stages_.push_back(std::move(stage));
  return Status::ok_status();
}

DecoderState Decoder::start() const {
  DecoderState state;
  state.stages_.resize(stages_.size());
  return state;
}

void Decoder::feed(size_t index, DecoderState* state, Chunk&& chunk,
                   std::vector<Chunk>* out) const {
  const Stage& stage = stages_[index];
  DecoderState::Stage& st = state->stages_[index];
  switch (stage.kind) {
    case Kind::kByteLevel: {
      // A token whose characters are all in the byte alphabet stands for those bytes; any other
      // token (e.g. "<｜end▁of▁sentence｜>") for its own UTF-8.
      if (!byte_level_to_bytes(chunk.text, &st.held)) st.held.append(chunk.text);
      std::string text;
      if (state->raw_) {
        text = std::move(st.held);
        st.held.clear();
      } else {
        st.held.erase(0, decode_lossy(st.held, /*final=*/false, &text));
      }
      out->push_back({std::move(text), !st.any});
      st.any = true;
      return;
    }
    case Kind::kReplace: {
      if (!stage.whole_tokens && chunk.starts_token && !st.held.empty()) {
        out->push_back({std::move(st.held), false});  // the previous token ended without a match
        st.held.clear();
      }
      std::string buffer = stage.whole_tokens ? std::move(chunk.text) : st.held + chunk.text;
      st.held.clear();
      std::string result;
      size_t last = 0;
      for (size_t pos = buffer.find(stage.pattern); pos != std::string::npos;
           pos = buffer.find(stage.pattern, last)) {
        result.append(buffer, last, pos - last);
        result.append(stage.content);
        last = pos + stage.pattern.size();
      }
      size_t hold = 0;  // longest tail that may still become a match
      if (!stage.whole_tokens) {
        for (size_t k = std::min(buffer.size() - last, stage.pattern.size() - 1); k > 0; --k) {
          if (buffer.compare(buffer.size() - k, k, stage.pattern, 0, k) == 0) {
            hold = k;
            break;
          }
        }
      }
      result.append(buffer, last, buffer.size() - last - hold);
      st.held.assign(buffer, buffer.size() - hold, hold);
      out->push_back({std::move(result), chunk.starts_token});
      return;
    }
    case Kind::kByteFallback: {
      int byte = byte_token_value(chunk.text);
      if (byte >= 0) {
        st.held.push_back(static_cast<char>(byte));
        return;
      }
      end(index, state, out);  // the byte group (if any) is complete
      out->push_back(std::move(chunk));
      return;
    }
    case Kind::kFuse:
      out->push_back({std::move(chunk.text), !st.any});
      st.any = true;
      return;
    case Kind::kStrip: {
      if (chunk.starts_token) {
        st.held.clear();  // the previous token's trailing characters are stripped
        st.count = stage.strip_start;
      }
      std::string result;
      const std::string& c = stage.content;
      size_t i = 0;
      while (i < chunk.text.size()) {
        size_t begin = i;
        utf8_decode(chunk.text, &i);
        bool is_content = chunk.text.compare(begin, i - begin, c) == 0;
        if (st.count > 0) {
          if (is_content) {
            --st.count;
            continue;
          }
          st.count = 0;
        }
        if (is_content && stage.strip_stop > 0) {
          st.held.append(c);
          if (st.held.size() / c.size() > static_cast<size_t>(stage.strip_stop)) {
            result.append(c);
            st.held.erase(0, c.size());
          }
        } else {
          result.append(st.held);
          st.held.clear();
          result.append(chunk.text, begin, i - begin);
        }
      }
      out->push_back({std::move(result), chunk.starts_token});
      return;
    }
    case Kind::kMetaspace: {
      if (chunk.starts_token) ++st.count;
      bool drop = stage.drop_in_first && st.count == 1;
      std::string result;
      size_t last = 0;
      for (size_t pos = chunk.text.find(stage.content); pos != std::string::npos;
           pos = chunk.text.find(stage.content, last)) {
        result.append(chunk.text, last, pos - last);
        if (!drop) result.push_back(' ');
        last = pos + stage.content.size();
      }
      result.append(chunk.text, last, std::string::npos);
      out->push_back({std::move(result), chunk.starts_token});
      return;
    }
    case Kind::kJoinSpaces:
      if (chunk.starts_token && st.any) chunk.text.insert(0, " ");
      st.any = true;
      out->push_back(std::move(chunk));
      return;
  }
}

void Decoder::end(size_t index, DecoderState* state, std::vector<Chunk>* out) const {
  const Stage& stage = stages_[index];
  DecoderState::Stage& st = state->stages_[index];
  switch (stage.kind) {
    case Kind::kByteLevel: {
      std::string text;
      if (state->raw_) {
        text = std::move(st.held);
      } else {
        decode_lossy(st.held, /*final=*/true, &text);
      }
      st.held.clear();
      if (!text.empty() || !st.any) out->push_back({std::move(text), !st.any});
      st.any = true;
      return;
    }
    case Kind::kReplace:
      if (!st.held.empty()) out->push_back({std::move(st.held), false});
      st.held.clear();
      return;
    case Kind::kByteFallback:
      // A group of byte tokens is its UTF-8 text if valid, else one U+FFFD per byte.
      if (st.held.empty()) return;
      if (state->raw_ || utf8_is_valid(st.held)) {
        out->push_back({std::move(st.held), true});
      } else {
        for (size_t i = 0; i < st.held.size(); ++i)
          out->push_back({std::string(kUtf8Replacement), true});
      }
      st.held.clear();
      return;
    case Kind::kFuse:
      if (!st.any) out->push_back({std::string(), true});
      st.any = true;
      return;
    case Kind::kStrip:
      st.held.clear();
      return;
    case Kind::kMetaspace:
    case Kind::kJoinSpaces:
      return;
  }
}

void Decoder::run(DecoderState* state, bool finishing, std::string* out) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    state->next_.clear();
    for (Chunk& chunk : state->current_) feed(i, state, std::move(chunk), &state->next_);
    if (finishing) end(i, state, &state->next_);
    std::swap(state->current_, state->next_);
  }
  for (const Chunk& chunk : state->current_) out->append(chunk.text);
  state->current_.clear();
}

void Decoder::push(DecoderState* state, std::string_view token, std::string* out) const {
  state->current_.clear();
  state->current_.push_back({std::string(token), true});
  run(state, /*finishing=*/false, out);
}

std::string Decoder::token_bytes(std::string_view token) const {
  DecoderState state = start();
  state.raw_ = true;
  std::string out;
  push(&state, token, &out);
  finish(&state, &out);
  return out;
}

void Decoder::finish(DecoderState* state, std::string* out) const {
  state->current_.clear();
  run(state, /*finishing=*/true, out);
  *state = start();
}

}  // namespace ponder::text
