// Orchestration of a run: problems × points → requests → graded rows in the store, with
// retries, resumption, progress and provenance.
#include "experiments/sweep_runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"
#include "common/subprocess.h"
#include "experiments/dataset.h"
#include "experiments/http_client.h"
#include "experiments/local_server.h"
#include "experiments/results_store.h"
#include "experiments/slurm_target.h"
#include "experiments/sha256.h"

namespace ponder::experiments {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// One request: a problem at a point, for the sample indexes [first, first + n) of which
// `missing` are not yet ok (only those are written).
struct WorkItem {
  size_t point = 0;
  size_t problem = 0;
  int64_t first = 0;
  int64_t n = 0;
  std::vector<int64_t> missing;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return strformat("%lldh%02lldm", (long long)(t / 3600), (long long)(t % 3600 / 60));
  if (t >= 60) return strformat("%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  return strformat("%llds", (long long)t);
}

// The chat request of a work item.
Json request_body(const SweepSpec& spec, const Json& params, const Problem& problem,
                  const std::string& model, int64_t seed, int64_t n) {
  Json b = Json::object();
  b["model"] = model;
  b["messages"] = Json::array({{{"role", "user"}, {"content", problem.question}}});
  b["n"] = n;
  b["seed"] = seed;
  b["logprobs"] = true;  // the sum of each choice's logprobs: weighted majority votes with it
  for (const char* k : {"temperature", "top_p", "top_k", "min_p", "max_tokens",
                        "max_thinking_tokens", "extend_thinking"})
    if (!params[k].is_null()) b[k] = params[k];
  if (!params["enable_thinking"].is_null())
    b["chat_template_kwargs"] = {{"enable_thinking", params["enable_thinking"]}};
  return b;
}

std::optional<int64_t> int_at(const Json& j, std::initializer_list<const char*> path) {
  const Json* at = &j;
  for (const char* k : path) {
    if (!at->is_object() || !at->contains(k)) return std::nullopt;
    at = &(*at)[k];
  }
  return at->is_number_integer() ? std::optional<int64_t>(at->get<int64_t>()) : std::nullopt;
}

std::optional<std::string> string_at(const Json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b) || !j[a][b].is_string()) return std::nullopt;
  return j[a][b].get<std::string>();
}

