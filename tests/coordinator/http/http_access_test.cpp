// The API-key gate and the audit log of a real HttpServer (real sockets, the bundled tiny
// reasoner in an InProcessDispatcher): every route of the route table but /health and /metrics
// refuses a request without a key; per-key limits answer 429 with Retry-After; a reload changes
// the keys; the audit log has one line per request with no text unless asked.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/private_file.h"
#include "coordinator/http/access.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/routes.h"
#include "coordinator/replicas/in_process_dispatcher.h"
#include "http_test_client.h"
#include "prometheus_check.h"
#include "slow_dispatcher.h"
#include "tiny_model_fixture.h"

namespace ponder::coordinator::http {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::HttpReply;

const Json kChat = {{"model", "tiny-reasoner"},
                    {"max_tokens", 4},
                    {"messages", Json::array({{{"role", "user"}, {"content", "What is 17+25?"}}})}};

testing::Headers bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }

std::vector<Json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
  return lines;
}

class HttpAccessTest : public testing::TinyModelFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ponder-http-access-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A keys file of alice (no limits), bob (2 requests a minute) and carol (1 at a time).
  std::string keys_file(std::vector<ApiKeyEntry> entries = {}) {
    if (entries.empty()) {
      entries.push_back(*KeyTable::make_entry("alice", "key-alice"));
      entries.push_back(*KeyTable::make_entry("bob", "key-bob"));
      entries.back().requests_per_minute = 2;
      entries.push_back(*KeyTable::make_entry("carol", "key-carol"));
      entries.back().max_concurrent = 1;
    }
    const std::string path = dir_ + "/keys.yaml";
    EXPECT_TRUE(write_private_file(path, keys_file_text(entries)).ok());
    return path;
  }
  std::unique_ptr<HttpServer> start(ServerOptions o, Dispatcher* d = nullptr) {
    o.port = 0;
    auto s = HttpServer::start(std::move(o), *model_, d ? *d : *dispatcher_);
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }

  std::string dir_;
};

TEST_F(HttpAccessTest, EveryRouteButHealthAndMetricsNeedsAKey) {
  auto server = start({.api_keys_file = keys_file()});
  ASSERT_TRUE(server);
  int walked = 0;
  for (int r = 0; r <= static_cast<int>(Route::kUnknown); ++r) {
    const Route route = static_cast<Route>(r);
    std::string path = route == Route::kUnknown ? "/no/such/route" : endpoint_label(route);
    if (const size_t at = path.find("{model}"); at != std::string::npos)
      path.replace(at, 7, "tiny-reasoner");
    ASSERT_EQ(route_of(path), route) << path;
    const std::string method = route_method(route);
    const std::string body = method == "POST" ? kChat.dump() : "";
    for (const testing::Headers& h :
         {testing::Headers{}, bearer("wrong"), testing::Headers{{"Authorization", "key-alice"}}}) {
      const HttpReply reply = testing::http_request(server->port(), method, path, body, h);
      if (route == Route::kHealth || route == Route::kMetrics) {
        EXPECT_EQ(reply.status, 200) << path;
      } else {
        EXPECT_EQ(reply.status, 401) << method << " " << path;
        EXPECT_EQ(reply.header("www-authenticate"), "Bearer");
        EXPECT_EQ(reply.json()["error"]["code"], "invalid_api_key");
      }
    }
    // The wrong method with no key is a 401 too: nothing about a route shows without a key.
    if (route != Route::kHealth && route != Route::kMetrics) {
      const char* wrong = method == "GET" ? "DELETE" : "GET";
      EXPECT_EQ(testing::http_request(server->port(), wrong, path).status, 401);
    }
    ++walked;
  }
  EXPECT_GE(walked, 7);
  EXPECT_EQ(
      testing::post_json(server->port(), "/v1/chat/completions", kChat, bearer("key-alice")).status,
      200);
  EXPECT_EQ(testing::http_request(server->port(), "GET", "/no/such/route", "", bearer("key-alice"))
                .status,
            404);
}

