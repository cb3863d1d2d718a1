// Tests of the tokenizer's building blocks: NFC/NFD, lossy UTF-8, the PCRE2 pattern translation,
// the GPT-2 byte alphabet and the streaming decoder chains (against Hugging Face's results).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "coordinator/text/bpe_byte_level.h"
#include "coordinator/text/decoder.h"
#include "coordinator/text/normalizer.h"
#include "coordinator/text/pre_tokenizer.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/unicode_regex.h"
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

std::string hex(std::string_view s) {
  std::string out;
  for (char c : s) out += strformat("%02X ", static_cast<uint8_t>(c));
  return out;
}

TEST(UnicodeTest, NormalizationMatchesPython) {
  std::vector<nlohmann::json> cases = read_jsonl(kDataDir + "/nfc.jsonl");
  ASSERT_GT(cases.size(), 300u);
  for (const nlohmann::json& c : cases) {
    std::string text = c["text"].get<std::string>();
    EXPECT_EQ(to_nfc(text), c["nfc"].get<std::string>()) << hex(text);
    EXPECT_EQ(to_nfd(text), c["nfd"].get<std::string>()) << hex(text);
    // Normalizing twice changes nothing, and normalized text is reported unchanged.
    std::string out;
    EXPECT_FALSE(normalize_nfc(c["nfc"].get<std::string>(), &out)) << hex(text);
    EXPECT_FALSE(normalize_nfd(c["nfd"].get<std::string>(), &out)) << hex(text);
  }
}

TEST(UnicodeTest, NormalizationExamples) {
  EXPECT_EQ(to_nfc("cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(to_nfc("\u212b"), "\u00c5");               // singleton
  EXPECT_EQ(to_nfc("\u1100\u1161\u11a8"), "\uac01");   // Hangul L V T
  EXPECT_EQ(to_nfc("a\u0316\u0301"), "\u00e1\u0316");  // reordered, then composed
  EXPECT_EQ(to_nfc("\u0958"), "\u0915\u093c");         // composition exclusion
  EXPECT_EQ(to_nfd("\uac01"), "\u1100\u1161\u11a8");
  EXPECT_EQ(canonical_combining_class(0x0301), 230);
  EXPECT_EQ(canonical_combining_class('a'), 0);
  std::string out;
  EXPECT_FALSE(normalize_nfc("plain ASCII, \u4e2d\u6587, \ud55c\uad6d\uc5b4", &out));
}

TEST(UnicodeTest, WhiteSpaceIsTheUnicodeProperty) {
  for (uint32_t cp : {0x09, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x3000}) {
    EXPECT_TRUE(is_white_space(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0x08, 0x1C, 0x180E, 0x200B, 0xFEFF, 0x61}) {
    EXPECT_FALSE(is_white_space(cp)) << std::hex << cp;
  }
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("Hello\xF0\x90\x80World"), "Hello\uFFFDWorld");
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), "\uFFFD\uFFFD");            // overlong
  EXPECT_EQ(utf8_lossy("a\xE2\x82"), "a\uFFFD");                // truncated at the end
  EXPECT_EQ(utf8_lossy("\xE2\x82\xAC"), "\u20AC");
  EXPECT_TRUE(utf8_is_valid("\u20AC\U0001F600 plain"));
  EXPECT_FALSE(utf8_is_valid("abcdefgh\xFF"));
  EXPECT_FALSE(utf8_is_valid("\xF0\x9F\x98"));
}

TEST(UnicodeRegexTest, OnigurumaEscapesBecomeWhiteSpaceClasses) {
  std::string body(kWhiteSpaceClassBody);
  EXPECT_EQ(oniguruma_to_pcre2(R"(\s+(?!\S))"), "[" + body + "]+(?![^" + body + "])");
  EXPECT_EQ(oniguruma_to_pcre2(R"([^\s\p{L}])"), "[^" + body + R"(\p{L}])");
  EXPECT_EQ(oniguruma_to_pcre2(R"([]\s] \Q\s\E \\s)"), "[]" + body + R"(] \Q\s\E \\s)");
  EXPECT_EQ(oniguruma_to_pcre2(R"(\h[\h])"), "[0-9a-fA-F][0-9a-fA-F]");
}

