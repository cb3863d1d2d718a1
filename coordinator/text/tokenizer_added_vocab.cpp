// Added-token matching: leftmost-longest over a byte trie, then Hugging Face's flag handling.
#include "coordinator/text/tokenizer_added_vocab.h"

#include <algorithm>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/normalizer.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {

void AddedVocabulary::Trie::insert(std::string_view pattern, int32_t token) {
  if (pattern.empty()) return;
  if (nodes.empty()) nodes.emplace_back();
  first_byte[static_cast<uint8_t>(pattern[0])] = true;
  int32_t node = 0;
  for (char ch : pattern) {
    auto c = static_cast<uint8_t>(ch);
    int32_t child = -1;
    for (const auto& [byte, index] : nodes[node].children) {
      if (byte == c) child = index;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes[node].children.emplace_back(c, child);
      nodes.emplace_back();
    }
    node = child;
  }
  // Two added tokens with the same content: the first one listed wins.
  if (nodes[node].token < 0) nodes[node].token = token;
}

size_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, int32_t* token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto c = static_cast<uint8_t>(text[i]);
    int32_t child = -1;
    for (const auto& [byte, index] : nodes[node].children) {
      if (byte == c) {
        child = index;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (nodes[node].token >= 0) {
      best = i + 1 - pos;
      *token = nodes[node].token;
    }
  }
  return best;
}

Expected<AddedVocabulary> AddedVocabulary::build(
    std::vector<AddedToken> tokens, const Normalizer& normalizer,
    const std::function<std::optional<int32_t>(std::string_view)>& model_token_to_id,
    size_t vocab_entries) {
  AddedVocabulary vocab;
  auto vocab_size = static_cast<int64_t>(vocab_entries);
  int64_t max_added = -1;
  bool any_single_word = false;
  for (AddedToken& t : tokens) {
    if (t.content.empty()) {
      return error(StatusCode::kInvalidArgument, "added token %d has empty content", t.id);
    }
    std::optional<int32_t> id;
    if (auto it = vocab.by_content_.find(t.content); it != vocab.by_content_.end()) id = it->second;
    if (!id) id = model_token_to_id(t.content);
    if (!id) {
      int64_t next = max_added < 0                                  ? vocab_size
                     : (max_added >= vocab_size || vocab_size == 0) ? max_added + 1
                                                                    : vocab_size;
      if (next > INT32_MAX) {
        return error(StatusCode::kInvalidArgument, "added token '%s': id out of range",
                     t.content.c_str());
      }
      id = static_cast<int32_t>(next);
    }
    if (t.id >= 0 && t.id != *id) {
      PONDER_LOG(kWarn, "text",
                 "added token '%s' is listed with id %d but gets id %d (as in "
                 "Hugging Face tokenizers)",
                 t.content.c_str(), t.id, *id);
    }
    t.id = *id;
    max_added = std::max<int64_t>(max_added, *id);
    vocab.by_content_.emplace(t.content, *id);
    any_single_word = any_single_word || t.single_word;
  }
  vocab.tokens_ = std::move(tokens);
  vocab.by_id_.assign(static_cast<size_t>(max_added + 1), -1);
  vocab.decode_texts_.reserve(vocab.tokens_.size());
  for (size_t i = 0; i < vocab.tokens_.size(); ++i) {
    const AddedToken& t = vocab.tokens_[i];
    // A later token with the same id replaces an earlier one (Hugging Face's map).
    vocab.by_id_[t.id] = static_cast<int32_t>(i);
    // Normalized tokens are looked for in normalized text, so their content is normalized too.
    if (t.normalized) {
      vocab.decode_texts_.push_back(normalizer.normalize(t.content));
      vocab.tries_[1].insert(vocab.decode_texts_.back(), static_cast<int32_t>(i));
    } else {
      vocab.decode_texts_.push_back(t.content);
      vocab.tries_[0].insert(t.content, static_cast<int32_t>(i));
    }
  }
  if (any_single_word) {
    // Rust regex's Unicode \w, which Hugging Face uses for word boundaries.
    PONDER_ASSIGN_OR_RETURN(
        vocab.word_char_,
        UnicodeRegex::compile(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])"));
  }
  return vocab;
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= by_id_.size() || by_id_[id] < 0) return nullptr;
  return &tokens_[by_id_[id]];
}

const std::string* AddedVocabulary::decode_text(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= by_id_.size() || by_id_[id] < 0) return nullptr;
  return &decode_texts_[by_id_[id]];
}

std::optional<int32_t> AddedVocabulary::find_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

bool AddedVocabulary::is_word_char_before(std::string_view text, size_t pos) const {
  if (pos == 0) return false;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return word_char_->search(text.substr(start, pos - start));
}

bool AddedVocabulary::is_word_char_after(std::string_view text, size_t pos) const {
  if (pos >= text.size()) return false;
  size_t len = utf8_sequence_length(static_cast<unsigned char>(text[pos]));
  return word_char_->search(text.substr(pos, len));
}

void AddedVocabulary::split(std::string_view text, bool normalized_pass,
                            std::vector<AddedSegment>* out) const {
  const Trie& trie = tries_[normalized_pass ? 1 : 0];
  if (trie.nodes.empty()) {
    if (!text.empty()) out->push_back({text, -1});
    return;
  }
  // Leftmost-longest, non-overlapping matches first; the flags are applied afterwards, so a
  // match dropped by single_word still hides what overlaps it (as with Aho-Corasick's find_iter).
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t index = -1;
    size_t length = trie.longest_at(text, pos, &index);
    if (length == 0) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + length;
    pos = end;
    const AddedToken& token = tokens_[index];
    if (token.single_word && (is_word_char_before(text, begin) || is_word_char_after(text, end))) {
      continue;
    }
    if (token.lstrip) {  // swallow the whitespace before the token (not before start_offset)
      size_t s = begin;
      while (s > 0) {
        size_t prev = s - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t next = prev;
        if (!is_white_space(utf8_decode(text, &next))) break;
        s = prev;
      }
      begin = std::max(s, start_offset);
    }
    if (token.rstrip) {  // and after it
      while (end < text.size()) {
        size_t next = end;
        if (!is_white_space(utf8_decode(text, &next))) break;
        end = next;
      }
    }
    if (start_offset < begin) out->push_back({text.substr(start_offset, begin - start_offset), -1});
    out->push_back({text.substr(begin, end - begin), token.id});
    start_offset = end;
  }
  if (start_offset < text.size()) out->push_back({text.substr(start_offset), -1});
}

}  // namespace ponder::text
