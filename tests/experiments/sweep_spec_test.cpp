// The sweep spec: every error names its key; grid expansion; stable keys; grading.
#include "experiments/sweep_spec.h"

#include <gtest/gtest.h>

#include "experiments/dataset.h"
#include "experiments/grading.h"
#include "experiments/sha256.h"

namespace ponder::experiments {
namespace {

const std::string kBase = R"(
target: {url: "http://127.0.0.1:8000/v1"}
dataset: {suite: arith, levels: [2, 3], count: 2}
samples: 4
sampling: {temperature: 1.0, max_tokens: 512, seed: 1}
)";

const std::string kNoSampling = kBase.substr(0, kBase.find("sampling:"));

Expected<SweepSpec> parse(const std::string& extra) { return parse_sweep_spec(kBase + extra, "s.yaml"); }

// The error message of a spec that must fail.
std::string error_of(const std::string& yaml) {
  auto s = parse_sweep_spec(yaml, "s.yaml");
  EXPECT_FALSE(s.has_value()) << yaml;
  return s ? "" : s.error().message();
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000, 'a')).substr(0, 16), "41edece42d63e8d9");
}

TEST(SweepSpec, ParsesAValidSpec) {
  auto s = parse("grid: {max_thinking_tokens: [64, null], temperature: [0.5, 1]}\n"
                 "strategies: [pass@1, pass@k, maj@4, weighted-maj@k, budget]\n");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->samples, 4);
  EXPECT_EQ(s->target.url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(s->dataset.levels, (std::vector<int>{2, 3}));
  EXPECT_EQ(s->dataset.grader, Grader::kBoxedNumber);
  ASSERT_EQ(s->grid.size(), 2u);
  EXPECT_EQ(s->grid[0].first, "max_thinking_tokens");
  EXPECT_TRUE(s->grid[0].second[1].is_null());
  EXPECT_EQ(s->strategies.size(), 5u);
}

TEST(SweepSpec, EveryErrorNamesItsKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kBase + "colour: red\n", "colour: unknown key"},
      {kNoSampling + "sampling: {temprature: 1, max_tokens: 5}\n", "sampling.temprature: unknown key"},
      {kBase + "samples: 3\n", "samples: given twice"},
      {kBase + "grid: {temperature: [1, -1]}\n", "grid.temperature[1]: must be >= 0"},
      {kBase + "grid: {top_p: [0]}\n", "grid.top_p[0]: must be in (0, 1]"},
      {kBase + "grid: {beam_width: [2]}\n", "grid.beam_width: unknown axis"},
      {kBase + "grid: {max_thinking_tokens: []}\n", "grid.max_thinking_tokens: expected a non-empty list"},
      {kBase + "grid: {max_thinking_tokens: [64, 64]}\n", "grid.max_thinking_tokens[1]: repeats"},
      {kBase + "grid: {enable_thinking: [maybe]}\n", "grid.enable_thinking[0]: expected true or false"},
      {kBase + "strategies: [maj@5]\n", "strategies[0]: 'maj@5'"},
      {kBase + "strategies: [best-of]\n", "strategies[0]: unknown strategy"},
      {kBase + "concurrency: 0\n", "concurrency: must be in [1, 1024]"},
      {"dataset: {suite: arith}\nsamples: 0\nsampling: {max_tokens: 5}\n", "samples: must be in [1, 1024]"},
      {"dataset: {suite: arith}\nsampling: {max_tokens: 5}\n", "samples: missing"},
      {"dataset: {suite: arith}\nsamples: 2\n", "sampling.max_tokens: missing"},
      {"dataset: {suite: gsm8k}\nsamples: 2\nsampling: {max_tokens: 5}\n", "dataset.suite: unknown suite"},
      {"dataset: {suite: arith, levels: [6]}\nsamples: 2\nsampling: {max_tokens: 5}\n", "dataset.levels[0]: arith levels are 1-5"},
      {"dataset: {jsonl: p.jsonl}\nsamples: 2\nsampling: {max_tokens: 5}\n", "dataset.grader: required"},
      {"dataset: {jsonl: p.jsonl, grader: fuzzy}\nsamples: 2\nsampling: {max_tokens: 5}\n", "dataset.grader: unknown grader"},
      {"samples: 2\nsampling: {max_tokens: 5}\n", "dataset: missing"},
      {"target: {url: 'ftp://x/v1'}\n" + kBase.substr(kBase.find("dataset")), "target.url: expected an http:// or https:// URL"},
      {"target: {url: 'https://x/v1', client_cert: me.pem}\n" + kBase.substr(kBase.find("dataset")),
       "target.client_cert: client_cert and client_key go together"},
      {"target: {url: 'http://x/v1', serve: {}}\n" + kBase.substr(kBase.find("dataset")), "target: give one of url:, serve: or slurm:"},
      {"target: {slurm: d.yaml, serve: {}}\n" + kBase.substr(kBase.find("dataset")), "target: give one of url:, serve: or slurm:"},
      {kNoSampling + "sampling: {max_tokens: 0}\n", "sampling.max_tokens: must be >= 1"},
      {kBase + "max_attempts: x\n", "max_attempts: expected an integer"},
      {"samples: [\n", "not valid YAML"},
  };
  for (const auto& [yaml, expected] : cases) {
    const std::string message = error_of(yaml);
    EXPECT_NE(message.find("s.yaml: "), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
  }
}

