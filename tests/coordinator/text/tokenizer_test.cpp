// Tokenizer tests: token ids, decoding and streaming decoding against goldens made with Hugging
// Face's tokenizers (tools/text/make_tokenizer_fixtures.py), plus loading errors.
#include "coordinator/text/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "coordinator/text/bpe_byte_level.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

const std::string kDataDir = std::string(PONDER_TEST_DATA_DIR) + "/tokenizers";

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

const std::vector<std::string>& records() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    for (const nlohmann::json& j : read_jsonl(kDataDir + "/records.jsonl")) {
      out.push_back(j.get<std::string>());
    }
    return out;
  }();
  return texts;
}

// Each tokenizer is loaded once for the whole test program.
const Tokenizer& tokenizer(const std::string& family) {
  static std::map<std::string, Tokenizer> loaded;
  auto it = loaded.find(family);
  if (it == loaded.end()) {
    Expected<Tokenizer> tok = Tokenizer::load(kDataDir + "/" + family);
    if (!tok) {
      ADD_FAILURE() << tok.error().to_string();
      std::abort();
    }
    it = loaded.emplace(family, std::move(*tok)).first;
  }
  return it->second;
}

std::string show(std::string_view text) { return nlohmann::json(utf8_lossy(text)).dump(); }

struct Golden {
  std::vector<nlohmann::json> encodes;  // {"record", "ids", "decoded"?}
  std::vector<nlohmann::json> decodes;  // {"decode", "skip_special", "text"}
};

Golden golden(const std::string& family) {
  Golden g;
  for (nlohmann::json& j : read_jsonl(kDataDir + "/" + family + "/expected.jsonl")) {
    (j.contains("record") ? g.encodes : g.decodes).push_back(std::move(j));
  }
  return g;
}

// Streams `ids` one at a time: every piece must be valid UTF-8, the text so far a prefix of the
// final text, and the whole equal to decode().
void expect_stream_matches_decode(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                  bool skip_special) {
  std::string expected = tok.decode(ids, skip_special);
  StreamDecoder stream(tok, skip_special);
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = stream.push(ids[i]);
    ASSERT_TRUE(utf8_is_valid(piece)) << "broken UTF-8 after token " << i << ": " << show(piece);
    text += piece;
    ASSERT_EQ(expected.compare(0, text.size(), text), 0)
        << "after token " << i << " streamed " << show(text) << " but decode gives "
        << show(expected);
  }
  std::string rest = stream.flush();
  ASSERT_TRUE(utf8_is_valid(rest));
  EXPECT_EQ(text + rest, expected);
}

class TokenizerGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGoldenTest, EncodeMatchesHuggingFace) {
  const Tokenizer& tok = tokenizer(GetParam());
  Golden g = golden(GetParam());
  ASSERT_EQ(g.encodes.size(), records().size());
  for (const nlohmann::json& j : g.encodes) {
    const std::string& text = records().at(j["record"].get<size_t>());
    EXPECT_EQ(tok.encode(text), j["ids"].get<std::vector<int32_t>>())
        << "record " << j["record"] << ": " << show(text);
  }
}

TEST_P(TokenizerGoldenTest, DecodeOfEncodeGivesTextBack) {
  // For byte-level BPE this is the text itself; otherwise what Hugging Face's decode gives
  // (normalization and unknown tokens are not undone).
  const Tokenizer& tok = tokenizer(GetParam());
  for (const nlohmann::json& j : golden(GetParam()).encodes) {
    const std::string& text = records().at(j["record"].get<size_t>());
    std::string expected = j.contains("decoded") ? j["decoded"].get<std::string>() : text;
    EXPECT_EQ(tok.decode(tok.encode(text)), expected) << "record " << j["record"];
  }
}

