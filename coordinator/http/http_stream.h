// HttpStream: one connection's byte stream, plain TCP or TLS over TCP, behind one type so that a
// server Session (and the sweep's client, experiments/http_client) reads and writes either the
// same way. It is an Asio AsyncReadStream and
// AsyncWriteStream (Beast's HTTP reads and writes take it); timeouts are the TCP layer's
// (tcp().expires_after), and socket() is the TCP socket under either. Header-only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <utility>
#include <variant>

namespace ponder::coordinator::http {

class HttpStream {
 public:
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using executor_type = boost::beast::tcp_stream::executor_type;

  // Plain TCP.
  explicit HttpStream(boost::asio::ip::tcp::socket socket)
      : stream_(std::in_place_type<boost::beast::tcp_stream>, std::move(socket)) {}
  // TLS with `tls`'s certificate and settings (the handshake is the caller's, see tls()).
  HttpStream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls)
      : stream_(std::in_place_type<TlsStream>, std::move(socket), tls) {}

  executor_type get_executor() { return tcp().get_executor(); }
  // The TLS layer, or nullptr for plain TCP.
  TlsStream* tls() { return std::get_if<TlsStream>(&stream_); }
  boost::beast::tcp_stream& tcp() {
    if (TlsStream* s = tls()) return s->next_layer();
    return std::get<boost::beast::tcp_stream>(stream_);
  }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_read_some(buffers, std::forward<Handler>(handler)); },
               stream_);
  }
  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_write_some(buffers, std::forward<Handler>(handler)); },
               stream_);
  }

 private:
  std::variant<boost::beast::tcp_stream, TlsStream> stream_;
};

}  // namespace ponder::coordinator::http
