// HttpServer at the connection level, over raw sockets where a Beast client cannot go: accepts
// when the process runs out of file descriptors (the test lowers RLIMIT_NOFILE, so it has a
// binary of its own), clients that half-close after their request, and resets. A real server in
// front of the bundled tiny reasoner in an InProcessDispatcher; every wait has a deadline.
#include "coordinator/http/http_server.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coordinator/replicas/in_process_dispatcher.h"
#include "http_test_client.h"
#include "tiny_model_fixture.h"
#include "slow_dispatcher.h"
#include "prometheus_check.h"

namespace ponder::coordinator::http {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::HttpReply;
using testing::TestConnection;

const std::string kModelDir = testing::kTinyModelDir;

std::string chat_request(Json extra) {
  Json body = {{"model", "tiny-reasoner"},
               {"messages", Json::array({{{"role", "user"}, {"content", "What is 17+25?"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  const std::string text = body.dump();
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(text.size()) + "\r\n\r\n" + text;
}

using testing::SlowDispatcher;

// A client socket for what a Beast client does not do: connect late, half-close, reset. Reads
// time out after 30 s.
class RawClient {
 public:
  RawClient() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    const timeval tv{.tv_sec = 30, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool valid() const { return fd_ >= 0; }
  bool connect(uint16_t port) {
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Closes with RST (SO_LINGER 0).
  void reset() {
    const linger l{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }
  // Everything until the server closes (or a read fails or times out).
  std::string read_to_eof() {
    std::string got;
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      got.append(chunk, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_;
};

// Sends stderr (where common/log.h writes) to a file until destroyed.
class StderrCapture {
 public:
  StderrCapture() {
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("ponder_http_stderr_" + std::to_string(::getpid()) + ".txt");
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    ok_ = saved_ >= 0 && fd >= 0 && ::dup2(fd, STDERR_FILENO) == STDERR_FILENO;
    if (fd >= 0) ::close(fd);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
    }
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  bool ok() const { return ok_; }
  int saved_fd() const { return saved_; }
  std::vector<std::string> lines_with(const std::string& needle) const {
    std::fflush(stderr);
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      if (line.find(needle) != std::string::npos) out.push_back(line);
    return out;
  }

 private:
  std::filesystem::path path_;
  int saved_ = -1;
  bool ok_ = false;
};

// Leaves the process no free file descriptor: RLIMIT_NOFILE just above the highest open one and
// the gaps below it filled, until restore() (or destruction) gives everything back.
class DescriptorExhaustion {
 public:
  explicit DescriptorExhaustion(int fd_to_copy) {
    ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0;
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 1;
    ok_ = ok_ && ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
    for (int fd; ok_ && (fd = ::dup(fd_to_copy)) >= 0;) fillers_.push_back(fd);
    ok_ = ok_ && errno == EMFILE;
  }
  ~DescriptorExhaustion() { restore(); }
  bool ok() const { return ok_; }
  void restore() {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    if (ok_) ::setrlimit(RLIMIT_NOFILE, &saved_);
    ok_ = false;
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
  bool ok_ = false;
};

class HttpConnectionTest : public testing::TinyModelFixture {
 protected:
  void SetUp() override { ASSERT_TRUE(wait_idle()) << "a previous test left requests in flight"; }

  std::unique_ptr<HttpServer> start(Dispatcher& d) {
    auto s = HttpServer::start({.port = 0}, *model_, d);
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }
  static bool wait_in_flight(std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (dispatcher_->stats().requests_in_flight == 0) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }
  // ponder_http_requests_total of the chat endpoint with this status (NaN: none counted).
  static double chat_count(uint16_t port, int status) {
    std::vector<testing::PrometheusSample> samples;
    testing::check_prometheus_text(testing::http_request(port, "GET", "/metrics").body, &samples);
    return testing::prometheus_value(
        samples, "ponder_http_requests_total",
        {{"endpoint", "/v1/chat/completions"}, {"status", std::to_string(status)}});
  }
  // Waits until no completion request is being answered (the server has let go of the session).
  static void wait_answered(uint16_t port) {
    for (const auto until = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(5ms)) {
      std::vector<testing::PrometheusSample> samples;
      testing::check_prometheus_text(testing::http_request(port, "GET", "/metrics").body, &samples);
      if (testing::prometheus_value(samples, "ponder_http_requests_in_progress") == 0) return;
    }
  }

};


// With no descriptor left, accept() fails with EMFILE while the connection stays queued; the
// server waits (backing off) instead of retrying at once, logs a few lines instead of one per
// failure, keeps answering the connections it has, and accepts the queued ones once descriptors
// are free again.
TEST_F(HttpConnectionTest, AcceptBacksOffWhenDescriptorsRunOut) {
  auto s = start(*dispatcher_);
  ASSERT_TRUE(s);
  TestConnection kept(s->port(), 30);
  ASSERT_EQ(kept.request("GET", "/health").status, 200);
  // Client sockets made while descriptors are there, connected once they are gone.
  std::vector<std::unique_ptr<RawClient>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(queued.back()->valid());
  }
  StderrCapture log;
  ASSERT_TRUE(log.ok());
  {
    DescriptorExhaustion exhausted(log.saved_fd());
    ASSERT_TRUE(exhausted.ok()) << std::strerror(errno);
    ASSERT_LT(::dup(log.saved_fd()), 0) << "a descriptor is still free";
    for (auto& c : queued) ASSERT_TRUE(c->connect(s->port())) << std::strerror(errno);
    std::this_thread::sleep_for(500ms);  // accepts fail meanwhile
    // The connection the server has is served, a generation included.
    EXPECT_EQ(kept.request("GET", "/health").status, 200);
    HttpReply chat = kept.post_json(
        "/v1/chat/completions",
        {{"messages", Json::array({{{"role", "user"}, {"content", "1+1?"}}})}, {"max_tokens", 4}});
    EXPECT_EQ(chat.status, 200) << chat.body;
    std::this_thread::sleep_for(300ms);
  }
  // Descriptors are back: the queued connections are accepted and answered.
  for (auto& c : queued) {
    ASSERT_TRUE(c->send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    HttpReply r = testing::parse_final_reply(c->read_to_eof());
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(testing::http_request(s->port(), "GET", "/health").status, 200);

  const std::vector<std::string> failures = log.lines_with("accept failed");
  ASSERT_GE(failures.size(), 1u) << "the failed accepts were not logged";
  EXPECT_LE(failures.size(), 3u) << "one line per failed accept: " << failures.front();
  EXPECT_NE(failures.front().find("Too many open files"), std::string::npos) << failures.front();
  const std::vector<std::string> recovered = log.lines_with("accepting again");
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_NE(recovered.front().find("failed accepts"), std::string::npos) << recovered.front();
  s->stop(1s);
}

// A client that sends its request and then shuts down its sending side (as some clients and
// proxies do) still gets the whole answer; the connection closes after it.
TEST_F(HttpConnectionTest, HalfClosedClientGetsItsWholeResponse) {
  SlowDispatcher slow(*dispatcher_, 2ms);
  auto s = start(slow);
  ASSERT_TRUE(s);
  RawClient c;
  ASSERT_TRUE(c.connect(s->port()));
  ASSERT_TRUE(c.send(chat_request({{"max_tokens", 60}, {"ignore_eos", true}})));
  c.shutdown_write();
  HttpReply r = testing::parse_final_reply(c.read_to_eof());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.keep_alive);
  Json j = r.json();
  EXPECT_EQ(j["usage"]["completion_tokens"], 60) << r.body;
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  wait_answered(s->port());
  EXPECT_EQ(chat_count(s->port(), 200), 1);
  EXPECT_TRUE(std::isnan(chat_count(s->port(), 499)));
  s->stop(1s);
}

TEST_F(HttpConnectionTest, HalfClosedClientGetsItsWholeStream) {
  SlowDispatcher slow(*dispatcher_, 2ms);
  auto s = start(slow);
  ASSERT_TRUE(s);
  RawClient c;
  ASSERT_TRUE(c.connect(s->port()));
  ASSERT_TRUE(c.send(chat_request({{"max_tokens", 60},
                                   {"ignore_eos", true},
                                   {"stream", true},
                                   {"stream_options", {{"include_usage", true}}}})));
  c.shutdown_write();
  HttpReply r = testing::parse_final_reply(c.read_to_eof());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::vector<std::string> events = testing::sse_data(r.body);
  ASSERT_GE(events.size(), 3u) << r.body;
  EXPECT_EQ(events.back(), "[DONE]");
  Json usage = Json::parse(events[events.size() - 2])["usage"];
  EXPECT_EQ(usage["completion_tokens"], 60) << r.body;
  s->stop(1s);
}

// A reset is a client that went away: its request is cancelled and counted as 499, whether it
// came alone or after a half-close.
TEST_F(HttpConnectionTest, ResetCancelsTheRequest) {
  SlowDispatcher slow(*dispatcher_, 5ms);
  auto s = start(slow);
  ASSERT_TRUE(s);
  for (const bool half_closed_first : {false, true}) {
    SCOPED_TRACE(half_closed_first ? "half-closed, then reset" : "reset");
    const int64_t tokens_before = dispatcher_->stats().tokens_generated;
    RawClient c;
    ASSERT_TRUE(c.connect(s->port()));
    ASSERT_TRUE(c.send(chat_request({{"max_tokens", 900}, {"ignore_eos", true}})));
    ASSERT_TRUE(wait_in_flight());
    if (half_closed_first) {
      c.shutdown_write();
      std::this_thread::sleep_for(100ms);
      EXPECT_GT(dispatcher_->stats().requests_in_flight, 0) << "the half-close cancelled it";
    }
    c.reset();
    ASSERT_TRUE(wait_idle()) << "the reset did not cancel the request";
    EXPECT_LT(dispatcher_->stats().tokens_generated - tokens_before, 900);
  }
  wait_answered(s->port());
  EXPECT_EQ(chat_count(s->port(), 499), 2);
  EXPECT_TRUE(std::isnan(chat_count(s->port(), 200)));
  s->stop(1s);
}

}  // namespace
}  // namespace ponder::coordinator::http
