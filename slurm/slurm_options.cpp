#include "slurm/slurm_options.h"

#include <cerrno>
#include <cstdlib>
#include <functional>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::slurm {

const char* const kSlurmOptionKeys = R"(  nodes N                nodes to allocate (default 1)
  tasks_per_node N       ranks per node (default: replicas × tp × pp / nodes, which must divide)
  gpus_per_node N        GPUs per node (default 0; backend cuda needs one per rank)
  gpu_request R          gpus-per-node (default: --gpus-per-node=N) or gres (--gres=gpu:N)
  gpu_type T             GRES type, e.g. h100 (--gpus-per-node=h100:N / --gres=gpu:h100:N)
  cpus_per_task N        CPU cores per rank, also its thread count (default 1)
  mem M                  --mem per node, e.g. 0 (all) or 64G (default: the site's)
  partition, account, qos, time, constraint
                         passed as --partition, --account, --qos, --time, --constraint when set
  job_name S             --job-name (default ponder)
  output_dir DIR         where job files go: DIR/ponder-<job>.log and DIR/<job>/ (default ponder-jobs)
  exclusive B            --exclusive (default false)
  requeue B              --requeue: after the USR1 drain the job is requeued (default false)
  signal_grace_s N       --signal=B:USR1@N: drain this long before the time limit (default 120; 0: none)
  segment N              --segment=N (Slurm 24.11+ topology segments; default unset)
  container_image I      pyxis/enroot image for the ranks (--container-image; default: none)
  container_mounts L     list of SRC:DST mounts (--container-mounts); the output dir is added
  container_workdir D    --container-workdir
  interface IF           network interface ponder listens on (default: the address of the node's name)
  ponder PATH            the ponder binary the job runs (default: the one that submits)
  env MAP                environment variables for the job, e.g. {NCCL_SOCKET_IFNAME: ib0}
  extra_sbatch_args L    list of sbatch options, one #SBATCH line each, verbatim
  extra_srun_args L      list of srun options for the ranks' step, verbatim
)";

namespace {

struct Reader {
  const std::string& where;

  Expected<std::string> scalar(const std::string& key, const YAML::Node& v) const {
    if (!v.IsScalar())
      return error(StatusCode::kInvalidArgument, "%s'%s' must be a single value", where.c_str(), key.c_str());
    return v.as<std::string>();
  }

  Status integer(const std::string& key, const YAML::Node& v, int64_t lo, int64_t hi, int64_t* out) const {
    PONDER_ASSIGN_OR_RETURN(std::string text, scalar(key, v));
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || n < lo || n > hi)
      return error(StatusCode::kInvalidArgument, "%s'%s' must be an integer in [%lld, %lld], got '%s'",
                   where.c_str(), key.c_str(), (long long)lo, (long long)hi, text.c_str());
    *out = n;
    return {};
  }

  Status integer(const std::string& key, const YAML::Node& v, int64_t lo, int64_t hi, int* out) const {
    int64_t n = 0;
    PONDER_RETURN_IF_ERROR(integer(key, v, lo, hi, &n));
    *out = static_cast<int>(n);
    return {};
  }

  Status boolean(const std::string& key, const YAML::Node& v, bool* out) const {
    PONDER_ASSIGN_OR_RETURN(std::string text, scalar(key, v));
    if (text == "true" || text == "yes" || text == "on") {
      *out = true;
    } else if (text == "false" || text == "no" || text == "off") {
      *out = false;
    } else {
      return error(StatusCode::kInvalidArgument, "%s'%s' must be true or false, got '%s'", where.c_str(),
                   key.c_str(), text.c_str());
    }
    return {};
  }

  // A list of strings; a single string is a list of one.
  Status list(const std::string& key, const YAML::Node& v, std::vector<std::string>* out) const {
    out->clear();
    if (v.IsScalar()) {
      out->push_back(v.as<std::string>());
      return {};
    }
    if (!v.IsSequence())
      return error(StatusCode::kInvalidArgument, "%s'%s' must be a list of strings", where.c_str(), key.c_str());
    for (const auto& e : v) {
      if (!e.IsScalar())
        return error(StatusCode::kInvalidArgument, "%s'%s' must be a list of strings", where.c_str(), key.c_str());
      out->push_back(e.as<std::string>());
    }
    return {};
  }
};

bool valid_env_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

}  // namespace

