// The replica engine on a real (tiny) model in this process: continuous batching gives every
// request exactly what it gets alone; blocks never leak; prefix cache, n-way forks, thinking
// budgets, stop conditions, cancellation and prefill-only scoring behave as documented.
#include "worker/engine/engine.h"

#include <cmath>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "common/strings.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/model/decoder_model.h"

namespace ponder::worker {
namespace {

std::string model_dir(const std::string& name) {
  return std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<float> scores;
  std::vector<std::vector<TokenLogprob>> top;
  std::string finish_reason;
  std::string stop_string;
  Usage usage;
  int outputs = 0;
};

// Every test runs on a dense model, a MoE one and an MLA + MoE one (a latent KV cache).
class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { make(/*blocks=*/256, {}); }

  void make(int64_t blocks, EngineOptions options) {
    engine_.reset();
    executor_.reset();
    if (!model_) model_ = std::move(*DecoderModel::load(model_dir(GetParam())));
    if (!backend_) backend_ = std::move(*CpuBackend::create({.n_threads = 1}));
    cache_ = std::make_unique<KvCache>(std::move(*KvCache::create(model_->kv_cache_config(blocks))));
    executor_ = std::make_unique<LocalExecutor>(*model_, *backend_, *cache_);
    engine_ = std::make_unique<Engine>(*executor_, std::move(options));
  }

  // Enqueues; outputs land in results_[{request id, index}].
  int64_t submit(EngineRequest r) {
    auto id = engine_->enqueue(std::move(r), [this](const EngineOutput& out) {
      Collected& c = results_[{out.request_id, out.index}];
      c.tokens.insert(c.tokens.end(), out.tokens.begin(), out.tokens.end());
      c.logprobs.insert(c.logprobs.end(), out.logprobs.begin(), out.logprobs.end());
      c.top.insert(c.top.end(), out.top_logprobs.begin(), out.top_logprobs.end());
      ++c.outputs;
      if (out.finished) {
        c.finish_reason = out.finish_reason;
        c.stop_string = out.stop_string;
        c.usage = out.usage;
        c.scores = out.scores;
      }
    });
    EXPECT_TRUE(id.has_value()) << id.error().to_string();
    return *id;
  }
  void drain() {
    for (int i = 0; i < 100000; ++i) {
      auto worked = engine_->step();
      ASSERT_TRUE(worked.has_value()) << worked.error().to_string();
      if (!*worked && engine_->idle()) return;
    }
    FAIL() << "engine did not drain";
  }
  Collected alone(const EngineRequest& r, int index = 0) {
    results_.clear();
    int64_t id = submit(r);
    drain();
    return results_.at({id, index});
  }

