// One client connection: request reading, routing, whole and streamed responses, disconnects.
#include "coordinator/http/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

#include "common/log.h"
#include "coordinator/http/generation_call.h"
#include "coordinator/http/health_probe.h"

namespace ponder::coordinator::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {
// After an error that leaves request bytes unread, read and drop at most this much (for at most
// kLingerTime) before closing, so that closing does not reset the connection before the client
// has read the answer.
constexpr int64_t kLingerBytes = int64_t{64} << 20;
constexpr std::chrono::seconds kLingerTime{2};
// A TLS client gets this long for its handshake, and for its close_notify when a connection ends.
constexpr std::chrono::seconds kHandshakeTime{10};
constexpr std::chrono::seconds kTlsShutdownTime{1};

// Written after the client's FIN when a whole response is still pending (see on_client_fin).
constexpr std::string_view kProbe = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

Session::Session(HttpStream stream, ServerContext& ctx) : stream_(std::move(stream)), ctx_(ctx) {
  beast::error_code ec;
  const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
}

Session::~Session() {
  if (responding_) --ctx_.responses_pending;
  std::lock_guard<std::mutex> lock(ctx_.mu);
  ctx_.sessions.erase(this);
}

void Session::start() {
  {
    std::lock_guard<std::mutex> lock(ctx_.mu);
    ctx_.sessions[this] = weak_from_this();
  }
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (self->stream_.tls()) {
      self->do_handshake();
    } else {
      self->do_read();
    }
  });
}

void Session::do_handshake() {
  stream_.tcp().expires_after(kHandshakeTime);
  stream_.tls()->async_handshake(
      net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (self->closed_) return;
        if (ec) {
          // A port scan, a plain-HTTP client, a certificate the client (or, with mTLS, we)
          // refused: nothing to answer, the connection closes.
          self->ctx_.metrics.count_tls_handshake_failure();
          PONDER_LOG(kDebug, "http", "TLS handshake failed: %s", ec.message().c_str());
          self->do_close();
          return;
        }
        self->do_read();
      });
}

void Session::close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->do_close(); });
}

void Session::do_read() {
  if (closed_) return;
  parser_.emplace();
  parser_->body_limit(static_cast<uint64_t>(ctx_.options.max_body_bytes));
  parser_->header_limit(static_cast<uint32_t>(ctx_.options.max_header_bytes));
  stream_.tcp().expires_after(ctx_.options.idle_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           beast::bind_front_handler(&Session::on_header, shared_from_this()));
}

void Session::on_header(beast::error_code ec, size_t bytes) {
  if (ec || closed_) {
    on_read(ec, bytes);
    return;
  }
  // curl sends "Expect: 100-continue" with larger bodies and waits for this before sending them.
  const auto expect = parser_->get()[bhttp::field::expect];
  if (beast::iequals(expect, "100-continue") && !parser_->is_done()) {
    auto interim = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                        parser_->get().version());
    bhttp::async_write(stream_, *interim,
                       [self = shared_from_this(), interim](beast::error_code ec, size_t) {
                         if (ec) {
                           self->do_close();
                           return;
                         }
                         self->read_body();
                       });
    return;
  }
  read_body();
}

void Session::read_body() {
  if (closed_) return;
  bhttp::async_read(stream_, buffer_, *parser_,
                    beast::bind_front_handler(&Session::on_read, shared_from_this()));
}

void Session::on_read(beast::error_code ec, size_t) {
  if (closed_) return;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == beast::error::timeout || ec == net::error::eof || ec == net::error::connection_reset ||
      ec == net::error::operation_aborted) {
    // The client went away (or stayed silent) between or in the middle of requests.
    do_close();
    return;
  }
  if (ec) {
    // The request cannot be read to its end: answer and close.
    responding_ = true;
    ++ctx_.responses_pending;
    open_request();
    keep_alive_ = false;
    endpoint_ = "other";
    if (parser_->is_header_done()) {
      version_ = parser_->get().version();
      endpoint_ = endpoint_label(route_of(view(parser_->get().target())));
    }
    api::ApiError e{.message = "malformed HTTP request: " + ec.message(), .code = "bad_request"};
    if (ec == bhttp::error::body_limit) {
      e = {.status = 413,
           .message = strformat("The request body exceeds the limit of %lld bytes",
                                (long long)ctx_.options.max_body_bytes),
           .code = "request_too_large"};
    } else if (ec == bhttp::error::header_limit) {
      e = {.status = 431,
           .message = strformat("The request headers exceed the limit of %lld bytes",
                                (long long)ctx_.options.max_header_bytes),
           .code = "request_header_fields_too_large"};
    }
    respond_error(e);
    return;
  }
  handle_request();
}

