// ReplicaLinkKeys: the CURVE keys of the replica links for one run of a deployment (`ponder serve`,
// `ponder slurm launch`). With replica_curve on (the default) they are the operator's, from
// curve_keys_dir (made by `ponder keys generate`), or else a pair for the coordinator and one per
// replica made for this run in a directory of its own (mode 0700, secret keys 0600) that goes when
// the run ends. Replicas get file paths on their command line (--curve-server-key, --curve-key),
// never a key. Not thread-safe; the launching thread owns it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apps/serve_config.h"
#include "common/process_env.h"
#include "common/status.h"
#include "coordinator/replicas/curve_keys.h"

namespace ponder::apps {

class ReplicaLinkKeys {
 public:
  // replica_curve off: no keys (the links are plain ZMTP; logged as a warning). curve_keys_dir:
  // its keys. Otherwise new keys in `run_dir`: a mkdtemp template when it ends in "XXXXXX" (and
  // directories of that template that a killed coordinator left behind are removed), else a path
  // made anew (what was there is removed). kFailedPrecondition when libzmq has no CURVE.
  static Expected<std::unique_ptr<ReplicaLinkKeys>> prepare(const ServeConfig& config,
                                                            const std::string& run_dir);
  // Removes the directory of keys made for this run.
  ~ReplicaLinkKeys();
  ReplicaLinkKeys(const ReplicaLinkKeys&) = delete;
  ReplicaLinkKeys& operator=(const ReplicaLinkKeys&) = delete;

  // For ReplicaPoolOptions::curve (empty when off).
  const coordinator::CurveServerKeys& server() const { return server_; }
  // The `ponder replica` options of replica `replica`: --curve-server-key F --curve-key F, or none.
  std::vector<std::string> replica_args(int replica) const;
  // Where the keys are; empty when off.
  const std::string& dir() const { return dir_; }
  bool made_for_this_run() const { return ephemeral_; }

 private:
  ReplicaLinkKeys() = default;
  coordinator::CurveServerKeys server_;
  std::string dir_;
  bool ephemeral_ = false;
};

// The template `ponder serve` makes a run's keys from: <XDG_RUNTIME_DIR, else TMPDIR, else
// /tmp>/ponder-curve-XXXXXX.
std::string run_keys_template(const ProcessEnv& env);

// validate_serve_config's checks of the replica-link keys: curve_keys_dir only with replica_curve
// on, and then (with `load_files`) its server keys load and each replica's replica-I.key is there,
// mode 0600, with its public key on the allow-list (errors name the file).
Status check_replica_link_settings(const ServeConfig& config, bool load_files);

}  // namespace ponder::apps