TEST_F(HttpAccessTest, LimitsAnswer429WithRetryAfterPerKey) {
  testing::SlowDispatcher slow(*dispatcher_, 20ms);
  auto server = start({.api_keys_file = keys_file()}, &slow);
  ASSERT_TRUE(server);
  const uint16_t port = server->port();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-bob")).status, 200);
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-bob")).status, 200);
  const HttpReply limited = testing::http_request(port, "GET", "/v1/models", "", bearer("key-bob"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.json()["error"]["code"], "rate_limit_exceeded");
  // The first request leaves the minute's window 60 s after it was admitted.
  const int retry = std::stoi(limited.header("retry-after"));
  const auto waited =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
  EXPECT_GE(retry, 60 - waited.count() - 1);
  EXPECT_LE(retry, 60);
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-alice")).status, 200);

  // carol: one request at a time. Hers is a slow generation; a second one meanwhile is refused.
  Json slow_chat = kChat;
  slow_chat["max_tokens"] = 200;
  slow_chat["min_tokens"] = 200;
  std::thread first([&] {
    EXPECT_EQ(
        testing::post_json(port, "/v1/chat/completions", slow_chat, bearer("key-carol")).status,
        200);
  });
  // Once her generation runs (the metrics say so), a second request of hers is refused.
  bool running = false;
  for (int i = 0; i < 1000 && !running; ++i) {
    std::vector<testing::PrometheusSample> samples;
    testing::check_prometheus_text(testing::http_request(port, "GET", "/metrics").body, &samples);
    running = testing::prometheus_value(samples, "ponder_http_requests_in_progress") == 1;
    if (!running) std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(running);
  const HttpReply second =
      testing::http_request(port, "GET", "/v1/models", "", bearer("key-carol"));
  const bool refused = second.status == 429;
  EXPECT_EQ(second.header("retry-after"), "1");
  first.join();
  EXPECT_TRUE(refused) << "a second concurrent request of carol was admitted";
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-carol")).status, 200);
}

TEST_F(HttpAccessTest, AReloadTakesNewKeysAndABadFileKeepsTheOld) {
  auto server = start({.api_keys_file = keys_file()});
  ASSERT_TRUE(server);
  const uint16_t port = server->port();
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-dave")).status, 401);
  keys_file({*KeyTable::make_entry("dave", "key-dave")});
  ASSERT_TRUE(server->reload_api_keys().ok());
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-dave")).status, 200);
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-alice")).status, 401);
  std::ofstream(dir_ + "/keys.yaml") << "keys: [";
  const Status bad = server->reload_api_keys();
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("keys.yaml"), std::string::npos) << bad.message();
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("key-dave")).status, 200);
}

TEST_F(HttpAccessTest, TheAuditLogHasALinePerRequestAndNoTextUnlessAsked) {
  const std::string log = dir_ + "/audit.jsonl";
  {
    auto server = start({.api_keys_file = keys_file(), .audit_log = log});
    ASSERT_TRUE(server);
    const uint16_t port = server->port();
    const HttpReply chat =
        testing::post_json(port, "/v1/chat/completions", kChat,
                           {{"Authorization", "Bearer key-alice"}, {"X-Request-Id", "trace-7"}});
    ASSERT_EQ(chat.status, 200);
    EXPECT_EQ(chat.header("x-request-id"), "trace-7");
    EXPECT_EQ(testing::http_request(port, "GET", "/v1/models", "", bearer("nope")).status, 401);
    const HttpReply health = testing::http_request(port, "GET", "/health");
    EXPECT_EQ(health.header("x-request-id").substr(0, 4), "req-");
    server->stop(0ms);
    const std::vector<Json> lines = read_lines(log);
    ASSERT_EQ(lines.size(), 3u);
    const Json& c = lines[0];
    EXPECT_EQ(c["key_id"], "alice");
    EXPECT_EQ(c["request_id"], "trace-7");
    EXPECT_EQ(c["route"], "/v1/chat/completions");
    EXPECT_EQ(c["method"], "POST");
    EXPECT_EQ(c["status"], 200);
    EXPECT_EQ(c["client"], "127.0.0.1");
    EXPECT_EQ(c["id"], chat.json()["id"]);
    EXPECT_EQ(c["prompt_tokens"], chat.json()["usage"]["prompt_tokens"]);
    EXPECT_EQ(c["completion_tokens"], 4);
    EXPECT_GT(c["duration_ms"].get<double>(), 0);
    EXPECT_FALSE(c.contains("request"));
    EXPECT_FALSE(c.contains("output"));
    EXPECT_EQ(lines[0].dump().find("17+25"), std::string::npos);
    EXPECT_TRUE(lines[1]["key_id"].is_null());
    EXPECT_EQ(lines[1]["status"], 401);
    EXPECT_EQ(lines[2]["route"], "/health");
  }
  struct stat st {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::filesystem::remove(log);
  auto server = start({.audit_log = log, .audit_log_text = true});
  ASSERT_TRUE(server);
  Json streamed = kChat;
  streamed["stream"] = true;
  const HttpReply chat = testing::post_json(server->port(), "/v1/chat/completions", streamed);
  ASSERT_EQ(chat.status, 200);
  server->stop(0ms);
  const std::vector<Json> lines = read_lines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["request"][0]["content"], "What is 17+25?");
  ASSERT_EQ(lines[0]["output"].size(), 1u);
  const Json& out = lines[0]["output"][0];
  EXPECT_FALSE(out["reasoning"].get<std::string>().empty() &&
               out["content"].get<std::string>().empty());
  EXPECT_EQ(lines[0]["completion_tokens"], 4);
}