void Session::handle_request() {
  const auto received = std::chrono::steady_clock::now();
  auto& req = parser_->get();
  responding_ = true;
  ++ctx_.responses_pending;
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  const Route route = route_of(view(req.target()));
  endpoint_ = endpoint_label(route);
  open_request();
  request_id_ = request_id_from(req);
  if (ctx_.draining.load()) {
    keep_alive_ = false;
    respond_error({.status = 503,
                   .message = "The server is shutting down",
                   .type = "server_error",
                   .code = "service_unavailable"});
    return;
  }
  if (needs_auth(route)) {
    // Before 404 and 405: without a key, no route (known or not) tells anything.
    const Admission a = ctx_.access.admit(view(req[bhttp::field::authorization]), received);
    key_id_ = a.key_id;
    if (a.verdict == Admission::Verdict::kUnauthorized) {
      ctx_.metrics.count_refusal("unauthorized");
      PlainResponse r = error_response({.status = 401,
                                        .message = "Missing or incorrect API key: send "
                                                   "'Authorization: Bearer <key>'",
                                        .code = "invalid_api_key"},
                                       ctx_.options.retry_after_s);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      respond(std::move(r));
      return;
    }
    if (a.verdict == Admission::Verdict::kRateLimited) {
      ctx_.metrics.count_refusal("rate_limited");
      PlainResponse r = error_response({.status = 429,
                                        .message = a.message,
                                        .type = "rate_limit_error",
                                        .code = "rate_limit_exceeded"},
                                       ctx_.options.retry_after_s);
      r.headers.emplace_back("Retry-After", std::to_string(a.retry_after_s));
      respond(std::move(r));
      return;
    }
    admitted_ = !key_id_.empty();
  }
  if (route == Route::kUnknown) {
    respond_error({.status = 404,
                   .message = "Not found: " + std::string(view(req.target())),
                   .code = "not_found"});
    return;
  }
  if (view(req.method_string()) != route_method(route)) {
    api::ApiError e{.status = 405,
                    .message = strformat("Method %s is not allowed on %s; use %s",
                                         std::string(view(req.method_string())).c_str(), endpoint_,
                                         route_method(route)),
                    .code = "method_not_allowed"};
    PlainResponse r = error_response(e, ctx_.options.retry_after_s);
    r.headers.emplace_back("Allow", route_method(route));
    respond(std::move(r));
    return;
  }
  switch (route) {
    case Route::kModels:
      respond(models_response(ctx_));
      return;
    case Route::kModel:
      respond(model_response(ctx_, view(req.target())));
      return;
    case Route::kTokenize:
      respond(tokenize_response(ctx_, req.body()));
      return;
    case Route::kDetokenize:
      respond(detokenize_response(ctx_, req.body()));
      return;
    case Route::kHealth:
      if (wants_generation_probe(view(req.target()))) {
        stream_.tcp().expires_never();
        start_health_probe(shared_from_this(), ctx_);
        return;
      }
      respond(health_response(ctx_));
      return;
    case Route::kMetrics:
      respond(metrics_response(ctx_));
      return;
    case Route::kChatCompletions:
    case Route::kCompletions:
      stream_.tcp().expires_never();  // generation takes as long as it takes; disconnects are watched
      GenerationCall::start(shared_from_this(), ctx_,
                            route == Route::kChatCompletions ? api::Endpoint::kChatCompletions
                                                             : api::Endpoint::kCompletions,
                            std::move(req.body()), received);
      return;
    case Route::kUnknown:
      break;
  }
}

void Session::respond_error(const api::ApiError& error) {
  respond(error_response(error, ctx_.options.retry_after_s));
}

