// Sampling: greedy, seeded reproducibility, top-k/top-p/min-p truncation, penalties, logprobs and
// the distribution itself.
#include "worker/sampler.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>

namespace ponder::worker {
namespace {

std::vector<float> softmax(const std::vector<float>& l) {
  float m = *std::max_element(l.begin(), l.end());
  std::vector<float> p(l.size());
  double s = 0;
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp(l[i] - m);
  for (auto& x : p) x /= static_cast<float>(s);
  return p;
}

int32_t draw(Sampler& s, std::vector<float> logits) { return s.sample(logits).token; }

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  Sampler s({.temperature = 0.0f});
  EXPECT_EQ(draw(s, {0.1f, 3.0f, -1.0f, 2.9f}), 1);
  EXPECT_EQ(draw(s, {1.0f, 5.0f, 5.0f}), 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i));
  auto run = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(draw(s, logits));
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, AResumedSamplerContinuesTheSameSequence) {
  // Logits that depend on the step, penalties on: the continuation depends on the RNG position,
  // the output counts and what counts as prompt.
  auto logits_at = [](int step) {
    std::vector<float> l(40);
    for (size_t i = 0; i < l.size(); ++i) l[i] = std::sin(float(i) * 0.7f + float(step) * 0.3f);
    return l;
  };
  const std::vector<int32_t> prompt = {3, 5, 7};
  const SamplingParams params{.temperature = 0.9f, .repetition_penalty = 1.3f, .presence_penalty = 0.5f,
                              .frequency_penalty = 0.4f, .seed = 42};
  Sampler whole(params);
  whole.set_prompt(prompt);
  std::vector<int32_t> reference;
  for (int step = 0; step < 60; ++step) {
    const int32_t t = draw(whole, logits_at(step));
    whole.accept(t);
    reference.push_back(t);
  }
  // Stopped after 25 draws, with an inserted token (not drawn) among them, then resumed.
  constexpr int kBefore = 25;
  std::vector<int32_t> tail(reference.begin(), reference.begin() + kBefore);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), tail.begin(), tail.end());
  all.push_back(39);  // the engine's inserted token: in the prompt, not a draw
  SamplingParams resumed = params;
  resumed.resumed_tail = kBefore + 1;
  resumed.resumed_draws = tail;
  Sampler rest(resumed);
  rest.set_prompt(all);
  for (int step = kBefore; step < 60; ++step) {
    const int32_t t = draw(rest, logits_at(step));
    rest.accept(t);
    EXPECT_EQ(t, reference[step]) << "step " << step;
  }
  // Restarted from the seed alone, it goes elsewhere.
  Sampler fresh(params);
  fresh.set_prompt(all);
  std::vector<int32_t> other;
  for (int step = kBefore; step < 60; ++step) other.push_back(draw(fresh, logits_at(step)));
  EXPECT_NE(other, std::vector<int32_t>(reference.begin() + kBefore, reference.end()));
  EXPECT_FALSE((SamplingParams{.resumed_tail = 1, .resumed_draws = {1, 2}}).validate().ok());
}

TEST(Sampler, FrequenciesFollowTheSoftmaxAtTemperatureOne) {
  std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  std::vector<float> p = softmax(logits);
  Sampler s({.temperature = 1.0f, .seed = 1});
  const int n = 40000;
  std::vector<int> counts(logits.size());
  for (int i = 0; i < n; ++i) ++counts[draw(s, logits)];
  for (size_t i = 0; i < p.size(); ++i) {
    double sd = std::sqrt(p[i] * (1 - p[i]) / n);
    EXPECT_NEAR(counts[i] / double(n), p[i], 5 * sd) << "token " << i;
  }
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
  std::vector<float> logits = {1.0f, 2.0f};
  Sampler cold({.temperature = 0.25f, .seed = 3});
  int top = 0;
  for (int i = 0; i < 4000; ++i) top += draw(cold, logits) == 1;
  // p(1) = 1 / (1 + e^-4) ≈ 0.982 at T = 0.25 versus 0.73 at T = 1.
  EXPECT_GT(top / 4000.0, 0.96);
}

