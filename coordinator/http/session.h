// Session: one client connection — reads HTTP/1.1 requests one at a time (keep-alive, body and
// header limits, idle timeout), routes them, and writes their responses: whole ones, or a
// Server-Sent Events stream in chunked transfer encoding. While a completion is pending it
// watches the socket so that a client that goes away (a reset, a failed write) cancels its
// request; a client that only half-closes after its request still gets the answer.
//
// Threading: everything runs on the connection's strand; close() may be called from any thread.
// Internal to coordinator/http.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/api/api_error.h"
#include "coordinator/http/http_stream.h"
#include "coordinator/http/routes.h"
#include "coordinator/http/server_context.h"

namespace ponder::coordinator::http {

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `stream` is plain TCP or TLS (the handshake is the session's first step).
  Session(HttpStream stream, ServerContext& ctx);
  ~Session();

  void start();
  // Any thread: closes the connection; a pending completion sees the client as gone.
  void close();

  // On the strand, while the current request's response is pending:
  boost::asio::any_io_executor executor() { return stream_.get_executor(); }
  void respond(PlainResponse response);
  void respond_error(const api::ApiError& error);
  // A 200 text/event-stream response: headers and `first_events` now, stream() as events come,
  // end_stream() with the last ones.
  void begin_stream(std::string first_events);
  void stream(std::string events);
  void end_stream(std::string last_events);
  // Calls `on_gone` (on the strand) when the client resets the connection or a write fails
  // before the response is complete. The client's FIN alone only means "no more requests": the
  // response is still written, then the connection closes.
  void watch_for_disconnect(std::function<void()> on_gone);
  const char* endpoint() const { return endpoint_; }
  // Fields for the request's audit line (its response id, token counts, texts).
  void note_audit(const nlohmann::ordered_json& fields);

 private:
  enum class StreamPhase { kNone, kHeader, kBody, kLast };

  void do_handshake();
  void open_request();  // a request was read (whole or not): its audit line and gate slot start
  // The request's response is complete (or abandoned): its gate slot ends, its audit line is
  // written.
  void close_request(bool complete);
  std::string request_id_from(const boost::beast::http::request<boost::beast::http::string_body>& req);
  void do_read();
  void on_header(boost::beast::error_code ec, size_t bytes);
  void read_body();
  void on_read(boost::beast::error_code ec, size_t bytes);
  void handle_request();
  void on_written(bool keep_alive, boost::beast::error_code ec);
  void write_stream();
  void on_stream_written(boost::beast::error_code ec);
  void end_response();  // the response is complete (or abandoned): back to idle state
  void finish_response(bool keep_alive);
  void on_watch(uint64_t generation, boost::beast::error_code ec);
  void on_client_fin();
  void watch_for_reset();  // after the client's FIN: only a reset (or a failed write) is left
  void on_reset_watch(uint64_t generation, boost::beast::error_code ec);
  void probe_client();
  void on_probed(boost::beast::error_code ec);
  void stop_watching();  // no disconnect watch, no on_gone_ callback
  void client_gone();
  void close_after_response();  // no more requests: TLS close_notify, FIN, close
  void linger_close();
  void linger_read();
  void do_close();

  HttpStream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  ServerContext& ctx_;
  const char* endpoint_ = "other";
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool responding_ = false;  // a request was read and its response is not complete
  bool closed_ = false;
  bool client_done_ = false;  // the client's FIN came: close after the response in progress

  StreamPhase phase_ = StreamPhase::kNone;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::empty_body>> stream_header_;
  std::shared_ptr<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      serializer_;
  std::string pending_;  // events waiting for the write in flight
  std::string writing_;  // the chunk being written
  bool write_in_flight_ = false;
  bool end_requested_ = false;
  bool chunked_ = true;  // HTTP/1.0 clients get the stream unchunked, ended by closing

  // The current request, for the gate and the audit log.
  bool request_open_ = false;
  std::chrono::steady_clock::time_point request_started_;
  std::string request_id_;
  std::string client_address_;
  const char* method_ = "";
  std::string key_id_;
  bool admitted_ = false;  // counted against key_id_'s limits
  int status_ = 0;         // what was sent (0: nothing yet)
  nlohmann::ordered_json audit_fields_;

  std::function<void()> on_gone_;
  bool watching_ = false;
  uint64_t watch_generation_ = 0;
  bool probing_ = false;                   // the interim 100 Continue is being written
  std::optional<PlainResponse> deferred_;  // the response that came meanwhile
  std::string linger_buffer_;
  int64_t lingered_bytes_ = 0;
};

}  // namespace ponder::coordinator::http
