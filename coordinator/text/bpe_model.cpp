// BPE encoding of one pre-token with Hugging Face's semantics: per-character symbols (with byte
// fallback or unknown tokens), then merges applied lowest rank first, leftmost first.
#include "coordinator/text/bpe_model.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/bpe_byte_level.h"
#include "coordinator/text/bpe_word_cache.h"
#include "coordinator/text/tokenizer_json.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

// The most ids a vocabulary may leave unused below its largest one (tokens_ holds every id).
constexpr int64_t kMaxUnusedIds = int64_t{1} << 20;

// Open-addressing map (left id, right id) -> merge, sized at twice the merge count.
class BpeModel::PairMap {
 public:
  explicit PairMap(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity <<= 1;
    shift_ = 64 - __builtin_ctzll(capacity);
    mask_ = capacity - 1;
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
  }

  // Inserts or overwrites (a later duplicate merge wins, as in Hugging Face's HashMap).
  void put(int32_t left, int32_t right, Merge merge) {
    uint64_t key = pack(left, right);
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = Slot{key, merge};
        return;
      }
    }
  }

  const Merge* get(int32_t left, int32_t right) const {
    uint64_t key = pack(left, right);
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  size_t index(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ULL) >> shift_; }

  std::vector<Slot> slots_;
  int shift_;
  size_t mask_;
};

BpeModel::BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

Expected<BpeModel> BpeModel::from_json(const nlohmann::json& model, const Options& options) {
  constexpr const char* kWhat = "model";
  if (!model.is_object()) {
    return error(StatusCode::kInvalidArgument, "\"model\" must be a JSON object");
  }
  auto type = model.find("type");
  if (type != model.end() && !(type->is_string() && type->get<std::string>() == "BPE")) {
    return error(StatusCode::kInvalidArgument,
                 "model type '%s' is not supported (ponder implements BPE tokenizers)",
                 type->is_string() ? type->get<std::string>().c_str() : type->dump().c_str());
  }
  if (type == model.end() && !model.contains("merges")) {
    return error(StatusCode::kInvalidArgument,
                 "model has no \"type\" and no \"merges\"; ponder implements BPE tokenizers");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    PONDER_ASSIGN_OR_RETURN(std::string affix, json_optional_string(model, key, "", kWhat));
    if (!affix.empty()) {
      return error(StatusCode::kInvalidArgument, "model: non-empty \"%s\" is not supported", key);
    }
  }
  auto dropout = model.find("dropout");
  if (dropout != model.end() && dropout->is_number() && dropout->get<double>() > 0.0) {
    PONDER_LOG(kWarn, "text", "BPE dropout %g ignored: ponder encodes deterministically",
               dropout->get<double>());
  }

  BpeModel bpe;
  bpe.byte_level_input_ = options.byte_level_input;
  PONDER_ASSIGN_OR_RETURN(bpe.byte_fallback_,
                          json_optional_bool(model, "byte_fallback", false, kWhat));
  PONDER_ASSIGN_OR_RETURN(bpe.fuse_unk_, json_optional_bool(model, "fuse_unk", false, kWhat));
  PONDER_ASSIGN_OR_RETURN(bpe.ignore_merges_,
                          json_optional_bool(model, "ignore_merges", false, kWhat));
  PONDER_ASSIGN_OR_RETURN(const nlohmann::json* vocab, json_object_member(model, "vocab", kWhat));
  PONDER_RETURN_IF_ERROR(bpe.build_vocab(*vocab));
  PONDER_ASSIGN_OR_RETURN(const nlohmann::json* merges, json_array_member(model, "merges", kWhat));
  PONDER_RETURN_IF_ERROR(bpe.build_merges(*merges));

  PONDER_ASSIGN_OR_RETURN(std::string unk, json_optional_string(model, "unk_token", "", kWhat));
  if (!unk.empty()) {
    bpe.unk_id_ = bpe.token_to_id(unk);
    if (!bpe.unk_id_) {
      return error(StatusCode::kInvalidArgument, "model: unk_token '%s' is not in the vocabulary",
                   unk.c_str());
    }
  }
  for (int b = 0; b < 256; ++b) {
    bpe.fallback_ids_[b] = bpe.token_to_id(strformat("<0x%02X>", b)).value_or(-1);
    std::string ch;
    utf8_append(&ch, byte_level_char(static_cast<uint8_t>(b)));
    bpe.byte_ids_[b] = bpe.token_to_id(ch).value_or(-1);
  }
  if (bpe.byte_level_input_ && bpe.ignore_merges_) {
    // ignore_merges looks pre-tokens up whole; index the vocabulary by raw bytes for that.
    bpe.raw_tokens_.resize(bpe.tokens_.size());
    for (size_t id = 0; id < bpe.tokens_.size(); ++id) {
      if (bpe.present_[id] && byte_level_to_bytes(bpe.tokens_[id], &bpe.raw_tokens_[id])) {
        bpe.raw_vocab_.emplace(bpe.raw_tokens_[id], static_cast<int32_t>(id));
      }
    }
  }
  if (options.cache_entries > 0) {
    bpe.cache_ = std::make_unique<BpeWordCache>(options.cache_entries);
  }
  return bpe;
}