Status parse_slurm_options(const YAML::Node& node, const std::string& where, SlurmOptions& o) {
  if (node.IsNull()) return {};
  if (!node.IsMap())
    return error(StatusCode::kInvalidArgument, "%sexpected a mapping of Slurm settings (key: value)", where.c_str());
  const Reader r{where};
  for (const auto& item : node) {
    const std::string key = item.first.as<std::string>();
    const YAML::Node& v = item.second;
    auto text = [&](std::string* field) -> Status {
      PONDER_ASSIGN_OR_RETURN(*field, r.scalar(key, v));
      return {};
    };
    Status st;
    if (key == "nodes") {
      st = r.integer(key, v, 1, 100'000, &o.nodes);
    } else if (key == "tasks_per_node") {
      st = r.integer(key, v, 0, 4096, &o.tasks_per_node);  // 0: derived
    } else if (key == "gpus_per_node") {
      st = r.integer(key, v, 0, 1024, &o.gpus_per_node);
    } else if (key == "gpu_request") {
      std::string s;
      st = text(&s);
      if (st.ok()) {
        if (s == "gpus-per-node") {
          o.gpu_request = GpuRequest::kGpusPerNode;
        } else if (s == "gres") {
          o.gpu_request = GpuRequest::kGres;
        } else {
          st = error(StatusCode::kInvalidArgument, "%s'gpu_request' must be gpus-per-node or gres, got '%s'",
                     where.c_str(), s.c_str());
        }
      }
    } else if (key == "gpu_type") {
      st = text(&o.gpu_type);
    } else if (key == "cpus_per_task") {
      st = r.integer(key, v, 1, 4096, &o.cpus_per_task);
    } else if (key == "mem") {
      st = text(&o.mem);
    } else if (key == "partition") {
      st = text(&o.partition);
    } else if (key == "account") {
      st = text(&o.account);
    } else if (key == "qos") {
      st = text(&o.qos);
    } else if (key == "time") {
      st = text(&o.time);
    } else if (key == "constraint") {
      st = text(&o.constraint);
    } else if (key == "job_name") {
      st = text(&o.job_name);
      if (st.ok() && o.job_name.empty())
        st = error(StatusCode::kInvalidArgument, "%s'job_name' must not be empty", where.c_str());
    } else if (key == "output_dir") {
      st = text(&o.output_dir);
      if (st.ok() && o.output_dir.empty())
        st = error(StatusCode::kInvalidArgument, "%s'output_dir' must not be empty", where.c_str());
    } else if (key == "exclusive") {
      st = r.boolean(key, v, &o.exclusive);
    } else if (key == "requeue") {
      st = r.boolean(key, v, &o.requeue);
    } else if (key == "signal_grace_s") {
      st = r.integer(key, v, 0, 86'400, &o.signal_grace_s);
    } else if (key == "segment") {
      st = r.integer(key, v, 0, 100'000, &o.segment);
    } else if (key == "container_image") {
      st = text(&o.container_image);
    } else if (key == "container_mounts") {
      st = r.list(key, v, &o.container_mounts);
    } else if (key == "container_workdir") {
      st = text(&o.container_workdir);
    } else if (key == "interface") {
      st = text(&o.interface);
    } else if (key == "ponder") {
      st = text(&o.ponder);
    } else if (key == "env") {
      if (!v.IsMap() && !v.IsNull()) {
        st = error(StatusCode::kInvalidArgument, "%s'env' must be a mapping NAME: value", where.c_str());
      } else {
        o.env.clear();
        for (const auto& e : v) {
          const std::string name = e.first.as<std::string>();
          if (!valid_env_name(name))
            return error(StatusCode::kInvalidArgument, "%s'env': '%s' is not a variable name", where.c_str(),
                         name.c_str());
          if (!e.second.IsScalar())
            return error(StatusCode::kInvalidArgument, "%s'env': %s must be a single value", where.c_str(),
                         name.c_str());
          o.env[name] = e.second.as<std::string>();
        }
      }
    } else if (key == "extra_sbatch_args") {
      st = r.list(key, v, &o.extra_sbatch_args);
    } else if (key == "extra_srun_args") {
      st = r.list(key, v, &o.extra_srun_args);
    } else {
      st = error(StatusCode::kInvalidArgument, "%sunknown key '%s' (the keys are listed by ponder slurm submit --help)",
                 where.c_str(), key.c_str());
    }
    PONDER_RETURN_IF_ERROR(st);
  }
  if (o.signal_grace_s > 0 && o.signal_grace_s < 10)
    return error(StatusCode::kInvalidArgument,
                 "%s'signal_grace_s' is %lld: Slurm may deliver the signal up to 30 s late or early, so "
                 "give at least 10 s (or 0 for no signal)",
                 where.c_str(), (long long)o.signal_grace_s);
  return {};
}

void emit_slurm_options(const SlurmOptions& o, YAML::Emitter& out) {
  out << YAML::BeginMap;
  out << YAML::Key << "nodes" << YAML::Value << o.nodes;
  out << YAML::Key << "tasks_per_node" << YAML::Value << o.tasks_per_node;
  out << YAML::Key << "gpus_per_node" << YAML::Value << o.gpus_per_node;
  out << YAML::Key << "gpu_request" << YAML::Value
      << (o.gpu_request == GpuRequest::kGres ? "gres" : "gpus-per-node");
  out << YAML::Key << "gpu_type" << YAML::Value << o.gpu_type;
  out << YAML::Key << "cpus_per_task" << YAML::Value << o.cpus_per_task;
  out << YAML::Key << "mem" << YAML::Value << o.mem;
  out << YAML::Key << "partition" << YAML::Value << o.partition;
  out << YAML::Key << "account" << YAML::Value << o.account;
  out << YAML::Key << "qos" << YAML::Value << o.qos;
  out << YAML::Key << "time" << YAML::Value << o.time;
  out << YAML::Key << "constraint" << YAML::Value << o.constraint;
  out << YAML::Key << "job_name" << YAML::Value << o.job_name;
  out << YAML::Key << "output_dir" << YAML::Value << o.output_dir;
  out << YAML::Key << "exclusive" << YAML::Value << o.exclusive;
  out << YAML::Key << "requeue" << YAML::Value << o.requeue;
  out << YAML::Key << "signal_grace_s" << YAML::Value << o.signal_grace_s;
  out << YAML::Key << "segment" << YAML::Value << o.segment;
  out << YAML::Key << "container_image" << YAML::Value << o.container_image;
  out << YAML::Key << "container_mounts" << YAML::Value << YAML::Flow << o.container_mounts;
  out << YAML::Key << "container_workdir" << YAML::Value << o.container_workdir;
  out << YAML::Key << "interface" << YAML::Value << o.interface;
  out << YAML::Key << "ponder" << YAML::Value << o.ponder;
  out << YAML::Key << "env" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : o.env) out << YAML::Key << k << YAML::Value << v;
  out << YAML::EndMap;
  out << YAML::Key << "extra_sbatch_args" << YAML::Value << YAML::Flow << o.extra_sbatch_args;
  out << YAML::Key << "extra_srun_args" << YAML::Value << YAML::Flow << o.extra_srun_args;
  out << YAML::EndMap;
}

}  // namespace ponder::slurm