// The rows of a 200 answer; an error when it is not a chat.completion of n choices.
Expected<std::vector<SampleRow>> parse_choices(const SweepSpec& spec, const WorkItem& w,
                                               const Problem& problem, int64_t point_id,
                                               const std::string& point_key, int64_t seed,
                                               const std::string& body) {
  const Json r = Json::parse(body, nullptr, false);
  if (!r.is_object() || !r.contains("choices") || !r["choices"].is_array())
    return error(StatusCode::kRemote, "the server's answer is not a chat.completion: %.200s", body.c_str());
  const Json& choices = r["choices"];
  if (static_cast<int64_t>(choices.size()) != w.n)
    return error(StatusCode::kRemote, "asked for n = %lld choices, got %zu", (long long)w.n, choices.size());
  const Json usage = r.value("usage", Json::object());
  const std::optional<int64_t> prompt = int_at(usage, {"prompt_tokens"});
  const std::optional<int64_t> cached = int_at(usage, {"prompt_tokens_details", "cached_tokens"});
  const bool has_flops = usage.contains("flops") && usage["flops"].is_number();  // ponder's extension
  const double flops = has_flops ? usage["flops"].get<double>() : 0.0;
  std::vector<SampleRow> rows(w.n);
  int64_t completion_sum = 0;
  double nominal_sum = 0;
  for (const Json& c : choices) {
    const int64_t index = c.is_object() ? c.value("index", int64_t{-1}) : -1;
    if (index < 0 || index >= w.n) return error(StatusCode::kRemote, "a choice has no valid index");
    SampleRow& row = rows[index];
    row.ok = true;
    row.content = string_at(c, "message", "content").value_or("");
    row.reasoning = string_at(c, "message", "reasoning_content");
    if (c.contains("finish_reason") && c["finish_reason"].is_string()) row.finish_reason = c["finish_reason"].get<std::string>();
    int64_t logprob_tokens = 0;
    if (c.contains("logprobs") && c["logprobs"].is_object() && c["logprobs"].contains("content")) {
      double sum = 0;
      for (const Json& t : c["logprobs"]["content"]) {
        ++logprob_tokens;
        if (t.contains("logprob") && t["logprob"].is_number()) sum += t["logprob"].get<double>();
      }
      row.logprob_sum = sum;  // tokens the engine inserted (thinking budgets) have none
    }
    // ponder's per-choice usage; elsewhere the logprob entries count the tokens.
    row.completion_tokens = int_at(c, {"usage", "completion_tokens"});
    row.reasoning_tokens = int_at(c, {"usage", "reasoning_tokens"});
    if (!row.completion_tokens) row.completion_tokens = w.n == 1 ? int_at(usage, {"completion_tokens"}) : logprob_tokens;
    if (!row.reasoning_tokens && w.n == 1) row.reasoning_tokens = int_at(usage, {"completion_tokens_details", "reasoning_tokens"});
    if (row.reasoning_tokens) row.answer_tokens = *row.completion_tokens - *row.reasoning_tokens;
    if (c.contains("usage") && c["usage"].is_object() && c["usage"].contains("nominal_flops") &&
        c["usage"]["nominal_flops"].is_number())
      row.nominal_flops = c["usage"]["nominal_flops"].get<double>();
    else if (w.n == 1 && usage.contains("nominal_flops") && usage["nominal_flops"].is_number())
      row.nominal_flops = usage["nominal_flops"].get<double>();
    completion_sum += *row.completion_tokens;
    nominal_sum += row.nominal_flops.value_or(NAN);
    const Grade g = grade(spec.dataset.grader, *row.content, problem.answer);
    row.extracted = g.extracted;
    row.correct = g.correct;
  }
  for (int64_t i = 0; i < w.n; ++i) {
    SampleRow& row = rows[i];
    if (!row.ok) return error(StatusCode::kRemote, "choice %lld is missing", (long long)i);
    row.sample_index = w.first + i;
    row.sample_key = sample_key(point_key, problem.id, row.sample_index);
    row.point_id = point_id;
    row.problem_id = problem.id;
    row.seed = seed + i;
    row.prompt_tokens = prompt;
    row.cached_tokens = cached;
    // The request's executed FLOPs, shared in proportion to each sample's nominal cost (its
    // length where the server gives none: decode dominates).
    if (has_flops)
      row.flops = nominal_sum > 0      ? flops * *row.nominal_flops / nominal_sum
                  : completion_sum > 0 ? flops * *row.completion_tokens / completion_sum
                                       : flops / w.n;
  }
  return rows;
}

bool retryable(int status) { return status == 429 || status >= 500; }


class Runner {
 public:
  Runner(const SweepSpec& spec, const RunOptions& options, std::vector<Problem> problems,
         std::vector<SweepPoint> points)
      : spec_(spec), options_(options), problems_(std::move(problems)), points_(std::move(points)) {}

  RunOutcome run();

 private:
  // The points of one deployment (all of them without deployment axes) and their requests.
  struct Group {
    Json deployment;
    std::vector<size_t> points;
    std::deque<WorkItem> work;
  };

  Status open_store();
  Status plan();
  Status check_deployments();
  Status deploy(const Group& g, size_t index);
  Status identify();
  Status begin_group(const Group& g);
  bool run_queue();
  void undeploy();
  bool stopping();
  Status check_identity(const std::string& key, const std::string& value, const char* what);
  awaitable<void> worker(HttpConnection& conn);
  void apply_tls(const TargetSpec& t);  // the target's CA and client certificate, for https://
  awaitable<void> run_item(HttpConnection& conn, const WorkItem& w);
  awaitable<void> progress_loop();
  void print_progress(bool final_line);
  Status record(std::vector<SampleRow> rows);

  const SweepSpec& spec_;
  const RunOptions& options_;
  std::vector<Problem> problems_;
  std::vector<SweepPoint> points_;
  std::vector<int64_t> point_ids_;
  std::unique_ptr<ResultsStore> store_;
  std::unique_ptr<LocalServer> server_;
  std::unique_ptr<SlurmTarget> slurm_;
  std::vector<Group> groups_;
  std::optional<int64_t> run_id_;  // the runs row of the deployment in use
  std::string revision_;           // ponder's git revision (of the source tree)
  BaseUrl base_;
  std::string api_key_;
  std::string served_model_;
  std::string model_config_hash_;
  std::string model_dir_;  // the served model's directory where the runner knows it
  Json server_entry_;  // GET /models' entry of the served model
  Json model_files_;   // file name → sha256 of the model's files seen from here

