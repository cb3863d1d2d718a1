// Tokenizer: loading tokenizer.json / tokenizer_config.json and the encode pipeline
// (added tokens -> normalizer -> normalized added tokens -> pre-tokenizer -> BPE), decoding and
// streaming decoding.
#include "coordinator/text/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/bpe_model.h"
#include "coordinator/text/decoder.h"
#include "coordinator/text/normalizer.h"
#include "coordinator/text/pre_tokenizer.h"
#include "coordinator/text/tokenizer_added_vocab.h"
#include "coordinator/text/tokenizer_json.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

struct TokenizerData {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedVocabulary added;
  Decoder decoder;
  int32_t vocab_size = 0;
  std::vector<bool> special{};  // by id
  std::optional<SpecialToken> bos{}, eos{}, pad{}, unk{};
  bool add_bos = false;
  bool add_eos = false;

  std::optional<std::string_view> token_text(int32_t id) const {
    if (const std::string* added_text = added.decode_text(id)) return *added_text;
    if (const std::string* token = model.id_to_token(id)) return *token;
    return std::nullopt;
  }
  bool is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < special.size() && special[id];
  }
};

namespace {

Expected<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return error(StatusCode::kNotFound, "%s: no such file", path.c_str());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot open for reading", path.c_str());
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return error(StatusCode::kUnavailable, "%s: read error", path.c_str());
  return std::move(contents).str();
}

Expected<nlohmann::json> parse_json_object(std::string_view text, const std::string& name) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "%s: malformed JSON: %s", name.c_str(), e.what());
  }
  if (!json.is_object()) {
    return error(StatusCode::kInvalidArgument,
                 "%s: expected a JSON object at the top level, got %s", name.c_str(),
                 json.type_name());
  }
  return json;
}

const nlohmann::json& member_or_null(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

Expected<std::vector<AddedToken>> parse_added_tokens(const nlohmann::json& list) {
  std::vector<AddedToken> tokens;
  if (list.is_null()) return tokens;
  if (!list.is_array()) {
    return error(StatusCode::kInvalidArgument, "\"added_tokens\" must be an array");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& item = list[i];
    std::string what = strformat("added_tokens[%zu]", i);
    AddedToken t;
    PONDER_ASSIGN_OR_RETURN(t.content, json_string_member(item, "content", what.c_str()));
    PONDER_ASSIGN_OR_RETURN(int64_t id, json_optional_int(item, "id", -1, what.c_str()));
    if (id < 0 || id > INT32_MAX) {
      return error(StatusCode::kInvalidArgument, "%s: \"id\" must be a non-negative integer",
                   what.c_str());
    }
    t.id = static_cast<int32_t>(id);
    PONDER_ASSIGN_OR_RETURN(t.special, json_optional_bool(item, "special", false, what.c_str()));
    PONDER_ASSIGN_OR_RETURN(t.lstrip, json_optional_bool(item, "lstrip", false, what.c_str()));
    PONDER_ASSIGN_OR_RETURN(t.rstrip, json_optional_bool(item, "rstrip", false, what.c_str()));
    PONDER_ASSIGN_OR_RETURN(t.single_word,
                            json_optional_bool(item, "single_word", false, what.c_str()));
    PONDER_ASSIGN_OR_RETURN(t.normalized,
                            json_optional_bool(item, "normalized", !t.special, what.c_str()));
    tokens.push_back(std::move(t));
  }
  return tokens;
}

// Whether the post_processor's single-sequence template starts / ends with a special token.
void template_adds(const nlohmann::json& processor, bool* bos, bool* eos) {
  if (!processor.is_object()) return;
  const nlohmann::json& type = member_or_null(processor, "type");
  if (type == "Sequence") {
    const nlohmann::json& list = member_or_null(processor, "processors");
    if (list.is_array()) {
      for (const nlohmann::json& item : list) template_adds(item, bos, eos);
    }
    return;
  }
  const nlohmann::json& single = member_or_null(processor, "single");
  if (type != "TemplateProcessing" || !single.is_array() || single.empty()) return;
  *bos = *bos || single.front().contains("SpecialToken");
  *eos = *eos || single.back().contains("SpecialToken");
}

// bos_token etc.: a string, an AddedToken object {"content": ...}, or null.
Expected<std::optional<SpecialToken>> parse_special(const nlohmann::json& config, const char* key,
                                                    const TokenizerData& data) {
  const nlohmann::json& value = member_or_null(config, key);
  if (value.is_null()) return std::optional<SpecialToken>();
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_object() && member_or_null(value, "content").is_string()) {
    text = value["content"].get<std::string>();
  } else {
    return error(StatusCode::kInvalidArgument,
                 "\"%s\" must be a string, an object with \"content\", or null", key);
  }
  std::optional<int32_t> id = data.added.find_content(text);
  if (!id) id = data.model.token_to_id(text);
  if (!id) {
    return error(StatusCode::kInvalidArgument, "%s '%s' is not a token of tokenizer.json", key,
                 text.c_str());
  }
  return std::optional<SpecialToken>(SpecialToken{std::move(text), *id});
}

