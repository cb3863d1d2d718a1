#include "apps/deploy_config.h"

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "apps/mpirun_launch.h"
#include "common/check.h"
#include "common/strings.h"
#include "slurm/node_address.h"
#include "worker/model/architecture.h"
#include "worker/replica.h"

namespace ponder::apps {

namespace fs = std::filesystem;

Expected<DeployConfig> load_deploy_config(const std::string& path, bool for_submit, bool check_model) {
  PONDER_ASSIGN_OR_RETURN(YAML::Node root, load_yaml_file(path, "deployment"));
  if (!root.IsMap())
    return error(StatusCode::kInvalidArgument, "%s: expected a mapping of settings with a 'slurm:' section",
                 path.c_str());
  DeployConfig d;
  d.source = path;
  // Inside an allocation clients come from other machines: listen on the node's address, on a
  // port nobody else holds.
  d.serve.host = "";
  d.serve.port = 0;
  const std::string where = path + ": ";
  PONDER_RETURN_IF_ERROR(apply_serve_yaml(d.serve, root, where, {"slurm"}));
  if (!root["slurm"])
    return error(StatusCode::kInvalidArgument, "%sno 'slurm:' section (nodes, gpus_per_node, partition, …)",
                 where.c_str());
  PONDER_RETURN_IF_ERROR(slurm::parse_slurm_options(root["slurm"], where + "slurm: ", d.slurm));
  if (for_submit && !d.serve.model.empty()) d.serve.model = fs::absolute(d.serve.model).lexically_normal().string();
  if (for_submit && !d.serve.api_key_file.empty())
    d.serve.api_key_file = fs::absolute(d.serve.api_key_file).lexically_normal().string();
  if (for_submit && !d.serve.curve_keys_dir.empty())
    d.serve.curve_keys_dir = fs::absolute(d.serve.curve_keys_dir).lexically_normal().string();
  PONDER_RETURN_IF_ERROR(validate_serve_config(d.serve, {.api_key_off_loopback = false, .model_on_disk = check_model}).with_context(path));
  if (d.serve.backend == "cuda" && d.slurm.gpus_per_node == 0)
    return error(StatusCode::kInvalidArgument, "%sbackend cuda needs slurm.gpus_per_node (one GPU per rank)",
                 where.c_str());
  auto layout = slurm::plan_job_layout(
      d.slurm, {.replicas = d.serve.replicas, .tp = d.serve.tp, .pp = d.serve.pp, .ep = d.serve.ep,
                .cuda = d.serve.backend == "cuda"});
  if (!layout) return tl::unexpected(layout.error().with_context(path));
  d.layout = *layout;
  if (d.slurm.tasks_per_node == 0) d.slurm.tasks_per_node = d.layout.tasks_per_node;
  if (for_submit) {
    d.slurm.output_dir = fs::absolute(d.slurm.output_dir).lexically_normal().string();
    while (d.slurm.output_dir.size() > 1 && d.slurm.output_dir.back() == '/') d.slurm.output_dir.pop_back();
    if (d.slurm.ponder.empty()) {
      PONDER_ASSIGN_OR_RETURN(d.slurm.ponder, self_path());
    }
  }
  if (for_submit && check_model) {
    // The model must split into this layout; the job would fail on every rank otherwise.
    auto model_config = worker::load_model_config(d.serve.model);
    if (!model_config) return tl::unexpected(model_config.error().with_context(path));
    PONDER_RETURN_IF_ERROR(status_of(worker::model_layout(*model_config, d.serve.ranks_per_replica(),
                                                          d.serve.tp, d.serve.pp, d.serve.stage_layers,
                                                          d.serve.ep))
                               .with_context(path));
  } else if (!for_submit && d.slurm.ponder.empty()) {
    return error(StatusCode::kInvalidArgument, "%sslurm.ponder is not set (the job's copy is resolved at submit)",
                 where.c_str());
  }
  return d;
}

std::string emit_deploy_yaml(const DeployConfig& d) {
  PONDER_CHECK(d.serve.api_key.empty(), "the job's copy of %s would carry its api_key", d.source.c_str());
  YAML::Emitter out;
  out << YAML::BeginMap;
  YAML::Emitter serve;
  emit_serve_config(d.serve, serve);
  // Merge: the serve keys at the top, then slurm:.
  const YAML::Node serve_node = YAML::Load(serve.c_str());
  for (const auto& item : serve_node) out << YAML::Key << item.first << YAML::Value << item.second;
  out << YAML::Key << "slurm" << YAML::Value;
  slurm::emit_slurm_options(d.slurm, out);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Expected<MovedApiKey> move_api_key_out(DeployConfig& d, bool dry_run) {
  if (d.serve.api_key.empty()) return MovedApiKey{};
  std::string name = "XXXXXXXXXXXX";
  if (!dry_run) {
    PONDER_ASSIGN_OR_RETURN(std::string token, slurm::random_token());
    name = token.substr(0, name.size());
  }
  MovedApiKey moved{.file = d.slurm.output_dir + "/api_key-" + name, .key = std::move(d.serve.api_key)};
  d.serve.api_key.clear();
  d.serve.api_key_file = moved.file;
  return moved;
}

Status write_api_key_file(const MovedApiKey& moved) {
  if (moved.file.empty()) return {};
  return write_private_file(moved.file, moved.key + "\n");
}

}  // namespace ponder::apps
