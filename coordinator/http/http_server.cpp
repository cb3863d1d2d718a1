// HttpServer: options, listening socket, I/O threads, accept loop (with back-off when accepts
// fail) and graceful drain.
#include "coordinator/http/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/string.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/check.h"
#include "common/log.h"
#include "common/private_file.h"
#include "coordinator/http/generation_call.h"
#include "coordinator/http/server_context.h"
#include "coordinator/http/session.h"

namespace ponder::coordinator::http {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {
// A failed accept (out of file descriptors, of memory) leaves the connection queued: the next
// try waits, from kAcceptRetryFirst doubling up to kAcceptRetryMax, so that the loop does not
// spin. Failures are logged at most once per kAcceptLogInterval, with the count since the last
// report; a run of failures that was reported gets one line when accepts work again.
constexpr std::chrono::milliseconds kAcceptRetryFirst{10};
constexpr std::chrono::milliseconds kAcceptRetryMax{1000};
constexpr std::chrono::seconds kAcceptLogInterval{10};
}  // namespace

struct HttpServer::Impl {
  using Clock = std::chrono::steady_clock;

  Impl(ServerOptions options, const ModelText& model, Dispatcher& dispatcher)
      : ctx(std::move(options), model, dispatcher),
        work(net::make_work_guard(ioc)),
        acceptor(net::make_strand(ioc)),
        accept_retry(acceptor.get_executor()) {}

  void accept();
  void on_accept_failed(const boost::system::error_code& ec);
  void wait_for_calls(std::chrono::steady_clock::time_point deadline);