void Session::respond(PlainResponse r) {
  if (closed_ || !responding_) return;
  if (probing_) {
    deferred_ = std::move(r);  // written once the probe is out
    return;
  }
  // Answered and counted: a client that leaves from here on (even before the write completes)
  // is not also a 499, and there is nothing left to cancel.
  stop_watching();
  ctx_.metrics.count_request(endpoint_, r.status);
  status_ = r.status;
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(r.status), version_);
  res->set(bhttp::field::server, "ponder");
  if (!request_id_.empty()) res->set("X-Request-Id", request_id_);
  res->set(bhttp::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res->set(name, value);
  const bool lingering =
      r.status == 413 || r.status == 431 || (r.status == 400 && !parser_->is_done());
  res->keep_alive(keep_alive_ && !ctx_.draining.load() && !lingering);
  res->body() = std::move(r.body);
  res->prepare_payload();
  stream_.tcp().expires_after(ctx_.options.write_timeout);
  bhttp::async_write(stream_, *res,
                     [self = shared_from_this(), res, lingering](beast::error_code ec, size_t) {
                       if (lingering && !ec) {
                         self->end_response();
                         self->linger_close();
                         return;
                       }
                       self->on_written(res->keep_alive(), ec);
                     });
}

void Session::on_written(bool keep_alive, beast::error_code ec) {
  if (ec) {
    client_gone();
    return;
  }
  finish_response(keep_alive);
}

void Session::begin_stream(std::string first_events) {
  if (closed_ || !responding_) return;
  ctx_.metrics.count_request(endpoint_, 200);
  status_ = 200;
  stream_header_ =
      std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::ok, version_);
  stream_header_->set(bhttp::field::server, "ponder");
  if (!request_id_.empty()) stream_header_->set("X-Request-Id", request_id_);
  stream_header_->set(bhttp::field::content_type, "text/event-stream");
  stream_header_->set(bhttp::field::cache_control, "no-cache");
  stream_header_->set("X-Accel-Buffering", "no");
  chunked_ = version_ >= 11;
  stream_header_->keep_alive(chunked_ && keep_alive_ && !ctx_.draining.load());
  stream_header_->chunked(chunked_);
  serializer_ = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*stream_header_);
  phase_ = StreamPhase::kHeader;
  pending_ = std::move(first_events);
  write_in_flight_ = true;
  stream_.tcp().expires_after(ctx_.options.write_timeout);
  bhttp::async_write_header(
      stream_, *serializer_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_stream_written(ec); });
}

void Session::stream(std::string events) {
  if (closed_ || phase_ == StreamPhase::kNone || phase_ == StreamPhase::kLast || end_requested_)
    return;
  pending_ += events;
  if (!write_in_flight_) write_stream();
}

void Session::end_stream(std::string last_events) {
  if (closed_ || phase_ == StreamPhase::kNone || end_requested_) return;
  pending_ += last_events;
  end_requested_ = true;
  if (!write_in_flight_) write_stream();
}

void Session::write_stream() {
  if (closed_) return;
  auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_stream_written(ec);
  };
  if (!pending_.empty()) {
    writing_.swap(pending_);
    pending_.clear();
    write_in_flight_ = true;
    stream_.tcp().expires_after(ctx_.options.write_timeout);
    if (chunked_) {
      net::async_write(stream_, bhttp::make_chunk(net::buffer(writing_)), std::move(done));
    } else {
      net::async_write(stream_, net::buffer(writing_), std::move(done));
    }
    return;
  }
  if (end_requested_ && !chunked_) {
    finish_response(false);  // the end of the body is the end of the connection
    return;
  }
  if (end_requested_) {
    phase_ = StreamPhase::kLast;
    write_in_flight_ = true;
    stream_.tcp().expires_after(ctx_.options.write_timeout);
    net::async_write(stream_, bhttp::make_chunk_last(), std::move(done));
    return;
  }
  write_in_flight_ = false;
}