  asio::io_context io_;
  std::deque<WorkItem> queue_;
  std::vector<HttpConnection*> connections_;
  int stop_signal_ = 0;  // first SIGINT/SIGTERM: drain
  bool aborted_ = false;  // second: abandon
  Status fatal_;          // the store failed: stop
  int workers_left_ = 0;
  Clock::time_point started_ = Clock::now();
  int64_t total_samples_ = 0, done_before_ = 0, done_ = 0, failed_ = 0, retries_ = 0,
          requests_ = 0, completion_tokens_ = 0, todo_samples_ = 0;
  bool tty_ = isatty(STDERR_FILENO);
};

Status Runner::check_identity(const std::string& key, const std::string& value, const char* what) {
  PONDER_ASSIGN_OR_RETURN(std::optional<std::string> stored, store_->meta(key));
  if (stored && *stored != value) {
    if (!options_.allow_spec_change)
      return error(StatusCode::kFailedPrecondition,
                   "%s/results.sqlite holds a run with another %s (%s: stored '%s', now '%s'); "
                   "use another --out, or --allow-spec-change to resume it anyway",
                   options_.out_dir.c_str(), what, key.c_str(), stored->substr(0, 80).c_str(),
                   value.substr(0, 80).c_str());
    PONDER_LOG(kWarn, "sweep", "resuming with another %s (--allow-spec-change)", what);
  }
  return {};
}

Status Runner::open_store() {
  std::error_code fs_ec;
  fs::create_directories(options_.out_dir, fs_ec);
  PONDER_ASSIGN_OR_RETURN(store_, ResultsStore::open(options_.out_dir + "/results.sqlite"));
  // A changed spec is refused before anything is deployed for it.
  PONDER_RETURN_IF_ERROR(check_identity("spec_hash", spec_.hash, "spec"));
  auto r = run_command({"git", "-C", options_.source_dir, "rev-parse", "HEAD"}, std::chrono::seconds(10));
  revision_ = r && r->exit_code == 0 ? std::string(trim(r->out)) : std::string("unknown");
  return {};
}

Status Runner::plan() {
  // What is left: every (problem, point) with a sample that is not ok, grouped by deployment
  // (in grid order). Problem-major within a group, so that the points of one question run close
  // together and share its prompt in the prefix cache.
  PONDER_ASSIGN_OR_RETURN(auto status, store_->sample_status());
  for (size_t p = 0; p < points_.size(); ++p) {
    auto g = std::find_if(groups_.begin(), groups_.end(),
                          [&](const Group& x) { return x.deployment == points_[p].deployment; });
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{.deployment = points_[p].deployment});
    g->points.push_back(p);
  }
  point_ids_.assign(points_.size(), -1);
  for (Group& g : groups_)
    for (size_t q = 0; q < problems_.size(); ++q)
      for (size_t p : g.points) {
        WorkItem w{.point = p, .problem = q};
        for (int64_t i = 0; i < spec_.samples; ++i) {
          auto it = status.find(sample_key(points_[p].key, problems_[q].id, i));
          if (it == status.end() || it->second != "ok") w.missing.push_back(i);
        }
        total_samples_ += spec_.samples;
        done_before_ += spec_.samples - static_cast<int64_t>(w.missing.size());
        if (w.missing.empty()) continue;
        // Choice i samples with seed + i, so [first, last] reproduces exactly those samples.
        w.first = w.missing.front();
        w.n = w.missing.back() - w.first + 1;
        todo_samples_ += static_cast<int64_t>(w.missing.size());
        g.work.push_back(std::move(w));
      }
  return {};
}

