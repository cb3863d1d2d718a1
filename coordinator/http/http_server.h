// HttpServer: ponder's OpenAI-compatible HTTP API (Boost.Beast on Boost.Asio) —
// POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics —
// in front of a Dispatcher. All text work (chat template, tokenizer, detokenization, stop strings,
// reasoning split) happens here with the model's ModelText; replicas see token ids only.
// docs/api.md is the reference of the endpoints, fields and errors.
//
// Threading: start() returns a running server (its own I/O threads); port() may be called from
// any thread; stop() from one thread, once (the destructor calls it with no drain time).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "coordinator/model_text.h"
#include "coordinator/replicas/dispatcher.h"

namespace ponder::coordinator::http {

struct ServerOptions {
  // Listen address. Anything but a loopback address (127.0.0.0/8, ::1, "localhost") needs
  // authentication (api_key, or client certificates: tls_client_ca) and TLS (tls_cert) unless
  // allow_plaintext: start() refuses otherwise.
  std::string host = "127.0.0.1";
  uint16_t port = 8000;                          // 0: an ephemeral port (see port())
  int threads = 2;                               // I/O threads
  int64_t max_body_bytes = int64_t{8} << 20;     // larger bodies: 413
  int64_t max_header_bytes = int64_t{16} << 10;  // larger headers: 431
  int32_t max_n = 64;                            // largest n (must not exceed the engine's max_n)
  int32_t max_prompts = 64;                      // /v1/completions: prompts in one request
  // Clients must send "Authorization: Bearer <key>" to every route but /health and /metrics: the
  // one api_key, or one of the keys of api_keys_file (hashed, with per-key limits; see
  // access.h). Both empty: no authentication.
  std::string api_key;
  std::string api_keys_file;
  // JSON lines, one per answered request (time, key id, request id, route, status, tokens,
  // duration); with audit_log_text also the request's messages or prompt and the output text.
  std::string audit_log;
  bool audit_log_text = false;
  // HTTPS: a PEM certificate chain and its PEM private key (the key file must not be readable by
  // group or others). Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // mTLS: a PEM bundle of the CAs whose client certificates are accepted; a client without one
  // fails the handshake. Needs tls_cert.
  std::string tls_client_ca;
  bool allow_plaintext = false;  // a non-loopback listener without TLS
  std::string served_model_name;   // empty: the model directory's base name
  int64_t context_length = 0;      // 0: config.json's max_position_embeddings
  int64_t default_max_tokens = 0;  // chat without max_tokens: 0 = generation_config's
                                   // max_new_tokens (when used), else the rest of the context
  // Requests that leave temperature, top_p, top_k, min_p or repetition_penalty unset get the
  // model's generation_config.json values, as vLLM does; false: ponder's own (1, 1, 0, 0, 1).
  bool generation_config = true;
  // Tokens (prompt + completion) that one sequence can hold in a replica's KV cache: its KV
  // blocks × block size, the smallest replica's. Defaults are capped to fit and a larger
  // max_tokens is refused (400 naming it) instead of failing in the replica. 0: not known (only
  // the context bounds a request).
  int64_t kv_cache_tokens = 0;
  std::chrono::seconds idle_timeout{60};   // keep-alive connection with no request
  std::chrono::seconds write_timeout{60};  // a client that stops reading a response
  int retry_after_s = 1;                   // Retry-After of 503 answers
  // The deployment's settings (layout, dtype, backend, limits; no secrets), shown as
  // "ponder": {"server": …} in GET /v1/models so that a client can record what served it.
  nlohmann::ordered_json server_config;
};

// Whether `host` (a listen address as ServerOptions::host takes it) is loopback: 127.0.0.0/8,
// ::1 or "localhost" (any case).
bool is_loopback_host(std::string_view host);

// The checks start() makes of the listener's settings, without binding or reading the model:
// authentication and TLS off loopback, tls_cert / tls_key / tls_client_ca together and loadable
// (with `load_files`; false checks only the combination). kInvalidArgument names the problem.
Status check_listener_options(const ServerOptions& options, bool load_files = true);

class HttpServer {
 public:
  // Binds and starts serving. `model` and `dispatcher` must outlive the server. Errors:
  // kInvalidArgument for bad options (a non-loopback host without authentication or TLS, an
  // unparsable host, a certificate or key that does not load — named), kUnavailable when the
  // address cannot be bound.
  static Expected<std::unique_ptr<HttpServer>> start(ServerOptions options, const ModelText& model,
                                                     Dispatcher& dispatcher);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  const std::string& served_model_name() const;

  // Reads api_keys_file again and uses its keys from the next request on (a SIGHUP). On an
  // error the keys in use stay, and the error names the problem.
  Status reload_api_keys();

  // Graceful drain: lets requests in flight finish until `drain` has passed while every new
  // request (on open or new connections) gets 503 + Retry-After and /health 503, then cancels the
  // rest in the replicas, stops accepting, closes every connection and returns once the I/O
  // threads have stopped.
  void stop(std::chrono::milliseconds drain);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder::coordinator::http