TEST(UnicodeRegexTest, MatchesLikeOniguruma) {
  Expected<UnicodeRegex> space = UnicodeRegex::compile(R"(\s+)");
  ASSERT_TRUE(space) << space.error().to_string();
  EXPECT_FALSE(space->search("\u180e"));  // Mongolian vowel separator is not White_Space
  EXPECT_TRUE(space->search("a\u3000b"));

  Expected<UnicodeRegex> stars = UnicodeRegex::compile("a*");
  ASSERT_TRUE(stars);
  std::vector<TextSpan> matches;
  stars->find_all("baac", &matches);
  std::vector<std::pair<size_t, size_t>> got;
  for (const TextSpan& m : matches) got.emplace_back(m.begin, m.end);
  // No empty match right after a match.
  EXPECT_EQ(got, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));

  Expected<UnicodeRegex> contraction = UnicodeRegex::compile("(?i:'s)");
  ASSERT_TRUE(contraction);
  EXPECT_TRUE(contraction->search("'\u017f"));  // long s folds to s

  Expected<UnicodeRegex> bad = UnicodeRegex::compile("(");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
}

TEST(UnicodeRegexTest, LongWhitespaceRunDoesNotExhaustTheStack) {
  Expected<UnicodeRegex> re = UnicodeRegex::compile(R"(\s+(?!\S)|\s+)");
  ASSERT_TRUE(re);
  std::string text(1 << 20, ' ');
  text += "x";
  std::vector<TextSpan> matches;
  re->find_all(text, &matches);
  // All spaces but the last (which is followed by "x"), then the last one.
  ASSERT_EQ(matches.size(), 2u);
  EXPECT_EQ(matches[0].end, (size_t{1} << 20) - 1);
  EXPECT_EQ(matches[1].end, size_t{1} << 20);
}