  // Declared first so that it is destroyed last: sessions destroyed with the I/O context's
  // pending handlers unregister themselves from it.
  ServerContext ctx;
  std::unique_ptr<net::ssl::context> tls;  // HTTPS: every connection's TLS settings
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  tcp::acceptor acceptor;
  // On the acceptor's strand: the wait after a failed accept, the failures since the last
  // successful accept and since the last report, and when that report was.
  net::steady_timer accept_retry;
  std::chrono::milliseconds accept_delay{0};
  int64_t accept_failures = 0;
  int64_t accept_failures_unreported = 0;
  std::optional<Clock::time_point> accept_reported_at;
  bool accept_failures_reported = false;  // the current run of failures was logged
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;
};

namespace {

// The model's config.json, for the context length and vocabulary size.
nlohmann::json read_model_config(const std::string& model_dir) {
  std::ifstream in(std::filesystem::path(model_dir) / "config.json");
  if (!in) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

int64_t config_int(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  return it != config.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Expected<net::ip::address> listen_address(const std::string& host) {
  if (boost::beast::iequals(host, "localhost")) return net::ip::make_address("127.0.0.1");
  boost::system::error_code ec;
  net::ip::address a = net::ip::make_address(host, ec);
  if (ec)
    return error(StatusCode::kInvalidArgument, "host '%s' is not an IP address (%s)", host.c_str(),
                 ec.message().c_str());
  return a;
}

// The TLS settings of an HTTPS listener: TLS 1.2 or newer, the certificate chain and its key,
// and with a client CA, client certificates required (mTLS). Errors name the file and say what
// OpenSSL found.
Expected<std::unique_ptr<net::ssl::context>> make_tls_context(const ServerOptions& o) {
  auto tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                   net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use |
                   SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  tls->use_certificate_chain_file(o.tls_cert, ec);
  if (ec)
    return error(StatusCode::kInvalidArgument, "tls_cert %s: %s", o.tls_cert.c_str(),
                 ec.message().c_str());
  PONDER_ASSIGN_OR_RETURN(const std::string key, read_private_file(o.tls_key, "tls_key"));
  tls->use_private_key(net::buffer(key), net::ssl::context::pem, ec);
  if ((ec && ERR_GET_REASON(ec.value()) == X509_R_KEY_VALUES_MISMATCH) ||
      (!ec && SSL_CTX_check_private_key(tls->native_handle()) != 1))
    return error(StatusCode::kInvalidArgument, "tls_key %s is not the key of tls_cert %s",
                 o.tls_key.c_str(), o.tls_cert.c_str());
  if (ec)
    return error(StatusCode::kInvalidArgument, "tls_key %s: %s", o.tls_key.c_str(),
                 ec.message().c_str());
  if (!o.tls_client_ca.empty()) {
    tls->load_verify_file(o.tls_client_ca, ec);
    if (ec)
      return error(StatusCode::kInvalidArgument, "tls_client_ca %s: %s", o.tls_client_ca.c_str(),
                   ec.message().c_str());
    tls->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
  }
  return tls;
}

std::string base_name(const std::string& dir) {
  std::filesystem::path p(dir);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/x/" → "x"
  return p.filename().string();
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (boost::beast::iequals(boost::beast::string_view(host.data(), host.size()), "localhost"))
    return true;
  boost::system::error_code ec;
  const net::ip::address a = net::ip::make_address(std::string(host), ec);
  return !ec && a.is_loopback();  // 127.0.0.0/8, ::1
}

Status check_listener_options(const ServerOptions& options, bool load_files) {
  if (!options.api_key.empty() && !options.api_keys_file.empty())
    return error(StatusCode::kInvalidArgument,
                 "api_key and api_keys_file are both set: give one (add the key to the file with "
                 "ponder api-keys add)");
  if (options.tls_cert.empty() != options.tls_key.empty())
    return error(StatusCode::kInvalidArgument, "tls_cert and tls_key go together: set both");
  if (!options.tls_client_ca.empty() && options.tls_cert.empty())
    return error(StatusCode::kInvalidArgument,
                 "tls_client_ca (client certificates) needs TLS: set tls_cert and tls_key");
  if (!is_loopback_host(options.host)) {
    if (options.api_key.empty() && options.api_keys_file.empty() && options.tls_client_ca.empty())
      return error(StatusCode::kInvalidArgument,
                   "host %s is not a loopback address: set an API key, api_key_file or "
                   "api_keys_file (clients then send 'Authorization: Bearer <key>'; api_key shows "
                   "in ps), or client certificates (tls_client_ca), or listen on 127.0.0.1",
                   options.host.c_str());
    if (options.tls_cert.empty() && !options.allow_plaintext)
      return error(StatusCode::kInvalidArgument,
                   "host %s is not a loopback address: serve HTTPS (tls_cert and tls_key) or set "
                   "allow_plaintext to send keys and text unencrypted",
                   options.host.c_str());
  }
  if (load_files && !options.tls_cert.empty())
    PONDER_RETURN_IF_ERROR(status_of(make_tls_context(options)));
  if (load_files && !options.api_keys_file.empty())
    PONDER_RETURN_IF_ERROR(status_of(KeyTable::load(options.api_keys_file)));
  return {};
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_) stop(std::chrono::milliseconds(0));
}

Expected<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options,
                                                        const ModelText& model,
                                                        Dispatcher& dispatcher) {
  PONDER_ASSIGN_OR_RETURN(net::ip::address address, listen_address(options.host));
  PONDER_RETURN_IF_ERROR(check_listener_options(options, /*load_files=*/false));
  const bool tls = !options.tls_cert.empty();
  if (options.threads < 1) return error(StatusCode::kInvalidArgument, "threads must be >= 1");
  if (options.max_n < 1) return error(StatusCode::kInvalidArgument, "max_n must be >= 1");
  if (options.max_body_bytes < 1 || options.max_header_bytes < 1)
    return error(StatusCode::kInvalidArgument, "max_body_bytes and max_header_bytes must be >= 1");
  if (options.kv_cache_tokens < 0)
    return error(StatusCode::kInvalidArgument, "kv_cache_tokens must be >= 0 (0: not known)");
  const nlohmann::json config = read_model_config(model.model_dir);
  if (options.context_length <= 0)
    options.context_length = config_int(config, "max_position_embeddings");
  if (options.context_length <= 0)
    return error(StatusCode::kInvalidArgument,
                 "context_length is not set and %s/config.json has no max_position_embeddings",
                 model.model_dir.c_str());
  if (options.served_model_name.empty()) options.served_model_name = base_name(model.model_dir);
  if (options.served_model_name.empty())
    return error(StatusCode::kInvalidArgument, "served_model_name is empty");
  int64_t vocab = config_int(config, "vocab_size");
  if (vocab <= 0) vocab = model.tokenizer.vocab_size();

  std::unique_ptr<net::ssl::context> tls_context;
  if (tls) {
    PONDER_ASSIGN_OR_RETURN(tls_context, make_tls_context(options));
  }
  std::shared_ptr<const KeyTable> keys;
  if (!options.api_keys_file.empty()) {
    PONDER_ASSIGN_OR_RETURN(KeyTable table, KeyTable::load(options.api_keys_file));
    keys = std::make_shared<const KeyTable>(std::move(table));
  } else {
    keys = std::make_shared<const KeyTable>(KeyTable::single(options.api_key));
  }
  std::unique_ptr<AuditLog> audit;
  if (!options.audit_log.empty()) {
    PONDER_ASSIGN_OR_RETURN(audit, AuditLog::open(options.audit_log));
  }

  auto impl = std::make_unique<Impl>(std::move(options), model, dispatcher);
  impl->tls = std::move(tls_context);
  ServerContext& ctx = impl->ctx;
  ctx.access.replace(std::move(keys));
  ctx.audit = std::move(audit);
  ctx.created = static_cast<int64_t>(std::time(nullptr));
  const coordinator::GenerationDefaults& gen = model.generation_defaults;
  ctx.request_limits = {.max_n = ctx.options.max_n,
                        .vocab_size = vocab,
                        .max_prompts = ctx.options.max_prompts,
                        .sampling_defaults = ctx.options.generation_config
                                                 ? gen.apply(worker::SamplingParams{})
                                                 : worker::SamplingParams{}};
  int64_t default_max_tokens = ctx.options.default_max_tokens;
  if (default_max_tokens == 0 && ctx.options.generation_config && gen.max_new_tokens)
    default_max_tokens = *gen.max_new_tokens;
  ctx.generation_limits = {.context_length = ctx.options.context_length,
                           .default_max_tokens = default_max_tokens,
                           .kv_cache_tokens = ctx.options.kv_cache_tokens,
                           .has_thinking_delimiter = !model.think_end.empty()};

  boost::system::error_code ec;
  const tcp::endpoint endpoint(address, ctx.options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return error(StatusCode::kUnavailable, "cannot listen on %s:%u: %s", ctx.options.host.c_str(),
                 (unsigned)ctx.options.port, ec.message().c_str());
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  for (int i = 0; i < ctx.options.threads; ++i)
    impl->threads.emplace_back([raw = impl.get()] { raw->ioc.run(); });
  PONDER_LOG(kInfo, "http", "serving %s on %s://%s:%u (%d I/O threads, context %lld tokens%s%s)",
             ctx.options.served_model_name.c_str(), tls ? "https" : "http",
             ctx.options.host.c_str(), (unsigned)impl->port, ctx.options.threads,
             (long long)ctx.options.context_length,
             ctx.access.enabled() ? ", API key required" : "",
             ctx.options.tls_client_ca.empty() ? "" : ", client certificates required");
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](boost::system::error_code ec,
                                                      tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      on_accept_failed(ec);
      return;
    }
    if (accept_failures > 0) {
      if (accept_failures_reported) {
        PONDER_LOG(kInfo, "http", "accepting again after %lld failed accepts",
                   (long long)accept_failures);
        accept_failures_unreported = 0;
        accept_failures_reported = false;
      }
      accept_failures = 0;
      accept_delay = std::chrono::milliseconds(0);
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // SSE deltas go out as they come
    HttpStream stream = tls ? HttpStream(std::move(socket), *tls) : HttpStream(std::move(socket));
    std::make_shared<Session>(std::move(stream), ctx)->start();
    accept();
  });
}

void HttpServer::Impl::on_accept_failed(const boost::system::error_code& ec) {
  ++accept_failures;
  ++accept_failures_unreported;
  accept_delay =
      accept_delay.count() == 0 ? kAcceptRetryFirst : std::min(accept_delay * 2, kAcceptRetryMax);
  const Clock::time_point now = Clock::now();
  if (!accept_reported_at || now - *accept_reported_at >= kAcceptLogInterval) {
    PONDER_LOG(kWarn, "http",
               "accept failed: %s (%lld failed accepts since the last report; next try in %lld "
               "ms; open connections are still served)",
               ec.message().c_str(), (long long)accept_failures_unreported,
               (long long)accept_delay.count());
    accept_failures_unreported = 0;
    accept_reported_at = now;
    accept_failures_reported = true;
  }
  accept_retry.expires_after(accept_delay);
  accept_retry.async_wait([this](boost::system::error_code wait_ec) {
    if (wait_ec == net::error::operation_aborted || !acceptor.is_open()) return;
    accept();
  });
}

void HttpServer::Impl::wait_for_calls(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(ctx.mu);
  ctx.calls_changed.wait_until(lock, deadline, [&] { return ctx.calls.empty(); });
}

uint16_t HttpServer::port() const { return impl_->port; }

Status HttpServer::reload_api_keys() {
  const std::string& path = impl_->ctx.options.api_keys_file;
  if (path.empty())
    return error(StatusCode::kFailedPrecondition, "no api_keys_file to reload (the server has %s)",
                 impl_->ctx.options.api_key.empty() ? "no keys" : "one api_key");
  PONDER_ASSIGN_OR_RETURN(KeyTable table, KeyTable::load(path));
  const size_t n = table.entries().size();
  impl_->ctx.access.replace(std::make_shared<const KeyTable>(std::move(table)));
  PONDER_LOG(kInfo, "http", "reloaded %s: %zu API keys", path.c_str(), n);
  return {};
}

const std::string& HttpServer::served_model_name() const {
  return impl_->ctx.options.served_model_name;
}

void HttpServer::stop(std::chrono::milliseconds drain) {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  using Clock = std::chrono::steady_clock;
  s.ctx.draining = true;

  // 1. Requests in flight finish until the deadline; new requests, on new connections too, get
  // 503 + Retry-After meanwhile (and /health 503), so that a load balancer sees the drain. Then
  // the rest are cancelled in the replicas (they end "cancelled" and their clients get 503 / an
  // error event).
  s.wait_for_calls(Clock::now() + drain);
  std::vector<std::shared_ptr<GenerationCall>> left;
  {
    std::lock_guard<std::mutex> lock(s.ctx.mu);
    for (auto& [raw, call] : s.ctx.calls) left.push_back(call);
  }
  if (!left.empty()) {
    PONDER_LOG(kInfo, "http", "drain time over: cancelling %zu requests", left.size());
    for (auto& call : left) call->cancel();
    s.wait_for_calls(Clock::now() + std::chrono::seconds(5));
  }
  left.clear();

  // 2. No new connections.
  std::promise<void> closed;
  net::dispatch(s.acceptor.get_executor(), [&] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
    closed.set_value();
  });
  closed.get_future().wait();