Status Runner::begin_group(const Group& g) {
  PONDER_RETURN_IF_ERROR(check_identity("served_model", served_model_, "served model"));
  PONDER_RETURN_IF_ERROR(check_identity("model_config_hash", model_config_hash_, "model config"));
  PONDER_ASSIGN_OR_RETURN(std::optional<std::string> created, store_->meta("created_unix"));
  Json strategies = spec_.strategies;
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"spec_yaml", spec_.yaml_text},
      {"spec_hash", spec_.hash},
      {"served_model", served_model_},
      {"model_config_hash", model_config_hash_},
      {"ponder_revision", revision_},
      {"created_unix", created ? *created : std::to_string(now_unix())},
      {"updated_unix", std::to_string(now_unix())},
      {"strategies", strategies.dump()},
      {"samples", std::to_string(spec_.samples)},
      {"grader", std::string(grader_name(spec_.dataset.grader))},
      {"server_url", base_.text},
      {"name", spec_.name}};
  for (const auto& [k, v] : meta) PONDER_RETURN_IF_ERROR(store_->set_meta(k, v));
  PONDER_RETURN_IF_ERROR(store_->add_problems(problems_));
  Json provenance = {{"ponder_revision", revision_},
                     {"model_config_hash", model_config_hash_},
                     {"served_model", served_model_},
                     {"server_url", base_.text},
                     {"server", server_entry_},
                     {"model_files", model_files_},
                     {"deployment", g.deployment},
                     {"slurm_job_id", options_.slurm_job_id ? Json(*options_.slurm_job_id) : Json(nullptr)},
                     {"slurm_job_nodelist", options_.slurm_job_nodelist ? Json(*options_.slurm_job_nodelist) : Json(nullptr)},
                     // target.slurm: the deployment's own job (the runner's, above, when it runs in one)
                     {"target_slurm_job_id", slurm_ ? Json(slurm_->job_id()) : Json(nullptr)},
                     {"target_slurm_nodes", slurm_ ? Json(slurm_->nodes()) : Json(nullptr)},
                     {"run_started_unix", now_unix()}};
  PONDER_ASSIGN_OR_RETURN(run_id_, store_->begin_run(g.deployment.dump(), provenance.dump(), unix_seconds()));
  for (size_t p : g.points) {
    PONDER_ASSIGN_OR_RETURN(point_ids_[p], store_->upsert_point(points_[p].key, points_[p].params.dump(),
                                                                provenance.dump()));
  }
  return {};
}

Status Runner::record(std::vector<SampleRow> rows) {
  Status s = store_->write_samples(rows);
  if (!s.ok()) {
    fatal_ = s;
    stop_signal_ = stop_signal_ ? stop_signal_ : -1;
  }
  return s;
}

awaitable<void> Runner::run_item(HttpConnection& conn, const WorkItem& w) {
  const SweepPoint& point = points_[w.point];
  const Problem& problem = problems_[w.problem];
  const int64_t seed = request_seed(point.params, problem.id) + w.first;
  const std::string body = request_body(spec_, point.params, problem, served_model_, seed, w.n).dump(
      -1, ' ', false, Json::error_handler_t::replace);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(spec_.request_timeout_s * 1000));
  std::string last_error;
  int64_t attempts = 0;
  const auto t0 = Clock::now();
  for (; attempts < spec_.max_attempts && !aborted_;) {
    if (attempts > 0) {
      // Backoff 0.5 s, 1 s, 2 s, … capped at 8 s.
      ++retries_;
      asio::steady_timer t(io_, std::chrono::milliseconds(std::min<int64_t>(8000, 500 << std::min<int64_t>(attempts - 1, 4))));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      if (aborted_) break;
    }
    ++attempts;
    ++requests_;
    const auto sent = Clock::now();
    Expected<HttpReply> reply = co_await conn.request("POST", base_.path + "/chat/completions", body, timeout);
    if (aborted_) co_return;  // abandoned: not recorded, a rerun asks again
    if (!reply) {
      last_error = reply.error().message();
      PONDER_LOG(kWarn, "sweep", "%s at %s (attempt %lld): %s", problem.id.c_str(), point.key.c_str(),
                 (long long)attempts, last_error.c_str());
      continue;
    }
    if (reply->status == 200) {
      auto rows = parse_choices(spec_, w, problem, point_ids_[w.point], point.key, seed, reply->body);
      if (rows) {
        const double latency = std::chrono::duration<double>(Clock::now() - sent).count();
        std::vector<SampleRow> keep;
        for (SampleRow& r : *rows) {
          if (std::find(w.missing.begin(), w.missing.end(), r.sample_index) == w.missing.end()) continue;
          r.latency_s = latency;
          r.attempts = attempts;
          r.finished_unix = now_unix();
          r.run_id = run_id_;
          completion_tokens_ += r.completion_tokens.value_or(0);
          keep.push_back(std::move(r));
        }
        if (record(std::move(keep)).ok()) done_ += static_cast<int64_t>(w.missing.size());
        co_return;
      }
      last_error = rows.error().message();
      continue;  // a malformed answer may be a passing fault: try again
    }
    const Json e = Json::parse(reply->body, nullptr, false);
    const std::string message = e.is_object() && e.contains("error") && e["error"].is_object()
                                    ? e["error"].value("message", reply->body)
                                    : reply->body.substr(0, 300);
    last_error = strformat("HTTP %d: %s", reply->status, message.c_str());
    PONDER_LOG(kWarn, "sweep", "%s at %s (attempt %lld): %s", problem.id.c_str(), point.key.c_str(),
               (long long)attempts, last_error.c_str());
    if (!retryable(reply->status)) break;  // the request itself is wrong: the same again fails
  }
  if (aborted_) co_return;
  // Failed for good: recorded (never dropped) so that the report sees it and a rerun retries it.
  std::vector<SampleRow> rows;
  for (int64_t i : w.missing) {
    SampleRow r{.sample_key = sample_key(point.key, problem.id, i),
                .point_id = point_ids_[w.point],
                .problem_id = problem.id,
                .sample_index = i,
                .seed = seed - w.first + i,
                .ok = false,
                .error = last_error};
    r.latency_s = std::chrono::duration<double>(Clock::now() - t0).count();
    r.attempts = attempts;
    r.finished_unix = now_unix();
    r.run_id = run_id_;
    rows.push_back(std::move(r));
  }
  if (record(std::move(rows)).ok()) failed_ += static_cast<int64_t>(w.missing.size());
}