TEST(SweepSpec, GridExpandsAsACartesianProductFirstAxisOutermost) {
  auto s = parse("grid: {max_thinking_tokens: [64, 128, null], temperature: [0.5, 1.0]}\n");
  ASSERT_TRUE(s) << s.error().message();
  const std::vector<SweepPoint> points = expand_grid(*s);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0].params["max_thinking_tokens"], 64);
  EXPECT_EQ(points[0].params["temperature"], 0.5);
  EXPECT_EQ(points[1].params["temperature"], 1.0);
  EXPECT_EQ(points[2].params["max_thinking_tokens"], 128);
  EXPECT_TRUE(points[5].params["max_thinking_tokens"].is_null());
  for (const SweepPoint& p : points) {
    EXPECT_EQ(p.params.size(), kPointParams.size());  // every parameter, null when not given
    EXPECT_EQ(p.params["max_tokens"], 512);
    EXPECT_EQ(p.params["seed"], 1);
    EXPECT_TRUE(p.params["top_k"].is_null());
  }
  std::set<std::string> keys;
  for (const SweepPoint& p : points) keys.insert(p.key);
  EXPECT_EQ(keys.size(), 6u);
  // No grid: one point, the sampling values.
  auto plain = parse("");
  ASSERT_TRUE(plain);
  EXPECT_EQ(expand_grid(*plain).size(), 1u);
}

TEST(SweepSpec, KeysAreStable) {
  // Fixed values: a change here breaks resuming every existing run.
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const std::string& k : kPointParams) params[k] = nullptr;
  params["temperature"] = 1.0;
  params["max_tokens"] = 960;
  params["seed"] = 1;
  params["max_thinking_tokens"] = 128;
  const std::string key = point_key(params);
  EXPECT_EQ(key.size(), 19u);
  EXPECT_EQ(key.substr(0, 3), "pt-");
  // Insertion order does not matter, values do.
  nlohmann::ordered_json reordered = nlohmann::ordered_json::object();
  for (auto it = kPointParams.rbegin(); it != kPointParams.rend(); ++it) reordered[*it] = params[*it];
  EXPECT_EQ(point_key(reordered), key);
  params["max_thinking_tokens"] = 64;
  EXPECT_NE(point_key(params), key);
  EXPECT_EQ(sample_key("pt-0123456789abcdef", "arith-test-l2-0001", 3), "pt-0123456789abcdef/arith-test-l2-0001/3");
  EXPECT_EQ(key, "pt-" + sha256_hex(R"({"temperature":1.0,"top_p":null,"top_k":null,"min_p":null,"max_tokens":960,"seed":1,"max_thinking_tokens":128,"extend_thinking":null,"enable_thinking":null})").substr(0, 16));
  // Request seeds: deterministic, different per problem, room for seed + i.
  const int64_t a = request_seed(params, "p1"), b = request_seed(params, "p2");
  EXPECT_EQ(a, request_seed(params, "p1"));
  EXPECT_NE(a, b);
  EXPECT_LT(a + 65535, int64_t{1} << 31);
}

TEST(SweepSpec, HashIgnoresTargetButNotTheGrid) {
  auto a = parse_sweep_spec(kBase, "a.yaml");
  auto b = parse_sweep_spec("target: {serve: {threads: 2}}\n" + kBase.substr(kBase.find("dataset")), "b.yaml");
  auto c = parse("grid: {max_thinking_tokens: [64]}\n");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_NE(a->hash, c->hash);
  EXPECT_TRUE(b->target.is_serve);
  EXPECT_EQ(b->target.serve, (std::vector<std::pair<std::string, std::string>>{{"threads", "2"}}));
}

