#include "apps/sweep_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/serve_config.h"
#include "common/process_env.h"
#include "experiments/sweep_runner.h"

namespace ponder::apps {
namespace {

namespace fs = std::filesystem;

// target.serve keys are ponder serve's: checked as `ponder serve` would, before it starts.
Status check_serve_key(const std::string& key, const std::string& value, const std::string& where) {
  ServeConfig scratch;
  return apply_serve_setting(scratch, key, value, where);
}

std::string self_binary() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ponder") : p.string();
}

// `ponder sweep report DIR [args]`: the report is Python (experiments/report/), found through
// PYTHONPATH = the source tree, so that every path the user gives (DIR, --out) stays relative to
// where they are.
int exec_report(const std::vector<std::string>& args) {
  const std::string root = PONDER_SOURCE_DIR;
  const fs::path package = fs::path(root) / "experiments" / "report";
  if (!fs::exists(package / "__init__.py") && !fs::exists(package / "__main__.py")) {
    std::fprintf(stderr,
                 "ponder sweep report: the report package is missing (%s); it comes with the "
                 "source tree this ponder was built from\n",
                 package.c_str());
    return 2;
  }
  std::vector<std::string> argv = {"/usr/bin/python3", "-m", "experiments.report"};
  argv.insert(argv.end(), args.begin(), args.end());
  const char* path = std::getenv("PYTHONPATH");
  setenv("PYTHONPATH", (path && *path ? root + ":" + path : root).c_str(), 1);
  std::vector<char*> c;
  for (std::string& a : argv) c.push_back(a.data());
  c.push_back(nullptr);
  execv(c[0], c.data());
  std::fprintf(stderr, "ponder sweep report: cannot run %s: %s\n", c[0], std::strerror(errno));
  return 2;
}

}  // namespace

int run_sweep(int argc, char** argv) {
  if (argc >= 1 && std::string(argv[0]) == "report") {
    // Everything after `report` belongs to the Python report, --help included.
    std::vector<std::string> rest(argv + 1, argv + argc);
    if (rest.empty()) {
      std::fprintf(stderr, "usage: ponder sweep report DIR [report options]\n");
      return 2;
    }
    return exec_report(rest);
  }
  CLI::App app{"ponder sweep: test-time-compute experiments against an OpenAI-compatible server",
               "ponder sweep"};
  app.require_subcommand(1);
  std::string spec_path;
  experiments::RunOptions options;
  int64_t concurrency = 0;
  auto* run = app.add_subcommand("run", "run SPEC's grid into DIR/results.sqlite; rerun to resume");
  run->add_option("spec", spec_path, "the sweep spec (YAML): target, dataset, samples, sampling, grid, strategies")
      ->required();
  run->add_option("--out", options.out_dir, "the run's directory (results.sqlite, serve.log)")->required();
  run->add_option("--target", options.target_url, "an OpenAI-compatible base URL (http://host:port/v1); overrides the spec's target");
  run->add_option("--api-key-file", options.api_key_file, "a file with the server's API key; overrides target.api_key_file");
  run->add_option("--concurrency", concurrency, "requests in flight (overrides the spec's concurrency)")
      ->check(CLI::Range(1, 1024));
  run->add_flag("--allow-spec-change", options.allow_spec_change, "resume DIR although its spec or model differs");
  run->add_flag("--dry-run", options.dry_run, "print the expanded grid: points, requests, expected tokens; send nothing");
  app.add_subcommand("report", "the report of a run: ponder sweep report DIR [options] (python3 -m experiments.report)");

  std::vector<std::string> args;
  for (int i = argc - 1; i >= 0; --i) args.emplace_back(argv[i]);  // CLI11 takes them reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  auto spec = experiments::load_sweep_spec(spec_path);
  if (!spec) {
    std::fprintf(stderr, "ponder sweep: %s\n", spec.error().message().c_str());
    return 2;
  }
  if (concurrency > 0) options.concurrency = concurrency;
  const ProcessEnv env = ProcessEnv::read();
  options.slurm_job_id = env.slurm_job_id;
  options.slurm_job_nodelist = env.slurm_job_nodelist;
  options.ponder_binary = self_binary();
  options.source_dir = PONDER_SOURCE_DIR;
  options.tasks_dir = options.source_dir + "/tests/data/tasks";
  switch (experiments::run_sweep(*spec, spec_path, options, &check_serve_key)) {
    case experiments::RunOutcome::kComplete: return 0;
    case experiments::RunOutcome::kSomeFailed: return 1;
    case experiments::RunOutcome::kInterrupted: return 130;
    case experiments::RunOutcome::kError: return 2;
  }
  return 2;
}

}  // namespace ponder::apps
