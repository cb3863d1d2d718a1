// Spec parsing (yaml-cpp), validation with errors that name the key, grid expansion and keys.
#include "experiments/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/strings.h"
#include "experiments/sha256.h"

namespace ponder::experiments {

using Json = nlohmann::ordered_json;

const std::vector<std::string> kPointParams = {
    "temperature", "top_p",           "top_k",           "min_p",          "max_tokens",
    "seed",        "max_thinking_tokens", "extend_thinking", "enable_thinking"};

const std::vector<std::string> kDeploymentAxes = {"nodes", "tp", "pp", "replicas"};

namespace {

const std::set<std::string> kSamplingKeys = {"temperature", "top_p", "top_k", "min_p",
                                             "max_tokens",  "seed"};

// Errors while walking the YAML; caught at the boundary of parse_sweep_spec.
struct SpecError {
  std::string key;
  std::string what;
};

[[noreturn]] void fail(const std::string& key, const std::string& what) {
  throw SpecError{key, what};
}

std::string scalar_text(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : "(not a scalar)"; }

bool is_null(const YAML::Node& n) {
  return !n || n.IsNull() || (n.IsScalar() && (n.Scalar() == "~" || n.Scalar() == "null"));
}

int64_t as_int(const YAML::Node& n, const std::string& key) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) return v;
  }
  fail(key, "expected an integer (got '" + scalar_text(n) + "')");
}

double as_double(const YAML::Node& n, const std::string& key) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(v)) return v;
  }
  fail(key, "expected a number (got '" + scalar_text(n) + "')");
}

bool as_bool(const YAML::Node& n, const std::string& key) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes") return true;
    if (s == "false" || s == "False" || s == "no") return false;
  }
  fail(key, "expected true or false (got '" + scalar_text(n) + "')");
}

std::string as_string(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar() || n.Scalar().empty()) fail(key, "expected a non-empty string");
  return n.Scalar();
}

void check_map(const YAML::Node& n, const std::string& key) {
  if (!n.IsMap()) fail(key, "expected a mapping");
}

void check_keys(const YAML::Node& map, const std::string& prefix, const std::set<std::string>& allowed) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string k = kv.first.Scalar();
    // yaml-cpp keeps the first of repeated keys; a second value would be silently ignored.
    if (!seen.insert(k).second) fail(prefix + k, "given twice");
    if (!allowed.count(k)) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(prefix + k, "unknown key (expected one of: " + list + ")");
    }
  }
}

// One value of a point parameter, validated; null means "not sent".
Json param_value(const std::string& name, const YAML::Node& n, const std::string& key) {
  if (is_null(n)) {
    if (name == "max_tokens") fail(key, "must be given (an integer >= 1)");
    return nullptr;
  }
  if (name == "temperature") {
    const double v = as_double(n, key);
    if (v < 0) fail(key, strformat("must be >= 0 (got %g)", v));
    return v;
  }
  if (name == "top_p") {
    const double v = as_double(n, key);
    if (!(v > 0 && v <= 1)) fail(key, strformat("must be in (0, 1] (got %g)", v));
    return v;
  }
  if (name == "min_p") {
    const double v = as_double(n, key);
    if (!(v >= 0 && v <= 1)) fail(key, strformat("must be in [0, 1] (got %g)", v));
    return v;
  }
  if (name == "enable_thinking") return as_bool(n, key);
  const int64_t v = as_int(n, key);
  if (name == "top_k" && v < -1) fail(key, strformat("must be >= -1 (got %lld)", (long long)v));
  if (name == "max_tokens" && v < 1) fail(key, strformat("must be >= 1 (got %lld)", (long long)v));
  if (name == "seed" && (v < 0 || v >= (int64_t{1} << 31)))
    fail(key, strformat("must be in [0, 2^31) (got %lld)", (long long)v));
  if (name == "max_thinking_tokens") {
    if (v == -1) return nullptr;  // the API's "none"
    if (v < 0) fail(key, strformat("must be >= 0, or -1/null for no budget (got %lld)", (long long)v));
  }
  if (name == "extend_thinking" && v < 0)
    fail(key, strformat("must be >= 0 (got %lld)", (long long)v));
  return v;
}

bool is_point_param(const std::string& k) {
  return std::find(kPointParams.begin(), kPointParams.end(), k) != kPointParams.end();
}

bool is_deployment_axis(const std::string& k) {
  return std::find(kDeploymentAxes.begin(), kDeploymentAxes.end(), k) != kDeploymentAxes.end();
}

