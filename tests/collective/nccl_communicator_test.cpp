// NcclCommunicator on a real GPU (skipped cleanly without one): a one-rank communicator
// bootstrapped through the Communicator interface, every collective on device buffers (zero
// lengths included), argument checks, an external stream, and the deadline logic — a peer that
// never joins makes creation fail with kTimeout within the deadline (the half-made communicator
// aborted), a failing bootstrap is returned as is. Multi-rank runs: nccl_mpi_main.cpp.
#include "collective/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

#include "collective/local_communicator.h"

namespace ponder::collective {
namespace {

bool have_gpu() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return devices > 0;
}

#define SKIP_WITHOUT_GPU()                                             \
  do {                                                                 \
    if (!have_gpu()) {                                                 \
      GTEST_SKIP() << "no CUDA device visible: NCCL tests need a GPU"; \
    }                                                                  \
  } while (0)

auto dl() { return deadline_in(std::chrono::seconds(10)); }

class NcclOneGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    LocalCommunicator bootstrap;
    auto comm = NcclCommunicator::create(bootstrap, 0, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(comm.has_value()) << comm.error().to_string();
    comm_ = std::move(*comm);
  }
  void TearDown() override {
    for (void* p : buffers_) cudaFree(p);
  }
  float* device_floats(const std::vector<float>& host) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(1, host.size()) * sizeof(float)), cudaSuccess);
    if (!host.empty())
      cudaMemcpy(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
    buffers_.push_back(p);
    return static_cast<float*>(p);
  }
  std::vector<float> host_floats(const float* p, size_t n) {
    std::vector<float> out(n);
    if (n > 0) cudaMemcpy(out.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost);
    return out;
  }
  std::unique_ptr<NcclCommunicator> comm_;
  std::vector<void*> buffers_;
};

TEST_F(NcclOneGpu, CollectivesOnDeviceBuffers) {
  const size_t n = 1000;
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i) host[i] = float(i) * 0.5f;
  float* a = device_floats(host);
  float* b = device_floats(std::vector<float>(n, -1.0f));
  ASSERT_TRUE(comm_->all_reduce_sum(a, n, dl()).ok());
  ASSERT_TRUE(comm_->all_gather(a, b, n * sizeof(float), dl()).ok());
  ASSERT_TRUE(comm_->broadcast(b, n * sizeof(float), 0, dl()).ok());
  ASSERT_TRUE(comm_->barrier(dl()).ok());
  EXPECT_EQ(host_floats(b, n), host);
  float* c = device_floats(std::vector<float>(n, 7.0f));
  ASSERT_TRUE(comm_->reduce_scatter_sum(a, c, n, dl()).ok());
  EXPECT_EQ(host_floats(c, n), host);
  EXPECT_EQ(comm_->stats().all_reduce_bytes, n * sizeof(float));
  EXPECT_EQ(comm_->stats().all_gather_bytes, n * sizeof(float));
  EXPECT_EQ(comm_->stats().reduce_scatter_bytes, n * sizeof(float));
  EXPECT_EQ(comm_->send(a, 4, 0, 0, dl()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->recv(a, 4, 1, 0, dl()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->broadcast(a, 4, 3, dl()).code(), StatusCode::kInvalidArgument);
  // Argument errors do not break the communicator.
  EXPECT_TRUE(comm_->barrier(dl()).ok());
}

TEST_F(NcclOneGpu, ZeroLengthOperationsSucceed) {
  float* a = device_floats({});
  EXPECT_TRUE(comm_->all_reduce_sum(a, 0, dl()).ok());
  EXPECT_TRUE(comm_->all_gather(a, a, 0, dl()).ok());
  EXPECT_TRUE(comm_->reduce_scatter_sum(a, a, 0, dl()).ok());
  EXPECT_TRUE(comm_->broadcast(a, 0, 0, dl()).ok());
}

TEST(NcclCreate, RunsOnACallersStream) {
  SKIP_WITHOUT_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    LocalCommunicator bootstrap;
    auto comm = NcclCommunicator::create(bootstrap, 0, dl(), stream);
    ASSERT_TRUE(comm.has_value()) << comm.error().to_string();
    EXPECT_EQ((*comm)->stream(), stream);
    float* a = nullptr;
    ASSERT_EQ(cudaMalloc(&a, 64 * sizeof(float)), cudaSuccess);
    EXPECT_TRUE((*comm)->all_reduce_sum(a, 64, dl()).ok());
    cudaFree(a);
  }
  // The communicator left the caller's stream alone.
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaStreamDestroy(stream);
}

// Rank 0 of a group of two whose other rank never shows up: broadcasting the unique id "works"
// (rank 0 is the root), then NCCL waits for the peer.
class LonelyRankZero final : public Communicator {
 public:
  explicit LonelyRankZero(StatusCode broadcast_result = StatusCode::kOk)
      : broadcast_result_(broadcast_result) {}
  std::string_view backend() const override { return "test"; }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  Status all_reduce_sum(float*, size_t, Deadline) override { return unavailable(); }
  Status all_gather(const void*, void*, size_t, Deadline) override { return unavailable(); }
  Status reduce_scatter_sum(const float*, float*, size_t, Deadline) override {
    return unavailable();
  }
  Status broadcast(void*, size_t, int, Deadline) override {
    if (broadcast_result_ == StatusCode::kOk) return {};
    return Status(broadcast_result_, "bootstrap peer vanished");
  }
  Status send(const void*, size_t, int, int, Deadline) override { return unavailable(); }
  Status recv(void*, size_t, int, int, Deadline) override { return unavailable(); }
  Status barrier(Deadline) override { return unavailable(); }
  Status all_to_all(const void*, const size_t*, void*, const size_t*, Deadline) override {
    return unavailable();
  }

 private:
  static Status unavailable() { return Status(StatusCode::kUnavailable, "not in this test"); }
  StatusCode broadcast_result_;
};

TEST(NcclCreate, PeerThatNeverJoinsTimesOutWithinTheDeadline) {
  SKIP_WITHOUT_GPU();
  LonelyRankZero bootstrap;
  const auto t0 = Clock::now();
  auto comm = NcclCommunicator::create(bootstrap, 0, deadline_in(std::chrono::seconds(3)));
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(comm.has_value());
  EXPECT_EQ(comm.error().code(), StatusCode::kTimeout) << comm.error().to_string();
  EXPECT_GE(waited, 2.9);
  EXPECT_LT(waited, 20.0) << "creation (and its abort) must not outlive the deadline by much";
}

TEST(NcclCreate, BootstrapFailureIsReturned) {
  SKIP_WITHOUT_GPU();
  LonelyRankZero bootstrap(StatusCode::kRemote);
  auto comm = NcclCommunicator::create(bootstrap, 0, dl());
  ASSERT_FALSE(comm.has_value());
  EXPECT_EQ(comm.error().code(), StatusCode::kRemote) << comm.error().to_string();
}

}  // namespace
}  // namespace ponder::collective
