// endpoint.json: what a running deployment tells the outside, in the job's directory. The
// coordinator writes it (atomically: a temporary file renamed over the old one) at each change of
// state; `ponder slurm status` / `endpoint` read it.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ponder::slurm {

// STARTING: ranks are being launched / registering / warming up. READY: every replica answered
// a real generation. DEGRADED: serving with fewer replicas than deployed. DRAINING: stopping
// (signal or cancel), new requests get 503. REQUEUED: drained and asked Slurm to run it again.
// STOPPED: drained and exited. FAILED: see reason; the job ends itself.
struct EndpointRecord {
  std::string state;
  std::string reason;          // why FAILED / DEGRADED / DRAINING
  std::string url;             // base URL of the OpenAI API, ".../v1"; empty until READY
  std::string host;            // the coordinator's node name
  std::string address;         // the address its listeners bind
  int port = 0;
  std::string api_key_file;    // empty when clients need no key
  std::string job_id;
  int restart_count = 0;       // SLURM_RESTART_COUNT of the run that wrote it
  int replicas = 0;            // deployed
  int healthy_replicas = 0;
  int64_t coordinator_pid = 0;
  int64_t updated_unix = 0;    // seconds since the epoch
};

std::string endpoint_path(const std::string& job_dir);
Status write_endpoint(const std::string& job_dir, const EndpointRecord& record);
// kNotFound when the file is not there (yet); kInvalidArgument when it is not an endpoint record.
Expected<EndpointRecord> read_endpoint(const std::string& job_dir);

}  // namespace ponder::slurm