TEST_P(TokenizerGoldenTest, DecodeMatchesHuggingFace) {
  const Tokenizer& tok = tokenizer(GetParam());
  Golden g = golden(GetParam());
  ASSERT_FALSE(g.decodes.empty());
  for (const nlohmann::json& j : g.decodes) {
    auto ids = j["decode"].get<std::vector<int32_t>>();
    bool skip = j["skip_special"].get<bool>();
    EXPECT_EQ(tok.decode(ids, skip), j["text"].get<std::string>())
        << "ids " << j["decode"].dump() << " skip_special " << skip;
  }
}

TEST_P(TokenizerGoldenTest, StreamingMatchesDecodeAtEverySplit) {
  const Tokenizer& tok = tokenizer(GetParam());
  Golden g = golden(GetParam());
  for (const nlohmann::json& j : g.encodes) {
    auto ids = j["ids"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      SCOPED_TRACE("record " + j["record"].dump());
      expect_stream_matches_decode(tok, ids, skip);
    }
  }
  for (const nlohmann::json& j : g.decodes) {
    SCOPED_TRACE("ids " + j["decode"].dump());
    expect_stream_matches_decode(tok, j["decode"].get<std::vector<int32_t>>(),
                                 j["skip_special"].get<bool>());
  }
}

TEST_P(TokenizerGoldenTest, StreamingRandomIdsNeverBreaksUtf8) {
  const Tokenizer& tok = tokenizer(GetParam());
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any_id(-2, tok.vocab_size() + 2);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids(1 + round % 23);
    for (int32_t& id : ids) id = any_id(rng);
    SCOPED_TRACE("round " + std::to_string(round));
    expect_stream_matches_decode(tok, ids, round % 2 == 0);
  }
}

TEST_P(TokenizerGoldenTest, CacheDoesNotChangeIds) {
  Expected<Tokenizer> uncached =
      Tokenizer::load(kDataDir + "/" + GetParam(), TokenizerOptions{.word_cache_entries = 0});
  ASSERT_TRUE(uncached) << uncached.error().to_string();
  const Tokenizer& cached = tokenizer(GetParam());
  for (const std::string& text : records()) {
    ASSERT_EQ(uncached->encode(text), cached.encode(text)) << show(text);
  }
}

TEST_P(TokenizerGoldenTest, ConcurrentEncodesAgree) {
  const Tokenizer& tok = tokenizer(GetParam());
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : records()) expected.push_back(tok.encode(text));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < records().size(); ++i) {
        size_t k = (i * 7 + t * 13) % records().size();
        if (tok.encode(records()[k]) != expected[k]) ++mismatches;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizerGoldenTest,
                         ::testing::Values("qwen3", "deepseek_v3", "llama3", "sp_bpe",
                                           "sp_bpe_metaspace", "gpt2_digits"));

TEST(TokenizerTest, QwenSpecialTokensAndConfig) {
  const Tokenizer& tok = tokenizer("qwen3");
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_id("<think>"), 151667);
  EXPECT_EQ(tok.token_text(151668), "</think>");
  EXPECT_EQ(tok.token_id("Ġhello"), 23811);
  EXPECT_EQ(tok.token_text(23811), "Ġhello");
  EXPECT_FALSE(tok.token_id("not a token"));
  EXPECT_FALSE(tok.token_text(-1));
  EXPECT_FALSE(tok.token_text(tok.vocab_size()));
  EXPECT_TRUE(tok.is_special(151644));
  EXPECT_FALSE(tok.is_special(151667));  // <think> is an added token, not a special one
  EXPECT_FALSE(tok.bos_token());
  ASSERT_TRUE(tok.eos_token());
  EXPECT_EQ(tok.eos_token()->text, "<|im_end|>");
  EXPECT_EQ(tok.eos_token()->id, 151645);
  ASSERT_TRUE(tok.pad_token());
  EXPECT_EQ(tok.pad_token()->id, 151643);
  EXPECT_FALSE(tok.add_bos_token());
  EXPECT_FALSE(tok.add_eos_token());

  std::vector<int32_t> ids = tok.encode("<|im_start|>user\nhi<|im_end|><think>x</think>");
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(tok.decode(ids), "<|im_start|>user\nhi<|im_end|><think>x</think>");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "user\nhi<think>x</think>");
}

