// StopStringFilter: the text released over a stream is the text up to the first stop string
// (with it, when asked), for every way of cutting the text into pieces; partial matches are held
// back until resolved.
#include "coordinator/api/stop_filter.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ponder::coordinator::api {
namespace {

std::string run(const std::vector<std::string>& pieces, std::vector<std::string> stops,
                bool include, std::string* match = nullptr) {
  StopStringFilter f(std::move(stops), include);
  std::string out;
  for (const std::string& p : pieces) out += f.feed(p);
  out += f.finish();
  if (match) *match = f.match();
  return out;
}

// Every split of `text` into 1..3 pieces.
std::vector<std::vector<std::string>> splits(const std::string& text) {
  std::vector<std::vector<std::string>> out{{text}};
  for (size_t i = 0; i <= text.size(); ++i) {
    out.push_back({text.substr(0, i), text.substr(i)});
    for (size_t j = i; j <= text.size(); ++j)
      out.push_back({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
  }
  return out;
}

TEST(StopStringFilter, CutsAtTheFirstStopForEverySplit) {
  const std::string text = "The answer is 42.\n\nUser: next question";
  for (const auto& pieces : splits(text)) {
    std::string match;
    EXPECT_EQ(run(pieces, {"\n\nUser:"}, false, &match), "The answer is 42.");
    EXPECT_EQ(match, "\n\nUser:");
    EXPECT_EQ(run(pieces, {"\n\nUser:"}, true), "The answer is 42.\n\nUser:");
  }
}

TEST(StopStringFilter, EarliestOfSeveralStopsWins) {
  const std::string text = "abc STOP2 def STOP1 ghi";
  for (const auto& pieces : splits(text)) {
    std::string match;
    EXPECT_EQ(run(pieces, {"STOP1", "STOP2"}, false, &match), "abc ");
    EXPECT_EQ(match, "STOP2");
  }
}

TEST(StopStringFilter, NoMatchReleasesEverything) {
  const std::string text = "partial ST at the end: STO";
  for (const auto& pieces : splits(text)) EXPECT_EQ(run(pieces, {"STOP"}, false), text);
  EXPECT_EQ(run({text}, {}, false), text);
}

TEST(StopStringFilter, HoldsBackOnlyWhatCouldStartAStop) {
  StopStringFilter f({"</end>"}, false);
  EXPECT_EQ(f.feed("hello <"), "hello ");  // "<" could start the stop string
  EXPECT_EQ(f.feed("/e"), "");             // "</e" still could
  EXPECT_EQ(f.feed("x"), "</ex");          // no longer
  EXPECT_EQ(f.feed(" </en"), " ");
  EXPECT_EQ(f.feed("d> tail"), "");
  EXPECT_TRUE(f.matched());
  EXPECT_EQ(f.feed("more"), "");
  EXPECT_EQ(f.finish(), "");
}

TEST(StopStringFilter, OverlappingPrefixes) {
  // "aab" inside "aaab": the hold-back must keep "aa" after "aaa" and still find the match.
  for (const auto& pieces : splits("xaaaby")) EXPECT_EQ(run(pieces, {"aab"}, false), "xa");
}

TEST(StopStringFilter, RandomTextsAgreeWithFind) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab\xc3\xa9 ";  // includes a two-byte character
  for (int iter = 0; iter < 300; ++iter) {
    std::string text, stop;
    for (int i = 0; i < 30; ++i) text += alphabet[rng() % alphabet.size()];
    for (int i = 0; i < 1 + static_cast<int>(rng() % 3); ++i) stop += "ab"[rng() % 2];
    const size_t pos = text.find(stop);
    const std::string want = pos == std::string::npos ? text : text.substr(0, pos);
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      size_t len = 1 + rng() % 4;
      pieces.push_back(text.substr(i, len));
      i += len;
    }
    EXPECT_EQ(run(pieces, {stop}, false), want) << text << " / " << stop;
  }
}

}  // namespace
}  // namespace ponder::coordinator::api