void Session::on_stream_written(beast::error_code ec) {
  write_in_flight_ = false;
  if (closed_) return;
  if (ec) {
    client_gone();
    return;
  }
  if (phase_ == StreamPhase::kHeader) {
    phase_ = StreamPhase::kBody;
  } else if (phase_ == StreamPhase::kLast) {
    finish_response(stream_header_->keep_alive());
    return;
  }
  write_stream();
}

void Session::open_request() {
  request_open_ = true;
  request_started_ = std::chrono::steady_clock::now();
  request_id_ = ctx_.random_id("req-");
  method_ = "";
  if (parser_->is_header_done()) {
    const auto m = parser_->get().method_string();
    method_ = m == "GET" ? "GET" : m == "POST" ? "POST" : "other";
  }
  key_id_.clear();
  admitted_ = false;
  status_ = 0;
  audit_fields_ = nlohmann::ordered_json::object();
}

std::string Session::request_id_from(const bhttp::request<bhttp::string_body>& req) {
  // A client's own id (printable ASCII, at most 128 characters) is kept, so that its logs and
  // ours name the request alike; otherwise one is made.
  const std::string_view given = view(req["X-Request-Id"]);
  bool usable = !given.empty() && given.size() <= 128;
  for (char c : given) usable = usable && c > ' ' && c < 127;
  return usable ? std::string(given) : request_id_;
}

void Session::note_audit(const nlohmann::ordered_json& fields) {
  if (!request_open_) return;
  for (auto it = fields.begin(); it != fields.end(); ++it) audit_fields_[it.key()] = it.value();
}

void Session::close_request(bool complete) {
  if (!request_open_) return;
  request_open_ = false;
  if (admitted_) ctx_.access.release(key_id_);
  admitted_ = false;
  if (!ctx_.audit) return;
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["time"] = utc_timestamp();
  line["key_id"] = key_id_.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(key_id_);
  line["request_id"] = request_id_;
  line["client"] = client_address_;
  line["method"] = method_;
  line["route"] = endpoint_;
  line["status"] = status_ == 0 ? 499 : status_;  // 0: the client left before any answer
  line["complete"] = complete;
  line["duration_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                   request_started_)
                            .count();
  line["prompt_tokens"] = 0;
  line["completion_tokens"] = 0;
  for (auto it = audit_fields_.begin(); it != audit_fields_.end(); ++it) line[it.key()] = it.value();
  ctx_.audit->write(line);
}

void Session::end_response() {
  if (responding_) {
    responding_ = false;
    --ctx_.responses_pending;
  }
  close_request(true);
  phase_ = StreamPhase::kNone;
  end_requested_ = false;
  stream_header_.reset();
  serializer_.reset();
  writing_.clear();
  stop_watching();
}

void Session::stop_watching() {
  on_gone_ = nullptr;
  if (watching_) {
    watching_ = false;
    ++watch_generation_;
    beast::error_code ec;
    stream_.socket().cancel(ec);  // ends the pending wait (its handler sees the new generation)
  }
}

void Session::finish_response(bool keep_alive) {
  end_response();
  if (closed_) return;
  if (!keep_alive || client_done_ || ctx_.draining.load()) {
    close_after_response();
    return;
  }
  do_read();
}

void Session::close_after_response() {
  if (HttpStream::TlsStream* tls = stream_.tls()) {
    // close_notify tells the client that the response ended here (not a truncation); its own
    // close_notify, an EOF or the timeout ends the wait.
    stream_.tcp().expires_after(kTlsShutdownTime);
    tls->async_shutdown([self = shared_from_this()](beast::error_code) { self->do_close(); });
    return;
  }
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  do_close();
}

void Session::watch_for_disconnect(std::function<void()> on_gone) {
  if (closed_ || !responding_) return;
  on_gone_ = std::move(on_gone);
  if (client_done_) {
    watch_for_reset();
    return;
  }
  watching_ = true;
  const uint64_t generation = ++watch_generation_;
  stream_.socket().async_wait(
      tcp::socket::wait_read,
      net::bind_executor(stream_.get_executor(),
                         [self = shared_from_this(), generation](beast::error_code ec) {
                           self->on_watch(generation, ec);
                         }));
}

void Session::on_watch(uint64_t generation, beast::error_code ec) {
  if (generation != watch_generation_ || !watching_ || closed_) return;
  watching_ = false;
  if (ec == net::error::operation_aborted) return;
  if (!ec) {
    // Readiness can be stale (edge-triggered epoll reports data a read already took), so peek:
    // bytes are a pipelined request, read after this response; 0 is the client's FIN; "would
    // block" means nothing happened and the watch goes on; an error is a reset.
    char byte;
    const ssize_t n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 && stream_.tls()) {
      // Encrypted bytes: a pipelined request, or the close_notify of a client that left. Only
      // writing tells: probe (a pipelined request is still read after this response).
      watch_for_reset();
      if (phase_ == StreamPhase::kNone && version_ >= 11) probe_client();
      return;
    }
    if (n > 0) return;
    if (n == 0) {
      on_client_fin();
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      watch_for_disconnect(std::move(on_gone_));
      return;
    }
  }
  client_gone();
}