Status BpeModel::build_vocab(const nlohmann::json& vocab) {
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return error(StatusCode::kInvalidArgument,
                   "model.vocab: the id of '%s' must be a non-negative integer", token.c_str());
    }
    max_id = std::max(max_id, id.get<int64_t>());
  }
  // Ids index arrays, so they must be dense enough: Hugging Face allows gaps (its map is sparse),
  // and real vocabularies leave a few for added tokens, but an id far past the entry count would
  // size the table to billions of empty slots.
  const auto entries = static_cast<int64_t>(vocab.size());
  if (max_id >= entries + kMaxUnusedIds) {
    return error(StatusCode::kInvalidArgument,
                 "model.vocab: the largest id, %lld, leaves more than %lld ids unused (the "
                 "vocabulary has %lld entries); ids must run from 0 with few gaps",
                 static_cast<long long>(max_id), static_cast<long long>(kMaxUnusedIds),
                 static_cast<long long>(entries));
  }
  tokens_.resize(static_cast<size_t>(max_id + 1));
  present_.assign(tokens_.size(), false);
  vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    auto id = static_cast<size_t>(id_json.get<int64_t>());
    if (present_[id]) {
      return error(StatusCode::kInvalidArgument,
                   "model.vocab: id %zu is given to both '%s' and '%s'", id, tokens_[id].c_str(),
                   token.c_str());
    }
    tokens_[id] = token;
    present_[id] = true;
  }
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (present_[id]) vocab_.emplace(tokens_[id], static_cast<int32_t>(id));
  }
  return Status::ok_status();
}

