// Fuzzes loading a tokenizer (tokenizer.json + tokenizer_config.json) and, when it loads, using it:
// encoding a few short texts, decoding, and streaming decoding, which must agree with decode().
//
// Input: the tokenizer.json text, optionally followed by one NUL byte and the
// tokenizer_config.json text (JSON never holds a raw NUL, so the split is unambiguous).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/text/tokenizer.h"

namespace {

using ponder::text::StreamDecoder;
using ponder::text::Tokenizer;

// Texts every loaded tokenizer encodes: ASCII words and digits, spaces and newlines, accents
// (NFC/NFD), CJK, an emoji, special-token look-alikes, and invalid UTF-8.
constexpr char kInvalidUtf8[] = "bad \xff\xfe utf8 \xe2\x82 end \0 nul";
constexpr std::string_view kTexts[] = {
    "Hello, world! 12345 + 678 = ?",
    "  two  spaces\n\nand\ttabs \r\n",
    "caf\xc3\xa9 cafe\xcc\x81 na\xc3\xafve \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c "
    "\xf0\x9f\x98\x80",
    "<think>reasoning</think><|im_start|>user<|im_end|><s></s>",
    std::string_view(kInvalidUtf8, sizeof(kInvalidUtf8) - 1),
};

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "tokenizer_json_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

void exercise(const Tokenizer& tok) {
  const int32_t vocab = tok.vocab_size();
  for (std::string_view text : kTexts) {
    std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids)
      if (id < 0 || id >= vocab) fail("encode gave an id outside [0, vocab_size)", std::string(text));
    // Ids the tokenizer does not know are skipped, not a crash.
    ids.push_back(-1);
    ids.push_back(vocab);
    ids.push_back(vocab + 1000);
    for (bool skip_special : {false, true}) {
      const std::string whole = tok.decode(ids, skip_special);
      StreamDecoder stream(tok, skip_special);
      std::string pieces;
      for (int32_t id : ids) stream.push(id, &pieces);
      pieces += stream.flush();
      if (pieces != whole) fail("streamed pieces differ from decode()", std::string(text));
    }
  }
  for (int32_t id : {0, 1, vocab / 2, vocab - 1}) {
    (void)tok.token_text(id);
    (void)tok.token_bytes(id);
    (void)tok.is_special(id);
  }
  for (const auto* special : {&tok.bos_token(), &tok.eos_token(), &tok.pad_token(), &tok.unk_token()})
    if (*special) (void)tok.token_id((*special)->text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view tokenizer_json = input, config_json;
  if (size_t nul = input.find('\0'); nul != std::string_view::npos) {
    tokenizer_json = input.substr(0, nul);
    config_json = input.substr(nul + 1);
  }
  // No word cache: every input sees the pipeline itself, and runs stay independent.
  auto tok = Tokenizer::from_json(tokenizer_json, config_json, "fuzz", {.word_cache_entries = 0});
  if (tok) exercise(*tok);
  return 0;
}