// A value of a deployment axis: a size, never "not sent".
Json deployment_value(const YAML::Node& n, const std::string& key) {
  if (is_null(n)) fail(key, "must be an integer >= 1 (a deployment axis has no server default)");
  const int64_t v = as_int(n, key);
  if (v < 1 || v > 4096) fail(key, strformat("must be in [1, 4096] (got %lld)", (long long)v));
  return v;
}

// Deployment axes need a target the runner deploys, and one place for each setting.
void check_deployment_axes(const SweepSpec& s) {
  for (const auto& [k, values] : s.grid) {
    if (!is_deployment_axis(k)) continue;
    const std::string key = "grid." + k;
    if (!s.target.is_serve && s.target.slurm_deploy.empty())
      fail(key, "a deployment axis needs target: serve: or slurm: (the runner deploys each value)");
    if (k == "nodes" && s.target.slurm_deploy.empty())
      fail(key, "needs target: slurm: (serve: runs on this machine)");
    for (const auto& [sk, sv] : s.target.serve)
      if (sk == k) fail(key, "also set in target.serve." + k + "; give it in one place");
  }
}

void parse_target(const YAML::Node& n, TargetSpec& t) {
  check_map(n, "target");
  check_keys(n, "target.", {"url", "api_key_file", "ca_file", "client_cert", "client_key", "serve", "slurm"});
  t.given = true;
  if ((n["url"] ? 1 : 0) + (n["serve"] ? 1 : 0) + (n["slurm"] ? 1 : 0) > 1)
    fail("target", "give one of url:, serve: or slurm:");
  if (n["url"]) {
    t.url = as_string(n["url"], "target.url");
    if (!t.url.starts_with("http://") && !t.url.starts_with("https://"))
      fail("target.url", "expected an http:// or https:// URL such as http://127.0.0.1:8000/v1 (got '" + t.url + "')");
  } else if (n["serve"]) {
    t.is_serve = true;
    const YAML::Node s = n["serve"];
    if (!is_null(s)) {
      check_map(s, "target.serve");
      for (const auto& kv : s) {
        const std::string k = kv.first.Scalar();
        if (!kv.second.IsScalar()) fail("target.serve." + k, "expected a scalar");
        t.serve.emplace_back(k, kv.second.Scalar());
      }
    }
  } else if (n["slurm"]) {
    t.slurm_deploy = as_string(n["slurm"], "target.slurm");
    if (t.slurm_deploy.empty()) fail("target.slurm", "expected the path of a deploy.yaml (ponder slurm submit's)");
  } else {
    fail("target", "expected url:, serve: or slurm:");
  }
  if (n["api_key_file"]) t.api_key_file = as_string(n["api_key_file"], "target.api_key_file");
  if (n["ca_file"]) t.ca_file = as_string(n["ca_file"], "target.ca_file");
  if (n["client_cert"]) t.client_cert = as_string(n["client_cert"], "target.client_cert");
  if (n["client_key"]) t.client_key = as_string(n["client_key"], "target.client_key");
  if (t.client_cert.empty() != t.client_key.empty())
    fail(t.client_cert.empty() ? "target.client_key" : "target.client_cert",
         "client_cert and client_key go together (mTLS)");
}

void parse_dataset(const YAML::Node& n, DatasetSpec& d) {
  if (!n) fail("dataset", "missing (suite: arith with levels, or jsonl: FILE)");
  check_map(n, "dataset");
  check_keys(n, "dataset.", {"suite", "levels", "split", "count", "jsonl", "grader"});
  if (n["suite"] && n["jsonl"]) fail("dataset", "give suite: or jsonl:, not both");
  if (n["grader"]) {
    auto g = parse_grader(as_string(n["grader"], "dataset.grader"));
    if (!g) fail("dataset.grader", g.error().message());
    d.grader = *g;
  }
  if (n["count"]) {
    d.count = as_int(n["count"], "dataset.count");
    if (d.count < 1) fail("dataset.count", strformat("must be >= 1 (got %lld)", (long long)d.count));
  }
  if (n["suite"]) {
    d.suite = as_string(n["suite"], "dataset.suite");
    if (d.suite != "arith") fail("dataset.suite", "unknown suite '" + d.suite + "' (arith)");
    if (n["split"]) d.split = as_string(n["split"], "dataset.split");
    const YAML::Node levels = n["levels"];
    if (!levels) {
      d.levels = {1, 2, 3, 4, 5};
    } else {
      if (!levels.IsSequence() || levels.size() == 0) fail("dataset.levels", "expected a list such as [2, 3, 4]");
      for (size_t i = 0; i < levels.size(); ++i) {
        const std::string key = strformat("dataset.levels[%zu]", i);
        const int64_t v = as_int(levels[i], key);
        if (v < 1 || v > 5) fail(key, strformat("arith levels are 1-5 (got %lld)", (long long)v));
        d.levels.push_back(static_cast<int>(v));
      }
    }
  } else if (n["jsonl"]) {
    d.jsonl = as_string(n["jsonl"], "dataset.jsonl");
    if (n["levels"] || n["split"]) fail(n["levels"] ? "dataset.levels" : "dataset.split", "only for suite:");
    if (!n["grader"]) fail("dataset.grader", "required with jsonl: (boxed-number or exact)");
  } else {
    fail("dataset", "expected suite: or jsonl:");
  }
}

