// GET /health?generate=true (health_probe.h).
#include "coordinator/http/health_probe.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/strings.h"
#include "coordinator/http/routes.h"
#include "coordinator/http/session.h"

namespace ponder::coordinator::http {

namespace {

using Json = nlohmann::ordered_json;

// One probe: answered once, by its output or by its timer, whichever comes first.
struct Probe : std::enable_shared_from_this<Probe> {
  Probe(std::shared_ptr<Session> s, ServerContext& c)
      : session(std::move(s)), ctx(c), timer(session->executor()) {}

  void answer(bool ok, Json detail) {
    if (answered) return;
    answered = true;
    timer.cancel();
    bool healthy = false;
    Json body = health_body(ctx, &healthy);
    detail["latency_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    body["generate"] = std::move(detail);
    if (!ok) {
      body["status"] = "unavailable";
      body["reason"] = body["generate"]["error"];
    }
    PlainResponse r = json_response(ok ? 200 : 503, body);
    if (!ok) r.headers.emplace_back("Retry-After", std::to_string(ctx.options.retry_after_s));
    session->respond(std::move(r));
  }

  void on_output(const worker::EngineOutput& out) {
    tokens += static_cast<int64_t>(out.tokens.size());
    if (!out.finished) return;
    finished = true;
    const bool ok = out.finish_reason != "error" && out.finish_reason != "cancelled" && tokens >= 1;
    Json detail = {{"ok", ok}, {"tokens", tokens}, {"finish_reason", out.finish_reason}};
    if (!ok)
      detail["error"] = out.error.empty() ? "the generation ended " + out.finish_reason : out.error;
    answer(ok, std::move(detail));
  }

  std::shared_ptr<Session> session;
  ServerContext& ctx;
  boost::asio::steady_timer timer;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t request_id = -1;
  int64_t tokens = 0;
  bool answered = false;
  bool finished = false;
};

}  // namespace

bool wants_generation_probe(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  for (const std::string& param : split(std::string(target.substr(q + 1)), '&'))
    if (param == "generate=true" || param == "generate=1") return true;
  return false;
}

void start_health_probe(std::shared_ptr<Session> session, ServerContext& ctx) {
  bool healthy = false;
  (void)health_body(ctx, &healthy);
  if (!healthy) {
    session->respond(health_response(ctx));  // draining or no replica: nothing to generate on
    return;
  }
  auto probe = std::make_shared<Probe>(std::move(session), ctx);
  worker::EngineRequest request;
  request.prompt = ctx.model.tokenizer.encode("ping");
  if (request.prompt.empty()) request.prompt = {0};
  request.max_tokens = 1;
  request.ignore_eos = true;
  request.sampling.temperature = 0.0f;
  std::weak_ptr<Probe> weak = probe;
  auto on_output = [gate = ctx.gate, weak](const worker::EngineOutput& out) {
    std::lock_guard<std::mutex> lock(gate->mu);
    if (!gate->open) return;
    std::shared_ptr<Probe> p = weak.lock();
    if (!p) return;
    auto executor = p->session->executor();
    boost::asio::post(executor, [p = std::move(p), out] { p->on_output(out); });
  };
  Expected<int64_t> id = ctx.dispatcher.submit(std::move(request), std::move(on_output));
  if (!id) {
    probe->answer(false, {{"ok", false}, {"error", "the probe was not admitted: " + id.error().message()}});
    return;
  }
  probe->request_id = *id;
  probe->timer.expires_after(kHealthProbeTimeout);
  probe->timer.async_wait([probe](boost::system::error_code ec) {
    if (ec || probe->answered) return;
    probe->ctx.dispatcher.cancel(probe->request_id);
    probe->answer(false, {{"ok", false},
                          {"tokens", probe->tokens},
                          {"error", strformat("a one-token generation did not finish within %lld s",
                                              (long long)kHealthProbeTimeout.count())}});
  });
}

}  // namespace ponder::coordinator::http