Expected<std::shared_ptr<TokenizerData>> build(std::string_view tokenizer_json,
                                               const std::string& tokenizer_name,
                                               std::string_view config_json,
                                               const std::string& config_name,
                                               const TokenizerOptions& options) {
  auto in_tokenizer = [&](const Status& s) { return s.with_context(tokenizer_name); };
  PONDER_ASSIGN_OR_RETURN(nlohmann::json tj, parse_json_object(tokenizer_json, tokenizer_name));

  auto normalizer = Normalizer::from_json(member_or_null(tj, "normalizer"));
  if (!normalizer) return tl::unexpected(in_tokenizer(normalizer.error()));
  auto pre_tokenizer = PreTokenizer::from_json(member_or_null(tj, "pre_tokenizer"));
  if (!pre_tokenizer) return tl::unexpected(in_tokenizer(pre_tokenizer.error()));
  if (!tj.contains("model")) {
    return error(StatusCode::kInvalidArgument, "%s: no \"model\"", tokenizer_name.c_str());
  }
  BpeModel::Options model_options{.byte_level_input = pre_tokenizer->byte_level(),
                                  .cache_entries = options.word_cache_entries};
  auto model = BpeModel::from_json(tj["model"], model_options);
  if (!model) return tl::unexpected(in_tokenizer(model.error()));
  auto added_tokens = parse_added_tokens(member_or_null(tj, "added_tokens"));
  if (!added_tokens) return tl::unexpected(in_tokenizer(added_tokens.error()));
  const BpeModel& bpe = *model;
  auto added = AddedVocabulary::build(
      std::move(*added_tokens), *normalizer,
      [&bpe](std::string_view token) { return bpe.token_to_id(token); }, bpe.vocab_entries());
  if (!added) return tl::unexpected(in_tokenizer(added.error()));
  auto decoder = Decoder::from_json(member_or_null(tj, "decoder"));
  if (!decoder) return tl::unexpected(in_tokenizer(decoder.error()));

  auto data = std::make_shared<TokenizerData>(TokenizerData{
      .normalizer = std::move(*normalizer),
      .pre_tokenizer = std::move(*pre_tokenizer),
      .model = std::move(*model),
      .added = std::move(*added),
      .decoder = std::move(*decoder),
  });
  data->vocab_size = data->model.id_limit();
  for (const AddedToken& t : data->added.tokens()) {
    data->vocab_size = std::max(data->vocab_size, t.id + 1);
  }
  data->special.assign(static_cast<size_t>(data->vocab_size), false);
  for (const AddedToken& t : data->added.tokens()) {
    if (t.special) data->special[t.id] = true;
  }
  template_adds(member_or_null(tj, "post_processor"), &data->add_bos, &data->add_eos);

  if (!config_json.empty()) {
    PONDER_ASSIGN_OR_RETURN(nlohmann::json cj, parse_json_object(config_json, config_name));
    auto in_config = [&](const Status& s) { return s.with_context(config_name); };
    std::pair<const char*, std::optional<SpecialToken>*> specials[] = {{"bos_token", &data->bos},
                                                                       {"eos_token", &data->eos},
                                                                       {"pad_token", &data->pad},
                                                                       {"unk_token", &data->unk}};
    for (auto& [key, slot] : specials) {
      auto special = parse_special(cj, key, *data);
      if (!special) return tl::unexpected(in_config(special.error()));
      *slot = std::move(*special);
    }
    auto add_bos = json_optional_bool(cj, "add_bos_token", data->add_bos, "tokenizer_config");
    if (!add_bos) return tl::unexpected(in_config(add_bos.error()));
    auto add_eos = json_optional_bool(cj, "add_eos_token", data->add_eos, "tokenizer_config");
    if (!add_eos) return tl::unexpected(in_config(add_eos.error()));
    data->add_bos = *add_bos;
    data->add_eos = *add_eos;
  }
  return data;
}

struct EncodeScratch {
  std::vector<AddedSegment> raw_segments, normalized_segments;
  PreTokenizerScratch pre;
  std::string normalized;

  // Gives back the memory a huge input left behind (the scratch lives as long as the thread).
  void trim() {
    constexpr size_t kKeep = 1 << 16;
    if (pre.pieces.capacity() > kKeep || pre.next.capacity() > kKeep) pre = PreTokenizerScratch();
    if (raw_segments.capacity() > kKeep) raw_segments = {};
    if (normalized_segments.capacity() > kKeep) normalized_segments = {};
    if (normalized.capacity() > 16 * kKeep) normalized = {};
  }
};

}  // namespace

