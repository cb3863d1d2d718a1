#include "apps/serve_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <type_traits>

#include <yaml-cpp/yaml.h>

#include "apps/replica_link_keys.h"
#include "common/check.h"
#include "common/log.h"
#include "common/private_file.h"
#include "common/strings.h"
#include "coordinator/http/http_server.h"
#include "worker/backend/backend_factory.h"
#include "worker/model/model_config.h"

namespace ponder::apps {

const char* const kServeConfigKeys = R"(  model DIR              Hugging Face model directory (default: the bundled models/tiny-reasoner)
  served_model_name S    name in the API (default: the directory's base name)
  dtype D                bf16 (default) or float32
  backend B              cpu (default) or cuda (one GPU per rank; a build with the CUDA backend)
  tp N, pp N             tensor / pipeline parallel degree of each replica (default 1)
  ep N                   expert parallelism (MoE models): routed experts over N columns of tp
                         ranks per stage, tokens to them by all-to-all (default 1); a replica
                         has tp × pp × ep ranks
  stage_layers L         layers per pipeline stage, e.g. [3, 1] or "3,1" (default: even)
  replicas N             model replicas (default 1; 1 replica of tp = pp = 1 runs in-process)
  threads N              CPU threads per rank (default: the cores divided among the ranks)
  kv_cache_bytes B       KV cache per replica: bytes, or with KiB/MiB/GiB (default 256MiB)
  kv_cache_dtype D       f32 (default) or bf16: the KV cache's element type (bf16 holds twice the
                         tokens in the same bytes; logits move by ~1e-5 NMSE)
  quantize Q             none (default) or int8: matmul weights quantized at load to int8 with
                         per-row scales (half of bf16's bytes; logits move by ~1e-3 NMSE); CPU
  host H, port P         listener (default 127.0.0.1:8000; port 0 picks a free one)
  api_key K              bearer token clients must send; required when host is not loopback.
                         As a flag it shows in ps: prefer api_key_file
  api_key_file F         a file holding the key on its first line, mode 0600 (not group- or
                         world-readable); not together with api_key
  api_keys_file F        API keys of many users, hashed, each with optional requests_per_minute
                         and max_concurrent limits (429 past them); made by `ponder api-keys
                         add`; SIGHUP reloads it. Not together with api_key / api_key_file
  audit_log F            append one JSON line per answered request (time, key id, request id,
                         route, status, tokens, duration) to F (created 0600)
  audit_log_text B       true: audit lines also hold the messages or prompt and the output
  tool_call_parser P     how the model writes tool calls: auto (default: from the chat
                         template), none, hermes (Qwen), llama3_json, deepseek_v3
  generation_config G    auto (default): requests that leave temperature, top_p, top_k, min_p,
                         repetition_penalty or max_tokens unset get generation_config.json's
                         values (max_new_tokens for chat), as vLLM; none: ponder's own
  tls_cert F, tls_key F  serve HTTPS: PEM certificate chain and its PEM private key (mode
                         0600); required off loopback unless allow_plaintext
  tls_client_ca F        mTLS: PEM bundle of the CAs whose client certificates are accepted;
                         clients without one fail the handshake
  allow_plaintext B      true: listen off loopback without TLS (default false)
  max_n N                largest n per request (default 16)
  max_queued N           requests in flight before 503 + Retry-After (default 1024)
  max_body_bytes B       largest request body (default 8MiB)
  token_budget N         tokens per engine step (default 512)
  max_running N          sequences running at once per replica (default 256)
  heartbeat_ms N         replica heartbeat interval (default 250)
  heartbeat_timeout_ms N replica declared dead after this much silence (default 3000)
  collective_timeout_ms N  deadline of every collective between a replica's ranks: a dead or
                         stuck peer becomes a named error after this long (default 60000)
  startup_timeout_s N    time for every replica to register (default 300)
  drain_timeout_s N      on SIGINT/SIGTERM, time in-flight requests get (default 30)
  max_replica_restarts N times `ponder serve` restarts each replica that exits or is lost
                         before it leaves it down (default 5)
  replica_restart_backoff_ms N  wait before a replica's first restart, doubling for each next
                         one up to 30000 (default 1000)
  replica_curve B        CURVE on the links to the replicas: encrypted, and only replicas with an
                         allowed key can register (default true; with no curve_keys_dir, keys
                         are made for each run in a private directory)
  curve_keys_dir DIR     the keys of `ponder keys generate --dir DIR --replicas N` instead:
                         server.key, replica-I.key (mode 0600), allowed/*.pub
)";

namespace {

Expected<int64_t> parse_int(const std::string& key, const std::string& value, int64_t lo, int64_t hi,
                            const std::string& where) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    return error(StatusCode::kInvalidArgument, "%s'%s' must be an integer in [%lld, %lld], got '%s'",
                 where.c_str(), key.c_str(), (long long)lo, (long long)hi, value.c_str());
  return v;
}

Expected<bool> parse_bool(const std::string& key, const std::string& value, const std::string& where) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  return error(StatusCode::kInvalidArgument, "%s'%s' must be true or false, got '%s'", where.c_str(), key.c_str(),
               value.c_str());
}

// "268435456", "256MiB", "1GiB", "64KiB", "2GB".
Expected<int64_t> parse_bytes(const std::string& key, const std::string& value, const std::string& where) {
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"KiB", int64_t{1} << 10}, {"MiB", int64_t{1} << 20}, {"GiB", int64_t{1} << 30},
      {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}};
  std::string digits(trim(value));
  int64_t unit = 1;
  for (const auto& [suffix, scale] : kUnits) {
    const std::string s = suffix;
    if (digits.size() > s.size() && digits.compare(digits.size() - s.size(), s.size(), s) == 0) {
      digits = std::string(trim(digits.substr(0, digits.size() - s.size())));
      unit = scale;
      break;
    }
  }
  auto n = parse_int(key, digits, 1, (int64_t{1} << 50) / unit, where);
  if (!n)
    return error(StatusCode::kInvalidArgument,
                 "%s'%s' must be a size in bytes (e.g. 268435456 or 256MiB), got '%s'", where.c_str(),
                 key.c_str(), value.c_str());
  return *n * unit;
}

}  // namespace

Status apply_serve_setting(ServeConfig& c, const std::string& key, const std::string& value,
                           const std::string& where) {
  auto integer = [&](auto* field, int64_t lo, int64_t hi) -> Status {
    PONDER_ASSIGN_OR_RETURN(int64_t v, parse_int(key, value, lo, hi, where));
    *field = static_cast<std::remove_pointer_t<decltype(field)>>(v);
    return {};
  };
  if (key == "model") {
    c.model = value;
  } else if (key == "served_model_name") {
    c.served_model_name = value;
  } else if (key == "dtype") {
    if (value != "bf16" && value != "bfloat16" && value != "float32" && value != "auto")
      return error(StatusCode::kInvalidArgument, "%s'dtype' must be bf16 or float32, got '%s'",
                   where.c_str(), value.c_str());
    c.dtype = value == "float32" ? "float32" : "bf16";
  } else if (key == "backend") {
    if (!worker::parse_backend_kind(value))
      return error(StatusCode::kInvalidArgument, "%s'backend' must be cpu or cuda, got '%s'",
                   where.c_str(), value.c_str());
    c.backend = value;
  } else if (key == "tp") {
    return integer(&c.tp, 1, 1024);
  } else if (key == "pp") {
    return integer(&c.pp, 1, 1024);
  } else if (key == "ep") {
    return integer(&c.ep, 1, 1024);
  } else if (key == "stage_layers") {
    c.stage_layers.clear();
    if (trim(value).empty()) return {};  // an empty list: the even split
    for (const std::string& part : split(value, ',')) {
      PONDER_ASSIGN_OR_RETURN(int64_t n, parse_int(key, std::string(trim(part)), 1, 1 << 20, where));
      c.stage_layers.push_back(n);
    }
  } else if (key == "replicas") {
    return integer(&c.replicas, 1, 1024);
  } else if (key == "threads") {
    return integer(&c.threads, 0, 4096);
  } else if (key == "kv_cache_dtype") {
    if (!worker::parse_kv_cache_dtype(value, "kv_cache_dtype"))
      return error(StatusCode::kInvalidArgument, "%s'kv_cache_dtype' must be f32 or bf16, got '%s'",
                   where.c_str(), value.c_str());
    c.kv_cache_dtype = value;
  } else if (key == "quantize") {
    if (!worker::parse_weight_quant(value))
      return error(StatusCode::kInvalidArgument, "%s'quantize' must be none or int8, got '%s'",
                   where.c_str(), value.c_str());
    c.quantize = value;
  } else if (key == "kv_cache_bytes") {
    PONDER_ASSIGN_OR_RETURN(c.kv_cache_bytes, parse_bytes(key, value, where));
  } else if (key == "host") {
    c.host = value;
  } else if (key == "port") {
    return integer(&c.port, 0, 65535);
  } else if (key == "api_key") {
    c.api_key = value;
  } else if (key == "api_key_file") {
    c.api_key_file = value;
  } else if (key == "api_keys_file") {
    c.api_keys_file = value;
  } else if (key == "audit_log") {
    c.audit_log = value;
  } else if (key == "audit_log_text") {
    PONDER_ASSIGN_OR_RETURN(c.audit_log_text, parse_bool(key, value, where));
  } else if (key == "tool_call_parser") {
    if (value != "auto") {
      auto format = text::parse_tool_call_format(value);
      if (!format)
        return error(StatusCode::kInvalidArgument, "%s'tool_call_parser': %s", where.c_str(),
                     format.error().message().c_str());
    }
    c.tool_call_parser = value;
  } else if (key == "generation_config") {
    if (value != "auto" && value != "none")
      return error(StatusCode::kInvalidArgument, "%s'generation_config' must be auto or none, got '%s'",
                   where.c_str(), value.c_str());
    c.generation_config = value;
  } else if (key == "tls_cert") {
    c.tls_cert = value;
  } else if (key == "tls_key") {
    c.tls_key = value;
  } else if (key == "tls_client_ca") {
    c.tls_client_ca = value;
  } else if (key == "allow_plaintext") {
    PONDER_ASSIGN_OR_RETURN(c.allow_plaintext, parse_bool(key, value, where));
  } else if (key == "max_n") {
    return integer(&c.max_n, 1, 1024);
  } else if (key == "max_queued") {
    return integer(&c.max_queued, 1, int64_t{1} << 30);
  } else if (key == "max_body_bytes") {
    PONDER_ASSIGN_OR_RETURN(c.max_body_bytes, parse_bytes(key, value, where));
  } else if (key == "token_budget") {
    return integer(&c.token_budget, 1, 1 << 20);
  } else if (key == "max_running") {
    return integer(&c.max_running, 1, 1 << 20);
  } else if (key == "heartbeat_ms") {
    return integer(&c.heartbeat_ms, 1, 60'000);
  } else if (key == "heartbeat_timeout_ms") {
    return integer(&c.heartbeat_timeout_ms, 1, 3'600'000);
  } else if (key == "collective_timeout_ms") {
    return integer(&c.collective_timeout_ms, 1, 3'600'000);
  } else if (key == "startup_timeout_s") {
    return integer(&c.startup_timeout_s, 1, 86'400);
  } else if (key == "drain_timeout_s") {
    return integer(&c.drain_timeout_s, 0, 86'400);
  } else if (key == "max_replica_restarts") {
    return integer(&c.max_replica_restarts, 0, 1'000'000);
  } else if (key == "replica_restart_backoff_ms") {
    return integer(&c.replica_restart_backoff_ms, 1, 30'000);
  } else if (key == "replica_curve") {
    PONDER_ASSIGN_OR_RETURN(c.replica_curve, parse_bool(key, value, where));
  } else if (key == "curve_keys_dir") {
    c.curve_keys_dir = value;
  } else {
    return error(StatusCode::kInvalidArgument, "%sunknown key '%s' (the keys are listed by ponder serve --help)",
                 where.c_str(), key.c_str());
  }
  return {};
}

Expected<YAML::Node> load_yaml_file(const std::string& path, const char* what) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return error(StatusCode::kNotFound, "cannot read the %s %s", what, path.c_str());
  } catch (const YAML::Exception& e) {
    return error(StatusCode::kInvalidArgument, "%s: not valid YAML: %s", path.c_str(), e.what());
  }
}

Status load_serve_config(ServeConfig& config, const std::string& path) {
  PONDER_ASSIGN_OR_RETURN(YAML::Node root, load_yaml_file(path, "config"));
  return apply_serve_yaml(config, root, path + ": ");
}

Status apply_serve_yaml(ServeConfig& config, const YAML::Node& root, const std::string& where,
                        const std::set<std::string>& skip) {
  if (root.IsNull()) return {};
  if (!root.IsMap())
    return error(StatusCode::kInvalidArgument, "%sexpected a mapping of settings (key: value)", where.c_str());
  for (const auto& item : root) {
    const std::string key = item.first.as<std::string>();
    if (skip.count(key)) continue;
    const YAML::Node& v = item.second;
    std::string value;
    if (v.IsScalar()) {
      value = v.as<std::string>();
    } else if (v.IsSequence() && key == "stage_layers") {
      std::vector<std::string> layers;
      for (const auto& e : v) {
        if (!e.IsScalar())
          return error(StatusCode::kInvalidArgument, "%s'stage_layers' must be a list of integers", where.c_str());
        layers.push_back(e.as<std::string>());
      }
      value = join(layers, ",");
    } else {
      return error(StatusCode::kInvalidArgument, "%s'%s' must be a single value", where.c_str(), key.c_str());
    }
    PONDER_RETURN_IF_ERROR(apply_serve_setting(config, key, value, where));
  }
  return {};
}

namespace {
// Every key with its value, in the order of kServeConfigKeys: the one list behind the YAML copy
// and the JSON summary.
template <class F>
void visit_serve_settings(const ServeConfig& c, F&& kv) {
  kv("model", c.model);
  kv("served_model_name", c.served_model_name);
  kv("dtype", c.dtype);
  kv("backend", c.backend);
  kv("tp", c.tp);
  kv("pp", c.pp);
  kv("ep", c.ep);
  kv("stage_layers", c.stage_layers);
  kv("replicas", c.replicas);
  kv("threads", c.threads);
  kv("kv_cache_bytes", c.kv_cache_bytes);
  kv("kv_cache_dtype", c.kv_cache_dtype);
  kv("quantize", c.quantize);
  kv("host", c.host);
  kv("port", c.port);
  kv("api_key", c.api_key);
  kv("api_key_file", c.api_key_file);
  kv("api_keys_file", c.api_keys_file);
  kv("audit_log", c.audit_log);
  kv("audit_log_text", c.audit_log_text);
  kv("tool_call_parser", c.tool_call_parser);
  kv("generation_config", c.generation_config);
  kv("tls_cert", c.tls_cert);
  kv("tls_key", c.tls_key);
  kv("tls_client_ca", c.tls_client_ca);
  kv("allow_plaintext", c.allow_plaintext);
  kv("max_n", c.max_n);
  kv("max_queued", c.max_queued);
  kv("max_body_bytes", c.max_body_bytes);
  kv("token_budget", c.token_budget);
  kv("max_running", c.max_running);
  kv("heartbeat_ms", c.heartbeat_ms);
  kv("heartbeat_timeout_ms", c.heartbeat_timeout_ms);
  kv("collective_timeout_ms", c.collective_timeout_ms);
  kv("startup_timeout_s", c.startup_timeout_s);
  kv("drain_timeout_s", c.drain_timeout_s);
  kv("replica_curve", c.replica_curve);
  kv("curve_keys_dir", c.curve_keys_dir);
  // max_replica_restarts and replica_restart_backoff_ms are left out: only `ponder serve`
  // restarts replicas, and the deployments' resolved copies (golden files) stay as they were.
}
}  // namespace

void emit_serve_config(const ServeConfig& c, YAML::Emitter& out) {
  out << YAML::BeginMap;
  visit_serve_settings(c, [&]<class T>(const char* key, const T& value) {
    out << YAML::Key << key << YAML::Value;
    if constexpr (std::is_same_v<T, std::vector<int64_t>>)
      out << YAML::Flow << value;
    else
      out << value;
  });
  out << YAML::EndMap;
}

nlohmann::ordered_json serve_config_json(const ServeConfig& c) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  visit_serve_settings(c, [&](const char* key, const auto& value) {
    if (std::string_view(key) != "api_key" && std::string_view(key) != "api_key_file") j[key] = value;
  });
  j["api_key_set"] = !c.api_key.empty() || !c.api_key_file.empty() || !c.api_keys_file.empty();
  return j;
}

Expected<std::string> read_api_key_file(const std::string& path) {
  PONDER_ASSIGN_OR_RETURN(const std::string text, read_private_file(path, "api_key_file"));
  const std::string key(trim(text.substr(0, text.find('\n'))));
  if (key.empty())
    return error(StatusCode::kInvalidArgument, "api_key_file %s is empty (the key goes on its first line)",
                 path.c_str());
  return key;
}

Expected<std::string> serve_api_key(const ServeConfig& c) {
  if (c.api_key_file.empty()) return c.api_key;
  return read_api_key_file(c.api_key_file);
}

Status validate_serve_config(ServeConfig& c, ServeChecks checks) {
  if (c.model.empty()) {
    // The bundled default (issue #8): the source tree's models/tiny-reasoner.
    c.model = PONDER_BUNDLED_MODEL_DIR;
    if (!std::filesystem::exists(std::filesystem::path(c.model) / "config.json"))
      return error(StatusCode::kInvalidArgument,
                   "no model: give --model DIR or 'model' in the config (the bundled default %s "
                   "is not there)",
                   c.model.c_str());
  }
  if (checks.model_on_disk && !std::filesystem::exists(std::filesystem::path(c.model) / "config.json"))
    return error(StatusCode::kNotFound, "model '%s' has no config.json", c.model.c_str());
  if (c.served_model_name.empty())
    c.served_model_name = std::filesystem::path(c.model).lexically_normal().filename().string();
  if (c.served_model_name.empty())
    c.served_model_name = std::filesystem::path(c.model).lexically_normal().parent_path().filename().string();
  if (!c.stage_layers.empty() && static_cast<int>(c.stage_layers.size()) != c.pp)
    return error(StatusCode::kInvalidArgument, "'stage_layers' lists %zu stages but 'pp' is %d",
                 c.stage_layers.size(), c.pp);
  if (!c.api_key.empty() && !c.api_key_file.empty())
    return error(StatusCode::kInvalidArgument,
                 "'api_key' and 'api_key_file' are both set: give one (api_key_file keeps the key out of ps)");
  if (!c.api_key_file.empty()) PONDER_RETURN_IF_ERROR(status_of(read_api_key_file(c.api_key_file)));
  // The listener's rules, as the server applies them (`ponder slurm` makes a key per job).
  if (!c.api_keys_file.empty() && (!c.api_key.empty() || !c.api_key_file.empty()))
    return error(StatusCode::kInvalidArgument,
                 "'api_keys_file' and 'api_key'/'api_key_file' are both set: give one (ponder api-keys "
                 "add puts a key in the file)");
  const bool has_key = !c.api_key.empty() || !c.api_key_file.empty() || !checks.api_key_off_loopback;
  PONDER_RETURN_IF_ERROR(coordinator::http::check_listener_options(
      {.host = c.host,
       .api_key = has_key ? "set" : "",
       .api_keys_file = c.api_keys_file,
       .tls_cert = c.tls_cert,
       .tls_key = c.tls_key,
       .tls_client_ca = c.tls_client_ca,
       .allow_plaintext = c.allow_plaintext},
      /*load_files=*/checks.model_on_disk));
  if (c.heartbeat_timeout_ms <= c.heartbeat_ms)
    return error(StatusCode::kInvalidArgument, "'heartbeat_timeout_ms' (%lld) must exceed 'heartbeat_ms' (%lld)",
                 (long long)c.heartbeat_timeout_ms, (long long)c.heartbeat_ms);
  PONDER_RETURN_IF_ERROR(check_replica_link_settings(c, /*load_files=*/checks.model_on_disk));
  return {};
}

Expected<coordinator::ModelText> load_served_model_text(const ServeConfig& c) {
  PONDER_ASSIGN_OR_RETURN(coordinator::ModelText text, coordinator::ModelText::load(c.model));
  if (c.tool_call_parser != "auto") {
    PONDER_ASSIGN_OR_RETURN(text.tool_call_format, text::parse_tool_call_format(c.tool_call_parser));
  }
  const std::string_view name = text::tool_call_format_name(text.tool_call_format);
  PONDER_LOG(kInfo, "http", "tool calls: %.*s%s", static_cast<int>(name.size()), name.data(),
             c.tool_call_parser == "auto" ? " (from the chat template)" : "");
  return text;
}

}  // namespace ponder::apps