  std::unique_ptr<DecoderModel> model_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<LocalExecutor> executor_;
  std::unique_ptr<Engine> engine_;
  std::map<std::pair<int64_t, int32_t>, Collected> results_;
};

// QKᵀ and AV per cached key, every layer: 2 FLOPs per multiply-add over the query/key width
// and the value width of each head (MLA: nope + rope, and v_head_dim).
double attention_flops_per_key(const ModelConfig& cfg) {
  const double v = cfg.is_mla() ? cfg.mla.v_head_dim : cfg.head_dim;
  return 2.0 * cfg.n_layers * cfg.n_heads * (cfg.head_dim + v);
}

std::vector<int32_t> random_prompt(std::mt19937& gen, int len, int vocab) {
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<int32_t> p(len);
  for (auto& t : p) t = d(gen);
  return p;
}

TEST_P(EngineTest, BusyBatchOfMixedRequestsMatchesEachRequestAloneAndLeaksNothing) {
  std::mt19937 gen(7);
  const int vocab = static_cast<int>(model_->config().vocab_size);
  std::vector<EngineRequest> reqs;
  for (int i = 0; i < 64; ++i) {
    EngineRequest r;
    // Shared prefixes for some, so the prefix cache is exercised inside the batch.
    r.prompt = random_prompt(gen, 1 + gen() % 45, vocab);
    if (i % 5 == 0 && i > 0) r.prompt = reqs[i - 5].prompt, r.prompt.push_back(gen() % vocab);
    r.max_tokens = 1 + gen() % 24;
    r.n = i % 7 == 0 ? 3 : 1;
    r.ignore_eos = true;
    if (i % 2) r.sampling = {.temperature = 0.9f, .top_p = 0.95f, .seed = uint64_t(i)};
    else r.sampling = {.temperature = 0.0f};
    reqs.push_back(r);
  }
  // Alone, each on a fresh engine state.
  std::vector<std::vector<Collected>> want;
  for (const auto& r : reqs) {
    std::vector<Collected> samples;
    for (int k = 0; k < r.n; ++k) {
      EngineRequest single = r;
      single.n = 1;
      single.sampling.seed = r.sampling.seed + k;  // sample k of n reproduces alone with seed + k
      samples.push_back(alone(single));
    }
    want.push_back(samples);
  }
  // Together, with a small step budget (chunked prefill) and a small cache (preemption).
  make(/*blocks=*/14, {.token_budget = 24});
  results_.clear();
  std::vector<int64_t> ids;
  for (const auto& r : reqs) ids.push_back(submit(r));
  drain();
  EXPECT_GT(engine_->stats().preemptions, 0) << "the cache was meant to be too small";
  // One prefill per request (forks share it), and one more per recomputed preemption.
  EXPECT_EQ(engine_->stats().prefills,
            static_cast<int64_t>(reqs.size()) + engine_->stats().preemptions);
  for (size_t i = 0; i < reqs.size(); ++i) {
    for (int k = 0; k < reqs[i].n; ++k) {
      const Collected& got = results_.at({ids[i], k});
      EXPECT_EQ(got.tokens, want[i][k].tokens) << "request " << i << " sample " << k;
      EXPECT_EQ(got.finish_reason, "length");
    }
  }
  EXPECT_EQ(cache_->pool().blocks_used(), 0) << "blocks leaked";
  for (int32_t b = 0; b < cache_->pool().n_blocks(); ++b) ASSERT_EQ(cache_->pool().refcount(b), 0);
}

TEST_P(EngineTest, NWayForkPrefillsThePromptOnce) {
  std::mt19937 gen(3);
  EngineRequest r{.prompt = random_prompt(gen, 37, 300), .n = 8,
                  .sampling = {.temperature = 1.0f, .seed = 11}, .max_tokens = 6, .ignore_eos = true};
  results_.clear();
  int64_t id = submit(r);
  drain();
  // 37 prompt tokens once, then each sample runs its 5 fed-back tokens.
  EXPECT_EQ(engine_->stats().tokens_processed, 37 + 8 * 5);
  std::set<std::vector<int32_t>> distinct;
  for (int k = 0; k < 8; ++k) {
    const Collected& c = results_.at({id, k});
    EXPECT_EQ(c.tokens.size(), 6u);
    EXPECT_EQ(c.usage.prompt_tokens, 37);
    distinct.insert(c.tokens);
  }
  EXPECT_GT(distinct.size(), 4u) << "samples should differ";
  EXPECT_EQ(cache_->pool().blocks_used(), 0);
}

TEST_P(EngineTest, PrefixCacheHitIsCountedAndSkipsRecompute) {
  std::mt19937 gen(5);
  EngineRequest r{.prompt = random_prompt(gen, 64, 300), .sampling = {.temperature = 0.0f},
                  .max_tokens = 4, .ignore_eos = true};
  Collected first = alone(r);
  const int64_t processed = engine_->stats().tokens_processed;
  Collected second = alone(r);
  EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(second.usage.cached_prompt_tokens, 48);  // 3 full blocks; the 4th holds the last token
  EXPECT_EQ(engine_->stats().tokens_processed - processed, 64 - 48 + 3);
  EXPECT_EQ(second.tokens, first.tokens);
  EXPECT_GE(engine_->stats().prefix_cache_hits, 3);
}

TEST_P(EngineTest, ThinkingBudgetCapsExactlyAndBudgetForcingExtends) {
  const int32_t end = 7, wait = 9;
  make(256, {.think_end = {end}, .wait_tokens = {wait}});
  EngineRequest r{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 12,
                  .ignore_eos = true, .thinking = true, .max_thinking_tokens = 5};
  // The model never chooses the delimiter here: make sure of it.
  r.sampling.logit_bias = {{end, -100.0f}};
  Collected capped = alone(r);
  ASSERT_EQ(capped.tokens.size(), 12u);
  EXPECT_EQ(capped.tokens[5], end);  // inserted after exactly 5 thinking tokens
  EXPECT_TRUE(std::isnan(capped.logprobs[5]));
  EXPECT_EQ(capped.usage.thinking_tokens, 6);  // 5 + the delimiter
  EXPECT_EQ(capped.usage.answer_tokens, 6);

  // The model wants to stop thinking at once (bias); extend_thinking replaces that twice.
  EngineRequest e{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 6,
                  .ignore_eos = true, .thinking = true, .extend_thinking = 2};
  e.sampling.logit_bias = {{end, 100.0f}};
  Collected extended = alone(e);
  EXPECT_EQ(extended.tokens, (std::vector<int32_t>{wait, wait, end, end, end, end}));
  EXPECT_EQ(extended.usage.thinking_tokens, 3);

  // min_thinking_tokens: the delimiter cannot be drawn before 4 thinking tokens.
  EngineRequest m{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 8,
                  .ignore_eos = true, .thinking = true, .min_thinking_tokens = 4};
  m.sampling.logit_bias = {{end, 100.0f}};
  Collected minimum = alone(m);
  EXPECT_NE(minimum.tokens[3], end);
  EXPECT_EQ(minimum.tokens[4], end);
  EXPECT_EQ(minimum.usage.thinking_tokens, 5);
}

// Qwen3 writes <think> itself (its prompt leaves no block open): an output that opens with the
// start delimiter is thinking from there — counted, and under its budget — and one that does not
// never is, whatever it draws later.
TEST_P(EngineTest, AnOutputThatOpensWithTheStartDelimiterIsThinking) {
  const int32_t start = 6, end = 7;
  make(256, {.think_end = {end}, .think_start = {start}});
  EngineRequest r{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 6,
                  .ignore_eos = true, .max_thinking_tokens = 3};
  r.sampling.logit_bias = {{start, 100.0f}, {end, -100.0f}};
  Collected opened = alone(r);
  EXPECT_EQ(opened.tokens, (std::vector<int32_t>{start, start, start, end, start, start}));
  EXPECT_EQ(opened.usage.thinking_tokens, 4);  // the start delimiter, 2 more, the end one
  EXPECT_EQ(opened.usage.answer_tokens, 2);    // a later start delimiter opens nothing

  EngineRequest plain{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 4,
                      .ignore_eos = true};
  plain.sampling.logit_bias = {{start, -100.0f}, {end, -100.0f}};
  Collected none = alone(plain);
  EXPECT_EQ(none.usage.thinking_tokens, 0);
  EXPECT_EQ(none.usage.answer_tokens, 4);
}

// A constrained answer: whatever the (random) model prefers, every sample is a prefix of the
// shape while it runs and, when it ends by itself, the whole shape — then end of sequence.
TEST_P(EngineTest, AConstrainedAnswerTakesTheShape) {
  const int32_t eos = 300;
  // Bytes per token: ASCII for ids below 128, "t<id>" above.
  auto bytes = [](int32_t t) {
    std::string b(1, t < 128 ? static_cast<char>(t) : 't');
    if (t >= 128) b += std::to_string(t);
    return b;
  };
  make(256, {.eos_token_ids = {eos}, .token_bytes = bytes});
  using Kind = OutputConstraint::Kind;
  EngineRequest r{.prompt = {1, 2, 3}, .n = 6, .sampling = {.temperature = 1.0f, .seed = 5},
                  .max_tokens = 250};
  r.constraint.segments = {{Kind::kLiteral, {"<c>"}},
                           {Kind::kOneOf, {"get", "get_weather"}},
                           {Kind::kLiteral, {":"}},
                           {Kind::kJsonObject, {}},
                           {Kind::kLiteral, {"</c>"}}};
  // Structural bytes likelier, so that objects close within the budget.
  r.sampling.logit_bias = {{'}', 6.0f}, {'"', 4.0f}, {']', 4.0f}};
  results_.clear();
  const int64_t id = submit(r);
  drain();
  int whole = 0;
  for (int i = 0; i < r.n; ++i) {
    const Collected& c = results_[{id, i}];
    ConstraintMatcher m(&r.constraint);
    std::string text;
    for (size_t k = 0; k < c.tokens.size(); ++k) {
      if (c.tokens[k] == eos) {
        EXPECT_EQ(k + 1, c.tokens.size()) << "end of sequence is last";
        EXPECT_TRUE(m.complete()) << "ended before the shape was complete: " << text;
        continue;
      }
      text += bytes(c.tokens[k]);
      ASSERT_TRUE(m.feed(bytes(c.tokens[k]))) << "left the shape: " << text;
    }
    if (c.finish_reason == "stop") {
      ++whole;
      EXPECT_TRUE(m.complete()) << text;
      EXPECT_EQ(text.rfind("<c>get", 0), 0u) << text;
    } else {
      EXPECT_EQ(c.finish_reason, "length");
    }
  }
  EXPECT_GT(whole, 0) << "no sample completed the shape within 250 tokens";

  // A sample that moves (its replica lost) continues from prompt + what it made: the matcher is
  // fed that tail again, the sampler resumes, and the rest is what the sample would have made.
  EngineRequest one = r;
  one.n = 1;
  const Collected full = alone(one);
  ASSERT_GT(full.tokens.size(), 8u);
  for (size_t k : {size_t{2}, size_t{5}, full.tokens.size() / 2, full.tokens.size() - 2}) {
    EngineRequest moved = one;
    moved.prompt.insert(moved.prompt.end(), full.tokens.begin(), full.tokens.begin() + k);
    moved.sampling.resumed_tail = static_cast<int32_t>(k);
    moved.sampling.resumed_draws.assign(full.tokens.begin(), full.tokens.begin() + k);
    moved.max_tokens = one.max_tokens - static_cast<int64_t>(k);
    const Collected rest = alone(moved);
    EXPECT_EQ(rest.tokens, std::vector<int32_t>(full.tokens.begin() + k, full.tokens.end()))
        << "moved after " << k << " tokens";
  }

  // Shapes the engine refuses.
  EngineRequest bad = r;
  bad.ignore_eos = true;
  EXPECT_FALSE(engine_->enqueue(bad, [](const EngineOutput&) {}).has_value());
  bad = r;
  bad.constraint.segments = {{Kind::kOneOf, {}}};
  EXPECT_FALSE(engine_->enqueue(bad, [](const EngineOutput&) {}).has_value());
  make(256, {.eos_token_ids = {eos}});  // no token bytes
  EXPECT_FALSE(engine_->enqueue(r, [](const EngineOutput&) {}).has_value());
}

TEST_P(EngineTest, StopTokensMinTokensAndStopStrings) {
  const int32_t x = 42;
  EngineRequest r{.prompt = {4, 5}, .sampling = {.temperature = 0.0f}, .max_tokens = 10,
                  .stop_token_ids = {x}};
  r.sampling.logit_bias = {{x, 100.0f}};
  Collected stopped = alone(r);
  EXPECT_EQ(stopped.tokens, (std::vector<int32_t>{x}));
  EXPECT_EQ(stopped.finish_reason, "stop");
  r.min_tokens = 3;
  Collected later = alone(r);
  ASSERT_EQ(later.tokens.size(), 4u);
  EXPECT_NE(later.tokens[2], x);
  EXPECT_EQ(later.tokens[3], x);

  make(256, {.token_bytes = [](int32_t t) { return strformat("<%d>", t); }});
  EngineRequest s{.prompt = {4, 5}, .sampling = {.temperature = 0.0f}, .max_tokens = 10,
                  .stop = {"2><42"}};
  s.sampling.logit_bias = {{x, 100.0f}};
  Collected by_string = alone(s);  // "<42><42>" holds "2><42" across the token boundary
  EXPECT_EQ(by_string.tokens.size(), 2u);
  EXPECT_EQ(by_string.finish_reason, "stop");
  EXPECT_EQ(by_string.stop_string, "2><42");
}

TEST_P(EngineTest, CancelFreesBlocksAtOnce) {
  results_.clear();
  int64_t id = submit({.prompt = std::vector<int32_t>(40, 3), .max_tokens = 100, .ignore_eos = true});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine_->step().has_value());
  EXPECT_GT(cache_->pool().blocks_used(), 0);
  engine_->cancel(id);
  ASSERT_TRUE(engine_->step().has_value());
  EXPECT_EQ(cache_->pool().blocks_used(), 0);
  EXPECT_EQ(engine_->stats().kv_blocks_used, 0);  // what a heartbeat reports, at once too
  EXPECT_EQ(results_.at({id, 0}).finish_reason, "cancelled");
  EXPECT_TRUE(engine_->idle());
}

