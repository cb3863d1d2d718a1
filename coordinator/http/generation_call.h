// GenerationCall: one /v1/chat/completions or /v1/completions request from body to response —
// parse, render and tokenize, submit one engine request per prompt to the dispatcher, turn the
// outputs into a whole response or an SSE stream on the client's session, cancel the request in
// the replicas when the client goes away or the server stops, and record latency metrics.
//
// Threading: start() and the output handling run on the session's strand (dispatcher callbacks
// post there through the server's CallbackGate); cancel() may be called from any thread. A call
// stays in ServerContext::calls until every sample it submitted has finished.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/api/response_assembler.h"
#include "coordinator/http/server_context.h"

namespace ponder::coordinator::http {

class Session;

class GenerationCall : public std::enable_shared_from_this<GenerationCall> {
 public:
  using Clock = std::chrono::steady_clock;

  static void start(std::shared_ptr<Session> session, ServerContext& ctx, api::Endpoint endpoint,
                    std::string body, Clock::time_point received);

  // Any thread: ends the request's unfinished samples in the replicas ("cancelled").
  void cancel();

  GenerationCall(std::shared_ptr<Session> session, ServerContext& ctx, Clock::time_point received);

 private:
  void run(api::Endpoint endpoint, const std::string& body);
  void submit(std::vector<worker::EngineRequest> requests);
  void on_output(int32_t prompt, const worker::EngineOutput& output);
  void on_client_gone();
  void note_audit();  // the audit line's fields: response id, tokens, texts when enabled
  void unregister();

  std::shared_ptr<Session> session_;
  boost::asio::any_io_executor executor_;  // the session's strand
  ServerContext& ctx_;
  Clock::time_point received_;
  std::optional<api::ResponseAssembler> assembler_;
  bool stream_ = false;
  std::string response_id_;
  nlohmann::ordered_json request_text_;  // audit_log_text: the messages or prompt
  int32_t n_ = 1;

  std::mutex ids_mu_;
  std::vector<int64_t> ids_;  // dispatcher request ids, one per prompt

  int64_t samples_left_ = 0;  // submitted samples not yet finished
  bool answered_ = false;     // the response is complete, failed or abandoned
  bool client_gone_ = false;
  bool first_token_seen_ = false;
  std::vector<std::optional<Clock::time_point>> first_token_at_;  // per choice
  std::vector<bool> cancelled_early_;  // per prompt: its choices all hit stop strings
  bool registered_ = false;
};

}  // namespace ponder::coordinator::http