Status BpeModel::build_merges(const nlohmann::json& merges) {
  merges_ = std::make_unique<PairMap>(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& merge = merges[rank];
    std::string_view left, right;
    if (merge.is_string()) {  // "a b"
      std::string_view text = merge.get_ref<const std::string&>();
      size_t space = text.find(' ');
      if (space == std::string_view::npos) {
        return error(StatusCode::kInvalidArgument,
                     "model.merges[%zu] \"%s\" is not two tokens separated by a space", rank,
                     std::string(text).c_str());
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {  // ["a", "b"]
      left = merge[0].get_ref<const std::string&>();
      right = merge[1].get_ref<const std::string&>();
    } else {
      return error(StatusCode::kInvalidArgument,
                   "model.merges[%zu] must be \"a b\" or [\"a\", \"b\"], got %s", rank,
                   merge.dump().c_str());
    }
    joined.assign(left);
    joined.append(right);
    std::optional<int32_t> ids[3] = {token_to_id(left), token_to_id(right), token_to_id(joined)};
    std::string_view names[3] = {left, right, joined};
    for (int k = 0; k < 3; ++k) {
      if (!ids[k]) {
        return error(StatusCode::kInvalidArgument,
                     "model.merges[%zu] (\"%s\" + \"%s\"): token \"%s\" is not in the vocabulary",
                     rank, std::string(left).c_str(), std::string(right).c_str(),
                     std::string(names[k]).c_str());
      }
    }
    merges_->put(*ids[0], *ids[1], Merge{static_cast<uint32_t>(rank), *ids[2]});
  }
  return Status::ok_status();
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !present_[id]) return nullptr;
  return &tokens_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  return merges_->get(left, right);
}

std::optional<int32_t> BpeModel::whole_word_id(std::string_view word) const {
  if (!byte_level_input_) return token_to_id(word);
  auto it = raw_vocab_.find(word);
  if (it == raw_vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (std::optional<int32_t> id = whole_word_id(word)) {
      ids->push_back(*id);
      return;
    }
  }
  bool cacheable = cache_ != nullptr && word.size() <= BpeWordCache::kMaxWordBytes;
  if (cacheable && cache_->lookup(word, ids)) return;
  size_t first = ids->size();
  merge_word(word, ids);
  if (cacheable) cache_->insert(word, ids->data() + first, ids->size() - first);
}

namespace {

struct Symbol {
  int32_t id;
  int32_t prev;  // -1 at the start
  int32_t next;  // -1 at the end
  bool alive;
};

struct Candidate {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
};

// Min-heap order: lowest rank first, then leftmost.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

struct MergeScratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string piece;
};

}  // namespace

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* ids) const {
  thread_local MergeScratch scratch;
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
  auto add = [&symbols](int32_t id) {
    int32_t n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, true});
  };

  // Per-character symbols (Hugging Face's merge_word): a character missing from the vocabulary
  // becomes its <0xNN> byte tokens (byte_fallback) or the unknown token, fused or not.
  int32_t unk_pending = -1;
  auto missing = [&](std::string_view piece) {
    if (byte_fallback_) {
      bool all = true;
      for (char c : piece) all = all && fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : piece) add(fallback_ids_[static_cast<uint8_t>(c)]);
        return;
      }
    }
    if (!unk_id_) return;  // no unknown token: the character is dropped
    if (unk_pending >= 0 && !fuse_unk_) add(unk_pending);
    unk_pending = *unk_id_;
  };
  auto found = [&](int32_t id) {
    if (unk_pending >= 0) {
      add(unk_pending);
      unk_pending = -1;
    }
    add(id);
  };
  if (byte_level_input_) {
    for (char c : word) {
      int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        found(id);
      } else {
        scratch.piece.clear();
        utf8_append(&scratch.piece, byte_level_char(static_cast<uint8_t>(c)));
        missing(scratch.piece);
      }
    }
  } else {
    size_t i = 0;
    while (i < word.size()) {
      size_t start = i;
      utf8_decode(word, &i);
      std::string_view piece = word.substr(start, i - start);
      if (std::optional<int32_t> id = token_to_id(piece)) {
        found(*id);
      } else {
        missing(piece);
      }
    }
  }
  if (unk_pending >= 0) add(unk_pending);
  if (symbols.empty()) return;
  symbols.back().next = -1;
  for (size_t k = 0; k + 1 < symbols.size(); ++k) symbols[k].next = static_cast<int32_t>(k + 1);

  // Merge loop: pop the best candidate, skip it if stale, merge, queue the two new neighbours.
  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const Merge* m = find_merge(symbols[k].id, symbols[k + 1].id)) {
      heap.push_back(Candidate{m->rank, static_cast<int32_t>(k), m->new_id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), CandidateAfter());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* current = find_merge(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = find_merge(symbols[left.prev].id, left.id)) {
        heap.push_back(Candidate{m->rank, left.prev, m->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter());
      }
    }
    if (left.next >= 0) {
      if (const Merge* m = find_merge(left.id, symbols[left.next].id)) {
        heap.push_back(Candidate{m->rank, top.pos, m->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter());
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids->push_back(s.id);
  }
  if (symbols.capacity() > (1 << 16)) scratch = MergeScratch();  // after a huge pre-token
}

}  // namespace ponder::text