TEST(TokenizerTest, LlamaAndDeepSeekConfigs) {
  const Tokenizer& llama = tokenizer("llama3");
  ASSERT_TRUE(llama.bos_token());
  EXPECT_EQ(llama.bos_token()->id, 128000);
  ASSERT_TRUE(llama.eos_token());
  EXPECT_EQ(llama.eos_token()->text, "<|eot_id|>");
  EXPECT_EQ(llama.eos_token()->id, 128009);
  EXPECT_TRUE(llama.add_bos_token());  // from the TemplateProcessing post-processor
  EXPECT_EQ(llama.vocab_size(), 128256);

  const Tokenizer& deepseek = tokenizer("deepseek_v3");  // AddedToken objects in the config
  ASSERT_TRUE(deepseek.bos_token());
  EXPECT_EQ(deepseek.bos_token()->text, "<\uff5cbegin\u2581of\u2581sentence\uff5c>");
  EXPECT_EQ(deepseek.bos_token()->id, 0);
  ASSERT_TRUE(deepseek.eos_token());
  EXPECT_EQ(deepseek.eos_token()->id, 1);
  EXPECT_TRUE(deepseek.add_bos_token());
  EXPECT_FALSE(deepseek.add_eos_token());

  const Tokenizer& sp = tokenizer("sp_bpe");
  ASSERT_TRUE(sp.bos_token());
  EXPECT_EQ(sp.bos_token()->id, 1);
  ASSERT_TRUE(sp.unk_token());
  EXPECT_EQ(sp.unk_token()->id, 0);
  EXPECT_FALSE(sp.pad_token());
  EXPECT_TRUE(sp.add_bos_token());
}

TEST(TokenizerTest, LlamaIgnoreMergesTakesWholeWords) {
  // With ignore_merges a pre-token that is a vocabulary entry is one token even where the
  // merges would not build it (they give [3355, 26298, 66] for " vi\u1ec7c").
  const Tokenizer& tok = tokenizer("llama3");
  EXPECT_EQ(tok.token_id("\u0120vi\u00e1\u00bb\u0129c"), 100769);
  EXPECT_EQ(tok.encode(" vi\u1ec7c"), std::vector<int32_t>{100769});
}

TEST(TokenizerTest, InvalidUtf8IsReadAsReplacementCharacters) {
  const Tokenizer& tok = tokenizer("qwen3");
  EXPECT_EQ(tok.encode("a\xff"
                       "b\xe4\xbd"),
            tok.encode("a\uFFFD"
                       "b\uFFFD"));
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(TokenizerTest, ByteTokensStreamOnlyWholeCharacters) {
  // One byte-level token per byte of "你😀": nothing comes out until a character is complete.
  const Tokenizer& tok = tokenizer("qwen3");
  std::string text = "\u4f60\U0001F600";
  std::vector<int32_t> ids;
  for (char c : text) {
    std::string alphabet_char;
    utf8_append(&alphabet_char, byte_level_char(static_cast<uint8_t>(c)));
    std::optional<int32_t> id = tok.token_id(alphabet_char);
    ASSERT_TRUE(id) << "no token for byte " << int(static_cast<uint8_t>(c));
    ids.push_back(*id);
  }
  ASSERT_EQ(ids.size(), 7u);
  StreamDecoder stream(tok);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.push(id));
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "", "\u4f60", "", "", "", "\U0001F600"}));
  EXPECT_EQ(stream.flush(), "");
  // A truncated character at the end becomes U+FFFD, as in decode().
  EXPECT_EQ(stream.push(ids[0]), "");
  EXPECT_EQ(stream.flush(), "\uFFFD");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{ids[0]}), "\uFFFD");
}