TEST(SweepSpec, DeploymentAxesNeedADeployedTargetAndGroupThePoints) {
  const std::string serve = "target: {serve: {threads: 1}}\n" + kBase.substr(kBase.find("dataset"));
  const std::string slurm = "target: {slurm: deploy.yaml}\n" + kBase.substr(kBase.find("dataset"));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kBase + "grid: {tp: [1, 2]}\n", "grid.tp: a deployment axis needs target: serve: or slurm:"},
      {serve + "grid: {nodes: [1, 2]}\n", "grid.nodes: needs target: slurm:"},
      {serve + "grid: {replicas: [1, null]}\n", "grid.replicas[1]: must be an integer >= 1"},
      {serve + "grid: {replicas: [0]}\n", "grid.replicas[0]: must be in [1, 4096]"},
      {slurm + "grid: {pp: [2, 2]}\n", "grid.pp[1]: repeats"},
      {"target: {serve: {tp: 2}}\n" + kBase.substr(kBase.find("dataset")) + "grid: {tp: [1, 2]}\n",
       "grid.tp: also set in target.serve.tp"},
      {kNoSampling + "sampling: {max_tokens: 5, tp: 2}\n", "sampling.tp: unknown key"},
  };
  for (const auto& [yaml, expected] : cases) {
    const std::string message = error_of(yaml);
    EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
  }
  auto s = parse_sweep_spec(slurm + "grid: {nodes: [1, 2], max_thinking_tokens: [64, null]}\n", "s.yaml");
  ASSERT_TRUE(s) << s.error().message();
  const std::vector<SweepPoint> points = expand_grid(*s);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0].deployment, (nlohmann::ordered_json{{"nodes", 1}}));
  EXPECT_EQ(points[3].deployment, (nlohmann::ordered_json{{"nodes", 2}}));
  EXPECT_EQ(points[3].params["nodes"], 2);
  EXPECT_NE(points[0].key, points[2].key);  // same request, other deployment: another point
  // Without deployment axes a point has no deployment and its key is the request's alone.
  auto plain = parse("grid: {max_thinking_tokens: [64]}\n");
  ASSERT_TRUE(plain);
  const SweepPoint p = expand_grid(*plain)[0];
  EXPECT_TRUE(p.deployment.empty());
  EXPECT_FALSE(p.params.contains("nodes"));
}

TEST(Dataset, ArithSplitFilesAndMissingSplits) {
  auto s = parse("");
  ASSERT_TRUE(s);
  auto problems = load_problems(s->dataset, std::string(PONDER_TEST_DATA_DIR) + "/tasks");
  ASSERT_TRUE(problems) << problems.error().message();
  ASSERT_EQ(problems->size(), 4u);  // count 2 of levels 2 and 3
  EXPECT_EQ((*problems)[0].level, 2);
  EXPECT_EQ((*problems)[3].level, 3);
  EXPECT_FALSE((*problems)[0].question.empty());
  s->dataset.split = "validation";
  auto missing = load_problems(s->dataset, std::string(PONDER_TEST_DATA_DIR) + "/tasks");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("dataset.split"), std::string::npos) << missing.error().message();
}

TEST(Grading, BoxedNumberAndExact) {
  EXPECT_EQ(last_boxed("a \\boxed{1} b \\boxed{{2}}"), "{2}");
  EXPECT_EQ(last_boxed("no box"), std::nullopt);
  EXPECT_EQ(canonical_integer("+007"), "7");
  EXPECT_EQ(canonical_integer("1,239"), "1239");
  EXPECT_EQ(canonical_integer("1,239,000"), "1239000");
  EXPECT_EQ(canonical_integer("12,34"), std::nullopt);
  EXPECT_EQ(canonical_integer("-0"), "0");
  EXPECT_EQ(canonical_integer("\u221242."), "-42");
  EXPECT_EQ(canonical_integer("63.5"), std::nullopt);
  Grade g = grade(Grader::kBoxedNumber, "so \\boxed{-272}", "-272");
  EXPECT_TRUE(g.correct);
  EXPECT_EQ(g.extracted, "-272");
  g = grade(Grader::kBoxedNumber, "\\boxed{12} then \\boxed{13}", "12");
  EXPECT_FALSE(g.correct);  // the last box counts
  g = grade(Grader::kBoxedNumber, "thinking only", "5");
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.extracted, std::nullopt);
  g = grade(Grader::kBoxedNumber, "\\boxed{x+1}", "5");
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.extracted, "x+1");
  EXPECT_TRUE(grade(Grader::kExact, "  Paris \n", "Paris").correct);
  EXPECT_FALSE(grade(Grader::kExact, "paris", "Paris").correct);
}

}  // namespace
}  // namespace ponder::experiments
