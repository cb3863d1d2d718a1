// Beast request/response over a tcp_stream whose deadline covers connect, write and read.
#include "experiments/http_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ponder::experiments {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;

Expected<BaseUrl> parse_base_url(const std::string& url, const std::string& where) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme))
    return error(StatusCode::kInvalidArgument,
                 "%s: expected an http:// base URL such as http://127.0.0.1:8000/v1 (got '%s')",
                 where.c_str(), url.c_str());
  std::string rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  BaseUrl b;
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  b.path = slash == std::string::npos ? "" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  b.host = colon == std::string::npos ? authority : authority.substr(0, colon);
  b.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  if (b.host.empty() || b.port.empty() || b.port.find_first_not_of("0123456789") != std::string::npos)
    return error(StatusCode::kInvalidArgument, "%s: cannot read host and port of '%s'",
                 where.c_str(), url.c_str());
  if (b.path.empty()) b.path = "/v1";
  b.text = "http://" + authority + b.path;
  return b;
}

struct HttpConnection::Impl {
  Impl(asio::any_io_executor ex, BaseUrl b, std::string key)
      : resolver(ex), stream(ex), base(std::move(b)), api_key(std::move(key)) {}
  asio::ip::tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  BaseUrl base;
  std::string api_key;
  bool connected = false;
};

HttpConnection::HttpConnection(asio::any_io_executor executor, BaseUrl base, std::string api_key)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(base), std::move(api_key))) {}

HttpConnection::~HttpConnection() = default;

void HttpConnection::abort() {
  beast::error_code ec;
  impl_->stream.socket().close(ec);
  impl_->connected = false;
}

awaitable<Expected<HttpReply>> HttpConnection::request(std::string method, std::string path,
                                                       std::string body,
                                                       std::chrono::milliseconds timeout) {
  Impl& c = *impl_;
  beast::error_code ec;
  const auto failed = [&](const char* what) -> Expected<HttpReply> {
    c.connected = false;
    beast::error_code ignored;
    c.stream.socket().close(ignored);
    const StatusCode code = ec == beast::error::timeout ? StatusCode::kTimeout : StatusCode::kUnavailable;
    return error(code, "%s %s:%s: %s", what, c.base.host.c_str(), c.base.port.c_str(),
                 ec.message().c_str());
  };
  // A kept-alive connection the server closed meanwhile fails on first use: one fresh try.
  for (int fresh = 0; fresh < 2; ++fresh) {
    const bool reused = c.connected;
    c.stream.expires_after(timeout);
    if (!c.connected) {
      auto endpoints = co_await c.resolver.async_resolve(c.base.host, c.base.port,
                                                         asio::redirect_error(use_awaitable, ec));
      if (ec) co_return failed("resolving");
      co_await c.stream.async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return failed("connecting to");
      c.connected = true;
      c.buffer.clear();
    }
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
    co_await http::async_write(c.stream, req, asio::redirect_error(use_awaitable, ec));
    if (ec && reused && ec != beast::error::timeout) { c.connected = false; continue; }
    if (ec) co_return failed("sending to");
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    co_await http::async_read(c.stream, c.buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec && reused && (ec == http::error::end_of_stream || ec == asio::error::connection_reset)) {
      c.connected = false;
      beast::error_code ignored;
      c.stream.socket().close(ignored);
      continue;
    }
    if (ec) co_return failed("reading from");
    auto res = parser.release();
    if (!res.keep_alive()) {
      beast::error_code ignored;
      c.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      c.stream.socket().close(ignored);
      c.connected = false;
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
