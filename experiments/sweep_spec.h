// SweepSpec: an experiment of `ponder sweep run` — target server, dataset, samples per problem,
// sampling, a grid of axes whose values multiply, strategies to report — from YAML, validated at
// load: an unknown key or an impossible value is an error naming the file and the key, before
// any request. Also the expansion of the grid into points and the keys that make a run
// resumable (stable across runs, machines and releases).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "experiments/grading.h"

namespace ponder::experiments {

// The parameters of a point, in this order; every point's params_json has all of them (null:
// not sent, the server's default).
extern const std::vector<std::string> kPointParams;
// Grid axes that change the deployment, not the request: the runner deploys the target once per
// combination of their values (`target: serve:` or `slurm:`; `nodes` only with slurm:). A
// point's params_json has them only when the grid does.
extern const std::vector<std::string> kDeploymentAxes;

struct TargetSpec {
  std::string url;           // OpenAI-compatible base URL, ".../v1"
  std::string api_key_file;  // a file whose first line is the bearer key
  // https:// targets: the CA bundle that signed the server's certificate (empty: the system's),
  // and a client certificate and key for mTLS.
  std::string ca_file;
  std::string client_cert;
  std::string client_key;
  // `serve:`: ponder serve keys (scalars as text), in the file's order; the runner starts a
  // local `ponder serve` with them as flags.
  std::vector<std::pair<std::string, std::string>> serve;
  bool is_serve = false;
  // `slurm:`: a deploy.yaml that the runner submits with `ponder slurm submit`, uses once READY,
  // and cancels at the end.
  std::string slurm_deploy;
  bool given = false;  // the spec had a target: section
};

struct DatasetSpec {
  std::string suite;         // "arith", or empty for jsonl
  std::vector<int> levels;   // suite: which levels
  std::string split = "test";
  int64_t count = 0;         // suite: problems per level (0: all); jsonl: first count (0: all)
  std::string jsonl;         // a file of {id, question, answer[, difficulty|level]} lines
  Grader grader = Grader::kBoxedNumber;
};

struct SweepSpec {
  std::string name;
  TargetSpec target;
  DatasetSpec dataset;
  int64_t samples = 1;  // n per problem and point
  // The fixed values of `sampling:` (every key of kPointParams, null when not given).
  nlohmann::ordered_json sampling;
  // Axes in the file's order, each key with its values (null allowed: "not sent").
  std::vector<std::pair<std::string, std::vector<nlohmann::ordered_json>>> grid;
  std::vector<std::string> strategies = {"pass@1"};
  int64_t concurrency = 8;        // requests in flight at once
  int64_t max_attempts = 4;       // per request, server errors retried with backoff
  double request_timeout_s = 900; // one request, whole response

  std::string yaml_text;  // the file as read
  // The spec's identity for resuming: SHA-256 of its canonical JSON without the target (a
  // rerun may point at another server of the same model).
  std::string hash;
};

// Reads and validates `path`. Errors: "<path>: <key>: <what>".
Expected<SweepSpec> load_sweep_spec(const std::string& path);
Expected<SweepSpec> parse_sweep_spec(const std::string& yaml_text, const std::string& where);

struct SweepPoint {
  nlohmann::ordered_json params;      // every key of kPointParams, and the deployment axes
  nlohmann::ordered_json deployment;  // the deployment axes' values ({} without any)
  std::string key;                    // point_key
};

// The grid's cartesian product over `sampling`, the first axis outermost. No grid: one point.
std::vector<SweepPoint> expand_grid(const SweepSpec& spec);

// "pt-" + the first 16 hex digits of SHA-256 of the params' canonical JSON (kPointParams in
// order, then the deployment axes that are set).
std::string point_key(const nlohmann::ordered_json& params);
// "<point_key>/<problem_id>/<sample_index>"
std::string sample_key(const std::string& point_key, const std::string& problem_id,
                       int64_t sample_index);
// The seed of a problem's request at a point: the point's seed (0 when null) mixed with the
// problem id, so that problems do not share one random stream; sample i uses request seed + i
// on the server. In [0, 2^31 - 2^16).
int64_t request_seed(const nlohmann::ordered_json& params, const std::string& problem_id);

}  // namespace ponder::experiments
