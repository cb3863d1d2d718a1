// Baseline x86-64 build of the CPU kernels: one lane, plain C++; the reference the vector builds
// are tested against.
#include <cmath>
#include <cstring>

#include "worker/backend/cpu/kernels.h"

namespace ponder::worker::cpu {
namespace generic {

struct V {
  using T = float;
  static constexpr int N = 1;
  static T zero() { return 0.0f; }
  static T set1(float a) { return a; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
  static T load_f16(const uint16_t* p) { return f16_to_f32(*p); }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
  static float reduce(T a) { return a; }
};

#include "worker/backend/cpu/kernels_impl.inc"

}  // namespace generic

const Kernels kKernelsGeneric = {"generic", generic::matmul, generic::dot, generic::axpy,
                                 generic::rms_norm_row, generic::to_f32, nullptr,
                                 generic::dot_bf16, generic::axpy_bf16, generic::matmul_q8,
    generic::quantize_rows_q8, generic::quantize_row_i8, generic::weighted_rows};

}  // namespace ponder::worker::cpu