TEST(TokenizerTest, TokenBytesAreTheRawBytesOfPartialCharacters) {
  // Byte-level: each byte token of "你" is that byte alone, not U+FFFD.
  const Tokenizer& qwen = tokenizer("qwen3");
  const std::string ni = "\u4f60";
  std::string joined;
  for (char c : ni) {
    std::string alphabet_char;
    utf8_append(&alphabet_char, byte_level_char(static_cast<uint8_t>(c)));
    std::optional<int32_t> id = qwen.token_id(alphabet_char);
    ASSERT_TRUE(id);
    EXPECT_EQ(qwen.token_bytes(*id), std::string(1, c));
    joined += qwen.token_bytes(*id);
  }
  EXPECT_EQ(joined, ni);
  for (int32_t id : qwen.encode("hello world"))
    EXPECT_EQ(qwen.token_bytes(id), qwen.decode(std::vector<int32_t>{id}));
  EXPECT_EQ(qwen.token_bytes(*qwen.token_id("<|im_start|>")), "<|im_start|>");
  EXPECT_EQ(qwen.token_bytes(-1), "");
  // SentencePiece byte fallback: <0xE4> is the byte 0xE4.
  const Tokenizer& sp = tokenizer("sp_bpe");
  std::vector<int32_t> ids = sp.encode("\u4f60 hi");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(sp.token_bytes(ids[1]), "\xE4");
  EXPECT_EQ(sp.token_bytes(ids[1]) + sp.token_bytes(ids[2]) + sp.token_bytes(ids[3]), ni);
}

TEST(TokenizerTest, SentencePieceByteFallbackStreamsGroups) {
  const Tokenizer& tok = tokenizer("sp_bpe");
  std::vector<int32_t> ids = tok.encode("\u4f60 hi");  // ▁ <0xE4> <0xBD> <0xA0> ▁h...
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(tok.token_text(ids[0]), "\u2581");
  EXPECT_EQ(tok.token_text(ids[1]), "<0xE4>");
  EXPECT_EQ(tok.token_text(ids[2]), "<0xBD>");
  EXPECT_EQ(tok.token_text(ids[3]), "<0xA0>");
  EXPECT_EQ(tok.decode(ids), "\u4f60 hi");
  // An incomplete byte group decodes to one U+FFFD per byte (Hugging Face's ByteFallback).
  EXPECT_EQ(tok.decode(std::vector<int32_t>{ids[1], ids[2]}), "\uFFFD\uFFFD");
  // Nothing of a byte group comes out before the group is complete.
  StreamDecoder stream(tok);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(stream.push(ids[i]), "") << "token " << i;
  std::string text = stream.push(ids[4]);
  EXPECT_EQ(text.rfind("\u4f60 h", 0), 0u) << show(text);
  for (size_t i = 5; i < ids.size(); ++i) text += stream.push(ids[i]);
  EXPECT_EQ(text + stream.flush(), "\u4f60 hi");
}

// ---------------------------------------------------------------------------------------------
// Loading errors.

class TokenizerLoadErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("ponder_tokenizer_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ / name) << contents;
  }
  Status load_error() {
    Expected<Tokenizer> tok = Tokenizer::load(dir_.string());
    EXPECT_FALSE(tok) << "expected an error";
    return tok ? Status() : tok.error();
  }

  std::filesystem::path dir_;
};

// A valid minimal byte-level tokenizer.json with the given model / extra members.
std::string tiny_tokenizer(const std::string& model, const std::string& extra = "") {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
             "decoder": {"type": "ByteLevel"}, )" +
         extra + R"("model": )" + model + "}";
}

const char kTinyModel[] =
    R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]})";

TEST_F(TokenizerLoadErrorTest, TinyTokenizerLoads) {
  write("tokenizer.json", tiny_tokenizer(kTinyModel));
  Expected<Tokenizer> tok = Tokenizer::load(dir_.string());
  ASSERT_TRUE(tok) << tok.error().to_string();
  EXPECT_EQ(tok->encode("ab a"), (std::vector<int32_t>{2, 3, 0}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{2, 3, 0}), "ab a");
  EXPECT_FALSE(tok->bos_token());  // no tokenizer_config.json
}

