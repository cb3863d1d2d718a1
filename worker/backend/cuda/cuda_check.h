// CUDA_CHECK (an invariant: a failing CUDA call there is a bug or a dead device, and the process
// stops with the call and the error named) and cuda_status (a CUDA error as a Status at a module
// boundary: out of memory → kResourceExhausted, anything else → kInternal).
#pragma once

#include <cuda_runtime_api.h>

#include "common/check.h"

#define CUDA_CHECK(expr)                                                                      \
  PONDER_DO_WHILE0(const cudaError_t _cuda_err = (expr); if (_cuda_err != cudaSuccess) {      \
    ::ponder::detail::check_failed(__FILE__, __LINE__, #expr, cudaGetErrorString(_cuda_err)); \
  })

namespace ponder::worker::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return {};
  return error(
      err == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal,
      "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

}  // namespace ponder::worker::cuda