// A dispatcher whose replicas are healthy by their heartbeats but whose engine fails every
// request: what only the deep health check sees.
class BrokenEngine final : public Dispatcher {
 public:
  explicit BrokenEngine(Dispatcher& inner) : inner_(inner) {}
  Expected<int64_t> submit(worker::EngineRequest, OutputFn fn) override {
    std::thread([fn = std::move(fn)] {
      worker::EngineOutput out;
      out.finished = true;
      out.finish_reason = "error";
      out.error = "rank 1: CUDA error 700";
      fn(out);
    }).detach();
    return 1;
  }
  void cancel(int64_t) override {}
  DispatcherStats stats() const override { return inner_.stats(); }

 private:
  Dispatcher& inner_;
};

TEST_F(HttpAccessTest, DeepHealthGeneratesOneTokenWithoutAKey) {
  auto server = start({.api_keys_file = keys_file()});
  ASSERT_TRUE(server);
  const HttpReply plain = testing::http_request(server->port(), "GET", "/health");
  EXPECT_EQ(plain.status, 200);
  EXPECT_FALSE(plain.json().contains("generate"));
  const HttpReply deep = testing::http_request(server->port(), "GET", "/health?generate=true");
  ASSERT_EQ(deep.status, 200) << deep.body;
  EXPECT_EQ(deep.json()["status"], "ok");
  EXPECT_EQ(deep.json()["generate"]["ok"], true);
  EXPECT_EQ(deep.json()["generate"]["tokens"], 1);
  EXPECT_GT(deep.json()["generate"]["latency_ms"].get<double>(), 0);
  EXPECT_EQ(testing::http_request(server->port(), "GET", "/health?x=1&generate=1")
                .json()["generate"]["ok"],
            true);
  EXPECT_FALSE(testing::http_request(server->port(), "GET", "/health?generate=no")
                   .json()
                   .contains("generate"));

  BrokenEngine broken(*dispatcher_);
  auto sick = start({}, &broken);
  ASSERT_TRUE(sick);
  EXPECT_EQ(testing::http_request(sick->port(), "GET", "/health").status,
            200);  // heartbeats look fine
  const HttpReply failed = testing::http_request(sick->port(), "GET", "/health?generate=true");
  EXPECT_EQ(failed.status, 503);
  EXPECT_EQ(failed.header("retry-after"), "1");
  EXPECT_EQ(failed.json()["status"], "unavailable");
  EXPECT_EQ(failed.json()["reason"], "rank 1: CUDA error 700");
  EXPECT_EQ(failed.json()["generate"]["ok"], false);
}

}  // namespace
}  // namespace ponder::coordinator::http