TEST(Sampler, TopKOneIsGreedyTopPAndMinPTruncate) {
  std::vector<float> logits = {0.0f, 3.0f, 2.9f, 2.8f, -5.0f};
  Sampler k1({.temperature = 2.0f, .top_k = 1, .seed = 5});
  for (int i = 0; i < 200; ++i) EXPECT_EQ(draw(k1, logits), 1);

  // top_p: tokens 1, 2, 3 hold nearly all the mass; 0 and 4 must never appear with p=0.9.
  Sampler tp({.temperature = 1.0f, .top_p = 0.9f, .seed = 5});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[draw(tp, logits)];
  EXPECT_EQ(seen.count(0) + seen.count(4), 0u);
  EXPECT_EQ(seen.size(), 3u);

  // min_p 0.5: keep p >= 0.5 × p(max) → tokens 1, 2 (e^-0.1 = 0.90) and 3 (e^-0.2 = 0.82) stay;
  // with min_p 0.85 token 3 goes.
  Sampler mp({.temperature = 1.0f, .min_p = 0.85f, .seed = 5});
  seen.clear();
  for (int i = 0; i < 2000; ++i) ++seen[draw(mp, logits)];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(2));
}

TEST(Sampler, RepetitionPenaltyCoversThePromptPresenceAndFrequencyTheOutput) {
  std::vector<float> logits = {2.0f, 2.1f, 0.0f};
  Sampler rep({.temperature = 0.0f, .repetition_penalty = 2.0f});
  int32_t prompt[] = {1};
  rep.set_prompt(prompt);
  EXPECT_EQ(draw(rep, logits), 0);  // 2.1 / 2 < 2.0

  Sampler freq({.temperature = 0.0f, .frequency_penalty = 0.6f});
  EXPECT_EQ(draw(freq, logits), 1);
  freq.accept(1);
  EXPECT_EQ(draw(freq, logits), 0);  // 2.1 - 0.6 < 2.0
  Sampler presence({.temperature = 0.0f, .presence_penalty = 0.05f});
  presence.accept(1);
  presence.accept(1);
  EXPECT_EQ(draw(presence, logits), 1);  // 2.1 - 0.05 > 2.0: presence does not grow with count
}

TEST(Sampler, LogprobsAreOfTheRawDistribution) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f};
  std::vector<float> p = softmax(logits);
  Sampler s({.temperature = 0.0f, .repetition_penalty = 3.0f, .top_logprobs = 3});
  int32_t prompt[] = {1};
  s.set_prompt(prompt);
  std::vector<float> work = logits;
  SampleResult r = s.sample(work);
  EXPECT_EQ(r.token, 2);  // 3 / 3 = 1 < 2
  EXPECT_NEAR(r.logprob, std::log(p[2]), 1e-5);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].token, 1);
  EXPECT_EQ(r.top[1].token, 2);
  EXPECT_EQ(r.top[2].token, 0);
  EXPECT_NEAR(r.top[0].logprob, std::log(p[1]), 1e-5);
}

TEST(Sampler, ValidationNamesTheField) {
  EXPECT_NE(SamplingParams{.temperature = -1}.validate().message().find("temperature"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_p = 0}.validate().message().find("top_p"), std::string::npos);
  EXPECT_NE(SamplingParams{.min_p = 2}.validate().message().find("min_p"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_k = -3}.validate().message().find("top_k"), std::string::npos);
  EXPECT_NE(SamplingParams{.presence_penalty = 3}.validate().message().find("presence_penalty"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_logprobs = 21}.validate().message().find("top_logprobs"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.validate().ok());
}

}  // namespace
}  // namespace ponder::worker