TEST_P(EngineTest, ScoringReturnsTheLogprobsGenerationWouldHave) {
  EngineRequest g{.prompt = {10, 20, 30, 40}, .sampling = {.temperature = 0.0f}, .max_tokens = 8,
                  .ignore_eos = true};
  Collected gen = alone(g);
  EngineRequest s{.prompt = g.prompt, .score = gen.tokens};
  Collected scored = alone(s);
  EXPECT_EQ(scored.finish_reason, "scored");
  ASSERT_EQ(scored.scores.size(), gen.tokens.size());
  for (size_t i = 0; i < gen.tokens.size(); ++i) EXPECT_NEAR(scored.scores[i], gen.logprobs[i], 1e-4);
  EXPECT_TRUE(scored.tokens.empty());
}

TEST_P(EngineTest, TopLogprobsComeWithEverySampledTokenAndNotWithInsertedOnes) {
  EngineRequest r{.prompt = {10, 20, 30, 40},
                  .sampling = {.temperature = 0.7f, .seed = 5, .top_logprobs = 3},
                  .max_tokens = 12,
                  .ignore_eos = true};
  Collected c = alone(r);
  ASSERT_EQ(c.top.size(), c.tokens.size());
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    ASSERT_EQ(c.top[i].size(), 3u) << i;
    // Alternatives are in decreasing order and the best one is at least as likely as the pick.
    EXPECT_GE(c.top[i][0].logprob, c.top[i][1].logprob);
    EXPECT_GE(c.top[i][1].logprob, c.top[i][2].logprob);
    EXPECT_GE(c.top[i][0].logprob, c.logprobs[i] - 1e-6f);
    for (const TokenLogprob& t : c.top[i]) {
      if (t.token == c.tokens[i]) {
        EXPECT_FLOAT_EQ(t.logprob, c.logprobs[i]);
      }
    }
  }
  // Without the option nothing is attached; a token the engine inserts (the thinking delimiter
  // at the budget) has no alternatives.
  r.sampling.top_logprobs = 0;
  EXPECT_TRUE(alone(r).top.empty());
  make(256, {.think_end = {7}});
  r.sampling.top_logprobs = 2;
  r.thinking = true;
  r.max_thinking_tokens = 3;
  Collected t = alone(r);
  ASSERT_EQ(t.top.size(), t.tokens.size());
  EXPECT_EQ(t.tokens[3], 7);
  EXPECT_TRUE(t.top[3].empty());
  EXPECT_EQ(t.top[2].size(), 2u);
}

