// The ZeroMQ replica pool with real replica processes: `ponder replica` ranks under mpirun, a
// real ROUTER/DEALER link over tcp on loopback, and SIGKILL for replica loss.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "coordinator/replicas/in_process_dispatcher.h"
#include "common/process_tree.h"
#include "coordinator/replicas/replica_pool.h"
#include "coordinator/replicas/wire.h"
#include "replica_test_support.h"

namespace ponder::coordinator {
namespace {

using namespace std::chrono_literals;
using namespace ponder::coordinator::replica_test;

class ReplicaPoolTest : public ::testing::Test {
 protected:
  void start_pool(std::chrono::milliseconds heartbeat_timeout = 1500ms) {
    auto pool = ReplicaPool::start({.model = "test-model",
                                    .heartbeat = 50ms,
                                    .heartbeat_timeout = heartbeat_timeout});
    ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
    pool_ = std::move(*pool);
  }
  void add_replicas(int count, int tp = 1, int pp = 1, const std::string& model = kModel,
                    const std::vector<std::string>& extra = {}) {
    for (int i = 0; i < count; ++i)
      groups_.push_back(start_replica(pool_->endpoint(), tp, pp, model, extra));
    const auto until = std::chrono::steady_clock::now() + 120s;
    Status st;
    do {
      st = pool_->wait_for_replicas(static_cast<int>(groups_.size()), 100ms);
      for (pid_t g : groups_) ASSERT_EQ(waitpid(g, nullptr, WNOHANG), 0) << "a replica exited at start";
    } while (!st.ok() && std::chrono::steady_clock::now() < until);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  // Outputs reach the caller before the pool retires their request: wait for that.
  void settle() {
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (pool_->stats().requests_in_flight > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
  }
  void TearDown() override {
    if (pool_) pool_->drain(2s);
    for (pid_t g : groups_) {
      signal_tree(g, SIGKILL);  // mpirun and its ranks (each in a group of its own)
      waitpid(g, nullptr, 0);
    }
    pool_.reset();
  }
  std::unique_ptr<ReplicaPool> pool_;
  std::vector<pid_t> groups_;
};

TEST_F(ReplicaPoolTest, RemoteReplicasGiveWhatTheInProcessEngineGives) {
  auto local = InProcessDispatcher::create({.model_dir = kModel, .threads = 1,
                                            .kv_cache_bytes = 8 << 20});
  ASSERT_TRUE(local.has_value()) << local.error().to_string();
  const auto requests = mixed_requests();
  auto expected = run_all(**local, requests);

  start_pool();
  add_replicas(2);
  auto got = run_all(*pool_, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    for (int32_t s = 0; s < requests[i].n; ++s) {
      EXPECT_EQ(got[i].tokens[s], expected[i].tokens[s]) << "request " << i << " sample " << s;
      EXPECT_EQ(got[i].finish[s], "length");
      EXPECT_EQ(got[i].usage[s].completion_tokens, requests[i].max_tokens);
      EXPECT_EQ(got[i].usage[s].prompt_tokens, static_cast<int64_t>(requests[i].prompt.size()));
    }
  }
  settle();
  auto stats = pool_->stats();
  EXPECT_EQ(stats.healthy_replicas, 2);
  EXPECT_EQ(stats.requests_in_flight, 0);
  // Nominal FLOPs come over the wire as the in-process engine counts them.
  for (size_t i = 0; i < requests.size(); ++i)
    for (int32_t s = 0; s < requests[i].n; ++s) {
      EXPECT_GT(got[i].usage[s].nominal_flops, 0) << "request " << i << " sample " << s;
      EXPECT_EQ(got[i].usage[s].nominal_flops, expected[i].usage[s].nominal_flops)
          << "request " << i << " sample " << s;
    }
}

// Heartbeats carry the replicas' prefill counts: n samples on one replica prefill once, three
// prompts three times, a repeated prompt once more but mostly from the prefix cache.
TEST_F(ReplicaPoolTest, PrefillsAndComputedPromptTokensComeWithTheHeartbeats) {
  start_pool();
  add_replicas(1);
  // The figures of the heartbeat after the last request finished.
  auto settled = [&](int64_t prefills) {
    settle();
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (pool_->stats().prefills < prefills && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(150ms);  // a later heartbeat must not change them
    return pool_->stats();
  };
  worker::EngineRequest r{.prompt = {}, .n = 4, .sampling = {.temperature = 1.0f, .seed = 3},
                          .max_tokens = 5, .ignore_eos = true};
  for (int t = 0; t < 40; ++t) r.prompt.push_back((t * 29 + 7) % 353);
  run_all(*pool_, {r});
  DispatcherStats one = settled(1);
  EXPECT_EQ(one.prefills, 1);
  EXPECT_EQ(one.prompt_tokens_computed, 40);
  std::vector<worker::EngineRequest> three;
  for (int i = 0; i < 3; ++i)
    three.push_back(
        {.prompt = std::vector<int32_t>(10 + i, 100 + i), .max_tokens = 3, .ignore_eos = true});
  run_all(*pool_, three);
  DispatcherStats four = settled(4);
  EXPECT_EQ(four.prefills, 4);
  EXPECT_EQ(four.prompt_tokens_computed, 40 + 10 + 11 + 12);
  r.n = 1;
  auto again = run_all(*pool_, {r});
  EXPECT_EQ(again[0].usage[0].cached_prompt_tokens, 32);  // 2 blocks of 16
  DispatcherStats five = settled(5);
  EXPECT_EQ(five.prefills, 5);
  EXPECT_EQ(five.prompt_tokens_computed, 40 + 33 + 8);
}

// n samples that do not fit in one replica's sequence slots are spread over both replicas, and
// each sample keeps its seed: the tokens are those of one engine running all n.
TEST_F(ReplicaPoolTest, SamplesBeyondAReplicasSlotsSpreadWithTheSameTokens) {
  worker::EngineRequest r{.prompt = {}, .n = 6,
                          .sampling = {.temperature = 0.9f, .seed = 41},
                          .max_tokens = 12, .ignore_eos = true};
  for (int t = 0; t < 21; ++t) r.prompt.push_back((t * 13 + 5) % 353);
  auto local = InProcessDispatcher::create({.model_dir = kModel, .threads = 1,
                                            .kv_cache_bytes = 8 << 20});
  ASSERT_TRUE(local.has_value()) << local.error().to_string();
  auto expected = run_all(**local, {r});

  start_pool();
  add_replicas(2, 1, 1, kModel, {"--max-running", "4"});
  auto got = run_all(*pool_, {r});
  for (int32_t s = 0; s < r.n; ++s) {
    EXPECT_EQ(got[0].tokens[s], expected[0].tokens[s]) << "sample " << s;
    EXPECT_EQ(got[0].usage[s].completion_tokens, r.max_tokens);
  }
  settle();
  EXPECT_EQ(pool_->stats().spread_requests, 1);
  // Two samples fit on one replica: they stay together.
  r.n = 2;
  run_all(*pool_, {r});
  settle();
  EXPECT_EQ(pool_->stats().spread_requests, 1);
}

TEST_F(ReplicaPoolTest, TensorParallelReplicaGivesTheSameTokens) {
  auto local = InProcessDispatcher::create({.model_dir = kModel, .threads = 1,
                                            .kv_cache_bytes = 8 << 20});
  ASSERT_TRUE(local.has_value()) << local.error().to_string();
  auto requests = mixed_requests();
  auto expected = run_all(**local, requests);
  start_pool();
  add_replicas(1, /*tp=*/2);
  auto got = run_all(*pool_, requests);
  for (size_t i = 0; i < requests.size(); ++i)
    for (int32_t s = 0; s < requests[i].n; ++s)
      EXPECT_EQ(got[i].tokens[s], expected[i].tokens[s]) << "request " << i << " sample " << s;
}

TEST_F(ReplicaPoolTest, KilledReplicaItsRequestsFinishOnTheOtherThenFailCleanlyWhenNoneIsLeft) {
  start_pool(/*heartbeat_timeout=*/1500ms);
  add_replicas(2, 1, 1, kSlowModel);
  Collector c;
  const int kRequests = 4, kTokens = 120;
  for (int i = 0; i < kRequests; ++i) {
    worker::EngineRequest r{.prompt = {1, 2, 3, static_cast<int32_t>(i)}, .n = 2,
                            .sampling = {.temperature = 0.9f, .seed = 7u + i},
                            .max_tokens = kTokens, .ignore_eos = true};
    ASSERT_TRUE(pool_->submit(r, c.fn(i)).has_value());
  }
  // Kill one replica's whole process group once tokens flow.
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (c.tokens_so_far() < 40 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_GE(c.tokens_so_far(), 40);
  signal_tree(groups_[0], SIGKILL);
  ASSERT_TRUE(c.wait(kRequests * 2, 60s)) << "requests were left hanging";
  for (int i = 0; i < kRequests; ++i) {
    Result r = c.get(i);
    for (int s = 0; s < 2; ++s) {
      EXPECT_EQ(r.finish[s], "length") << i << "/" << s << ": " << r.error[s];
      EXPECT_EQ(r.tokens[s].size(), static_cast<size_t>(kTokens)) << i << "/" << s;
      EXPECT_EQ(r.usage[s].completion_tokens, kTokens);
      EXPECT_EQ(r.usage[s].prompt_tokens, 4);
    }
  }
  auto one_left_by = std::chrono::steady_clock::now() + 5s;
  while ((pool_->stats().healthy_replicas > 1 || pool_->stats().requests_in_flight > 0) &&
         std::chrono::steady_clock::now() < one_left_by)
    std::this_thread::sleep_for(10ms);
  auto stats = pool_->stats();
  EXPECT_EQ(stats.healthy_replicas, 1);
  EXPECT_EQ(stats.requests_in_flight, 0);
  // The samples that moved went on as they would have: the same requests on the survivor, with
  // no loss, give the same tokens (the sampler resumed its RNG and counts, issue #17 item 5).
  Collector again;
  for (int i = 0; i < kRequests; ++i) {
    worker::EngineRequest r{.prompt = {1, 2, 3, static_cast<int32_t>(i)}, .n = 2,
                            .sampling = {.temperature = 0.9f, .seed = 7u + i},
                            .max_tokens = kTokens, .ignore_eos = true};
    ASSERT_TRUE(pool_->submit(r, again.fn(i)).has_value());
  }
  ASSERT_TRUE(again.wait(kRequests * 2, 120s));
  for (int i = 0; i < kRequests; ++i)
    for (int s = 0; s < 2; ++s) EXPECT_EQ(again.get(i).tokens[s], c.get(i).tokens[s]) << i << "/" << s;

  // The last replica goes too: what is in flight fails with a clear error, and new work is refused.
  Collector c2;
  ASSERT_TRUE(pool_->submit({.prompt = {5, 6, 7}, .max_tokens = 2000, .ignore_eos = true}, c2.fn(0)).has_value());
  while (c2.tokens_so_far() < 5 && std::chrono::steady_clock::now() < until + 30s) std::this_thread::sleep_for(1ms);
  signal_tree(groups_[1], SIGKILL);
  ASSERT_TRUE(c2.wait(1, 30s));
  Result last = c2.get(0);
  EXPECT_EQ(last.finish[0], "error");
  EXPECT_NE(last.error[0].find("no replica is alive"), std::string::npos) << last.error[0];
  const auto dead_by = std::chrono::steady_clock::now() + 5s;
  while (pool_->stats().healthy_replicas > 0 && std::chrono::steady_clock::now() < dead_by)
    std::this_thread::sleep_for(10ms);
  auto refused = pool_->submit({.prompt = {1}, .max_tokens = 1}, nullptr);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kUnavailable);
}

TEST_F(ReplicaPoolTest, CancelEndsTheRequestAndTheReplicaFreesItsBlocks) {
  start_pool();
  add_replicas(1, 1, 1, kSlowModel);
  Collector c;
  auto id = pool_->submit({.prompt = {1, 2, 3}, .n = 4, .max_tokens = 2000, .ignore_eos = true}, c.fn(0));
  ASSERT_TRUE(id.has_value());
  while (c.tokens_so_far() < 8) std::this_thread::sleep_for(1ms);
  pool_->cancel(*id);
  ASSERT_TRUE(c.wait(4, 10s));
  Result r = c.get(0);
  for (int s = 0; s < 4; ++s) EXPECT_EQ(r.finish[s], "cancelled");
  // The next heartbeats report every block back in the pool.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (pool_->stats().kv_blocks_used > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(pool_->stats().kv_blocks_used, 0);
  settle();
  EXPECT_EQ(pool_->stats().requests_in_flight, 0);
}

TEST_F(ReplicaPoolTest, AnotherProtocolVersionOrModelIsRefusedWithAnError) {
  start_pool();
  zmq::context_t ctx;
  auto exchange = [&](wire::Envelope e, bool stamp) {
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::rcvtimeo, 5000);
    dealer.connect(pool_->endpoint());
    zmq::message_t frame = encode(e);
    if (!stamp) {  // re-encode with a version of the future
      e.set_version(99);
      std::string bytes = e.SerializeAsString();
      frame = zmq::message_t(bytes.data(), bytes.size());
    }
    dealer.send(frame, zmq::send_flags::none);
    zmq::message_t reply;
    EXPECT_TRUE(dealer.recv(reply));
    auto answer = decode(reply);
    EXPECT_TRUE(answer.has_value());
    return *answer;
  };
  wire::Envelope reg;
  reg.mutable_register_()->set_model("test-model");
  wire::Envelope a = exchange(reg, /*stamp=*/false);
  ASSERT_TRUE(a.has_error());
  EXPECT_TRUE(a.error().fatal());
  EXPECT_NE(a.error().message().find("version 99"), std::string::npos) << a.error().message();

  reg.mutable_register_()->set_model("another-model");
  wire::Envelope b = exchange(reg, /*stamp=*/true);
  ASSERT_TRUE(b.has_error());
  EXPECT_NE(b.error().message().find("another-model"), std::string::npos) << b.error().message();
  EXPECT_EQ(pool_->stats().replicas, 0);
}

}  // namespace
}  // namespace ponder::coordinator
