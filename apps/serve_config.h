// ServeConfig: a deployment of `ponder serve` — model, dtype, backend, layout, KV memory, limits,
// listener — from a YAML file and/or flags that mirror its keys (`tp` ↔ `--tp`,
// `kv_cache_bytes` ↔ `--kv-cache-bytes`; flags win). Unknown keys and bad values are errors that
// name the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "coordinator/model_text.h"

namespace YAML {
class Node;
class Emitter;
}  // namespace YAML

namespace ponder::apps {

struct ServeConfig {
  std::string model;              // Hugging Face model directory
  std::string served_model_name;  // default: the directory's base name
  std::string dtype = "bf16";     // bf16 (bf16 dot products on bf16 weights) or float32 (exact)
  std::string backend = "cpu";
  int tp = 1;
  int pp = 1;
  int ep = 1;                         // expert-parallel columns per stage (MoE models)
  std::vector<int64_t> stage_layers;  // empty: even split
  int replicas = 1;
  int threads = 0;                    // per rank; 0: the cores divided among the ranks
  int64_t kv_cache_bytes = int64_t{256} << 20;  // per replica
  std::string kv_cache_dtype = "f32";            // f32 or bf16 (half the bytes per token)
  std::string quantize = "none";                 // none or int8 (load-time int8 weights, CPU)
  std::string host = "127.0.0.1";
  int port = 8000;                    // 0: any free port (printed)
  std::string api_key;                // off loopback, this or api_key_file is required; shows in ps
  std::string api_key_file;           // the key on its first line, mode 0600: out of ps and copies
  std::string api_keys_file;          // many users: hashed keys with limits (ponder api-keys)
  std::string audit_log;              // JSON lines, one per answered request (mode 0600)
  bool audit_log_text = false;        // the audit log also holds prompts and outputs
  std::string tool_call_parser = "auto";  // auto (from the chat template), none, hermes, ...
  std::string generation_config = "auto";  // auto: generation_config.json's defaults; none
  std::string tls_cert;               // HTTPS: PEM certificate chain …
  std::string tls_key;                // … and its PEM private key (mode 0600)
  std::string tls_client_ca;          // mTLS: PEM CAs whose client certificates are accepted
  bool allow_plaintext = false;       // off loopback without TLS
  int64_t max_n = 16;                 // largest n a request may ask for
  int64_t max_queued = 1024;          // requests in flight before 503
  int64_t max_body_bytes = 8 << 20;
  int32_t token_budget = 512;         // tokens per engine step
  int32_t max_running = 256;          // sequences running at once per replica
  int64_t heartbeat_ms = 250;
  int64_t heartbeat_timeout_ms = 3000;
  int64_t collective_timeout_ms = 60'000;  // deadline of every collective between a replica's ranks
  int64_t startup_timeout_s = 300;    // for every replica to register
  int64_t drain_timeout_s = 30;       // SIGINT/SIGTERM: in-flight requests get this long
  int64_t max_replica_restarts = 5;   // per replica, by `ponder serve`; then it stays down
  int64_t replica_restart_backoff_ms = 1000;  // before the first restart; doubles, up to 30 s
  bool replica_curve = true;          // CURVE on the replica links (encrypted, allow-listed keys)
  std::string curve_keys_dir;         // `ponder keys generate`'s keys; empty: made for each run

  int ranks_per_replica() const { return tp * pp * ep; }
  bool in_process() const { return replicas == 1 && ranks_per_replica() == 1; }
};

// The keys, for --help.
extern const char* const kServeConfigKeys;

// Applies `key: value` pairs (YAML scalars, or flag values) to `config`; "where" prefixes errors.
Status apply_serve_setting(ServeConfig& config, const std::string& key, const std::string& value,
                           const std::string& where);
// Reads a YAML mapping of settings.
Status load_serve_config(ServeConfig& config, const std::string& path);
// A YAML file, or an error naming it (`what` says what it is: "config", "deployment").
Expected<YAML::Node> load_yaml_file(const std::string& path, const char* what);
// Applies the settings of a YAML mapping, but for the keys in `skip` (a deploy.yaml's `slurm:`).
Status apply_serve_yaml(ServeConfig& config, const YAML::Node& root, const std::string& where,
                        const std::set<std::string>& skip = {});
// Every key with its value, as a YAML mapping (the job's resolved copy of a deployment).
void emit_serve_config(const ServeConfig& config, YAML::Emitter& out);
// The same as JSON, without the API key or its file (api_key_set says whether there is one):
// what GET /v1/models shows of the server's settings.
nlohmann::ordered_json serve_config_json(const ServeConfig& config);
// The key of an api_key_file: its first line, trimmed. Errors name the file: it cannot be read, it
// is readable by group or others (mode & 0077), or its first line is empty.
Expected<std::string> read_api_key_file(const std::string& path);
// The key clients must send: api_key, or api_key_file's (read now); empty: none.
Expected<std::string> serve_api_key(const ServeConfig& config);
// Final checks across keys (model present, layout sizes, loopback or API key, api_key and
// api_key_file not both, the key file readable, …).
struct ServeChecks {
  bool api_key_off_loopback = true;  // false: `ponder slurm` generates a key per job
  bool model_on_disk = true;         // false: --dry-run on a machine without the model
};
Status validate_serve_config(ServeConfig& config, ServeChecks checks = {});

// The served model's text side (tokenizer, chat template, reasoning delimiters) with the
// tool-call format tool_call_parser names, or the template's own when "auto"; logs the choice.
Expected<coordinator::ModelText> load_served_model_text(const ServeConfig& config);

}  // namespace ponder::apps