Expected<Tokenizer> Tokenizer::load(const std::string& model_dir, const TokenizerOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return error(StatusCode::kNotFound, "model directory '%s' does not exist", model_dir.c_str());
  }
  std::filesystem::path dir(model_dir);
  std::string tokenizer_name = (dir / "tokenizer.json").string();
  std::string config_name = (dir / "tokenizer_config.json").string();
  PONDER_ASSIGN_OR_RETURN(std::string tokenizer_json, read_file(tokenizer_name));
  std::string config_json;
  if (std::filesystem::exists(config_name, ec)) {
    PONDER_ASSIGN_OR_RETURN(config_json, read_file(config_name));
    if (config_json.empty()) {
      return error(StatusCode::kInvalidArgument, "%s: empty file", config_name.c_str());
    }
  } else {
    PONDER_LOG(kInfo, "text", "%s not found: no named special tokens", config_name.c_str());
  }
  PONDER_ASSIGN_OR_RETURN(auto data,
                          build(tokenizer_json, tokenizer_name, config_json, config_name, options));
  return Tokenizer(std::move(data));
}

Expected<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json,
                                         std::string_view config_json, std::string_view origin,
                                         const TokenizerOptions& options) {
  std::string tokenizer_name = std::string(origin) + " tokenizer.json";
  std::string config_name = std::string(origin) + " tokenizer_config.json";
  PONDER_ASSIGN_OR_RETURN(auto data,
                          build(tokenizer_json, tokenizer_name, config_json, config_name, options));
  return Tokenizer(std::move(data));
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>* ids) const {
  const TokenizerData& d = *data_;
  std::string sanitized;
  if (!utf8_is_valid(text)) {
    sanitized = utf8_lossy(text);
    text = sanitized;
  }
  thread_local EncodeScratch scratch;
  auto encode_piece = [&](std::string_view piece, bool at_origin) {
    d.pre_tokenizer.split(piece, at_origin, &scratch.pre);
    for (const PreToken& word : scratch.pre.pieces) d.model.encode_word(word.text, ids);
  };
  scratch.raw_segments.clear();
  d.added.split(text, /*normalized_pass=*/false, &scratch.raw_segments);
  for (const AddedSegment& segment : scratch.raw_segments) {
    if (segment.id >= 0) {
      ids->push_back(segment.id);
      continue;
    }
    bool at_origin = segment.text.data() == text.data();
    std::string_view piece = segment.text;
    if (!d.normalizer.empty() && d.normalizer.normalize(piece, &scratch.normalized)) {
      piece = scratch.normalized;
    }
    if (!d.added.has_normalized_tokens()) {
      encode_piece(piece, at_origin);
      continue;
    }
    scratch.normalized_segments.clear();
    d.added.split(piece, /*normalized_pass=*/true, &scratch.normalized_segments);
    for (const AddedSegment& inner : scratch.normalized_segments) {
      if (inner.id >= 0) {
        ids->push_back(inner.id);
      } else {
        encode_piece(inner.text, at_origin && inner.text.data() == piece.data());
      }
    }
  }
  scratch.trim();
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode(text, &ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const TokenizerData& d = *data_;
  DecoderState state = d.decoder.start();
  std::string out;
  for (int32_t id : ids) {
    if (skip_special && d.is_special(id)) continue;
    if (std::optional<std::string_view> token = d.token_text(id)) {
      d.decoder.push(&state, *token, &out);
    }
  }
  d.decoder.finish(&state, &out);
  return out;
}

int32_t Tokenizer::vocab_size() const { return data_->vocab_size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (std::optional<int32_t> id = data_->added.find_content(token)) return id;
  return data_->model.token_to_id(token);
}

std::optional<std::string_view> Tokenizer::token_text(int32_t id) const {
  return data_->token_text(id);
}

bool Tokenizer::is_special(int32_t id) const { return data_->is_special(id); }

std::string Tokenizer::token_bytes(int32_t id) const {
  std::optional<std::string_view> token = data_->token_text(id);
  return token ? data_->decoder.token_bytes(*token) : std::string();
}

const std::optional<SpecialToken>& Tokenizer::bos_token() const { return data_->bos; }
const std::optional<SpecialToken>& Tokenizer::eos_token() const { return data_->eos; }
const std::optional<SpecialToken>& Tokenizer::pad_token() const { return data_->pad; }
const std::optional<SpecialToken>& Tokenizer::unk_token() const { return data_->unk; }
bool Tokenizer::add_bos_token() const { return data_->add_bos; }
bool Tokenizer::add_eos_token() const { return data_->add_eos; }

struct StreamDecoder::State {
  DecoderState decoder;
};

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : data_(tokenizer.data_),
      state_(std::make_unique<State>(State{data_->decoder.start()})),
      skip_special_(skip_special) {}
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;
StreamDecoder::~StreamDecoder() = default;

void StreamDecoder::push(int32_t id, std::string* out) {
  if (skip_special_ && data_->is_special(id)) return;
  if (std::optional<std::string_view> token = data_->token_text(id)) {
    data_->decoder.push(&state_->decoder, *token, out);
  }
}

std::string StreamDecoder::push(int32_t id) {
  std::string out;
  push(id, &out);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  data_->decoder.finish(&state_->decoder, &out);
  return out;
}

}  // namespace ponder::text
