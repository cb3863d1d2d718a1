#include "experiments/slurm_target.h"

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/subprocess.h"

namespace ponder::experiments {

Expected<std::unique_ptr<SlurmTarget>> SlurmTarget::start(const std::string& ponder, const std::string& deploy,
                                                          const std::string& output_dir, std::chrono::seconds timeout) {
  std::unique_ptr<SlurmTarget> t(new SlurmTarget());
  t->ponder_ = ponder;
  PONDER_ASSIGN_OR_RETURN(auto submitted, run_command({ponder, "slurm", "submit", deploy, "--output-dir", output_dir},
                                                      std::chrono::seconds(120)));
  if (submitted.exit_code != 0)
    return error(StatusCode::kUnavailable, "target.slurm: ponder slurm submit %s: %s", deploy.c_str(),
                 submitted.first_error_line().c_str());
  t->job_id_ = std::string(trim(submitted.out));
  PONDER_LOG(kInfo, "sweep", "target.slurm: submitted %s as job %s; waiting up to %lld s for its endpoint",
             deploy.c_str(), t->job_id_.c_str(), (long long)timeout.count());
  auto endpoint = run_command({ponder, "slurm", "endpoint", t->job_id_, "--wait", std::to_string(timeout.count()),
                               "--json"},
                              timeout + std::chrono::seconds(60));
  if (!endpoint) return tl::unexpected(endpoint.error().with_context("target.slurm: job " + t->job_id_));
  if (endpoint->exit_code != 0)
    return error(StatusCode::kUnavailable, "target.slurm: job %s: %s", t->job_id_.c_str(),
                 endpoint->first_error_line().c_str());
  const nlohmann::json j = nlohmann::json::parse(endpoint->out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("url") || !j["url"].is_string())
    return error(StatusCode::kInternal, "target.slurm: ponder slurm endpoint printed no URL: %.300s",
                 endpoint->out.c_str());
  t->url_ = j["url"].get<std::string>();
  t->api_key_file_ = j.value("api_key_file", std::string());
  t->nodes_ = j.value("nodes", std::string());
  PONDER_LOG(kInfo, "sweep", "target.slurm: job %s serves at %s on %s", t->job_id_.c_str(), t->url_.c_str(),
             t->nodes_.c_str());
  return t;
}

SlurmTarget::~SlurmTarget() { cancel(); }

void SlurmTarget::cancel() {
  if (cancelled_ || job_id_.empty()) return;
  cancelled_ = true;
  auto out = run_command({ponder_, "slurm", "cancel", job_id_}, std::chrono::seconds(180));
  if (!out || out->exit_code != 0)
    PONDER_LOG(kError, "sweep", "target.slurm: ponder slurm cancel %s failed: %s (cancel it yourself)",
               job_id_.c_str(), out ? out->first_error_line().c_str() : out.error().message().c_str());
  else
    PONDER_LOG(kInfo, "sweep", "target.slurm: %s", std::string(trim(out->out)).c_str());
}

}  // namespace ponder::experiments
