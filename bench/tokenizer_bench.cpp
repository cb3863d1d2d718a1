// Tokenizer benchmark: load time, single-core encode throughput (MB/s) on mixed English / code /
// CJK text with and without the word cache, decode and streaming-decode throughput. Prints one
// JSON object on stdout; never passes or fails on a timing.
//
//   tokenizer_bench [--data DIR] [--megabytes N] [FAMILY...]
//
// DIR holds <family>/tokenizer.json and corpus.txt (default: tests/data/tokenizers); families
// default to qwen3 deepseek_v3 llama3 sp_bpe.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// About `bytes` of text made from random corpus lines (English, code, LaTeX, CJK, other
// scripts, emoji) with their numbers re-randomized and a random suffix on some ASCII words, so
// the text keeps the corpus's mix but repeats far less than the corpus itself (the word cache
// sees realistic misses).
std::string make_mixed_text(const std::vector<std::string>& lines, size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, lines.size() - 1);
  std::uniform_int_distribution<int> percent(0, 99), digit(0, 9), letter(0, 25), length(1, 3);
  std::string text;
  text.reserve(bytes + 4096);
  while (text.size() < bytes) {
    const std::string& line = lines[pick(rng)];
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (c >= '0' && c <= '9') {
        text.push_back(static_cast<char>('0' + digit(rng)));
        continue;
      }
      text.push_back(c);
      bool word_end = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
                      (i + 1 == line.size() || line[i + 1] == ' ');
      if (word_end && percent(rng) < 20) {
        for (int k = length(rng); k > 0; --k) text.push_back(static_cast<char>('a' + letter(rng)));
      }
    }
    text.push_back('\n');
  }
  return text;
}

// Best of `runs` timings of fn(), in seconds.
template <class Fn>
double best_of(int runs, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    Clock::time_point start = Clock::now();
    fn();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef PONDER_TEST_DATA_DIR
  std::string data_dir = std::string(PONDER_TEST_DATA_DIR) + "/tokenizers";
#else
  std::string data_dir = "tests/data/tokenizers";
#endif
  double megabytes = 4.0;
  std::vector<std::string> families;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc) {
      data_dir = argv[++i];
    } else if (arg == "--megabytes" && i + 1 < argc) {
      megabytes = std::atof(argv[++i]);
    } else if (arg == "--help" || arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: tokenizer_bench [--data DIR] [--megabytes N] [FAMILY...]\n");
      return arg == "--help" ? 0 : 2;
    } else {
      families.push_back(arg);
    }
  }
  if (families.empty()) families = {"qwen3", "deepseek_v3", "llama3", "sp_bpe"};

  std::vector<std::string> lines = read_lines(data_dir + "/corpus.txt");
  if (lines.empty()) {
    std::fprintf(stderr, "tokenizer_bench: no corpus at %s/corpus.txt\n", data_dir.c_str());
    return 1;
  }
  const std::string text = make_mixed_text(lines, static_cast<size_t>(megabytes * 1e6), 42);
  const double mb = static_cast<double>(text.size()) / 1e6;

  nlohmann::json results = nlohmann::json::array();
  for (const std::string& family : families) {
    std::string dir = data_dir + "/" + family;
    ponder::Expected<ponder::text::Tokenizer> tok = ponder::text::Tokenizer::load(dir);
    if (!tok) {
      std::fprintf(stderr, "tokenizer_bench: %s\n", tok.error().to_string().c_str());
      return 1;
    }
    double load_s = best_of(3, [&] { (void)ponder::text::Tokenizer::load(dir); });
    auto uncached = ponder::text::Tokenizer::load(dir, {.word_cache_entries = 0});

    std::vector<int32_t> ids;
    tok->encode(text, &ids);  // warms the word cache
    double encode_s = best_of(3, [&] {
      ids.clear();
      tok->encode(text, &ids);
    });
    double cold_s = best_of(1,
                            [&] {
                              auto fresh = ponder::text::Tokenizer::load(dir);
                              std::vector<int32_t> out;
                              fresh->encode(text, &out);
                            }) -
                    load_s;
    double uncached_s = best_of(2, [&] {
      std::vector<int32_t> out;
      uncached->encode(text, &out);
    });
    std::string decoded;
    double decode_s = best_of(3, [&] { decoded = tok->decode(ids); });
    size_t streamed = 0;
    double stream_s = best_of(3, [&] {
      ponder::text::StreamDecoder stream(*tok);
      std::string piece;
      streamed = 0;
      for (int32_t id : ids) {
        piece.clear();
        stream.push(id, &piece);
        streamed += piece.size();
      }
      streamed += stream.flush().size();
    });
    results.push_back({
        {"family", family},
        {"load_s", load_s},
        {"vocab_size", tok->vocab_size()},
        {"tokens", ids.size()},
        {"bytes_per_token", static_cast<double>(text.size()) / static_cast<double>(ids.size())},
        {"encode_mb_per_s", mb / encode_s},
        {"encode_mb_per_s_cold_cache", mb / cold_s},
        {"encode_mb_per_s_no_cache", mb / uncached_s},
        {"decode_mb_per_s", static_cast<double>(decoded.size()) / 1e6 / decode_s},
        {"stream_decode_tokens_per_s", static_cast<double>(ids.size()) / stream_s},
        {"stream_matches_decode", streamed == decoded.size()},
    });
  }
  nlohmann::json out = {{"bench", "tokenizer"},
                        {"threads", 1},
                        {"text_megabytes", mb},
                        {"text",
                         "random corpus.txt lines (English, code, LaTeX, CJK, other "
                         "scripts, emoji), numbers re-randomized, 20% of ASCII words "
                         "given a random suffix"},
                        {"results", results}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