TEST_P(EngineTest, AccountingAndValidation) {
  Collected c = alone({.prompt = {1, 2, 3, 4}, .max_tokens = 5, .ignore_eos = true});
  EXPECT_EQ(c.usage.prompt_tokens, 4);
  EXPECT_EQ(c.usage.completion_tokens, 5);
  EXPECT_EQ(c.usage.answer_tokens, 5);
  const auto& cfg = model_->config();
  // 8 tokens through the forward pass (4 prompt + 4 fed back), 5 of them producing logits.
  const double lm = double(cfg.vocab_size) * cfg.hidden_size;
  double want = 0;
  for (int p = 0; p < 8; ++p)
    want += 2 * (double(cfg.matmul_params()) - lm) + attention_flops_per_key(cfg) * (p + 1);
  want += 5 * 2 * lm;
  EXPECT_NEAR(c.usage.flops, want, want * 1e-9);

  auto bad = [&](EngineRequest r) { return engine_->enqueue(r, nullptr).error().message(); };
  EXPECT_NE(bad({.prompt = {}}).find("prompt"), std::string::npos);
  EXPECT_NE(bad({.prompt = {1}, .n = 0}).find("n must be"), std::string::npos);
  EXPECT_NE(bad({.prompt = {99999}}).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(bad({.prompt = {1}, .stop = {"x"}}).find("stop strings need a tokenizer"), std::string::npos);
  EXPECT_NE(bad({.prompt = {1}, .max_thinking_tokens = 3}).find("end-of-thinking"), std::string::npos);
}

// FLOPs of positions [0, n_run) with the LM head on `logits` of them, as token_flops counts.
double flops_of(const ModelConfig& cfg, int n_run, int logits) {
  const double lm = double(cfg.vocab_size) * cfg.hidden_size;
  double f = 0;
  for (int p = 0; p < n_run; ++p)
    f += 2 * (double(cfg.matmul_params()) - lm) + attention_flops_per_key(cfg) * (p + 1);
  return f + logits * 2 * lm;
}

TEST_P(EngineTest, NominalFlopsAreWhatEachSampleCostsAlone) {
  std::mt19937 gen(21);
  const auto& cfg = model_->config();
  EngineRequest r{.prompt = random_prompt(gen, 40, 300), .n = 4,
                  .sampling = {.temperature = 1.0f, .seed = 30}, .max_tokens = 7,
                  .ignore_eos = true};
  // Alone, n = 1, on an empty cache, with the prompt in chunks of 16: nominal is exactly what
  // ran — 46 positions (the 7th token is never fed back), logits only where a token is drawn
  // (chunk ends compute none).
  std::vector<Collected> alone_k;
  for (int k = 0; k < r.n; ++k) {
    make(256, {.token_budget = 16});
    EngineRequest one = r;
    one.n = 1;
    one.sampling.seed = r.sampling.seed + k;
    alone_k.push_back(alone(one));
    EXPECT_EQ(alone_k[k].usage.nominal_flops, alone_k[k].usage.flops) << k;
  }
  const double want = flops_of(cfg, 46, 7);
  EXPECT_NEAR(alone_k[0].usage.flops, want, want * 1e-12);
  // n = 4 together: each choice's nominal is its request alone; what ran is less in all.
  make(256, {});
  results_.clear();
  const int64_t id = submit(r);
  drain();
  double flops = 0, nominal = 0;
  for (int k = 0; k < r.n; ++k) {
    const Collected& c = results_.at({id, k});
    ASSERT_EQ(c.tokens, alone_k[k].tokens) << k;
    EXPECT_EQ(c.usage.nominal_flops, alone_k[k].usage.nominal_flops) << k;
    flops += c.usage.flops;
    nominal += c.usage.nominal_flops;
  }
  EXPECT_LT(results_.at({id, 1}).usage.flops, results_.at({id, 1}).usage.nominal_flops);
  EXPECT_LT(flops, nominal);
  // The prompt again, now cached: less runs, the nominal stays.
  EngineRequest one = r;
  one.n = 1;
  Collected cached = alone(one);
  EXPECT_GT(cached.usage.cached_prompt_tokens, 0);
  EXPECT_LT(cached.usage.flops, cached.usage.nominal_flops);
  EXPECT_EQ(cached.usage.nominal_flops, alone_k[0].usage.nominal_flops);
}

TEST_P(EngineTest, NominalFlopsOfInsertedAndScoredTokens) {
  const auto& cfg = model_->config();
  // A two-token "Wait" runs as one step with logits at its end. The model closes its thinking
  // at once (bias), twice replaced: 9 10 9 10 then four delimiters; 3 + 8 tokens, 10 of them
  // run, tokens drawn after positions 2, 4, 6, 7, 8, 9.
  make(256, {.think_end = {7}, .wait_tokens = {9, 10}});
  EngineRequest e{.prompt = {1, 2, 3}, .sampling = {.temperature = 0.0f}, .max_tokens = 8,
                  .ignore_eos = true, .thinking = true, .extend_thinking = 2};
  e.sampling.logit_bias = {{7, 100.0f}};
  Collected extended = alone(e);
  ASSERT_EQ(extended.tokens, (std::vector<int32_t>{9, 10, 9, 10, 7, 7, 7, 7}));
  EXPECT_EQ(extended.usage.nominal_flops, extended.usage.flops);
  const double want = flops_of(cfg, 10, 6);
  EXPECT_NEAR(extended.usage.flops, want, want * 1e-12);
  // Scoring: every token runs, with logits at the 3 rows that score the 3 tokens.
  make(256, {});
  Collected scored = alone({.prompt = {1, 2, 3, 4}, .score = {5, 6, 7}});
  EXPECT_EQ(scored.usage.nominal_flops, scored.usage.flops);
  const double want_scored = flops_of(cfg, 7, 3);
  EXPECT_NEAR(scored.usage.flops, want_scored, want_scored * 1e-12);
}

TEST_P(EngineTest, PrefillsCountPromptsThatRanAndNotWhatTheCacheOrAForkServed) {
  std::mt19937 gen(8);
  EngineRequest r{.prompt = random_prompt(gen, 40, 300), .n = 4,
                  .sampling = {.temperature = 1.0f, .seed = 3}, .max_tokens = 5,
                  .ignore_eos = true};
  alone(r);
  EXPECT_EQ(engine_->stats().prefills, 1);  // the 3 forks take sample 0's blocks
  EXPECT_EQ(engine_->stats().prompt_tokens_computed, 40);
  results_.clear();
  for (int i = 0; i < 3; ++i)
    submit({.prompt = random_prompt(gen, 10 + i, 300), .max_tokens = 3, .ignore_eos = true});
  drain();
  EXPECT_EQ(engine_->stats().prefills, 1 + 3);
  EXPECT_EQ(engine_->stats().prompt_tokens_computed, 40 + 10 + 11 + 12);
  // The first prompt again: one more prefill, of the 8 tokens after its 2 cached blocks.
  r.n = 1;
  Collected again = alone(r);
  EXPECT_EQ(again.usage.cached_prompt_tokens, 32);
  EXPECT_EQ(engine_->stats().prefills, 1 + 3 + 1);
  EXPECT_EQ(engine_->stats().prompt_tokens_computed, 40 + 33 + 8);
}

TEST_P(EngineTest, RandomizedBlockAccountingNeverLeaks) {
  std::mt19937 gen(99);
  make(/*blocks=*/24, {.token_budget = 20});
  results_.clear();
  std::vector<int64_t> live;
  for (int op = 0; op < 3000; ++op) {
    const int what = gen() % 10;
    if (what < 3) {
      EngineRequest r{.prompt = random_prompt(gen, 1 + gen() % 30, 300),
                      .n = static_cast<int32_t>(1 + gen() % 3),
                      .sampling = {.temperature = 1.0f, .seed = uint64_t(op)},
                      .max_tokens = 1 + static_cast<int64_t>(gen() % 12), .ignore_eos = true};
      if (gen() % 4 == 0) r.prompt = std::vector<int32_t>(17, 5);  // shared prefixes
      live.push_back(submit(r));
    } else if (what < 4 && !live.empty()) {
      engine_->cancel(live[gen() % live.size()]);
    } else if (what < 5 && !live.empty()) {
      // Beam-style: fork or prune samples of running requests (errors for finished ones are fine).
      const int64_t id = live[gen() % live.size()];
      if (gen() % 2) {
        (void)engine_->fork(id, 0, 1 + gen() % 2);
      } else {
        (void)engine_->prune(id, static_cast<int32_t>(gen() % 4));
      }
    } else {
      ASSERT_TRUE(engine_->step().has_value());
    }
    // Held blocks never exceed the pool.
    ASSERT_LE(cache_->pool().blocks_used(), cache_->pool().n_blocks());
  }
  drain();
  EXPECT_EQ(cache_->pool().blocks_used(), 0);
  for (int32_t b = 0; b < cache_->pool().n_blocks(); ++b) ASSERT_EQ(cache_->pool().refcount(b), 0);
  for (const auto& [key, c] : results_) EXPECT_FALSE(c.finish_reason.empty());
}

}  // namespace
}  // namespace ponder::worker