  // 3. Let the last responses reach their clients, then close every connection.
  const auto flush_deadline = Clock::now() + std::chrono::seconds(2);
  while (s.ctx.responses_pending.load() > 0 && Clock::now() < flush_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(s.ctx.mu);
    for (auto& [raw, weak] : s.ctx.sessions)
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
  }
  for (auto& session : sessions) session->close();
  sessions.clear();

  // 4. Dispatcher callbacks stop touching the server; the I/O threads end.
  {
    std::lock_guard<std::mutex> lock(s.ctx.gate->mu);
    s.ctx.gate->open = false;
  }
  s.work.reset();
  const auto stop_deadline = Clock::now() + std::chrono::seconds(1);
  while (!s.ioc.stopped() && Clock::now() < stop_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  s.ioc.stop();
  for (std::thread& t : s.threads) t.join();
  s.threads.clear();
  // Calls that never finished (a dispatcher that did not answer the cancel) hold sessions:
  // release them while the I/O context still exists.
  std::unordered_map<const GenerationCall*, std::shared_ptr<GenerationCall>> calls;
  {
    std::lock_guard<std::mutex> lock(s.ctx.mu);
    calls.swap(s.ctx.calls);
  }
  calls.clear();
  PONDER_LOG(kInfo, "http", "stopped");
}

}  // namespace ponder::coordinator::http