void check_strategy(const std::string& s, int64_t samples, const std::string& key) {
  if (s == "pass@1" || s == "budget") return;
  for (const char* family : {"pass@", "maj@", "weighted-maj@"}) {
    const std::string f = family;
    if (!s.starts_with(f)) continue;
    const std::string k = s.substr(f.size());
    if (k == "k") return;
    char* end = nullptr;
    const long long v = std::strtoll(k.c_str(), &end, 10);
    if (!k.empty() && *end == '\0' && v >= 1 && v <= samples) return;
    fail(key, strformat("'%s': k must be 'k' or an integer in [1, samples = %lld]", s.c_str(),
                        (long long)samples));
  }
  fail(key, "unknown strategy '" + s + "' (pass@1, pass@k, maj@k, weighted-maj@k, budget)");
}

// The spec as canonical JSON, the target left out: what the hash covers.
Json canonical(const SweepSpec& s) {
  Json grid = Json::array();
  for (const auto& [k, values] : s.grid) grid.push_back({{"axis", k}, {"values", values}});
  Json dataset = {{"suite", s.dataset.suite},     {"levels", s.dataset.levels},
                  {"split", s.dataset.split},     {"count", s.dataset.count},
                  {"jsonl", s.dataset.jsonl},     {"grader", grader_name(s.dataset.grader)}};
  return {{"dataset", dataset}, {"samples", s.samples},       {"sampling", s.sampling},
          {"grid", grid},       {"strategies", s.strategies}};
}

SweepSpec parse(const YAML::Node& root) {
  SweepSpec s;
  if (!root.IsMap()) fail("(top level)", "expected a mapping of keys");
  check_keys(root, "", {"name", "target", "dataset", "samples", "sampling", "grid", "strategies",
                        "concurrency", "max_attempts", "request_timeout_s"});
  if (root["name"]) s.name = as_string(root["name"], "name");
  if (root["target"]) parse_target(root["target"], s.target);
  parse_dataset(root["dataset"], s.dataset);
  if (!root["samples"]) fail("samples", "missing (n samples per problem and point)");
  s.samples = as_int(root["samples"], "samples");
  if (s.samples < 1 || s.samples > 1024)
    fail("samples", strformat("must be in [1, 1024] (got %lld)", (long long)s.samples));

  s.sampling = Json::object();
  for (const std::string& p : kPointParams) s.sampling[p] = nullptr;
  const YAML::Node sampling = root["sampling"];
  if (sampling) {
    check_map(sampling, "sampling");
    std::set<std::string> allowed(kPointParams.begin(), kPointParams.end());
    check_keys(sampling, "sampling.", allowed);
    for (const auto& kv : sampling) {
      const std::string k = kv.first.Scalar();
      s.sampling[k] = param_value(k, kv.second, "sampling." + k);
    }
  }
  const YAML::Node grid = root["grid"];
  if (grid && !is_null(grid)) {
    check_map(grid, "grid");
    for (const auto& kv : grid) {
      const std::string k = kv.first.Scalar();
      const std::string key = "grid." + k;
      if (!is_point_param(k) && !is_deployment_axis(k))
        fail(key, "unknown axis (a sampling key, max_thinking_tokens, extend_thinking, enable_thinking, "
                  "or a deployment axis: nodes, tp, pp, replicas)");
      if (!kv.second.IsSequence() || kv.second.size() == 0) fail(key, "expected a non-empty list of values");
      std::vector<Json> values;
      for (size_t i = 0; i < kv.second.size(); ++i) {
        const std::string at = strformat("%s[%zu]", key.c_str(), i);
        Json v = is_deployment_axis(k) ? deployment_value(kv.second[i], at) : param_value(k, kv.second[i], at);
        for (const Json& seen : values)
          if (seen == v) fail(strformat("%s[%zu]", key.c_str(), i), "repeats an earlier value");
        values.push_back(std::move(v));
      }
      s.grid.emplace_back(k, std::move(values));
    }
  }
  check_deployment_axes(s);
  bool max_tokens_given = !s.sampling["max_tokens"].is_null();
  for (const auto& [k, v] : s.grid) max_tokens_given |= k == "max_tokens";
  if (!max_tokens_given) fail("sampling.max_tokens", "missing (an integer >= 1)");

  if (const YAML::Node st = root["strategies"]) {
    if (!st.IsSequence() || st.size() == 0) fail("strategies", "expected a non-empty list");
    s.strategies.clear();
    for (size_t i = 0; i < st.size(); ++i) {
      const std::string key = strformat("strategies[%zu]", i);
      s.strategies.push_back(as_string(st[i], key));
      check_strategy(s.strategies.back(), s.samples, key);
    }
  }
  if (root["concurrency"]) {
    s.concurrency = as_int(root["concurrency"], "concurrency");
    if (s.concurrency < 1 || s.concurrency > 1024)
      fail("concurrency", strformat("must be in [1, 1024] (got %lld)", (long long)s.concurrency));
  }
  if (root["max_attempts"]) {
    s.max_attempts = as_int(root["max_attempts"], "max_attempts");
    if (s.max_attempts < 1 || s.max_attempts > 100)
      fail("max_attempts", strformat("must be in [1, 100] (got %lld)", (long long)s.max_attempts));
  }
  if (root["request_timeout_s"]) {
    s.request_timeout_s = as_double(root["request_timeout_s"], "request_timeout_s");
    if (s.request_timeout_s <= 0) fail("request_timeout_s", "must be > 0");
  }
  return s;
}

}  // namespace