namespace ponder::worker {
namespace {

TEST_P(EngineTest, BeamStyleForkAndPruneOfARunningSample) {
  EngineRequest r{.prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3},
                  .sampling = {.temperature = 0.0f}, .max_tokens = 12, .ignore_eos = true};
  Collected whole = alone(r);
  results_.clear();
  int64_t id = submit(r);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(engine_->step().has_value());
  const size_t before = results_.at({id, 0}).tokens.size();
  ASSERT_GT(before, 0u);
  auto forked = engine_->fork(id, 0, 2);
  ASSERT_TRUE(forked.has_value()) << forked.error().to_string();
  EXPECT_EQ(*forked, (std::vector<int32_t>{1, 2}));
  ASSERT_TRUE(engine_->prune(id, 2).ok());
  EXPECT_EQ(engine_->prune(id, 2).code(), StatusCode::kNotFound);
  drain();
  // Greedy children continue exactly as the parent does.
  const Collected& parent = results_.at({id, 0});
  const Collected& child = results_.at({id, 1});
  EXPECT_EQ(parent.tokens, whole.tokens);
  EXPECT_EQ(child.tokens, std::vector<int32_t>(whole.tokens.begin() + before, whole.tokens.end()));
  EXPECT_EQ(results_.at({id, 2}).finish_reason, "pruned");
  EXPECT_EQ(cache_->pool().blocks_used(), 0);
  EXPECT_EQ(engine_->fork(id, 0, 1).error().code(), StatusCode::kNotFound);  // finished
}

INSTANTIATE_TEST_SUITE_P(Models, EngineTest,
                         ::testing::Values("qwen3_f32", "qwen3_moe_f32", "deepseek_v3_f32"));

}  // namespace
}  // namespace ponder::worker