TEST(ByteLevelTest, AlphabetRoundTrips) {
  EXPECT_EQ(uint32_t{byte_level_char(' ')}, 0x120u);   // 'Ġ'
  EXPECT_EQ(uint32_t{byte_level_char('\n')}, 0x10Au);  // 'Ċ'
  EXPECT_EQ(uint32_t{byte_level_char('a')}, uint32_t{'a'});
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string text = bytes_to_byte_level(all);
  EXPECT_TRUE(utf8_is_valid(text));
  std::string back;
  ASSERT_TRUE(byte_level_to_bytes(text, &back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(byte_level_to_bytes("\u2581", &back));
  EXPECT_EQ(back, all);  // nothing appended on failure
}

// Decoder chains from decoders.jsonl: whole-sequence and streamed results must equal Hugging
// Face's decode_chain output, and no streamed piece may be broken UTF-8.
TEST(DecoderTest, ChainsMatchHuggingFace) {
  std::vector<nlohmann::json> lines = read_jsonl(kDataDir + "/decoders.jsonl");
  ASSERT_FALSE(lines.empty());
  std::vector<Decoder> chains;
  for (const nlohmann::json& config : lines[0]["decoders"]) {
    Expected<Decoder> decoder = Decoder::from_json(config);
    ASSERT_TRUE(decoder) << config.dump() << ": " << decoder.error().to_string();
    chains.push_back(std::move(*decoder));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json& c = lines[i];
    const Decoder& decoder = chains.at(c["decoder"].get<size_t>());
    DecoderState state = decoder.start();
    std::string text;
    for (const nlohmann::json& token : c["tokens"]) {
      std::string piece;
      decoder.push(&state, token.get<std::string>(), &piece);
      EXPECT_TRUE(utf8_is_valid(piece)) << c.dump();
      text += piece;
    }
    decoder.finish(&state, &text);
    EXPECT_EQ(text, c["text"].get<std::string>())
        << "chain " << lines[0]["decoders"][c["decoder"].get<size_t>()].dump() << " tokens "
        << c["tokens"].dump();
  }
}

TEST(PreTokenizerTest, MatchesHuggingFace) {
  std::vector<nlohmann::json> lines = read_jsonl(kDataDir + "/pre_tokenizers.jsonl");
  ASSERT_FALSE(lines.empty());
  std::vector<PreTokenizer> pre_tokenizers;
  for (const nlohmann::json& config : lines[0]["pre_tokenizers"]) {
    Expected<PreTokenizer> pre = PreTokenizer::from_json(config);
    ASSERT_TRUE(pre) << config.dump() << ": " << pre.error().to_string();
    pre_tokenizers.push_back(std::move(*pre));
  }
  PreTokenizerScratch scratch;
  for (size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json& c = lines[i];
    const PreTokenizer& pre = pre_tokenizers.at(c["pre_tokenizer"].get<size_t>());
    std::string text = c["text"].get<std::string>();  // the pieces point into it
    pre.split(text, /*at_origin=*/true, &scratch);
    std::vector<std::string> pieces;
    for (const PreToken& piece : scratch.pieces) {
      // Byte-level pieces stay raw bytes here; Hugging Face shows them in the byte alphabet.
      pieces.push_back(pre.byte_level() ? bytes_to_byte_level(piece.text)
                                        : std::string(piece.text));
    }
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>())
        << lines[0]["pre_tokenizers"][c["pre_tokenizer"].get<size_t>()].dump() << " on "
        << c["text"].dump();
  }
}

TEST(NormalizerTest, MatchesHuggingFace) {
  std::vector<nlohmann::json> lines = read_jsonl(kDataDir + "/normalizers.jsonl");
  ASSERT_FALSE(lines.empty());
  std::vector<Normalizer> normalizers;
  for (const nlohmann::json& config : lines[0]["normalizers"]) {
    Expected<Normalizer> normalizer = Normalizer::from_json(config);
    ASSERT_TRUE(normalizer) << config.dump() << ": " << normalizer.error().to_string();
    normalizers.push_back(std::move(*normalizer));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json& c = lines[i];
    const Normalizer& normalizer = normalizers.at(c["normalizer"].get<size_t>());
    EXPECT_EQ(normalizer.normalize(c["text"].get<std::string>()),
              c["normalized"].get<std::string>())
        << lines[0]["normalizers"][c["normalizer"].get<size_t>()].dump() << " on "
        << c["text"].dump();
  }
}

TEST(DecoderTest, NoDecoderJoinsWithSpaces) {
  Expected<Decoder> decoder = Decoder::from_json(nlohmann::json());
  ASSERT_TRUE(decoder);
  DecoderState state = decoder->start();
  std::string text;
  for (const char* token : {"a", "b", "c"}) decoder->push(&state, token, &text);
  decoder->finish(&state, &text);
  EXPECT_EQ(text, "a b c");
}

TEST(DecoderTest, RejectsUnsupportedChains) {
  auto parse = [](const char* text) { return Decoder::from_json(nlohmann::json::parse(text)); };
  EXPECT_FALSE(
      parse(R"({"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "ByteLevel"}]})"));
  EXPECT_FALSE(
      parse(R"({"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "ByteFallback"}]})"));
  EXPECT_FALSE(parse(R"({"type": "Replace", "pattern": {"Regex": "a+"}, "content": "b"})"));
  EXPECT_FALSE(parse(R"({"type": "Strip", "content": "ab", "start": 1, "stop": 0})"));
  EXPECT_FALSE(parse(R"({"type": "CTC"})"));
  EXPECT_FALSE(parse(R"({"decoders": []})"));  // no type
}

}  // namespace
}  // namespace ponder::text