TEST_F(TokenizerLoadErrorTest, MissingDirectory) {
  Expected<Tokenizer> tok = Tokenizer::load((dir_ / "nope").string());
  ASSERT_FALSE(tok);
  EXPECT_EQ(tok.error().code(), StatusCode::kNotFound);
  EXPECT_NE(tok.error().message().find("nope"), std::string::npos) << tok.error().message();
}

TEST_F(TokenizerLoadErrorTest, MissingTokenizerJson) {
  write("tokenizer_config.json", "{}");
  Status s = load_error();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("tokenizer.json"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, MalformedTokenizerJson) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0,}})");
  Status s = load_error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tokenizer.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("malformed JSON"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, MalformedConfig) {
  write("tokenizer.json", tiny_tokenizer(kTinyModel));
  write("tokenizer_config.json", "{\"bos_token\": ");
  Status s = load_error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tokenizer_config.json"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, ConfigNamesUnknownToken) {
  write("tokenizer.json", tiny_tokenizer(kTinyModel));
  write("tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  Status s = load_error();
  EXPECT_NE(s.message().find("tokenizer_config.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("<|nope|>"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, UnknownModelType) {
  write("tokenizer.json", tiny_tokenizer(R"({"type": "Unigram", "vocab": [["a", 0.0]]})"));
  Status s = load_error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Unigram"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tokenizer.json"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, MissingModel) {
  write("tokenizer.json", R"({"version": "1.0", "added_tokens": []})");
  Status s = load_error();
  EXPECT_NE(s.message().find("model"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, VocabularyWithAFewGapsLoads) {
  // Hugging Face's vocabulary is a map: ids may skip (here 4..9 are unused).
  write("tokenizer.json", tiny_tokenizer(
      R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 10}, "merges": ["a b"]})"));
  Expected<Tokenizer> tok = Tokenizer::load(dir_.string());
  ASSERT_TRUE(tok) << tok.error().to_string();
  EXPECT_EQ(tok->vocab_size(), 11);
  EXPECT_EQ(tok->encode("ab a"), (std::vector<int32_t>{2, 10, 0}));
}

TEST_F(TokenizerLoadErrorTest, VocabularyIdFarPastItsEntriesIsAnError) {
  // The tokenizer_json fuzzer's finding: one id near INT32_MAX sized a table of 2^31 strings.
  write("tokenizer.json",
        tiny_tokenizer(R"({"type": "BPE", "vocab": {"a": 0, "b": 1912360975}, "merges": []})"));
  Status s = load_error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("1912360975"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("model.vocab"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tokenizer.json"), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, MergeOfUnknownToken) {
  write("tokenizer.json",
        tiny_tokenizer(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]})"));
  Status s = load_error();
  EXPECT_NE(s.message().find("merges[0]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("\"ab\""), std::string::npos) << s.message();
}

TEST_F(TokenizerLoadErrorTest, UnsupportedComponents) {
  write("tokenizer.json",
        tiny_tokenizer(kTinyModel, R"("normalizer": {"type": "Precompiled", "x": 1}, )"));
  Status s = load_error();
  EXPECT_NE(s.message().find("Precompiled"), std::string::npos) << s.message();

  write("tokenizer.json",
        tiny_tokenizer(kTinyModel, R"("normalizer": null, "pre_tokenizer": {"type": "Split",
            "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, )"));
  s = load_error();
  EXPECT_NE(s.message().find("(unclosed"), std::string::npos) << s.message();

  write("tokenizer.json", tiny_tokenizer(kTinyModel, R"("decoder": {"type": "WordPiece"}, )"));
  s = load_error();
  EXPECT_NE(s.message().find("WordPiece"), std::string::npos) << s.message();
}

TEST(TokenizerFromJsonTest, NamesTheOrigin) {
  Expected<Tokenizer> tok = Tokenizer::from_json("[1, 2]", "", "inline");
  ASSERT_FALSE(tok);
  EXPECT_NE(tok.error().message().find("inline tokenizer.json"), std::string::npos)
      << tok.error().message();
}

}  // namespace
}  // namespace ponder::text