awaitable<void> Runner::worker(HttpConnection& conn) {
  while (!stop_signal_ && !queue_.empty()) {
    WorkItem w = std::move(queue_.front());
    queue_.pop_front();
    co_await run_item(conn, w);
  }
  if (--workers_left_ == 0) io_.stop();
}

void Runner::print_progress(bool final_line) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  const int64_t finished = done_ + failed_;
  const double rate = elapsed > 0 ? completion_tokens_ / elapsed : 0;
  const double eta = finished > 0 ? elapsed * (todo_samples_ - finished) / finished : NAN;
  const std::string line = strformat(
      "%lld/%lld samples (%.0f%%), %lld failed, %.0f tokens/s, elapsed %s, ETA %s%s",
      (long long)(done_before_ + done_), (long long)total_samples_,
      total_samples_ ? 100.0 * (done_before_ + done_) / total_samples_ : 100.0, (long long)failed_,
      rate, duration_text(elapsed).c_str(), final_line ? "0s" : duration_text(eta).c_str(),
      stop_signal_ > 0 ? " (stopping: waiting for requests in flight)" : "");
  if (tty_) {
    std::fprintf(stderr, "\r\033[K[sweep] %s%s", line.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    PONDER_LOG(kInfo, "sweep", "%s", line.c_str());
  }
}

awaitable<void> Runner::progress_loop() {
  asio::steady_timer t(io_);
  while (true) {
    t.expires_after(tty_ ? std::chrono::milliseconds(500) : std::chrono::seconds(10));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    print_progress(false);
  }
}

bool Runner::stopping() {
  // Signals that arrived while a deployment started (a blocking wait) are handled here.
  io_.restart();
  io_.poll();
  return stop_signal_ != 0;
}

Status Runner::check_deployments() {
  const TargetSpec& t = spec_.target;
  const bool axes = std::any_of(points_.begin(), points_.end(), [](const SweepPoint& p) { return !p.deployment.empty(); });
  if (!axes) return {};
  if (!options_.target_url.empty())
    return error(StatusCode::kInvalidArgument,
                 "--target: the grid has deployment axes (nodes, tp, pp, replicas): the runner deploys them "
                 "from target: serve: or slurm:, not against a given URL");
  if (t.slurm_deploy.empty()) return {};
  // Every deployment of the grid is checked by ponder slurm itself before anything is submitted.
  for (size_t i = 0; i < groups_.size(); ++i) {
    PONDER_ASSIGN_OR_RETURN(std::string file, deployment_variant(t.slurm_deploy, groups_[i].deployment,
                                                                 options_.out_dir + "/slurm", i));
    PONDER_ASSIGN_OR_RETURN(auto dry, run_command({options_.ponder_binary, "slurm", "submit", file, "--dry-run"},
                                                  std::chrono::seconds(60)));
    if (dry.exit_code != 0)
      return error(StatusCode::kInvalidArgument, "grid: the deployment %s of %s: %s", groups_[i].deployment.dump().c_str(),
                   t.slurm_deploy.c_str(), dry.first_error_line().c_str());
  }
  return {};
}

