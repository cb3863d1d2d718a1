// A small HTTP/1.1 client on Boost.Beast for the sweep runner: one keep-alive connection per
// coroutine, awaited on the runner's event loop (C++20 coroutines, asio::awaitable), with a
// deadline per request. http:// or https:// (the server's certificate verified against ca_file or
// the system's CAs, its name checked; a client certificate for mTLS). Not thread-safe: one
// coroutine uses a connection at a time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange unincluded

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/status.h"

namespace ponder::experiments {

struct BaseUrl {
  std::string host;
  std::string port;
  std::string path;  // "/v1" (no trailing slash)
  std::string text;  // as given, without a trailing slash
  // https://: TLS. The server's certificate must chain to ca_file (PEM; empty: the system's CAs)
  // and name `host`, unless verify is false (a health probe that sends nothing secret).
  bool tls = false;
  bool verify = true;
  std::string ca_file;
  std::string client_cert;  // mTLS: PEM certificate chain …
  std::string client_key;   // … and its key (mode 0600)
};
// "http[s]://host[:port]/path" → its parts; errors name `where`.
Expected<BaseUrl> parse_base_url(const std::string& url, const std::string& where);

struct HttpReply {
  int status = 0;
  std::string body;
};

class HttpConnection {
 public:
  HttpConnection(boost::asio::any_io_executor executor, BaseUrl base, std::string api_key);
  ~HttpConnection();

  // `method` "GET" or "POST"; `path` below the host ("/v1/chat/completions"). A transport
  // failure (refused, reset, timeout) is kUnavailable / kTimeout; any HTTP status is a reply.
  boost::asio::awaitable<Expected<HttpReply>> request(std::string method, std::string path,
                                                      std::string body,
                                                      std::chrono::milliseconds timeout);
  // Closes the socket: a pending request fails at once (second Ctrl-C).
  void abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a private event loop (start-up probes: /v1/models, /health).
Expected<HttpReply> http_request_blocking(const BaseUrl& base, const std::string& api_key,
                                          const std::string& method, const std::string& path,
                                          const std::string& body,
                                          std::chrono::milliseconds timeout);

}  // namespace ponder::experiments
