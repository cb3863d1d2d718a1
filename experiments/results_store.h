// ResultsStore: a sweep's results in SQLite (DIR/results.sqlite, WAL) — meta, points, problems,
// runs (one per deployment a runner used: its settings, provenance and wall time) and one row
// per sample, keyed so that a rerun asks only for what is not yet `ok`. The schema is fixed (the
// report reads it; docs/experiments.md); columns added since its first release are added to an
// older store when it is opened. Per-sample token fields: prompt_tokens and cached_tokens are
// the request's (its n samples share one prefill) stored on each of its samples;
// completion/reasoning/answer tokens are the sample's own; nominal_flops is the sample's cost
// alone (no sharing, no cache: the server's per-choice usage.nominal_flops); flops is the
// request's executed usage.flops shared among its samples in proportion to their nominal FLOPs
// (their completion tokens where the server reports no nominal ones); latency_s is the request's
// wall time.
// Not thread-safe: one thread (the runner's event loop) owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "experiments/dataset.h"

struct sqlite3;

namespace ponder::experiments {

struct SampleRow {
  std::string sample_key;
  int64_t point_id = 0;
  std::string problem_id;
  int64_t sample_index = 0;
  std::optional<int64_t> seed;
  bool ok = false;  // status 'ok' or 'failed'
  std::string error;
  std::optional<std::string> content, reasoning, extracted;
  std::optional<bool> correct;
  std::optional<int64_t> prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
      answer_tokens;
  std::optional<double> flops, nominal_flops;
  std::optional<std::string> finish_reason;
  std::optional<double> logprob_sum;
  std::optional<double> latency_s;
  int64_t attempts = 0;
  int64_t finished_unix = 0;
  std::optional<int64_t> run_id;
};

class ResultsStore {
 public:
  // Creates the file and its tables when missing.
  static Expected<std::unique_ptr<ResultsStore>> open(const std::string& path);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  Expected<std::optional<std::string>> meta(const std::string& key);
  Status set_meta(const std::string& key, const std::string& value);
  // The point's id, inserting it when new; its provenance is replaced by the latest run's.
  Expected<int64_t> upsert_point(const std::string& point_key, const std::string& params_json,
                                 const std::string& provenance_json);
  Status add_problems(const std::vector<Problem>& problems);
  // A run against one deployment: its settings (`deployment_json`, {} without deployment axes),
  // provenance, and start; end_run() sets its end. Times: Unix seconds with fractions.
  Expected<int64_t> begin_run(const std::string& deployment_json, const std::string& provenance_json,
                              double started_at);
  Status end_run(int64_t run_id, double finished_at);
  // sample_key → status ('ok' / 'failed') of every stored sample.
  Expected<std::map<std::string, std::string>> sample_status();
  // One transaction: a request's samples land together or not at all. Rows replace earlier
  // rows of the same key (a failed sample that now succeeded).
  Status write_samples(const std::vector<SampleRow>& rows);

 private:
  explicit ResultsStore(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  Status add_missing_columns();
  // Runs `body` inside BEGIN … COMMIT; an error from it rolls the transaction back.
  Status in_transaction(const std::function<Status()>& body);
  sqlite3* db_;
};

}  // namespace ponder::experiments