Status Runner::deploy(const Group& g, size_t index) {
  const TargetSpec& t = spec_.target;
  model_dir_.clear();
  if (!options_.target_url.empty() || !t.url.empty()) {
    PONDER_ASSIGN_OR_RETURN(base_, parse_base_url(!options_.target_url.empty() ? options_.target_url : t.url,
                                                  !options_.target_url.empty() ? "--target" : "target.url"));
    apply_tls(t);
    return {};
  }
  std::string url;
  if (!t.slurm_deploy.empty()) {
    // The job's files go inside the run's directory; a rerun submits a new job and resumes.
    std::string file = t.slurm_deploy;
    if (!g.deployment.empty()) {
      PONDER_ASSIGN_OR_RETURN(file, deployment_variant(t.slurm_deploy, g.deployment, options_.out_dir + "/slurm", index));
    }
    PONDER_ASSIGN_OR_RETURN(slurm_, SlurmTarget::start(options_.ponder_binary, file, options_.out_dir + "/slurm",
                                                       std::chrono::seconds(3600)));
    url = slurm_->url();
    if (options_.api_key_file.empty() && t.api_key_file.empty() && !slurm_->api_key_file().empty()) {
      std::ifstream in(slurm_->api_key_file());
      std::getline(in, api_key_);
      api_key_ = std::string(trim(api_key_));
    }
  } else {
    std::vector<std::string> argv = {options_.ponder_binary, "serve"};
    bool port = false, max_n = false;
    const auto add = [&](std::string key, const std::string& value) {
      port |= key == "port";
      max_n |= key == "max_n";
      std::replace(key.begin(), key.end(), '_', '-');
      argv.push_back("--" + key);
      argv.push_back(value);
    };
    for (const auto& [k, v] : t.serve) {
      if (k == "model") model_dir_ = v;
      if (k == "api_key") {
        // Not on the server's command line (ps shows it): a 0600 file in the run's directory.
        const std::string file = options_.out_dir + "/serve-api-key";
        std::error_code ec;
        fs::remove(file, ec);
        std::ofstream out(file);
        fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
        out << v << "\n";
        if (!out.flush() || ec) return error(StatusCode::kUnavailable, "cannot write %s", file.c_str());
        add("api_key_file", file);
        if (api_key_.empty()) api_key_ = v;
        continue;
      }
      if (k == "api_key_file" && api_key_.empty()) {
        std::ifstream in(v);
        std::getline(in, api_key_);
        api_key_ = std::string(trim(api_key_));
      }
      add(k, v);
    }
    for (const auto& [k, v] : g.deployment.items()) add(k, v.dump());
    if (!port) argv.insert(argv.end(), {"--port", "0"});
    if (!max_n) argv.insert(argv.end(), {"--max-n", std::to_string(std::max<int64_t>(16, spec_.samples))});
    if (model_dir_.empty()) model_dir_ = options_.source_dir + "/models/tiny-reasoner";
    if (!g.deployment.empty()) PONDER_LOG(kInfo, "sweep", "deployment %s", g.deployment.dump().c_str());
    PONDER_ASSIGN_OR_RETURN(server_, LocalServer::start(argv, options_.out_dir + "/serve.log", std::chrono::seconds(600)));
    url = server_->url();
  }
  PONDER_ASSIGN_OR_RETURN(base_, parse_base_url(url, "target"));
  apply_tls(t);
  return {};
}

void Runner::apply_tls(const TargetSpec& t) {
  base_.ca_file = t.ca_file;
  base_.client_cert = t.client_cert;
  base_.client_key = t.client_key;
}

void Runner::undeploy() {
  if (server_) server_->stop();
  server_.reset();
  if (slurm_) slurm_->cancel();
  slurm_.reset();
}