Expected<SweepSpec> parse_sweep_spec(const std::string& yaml_text, const std::string& where) {
  try {
    SweepSpec s = parse(YAML::Load(yaml_text));
    s.yaml_text = yaml_text;
    s.hash = sha256_hex(canonical(s).dump());
    return s;
  } catch (const SpecError& e) {
    return error(StatusCode::kInvalidArgument, "%s: %s: %s", where.c_str(), e.key.c_str(), e.what.c_str());
  } catch (const YAML::Exception& e) {
    return error(StatusCode::kInvalidArgument, "%s: not valid YAML: %s", where.c_str(), e.what());
  }
}

Expected<SweepSpec> load_sweep_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot read the sweep spec", path.c_str());
  std::stringstream text;
  text << in.rdbuf();
  return parse_sweep_spec(text.str(), path);
}

std::vector<SweepPoint> expand_grid(const SweepSpec& spec) {
  std::vector<Json> points = {spec.sampling};
  for (const auto& [axis, values] : spec.grid) {
    std::vector<Json> next;
    for (const Json& p : points)
      for (const Json& v : values) {
        Json q = p;
        q[axis] = v;
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  std::vector<SweepPoint> out;
  for (Json& p : points) {
    Json deployment = Json::object();
    for (const std::string& a : kDeploymentAxes)
      if (p.contains(a)) deployment[a] = p[a];
    std::string key = point_key(p);
    out.push_back({.params = std::move(p), .deployment = std::move(deployment), .key = std::move(key)});
  }
  return out;
}

std::string point_key(const Json& params) {
  // Canonical: the fixed parameter order, whatever order `params` was built in. Deployment axes
  // only when set, so that the keys of grids without them stay what they were.
  Json c = Json::object();
  for (const std::string& p : kPointParams) c[p] = params.contains(p) ? params[p] : Json(nullptr);
  for (const std::string& a : kDeploymentAxes)
    if (params.contains(a)) c[a] = params[a];
  return "pt-" + sha256_hex(c.dump()).substr(0, 16);
}

std::string sample_key(const std::string& point_key, const std::string& problem_id,
                       int64_t sample_index) {
  return point_key + "/" + problem_id + "/" + std::to_string(sample_index);
}

int64_t request_seed(const Json& params, const std::string& problem_id) {
  const Json& seed = params.contains("seed") ? params["seed"] : Json(nullptr);
  const int64_t base = seed.is_number_integer() ? seed.get<int64_t>() : 0;
  const std::string h = sha256_hex(std::to_string(base) + "|" + problem_id).substr(0, 8);
  // Room for seed + i with i < 2^16 below 2^31 (servers take 32-bit seeds).
  return static_cast<int64_t>(std::stoull(h, nullptr, 16) % ((uint64_t{1} << 31) - (1 << 16)));
}

}  // namespace ponder::experiments
