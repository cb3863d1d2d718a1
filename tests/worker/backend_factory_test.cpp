// Choosing a backend by name: parsing, the CPU backend, and CUDA's clear refusal where this build
// lacks it or no device is visible.
#include "worker/backend/backend_factory.h"

#include <gtest/gtest.h>

namespace ponder::worker {
namespace {

TEST(BackendFactory, ParsesTheKnownNamesAndNamesTheChoicesOtherwise) {
  EXPECT_EQ(*parse_backend_kind("cpu"), BackendKind::kCpu);
  EXPECT_EQ(*parse_backend_kind("cuda"), BackendKind::kCuda);
  auto bad = parse_backend_kind("CUDA ");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("expected cpu or cuda"), std::string::npos);
  EXPECT_EQ(backend_kind_name(BackendKind::kCuda), "cuda");
}

TEST(BackendFactory, CpuBackendTakesItsOptions) {
  auto backend = create_backend({.kind = BackendKind::kCpu, .cpu = {.n_threads = 1}});
  ASSERT_TRUE(backend.has_value()) << backend.error().to_string();
  EXPECT_EQ((*backend)->name(), "cpu");
  EXPECT_NE((*backend)->description().find("1 threads"), std::string::npos)
      << (*backend)->description();
  EXPECT_EQ((*backend)->device(), host_memory().device());
}

TEST(BackendFactory, CudaIsEitherADeviceOrAnErrorThatSaysWhy) {
  auto backend = create_backend({.kind = BackendKind::kCuda});
  if (backend.has_value()) {
    EXPECT_TRUE(cuda_backend_built());
    EXPECT_EQ((*backend)->name(), "cuda");
    return;
  }
  EXPECT_EQ(backend.error().code(), StatusCode::kUnavailable);
  const std::string& why = backend.error().message();
  EXPECT_NE(why.find(cuda_backend_built() ? "no usable CUDA device" : "built without the CUDA backend"),
            std::string::npos)
      << why;
}

}  // namespace
}  // namespace ponder::worker