Status Runner::identify() {
  // The model's identity: the served name, and config.json's hash where the model dir is
  // visible from here (the server's own report of it otherwise).
  auto models = http_request_blocking(base_, api_key_, "GET", base_.path + "/models", "", std::chrono::seconds(30));
  if (!models) return tl::unexpected(models.error().with_context("GET " + base_.text + "/models"));
  if (models->status != 200)
    return error(StatusCode::kUnavailable, "GET %s/models: HTTP %d: %.300s", base_.text.c_str(), models->status,
                 models->body.c_str());
  const Json listing = Json::parse(models->body, nullptr, false);
  if (!listing.is_object() || !listing.contains("data") || !listing["data"].is_array() ||
      listing["data"].empty() || !listing["data"][0].contains("id"))
    return error(StatusCode::kRemote, "GET %s/models: no model listed: %.300s", base_.text.c_str(), models->body.c_str());
  const Json& entry = listing["data"][0];
  served_model_ = entry["id"].get<std::string>();
  std::string model_dir = model_dir_;
  if (model_dir.empty() && entry.contains("root") && entry["root"].is_string()) model_dir = entry["root"];
  if (!model_dir.empty() && fs::exists(model_dir + "/config.json")) {
    model_config_hash_ = "sha256:" + sha256_hex(read_file(model_dir + "/config.json"));
  } else {
    // The model's part of the entry only: the server's settings may change between runs.
    Json model = Json::object();
    for (const char* k : {"id", "root", "max_model_len"})
      if (entry.contains(k)) model[k] = entry[k];
    model_config_hash_ = "models-entry:" + model.dump();
  }
  // Provenance: what served the run (ponder's servers list their settings) and the hashes of the
  // model's files that decide its text (tokenizer, chat template, generation defaults).
  server_entry_ = entry;
  model_files_ = Json::object();
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                        "generation_config.json"})
    if (!model_dir.empty() && fs::exists(model_dir + "/" + f))
      model_files_[f] = "sha256:" + sha256_hex(read_file(model_dir + "/" + f));
  return {};
}

bool Runner::run_queue() {
  const int64_t n_workers = std::min<int64_t>(options_.concurrency.value_or(spec_.concurrency),
                                              static_cast<int64_t>(queue_.size()));
  if (n_workers == 0) return true;
  std::vector<std::unique_ptr<HttpConnection>> conns;
  connections_.clear();
  for (int64_t i = 0; i < n_workers; ++i) {
    conns.push_back(std::make_unique<HttpConnection>(io_.get_executor(), base_, api_key_));
    connections_.push_back(conns.back().get());
  }
  workers_left_ = static_cast<int>(n_workers);
  io_.restart();
  for (auto& c : conns) asio::co_spawn(io_, worker(*c), asio::detached);
  io_.run();
  connections_.clear();
  return stop_signal_ == 0;
}

