// Beast request/response over a tcp_stream (under TLS for https://) whose deadline covers connect,
// handshake, write and read.
#include "experiments/http_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "common/check.h"
#include "common/private_file.h"
#include "coordinator/http/http_stream.h"

namespace ponder::experiments {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;

using coordinator::http::HttpStream;

Expected<BaseUrl> parse_base_url(const std::string& url, const std::string& where) {
  const bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://"))
    return error(StatusCode::kInvalidArgument,
                 "%s: expected an http:// or https:// base URL such as http://127.0.0.1:8000/v1 (got '%s')",
                 where.c_str(), url.c_str());
  const std::string scheme = tls ? "https://" : "http://";
  std::string rest = url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  BaseUrl b;
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  b.path = slash == std::string::npos ? "" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  b.host = colon == std::string::npos ? authority : authority.substr(0, colon);
  b.port = colon == std::string::npos ? (tls ? "443" : "80") : authority.substr(colon + 1);
  b.tls = tls;
  if (b.host.empty() || b.port.empty() || b.port.find_first_not_of("0123456789") != std::string::npos)
    return error(StatusCode::kInvalidArgument, "%s: cannot read host and port of '%s'",
                 where.c_str(), url.c_str());
  if (b.path.empty()) b.path = "/v1";
  b.text = scheme + authority + b.path;
  return b;
}

namespace {

// The TLS client settings of `base`: TLS 1.2 or newer, the server verified (chain and name), a
// client certificate when given. Errors name the file.
Expected<std::unique_ptr<asio::ssl::context>> make_client_tls(const BaseUrl& base) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  beast::error_code ec;
  if (!base.verify) {
    tls->set_verify_mode(asio::ssl::verify_none);
  } else {
    tls->set_verify_mode(asio::ssl::verify_peer);
    if (base.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(base.ca_file, ec);
    }
    if (ec)
      return error(StatusCode::kInvalidArgument, "ca_file %s: %s",
                   base.ca_file.empty() ? "(the system's CAs)" : base.ca_file.c_str(), ec.message().c_str());
  }
  if (!base.client_cert.empty()) {
    tls->use_certificate_chain_file(base.client_cert, ec);
    if (ec)
      return error(StatusCode::kInvalidArgument, "client_cert %s: %s", base.client_cert.c_str(), ec.message().c_str());
    PONDER_ASSIGN_OR_RETURN(const std::string key, read_private_file(base.client_key, "client_key"));
    tls->use_private_key(asio::buffer(key), asio::ssl::context::pem, ec);
    if (ec)
      return error(StatusCode::kInvalidArgument, "client_key %s: %s", base.client_key.c_str(), ec.message().c_str());
  }
  return tls;
}

}  // namespace

struct HttpConnection::Impl {
  Impl(asio::any_io_executor ex, BaseUrl b, std::string key)
      : executor(ex), resolver(ex), base(std::move(b)), api_key(std::move(key)) {}

  // A new stream for the next connection: plain, or TLS with the server's name for SNI and for
  // the certificate check.
  Status new_stream() {
    if (!base.tls) {
      stream.emplace(asio::ip::tcp::socket(executor));
      return {};
    }
    if (!tls) {
      PONDER_ASSIGN_OR_RETURN(tls, make_client_tls(base));
    }
    stream.emplace(asio::ip::tcp::socket(executor), *tls);
    SSL_set_tlsext_host_name(stream->tls()->native_handle(), base.host.c_str());
    if (base.verify) stream->tls()->set_verify_callback(asio::ssl::host_name_verification(base.host));
    return {};
  }
  void close() {
    beast::error_code ignored;
    if (stream) stream->socket().close(ignored);
    connected = false;
  }

  asio::any_io_executor executor;
  asio::ip::tcp::resolver resolver;
  std::unique_ptr<asio::ssl::context> tls;
  std::optional<HttpStream> stream;
  beast::flat_buffer buffer;
  BaseUrl base;
  std::string api_key;
  bool connected = false;
};

HttpConnection::HttpConnection(asio::any_io_executor executor, BaseUrl base, std::string api_key)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(base), std::move(api_key))) {}

HttpConnection::~HttpConnection() = default;

void HttpConnection::abort() { impl_->close(); }

awaitable<Expected<HttpReply>> HttpConnection::request(std::string method, std::string path,
                                                       std::string body,
                                                       std::chrono::milliseconds timeout) {
  Impl& c = *impl_;
  beast::error_code ec;
  const auto failed = [&](const char* what) -> Expected<HttpReply> {
    c.close();
    const StatusCode code = ec == beast::error::timeout ? StatusCode::kTimeout : StatusCode::kUnavailable;
    return error(code, "%s %s:%s: %s", what, c.base.host.c_str(), c.base.port.c_str(),
                 ec.message().c_str());
  };
  // A kept-alive connection the server closed meanwhile fails on first use: one fresh try.
  for (int fresh = 0; fresh < 2; ++fresh) {
    const bool reused = c.connected;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!c.connected) {
      if (Status made = c.new_stream(); !made.ok()) co_return tl::unexpected(made);
      c.stream->tcp().expires_at(deadline);
      auto endpoints = co_await c.resolver.async_resolve(c.base.host, c.base.port,
                                                         asio::redirect_error(use_awaitable, ec));
      if (ec) co_return failed("resolving");
      co_await c.stream->tcp().async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return failed("connecting to");
      if (c.stream->tls()) {
        co_await c.stream->tls()->async_handshake(asio::ssl::stream_base::client,
                                                  asio::redirect_error(use_awaitable, ec));
        if (ec) co_return failed("TLS handshake with");
      }
      c.connected = true;
      c.buffer.clear();
    }
    c.stream->tcp().expires_at(deadline);
    http::request<http::string_body> req(method == "POST" ? http::verb::post : http::verb::get, path, 11);
    req.set(http::field::host, c.base.host + ":" + c.base.port);
    req.set(http::field::user_agent, "ponder-sweep");
    if (!c.api_key.empty()) req.set(http::field::authorization, "Bearer " + c.api_key);
    if (method == "POST") {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    co_await http::async_write(*c.stream, req, asio::redirect_error(use_awaitable, ec));
    if (ec && reused && ec != beast::error::timeout) { c.connected = false; continue; }
    if (ec) co_return failed("sending to");
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    co_await http::async_read(*c.stream, c.buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec && reused && (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                         ec == asio::ssl::error::stream_truncated)) {
      c.close();
      continue;
    }
    if (ec) co_return failed("reading from");
    auto res = parser.release();
    if (!res.keep_alive()) {
      beast::error_code ignored;
      c.stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      c.close();
    }
    co_return HttpReply{.status = static_cast<int>(res.result_int()), .body = std::move(res.body())};
  }
  co_return error(StatusCode::kUnavailable, "%s:%s closed the connection twice",
                  c.base.host.c_str(), c.base.port.c_str());
}

Expected<HttpReply> http_request_blocking(const BaseUrl& base, const std::string& api_key,
                                          const std::string& method, const std::string& path,
                                          const std::string& body,
                                          std::chrono::milliseconds timeout) {
  asio::io_context io;
  HttpConnection conn(io.get_executor(), base, api_key);
  Expected<HttpReply> out = error(StatusCode::kInternal, "request did not run");
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> { out = co_await conn.request(method, path, body, timeout); },
      asio::detached);
  io.run();
  return out;
}

}  // namespace ponder::experiments
