// NcclCommunicator on a real GPU (skipped cleanly without one): a one-rank communicator
// bootstrapped through the Communicator interface, collectives on device buffers, and argument
// checks. Multi-rank NCCL runs use the same code under mpirun on a multi-GPU node.
#include "collective/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

#include "collective/local_communicator.h"

namespace ponder::collective {
namespace {

class NcclOneGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
      GTEST_SKIP() << "no CUDA device visible: NCCL tests need a GPU";
    LocalCommunicator bootstrap;
    auto comm = NcclCommunicator::create(bootstrap, 0, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(comm.has_value()) << comm.error().to_string();
    comm_ = std::move(*comm);
  }
  std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclOneGpu, CollectivesOnDeviceBuffers) {
  const size_t n = 1000;
  std::vector<float> host(n), back(n * 2);
  for (size_t i = 0; i < n; ++i) host[i] = float(i) * 0.5f;
  float *a = nullptr, *b = nullptr;
  ASSERT_EQ(cudaMalloc(&a, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, n * sizeof(float)), cudaSuccess);
  cudaMemcpy(a, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  auto dl = [] { return deadline_in(std::chrono::seconds(10)); };
  ASSERT_TRUE(comm_->all_reduce_sum(a, n, dl()).ok());
  ASSERT_TRUE(comm_->all_gather(a, b, n * sizeof(float), dl()).ok());
  ASSERT_TRUE(comm_->broadcast(b, n * sizeof(float), 0, dl()).ok());
  ASSERT_TRUE(comm_->barrier(dl()).ok());
  cudaMemcpy(back.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], host[i]);
  EXPECT_EQ(comm_->stats().all_reduce_bytes, n * sizeof(float));
  EXPECT_EQ(comm_->send(a, 4, 0, 0, dl()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->broadcast(a, 4, 3, dl()).code(), StatusCode::kInvalidArgument);
  cudaFree(a);
  cudaFree(b);
}

}  // namespace
}  // namespace ponder::collective