RunOutcome Runner::run() {
  const TargetSpec& t = spec_.target;
  if (options_.target_url.empty() && t.url.empty() && !t.is_serve && t.slurm_deploy.empty()) {
    PONDER_LOG(kError, "sweep", "no target: give target: (url:, serve: or slurm:) in the spec, or --target URL");
    return RunOutcome::kError;
  }
  const std::string key_file = !options_.api_key_file.empty() ? options_.api_key_file : t.api_key_file;
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!in || !std::getline(in, api_key_) || trim(api_key_).empty()) {
      PONDER_LOG(kError, "sweep", "target.api_key_file: cannot read a key from %s", key_file.c_str());
      return RunOutcome::kError;
    }
    api_key_ = std::string(trim(api_key_));
  }
  for (Status s : {open_store(), plan(), check_deployments()})
    if (!s.ok()) {
      PONDER_LOG(kError, "sweep", "%s", s.message().c_str());
      return RunOutcome::kError;
    }
  // SIGINT/SIGTERM from here on: the first stops new requests (and deployments), the second
  // abandons the requests in flight.
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (stop_signal_ == 0) {
      stop_signal_ = sig;
      PONDER_LOG(kInfo, "sweep", "%s: no new requests; waiting for the %zu in flight (again to abandon them)",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", connections_.size());
    } else {
      aborted_ = true;
      for (HttpConnection* c : connections_) c->abort();
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  asio::co_spawn(io_, progress_loop(), asio::detached);

  size_t requests_left = 0;
  for (const Group& g : groups_) requests_left += g.work.size();
  PONDER_LOG(kInfo, "sweep", "%s: %zu points x %zu problems x %lld samples; %lld done before, %zu requests to go%s",
             options_.out_dir.c_str(), points_.size(), problems_.size(), (long long)spec_.samples,
             (long long)done_before_, requests_left,
             groups_.size() > 1 ? strformat(" on %zu deployments", groups_.size()).c_str() : "");
  started_ = Clock::now();
  Status failed;
  for (size_t i = 0; i < groups_.size() && failed.ok() && !stopping() && fatal_.ok(); ++i) {
    Group& g = groups_[i];
    if (g.work.empty()) continue;  // nothing left: not deployed
    failed = deploy(g, i);
    if (failed.ok() && !stopping()) failed = identify();
    if (failed.ok() && !stopping()) failed = begin_group(g);
    if (failed.ok() && !stopping()) {
      PONDER_LOG(kInfo, "sweep", "%s%zu requests to %s", g.deployment.empty() ? "" : (g.deployment.dump() + ": ").c_str(),
                 g.work.size(), base_.text.c_str());
      queue_ = std::move(g.work);
      run_queue();
      if (Status s = store_->end_run(*run_id_, unix_seconds()); !s.ok() && fatal_.ok()) fatal_ = s;
    }
    undeploy();
  }
  print_progress(true);
  signals.cancel();
  undeploy();

  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  std::printf("%s: %lld/%lld samples ok, %lld failed, %lld requests (%lld retries), %lld completion tokens in %.1f s\n",
              options_.out_dir.c_str(), (long long)(done_before_ + done_), (long long)total_samples_,
              (long long)failed_, (long long)requests_, (long long)retries_, (long long)completion_tokens_, elapsed);
  std::fflush(stdout);
  if (!failed.ok()) {
    PONDER_LOG(kError, "sweep", "%s", failed.message().c_str());
    return RunOutcome::kError;
  }
  if (!fatal_.ok()) {
    PONDER_LOG(kError, "sweep", "results store: %s", fatal_.message().c_str());
    return RunOutcome::kError;
  }
  if (stop_signal_ > 0) {
    PONDER_LOG(kInfo, "sweep", "interrupted; run the same command again to resume");
    return RunOutcome::kInterrupted;
  }
  if (failed_ > 0) {
    PONDER_LOG(kWarn, "sweep", "%lld samples failed (their errors are in the store); run the same command again to retry them",
               (long long)failed_);
    return RunOutcome::kSomeFailed;
  }
  return RunOutcome::kComplete;
}

void print_dry_run(const SweepSpec& spec, const std::vector<Problem>& problems,
                   const std::vector<SweepPoint>& points) {
  const int64_t requests = static_cast<int64_t>(problems.size() * points.size());
  int64_t bound = 0, budgeted = 0;
  std::printf("points: %zu\n", points.size());
  for (const SweepPoint& p : points) {
    const int64_t max_tokens = p.params["max_tokens"].get<int64_t>();
    // With a thinking budget the answer after it is short; ~32 tokens is generous for a boxed
    // number. Without one, the bound is what is expected.
    const int64_t expected = p.params["max_thinking_tokens"].is_number_integer()
                                 ? std::min<int64_t>(max_tokens, p.params["max_thinking_tokens"].get<int64_t>() + 32)
                                 : max_tokens;
    bound += max_tokens;
    budgeted += expected;
    std::printf("  %s %s\n", p.key.c_str(), p.params.dump().c_str());
  }
  const int64_t per_point = static_cast<int64_t>(problems.size()) * spec.samples;
  std::printf("problems: %zu\nsamples per problem and point: %lld\nrequests: %lld (one per problem and point)\n"
              "samples: %lld\ncompletion tokens: at most %lld (max_tokens), about %lld with the thinking budgets\n",
              problems.size(), (long long)spec.samples, (long long)requests, (long long)(requests * spec.samples),
              (long long)(bound * per_point), (long long)(budgeted * per_point));
}

}  // namespace

RunOutcome run_sweep(const SweepSpec& spec, const std::string& spec_path, const RunOptions& options,
                     ServeKeyCheck check_serve_key) {
  if (check_serve_key)
    for (const auto& [k, v] : spec.target.serve)
      if (Status s = check_serve_key(k, v, spec_path + ": target.serve"); !s.ok()) {
        PONDER_LOG(kError, "sweep", "%s", s.message().c_str());
        return RunOutcome::kError;
      }
  auto problems = load_problems(spec.dataset, options.tasks_dir);
  if (!problems) {
    PONDER_LOG(kError, "sweep", "%s: %s", spec_path.c_str(), problems.error().message().c_str());
    return RunOutcome::kError;
  }
  std::vector<SweepPoint> points = expand_grid(spec);
  if (options.dry_run) {
    print_dry_run(spec, *problems, points);
    return RunOutcome::kComplete;
  }
  Runner runner(spec, options, std::move(*problems), std::move(points));
  return runner.run();
}

}  // namespace ponder::experiments