// A FIN says the client sends nothing more: it half-closed after its request (some clients and
// proxies do) and waits for the answer, or it closed the socket entirely. Only the answer to
// data tells them apart: a closed socket resets. Streams write events anyway; a whole response
// writes nothing until it is complete, so an HTTP/1.1 client gets an interim 100 Continue now
// (every HTTP/1.1 client must skip 1xx responses; HTTP/1.0 ones must not get them, so their
// requests run to the end).
void Session::on_client_fin() {
  client_done_ = true;
  keep_alive_ = false;
  watch_for_reset();  // armed first, so that a reset answering the probe is not missed
  if (phase_ == StreamPhase::kNone && version_ >= 11) probe_client();
}

void Session::watch_for_reset() {
  watching_ = true;
  const uint64_t generation = ++watch_generation_;
  // wait_error completes on EPOLLERR / EPOLLHUP (a reset), not on the FIN's lasting readability.
  stream_.socket().async_wait(
      tcp::socket::wait_error,
      net::bind_executor(stream_.get_executor(),
                         [self = shared_from_this(), generation](beast::error_code ec) {
                           self->on_reset_watch(generation, ec);
                         }));
}

void Session::on_reset_watch(uint64_t generation, beast::error_code ec) {
  if (generation != watch_generation_ || !watching_ || closed_) return;
  watching_ = false;
  if (ec == net::error::operation_aborted) return;
  if (!ec) {
    // Urgent data also wakes this wait; it is no reset, and the writes still tell.
    tcp_info info{};
    socklen_t size = sizeof info;
    if (::getsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
        info.tcpi_state != TCP_CLOSE)
      return;
  }
  client_gone();
}

void Session::probe_client() {
  probing_ = true;
  net::async_write(
      stream_, net::buffer(kProbe.data(), kProbe.size()),
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_probed(ec); });
}

void Session::on_probed(beast::error_code ec) {
  probing_ = false;
  if (closed_) return;
  if (ec) {
    client_gone();
    return;
  }
  if (deferred_) {
    PlainResponse r = std::move(*deferred_);
    deferred_.reset();
    respond(std::move(r));
  }
}

void Session::client_gone() {
  if (responding_ && phase_ == StreamPhase::kNone && on_gone_)
    ctx_.metrics.count_request(endpoint_, 499);  // the client closed before any answer
  do_close();
}

void Session::linger_close() {
  if (closed_) return;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  linger_buffer_.resize(16384);
  lingered_bytes_ = 0;
  stream_.tcp().expires_after(kLingerTime);
  linger_read();
}

void Session::linger_read() {
  stream_.async_read_some(net::buffer(linger_buffer_),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->lingered_bytes_ += static_cast<int64_t>(n);
                            if (ec || self->lingered_bytes_ > kLingerBytes || self->closed_) {
                              self->do_close();
                              return;
                            }
                            self->linger_read();
                          });
}

void Session::do_close() {
  if (closed_) return;
  closed_ = true;
  if (responding_) {
    responding_ = false;
    --ctx_.responses_pending;
  }
  if (auto on_gone = std::move(on_gone_)) {
    on_gone_ = nullptr;
    on_gone();  // the call cancels and notes what it generated for the audit line
  }
  close_request(false);
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.tcp().close();
}

}  // namespace ponder::coordinator::http
