#include "experiments/slurm_target.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/check.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/subprocess.h"

namespace ponder::experiments {

namespace fs = std::filesystem;

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

// `deploy` (a deploy.yaml) with a grid point's deployment axes applied, written to
// DIR/deploy-<index>.yaml: tp, pp and replicas are its serve keys, nodes its slurm.nodes. A
// nodes value without a replicas axis scales the replicas with the nodes (replicas × N / nodes),
// so that each node keeps the layout the file gives it.
Expected<std::string> deployment_variant(const std::string& deploy, const nlohmann::ordered_json& deployment,
                                         const std::string& dir, size_t index) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(deploy);
  } catch (const YAML::Exception& e) {
    return error(StatusCode::kInvalidArgument, "target.slurm: %s: %s", deploy.c_str(), e.what());
  }
  if (!root.IsMap() || !root["slurm"] || !root["slurm"].IsMap())
    return error(StatusCode::kInvalidArgument, "target.slurm: %s: expected a deployment with a slurm: section",
                 deploy.c_str());
  const auto int_of = [&](const YAML::Node& n, int64_t fallback) -> Expected<int64_t> {
    if (!n) return fallback;
    try {
      return n.as<int64_t>();
    } catch (const YAML::Exception&) {
      return error(StatusCode::kInvalidArgument, "target.slurm: %s: '%s' is not an integer", deploy.c_str(),
                   n.Scalar().c_str());
    }
  };
  for (const auto& [k, v] : deployment.items()) {
    if (k == "nodes") {
      PONDER_ASSIGN_OR_RETURN(const int64_t nodes, int_of(root["slurm"]["nodes"], 1));
      PONDER_ASSIGN_OR_RETURN(const int64_t replicas, int_of(root["replicas"], 1));
      const int64_t n = v.get<int64_t>();
      if (!deployment.contains("replicas")) {
        if (replicas * n % nodes != 0)
          return error(StatusCode::kInvalidArgument,
                       "grid.nodes: %lld nodes: %s's %lld replicas on %lld nodes do not scale to %lld nodes; "
                       "give a replicas axis",
                       (long long)n, deploy.c_str(), (long long)replicas, (long long)nodes, (long long)n);
        root["replicas"] = replicas * n / nodes;
      }
      root["slurm"]["nodes"] = n;
    } else {
      root[k] = v.get<int64_t>();
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string path = strformat("%s/deploy-%zu.yaml", dir.c_str(), index);
  std::ofstream out(path);
  out << "# " << deploy << " with the sweep's deployment " << deployment.dump() << "\n" << YAML::Dump(root) << "\n";
  if (!out.flush())
    return error(StatusCode::kUnavailable, "cannot write %s", path.c_str());
  return path;
}

}  // namespace ponder::experiments
