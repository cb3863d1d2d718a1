// Run-time choice of the CPU kernel table.
#include "worker/backend/cpu/kernels.h"

#include <cstring>

namespace ponder::worker::cpu {
namespace {

bool supports(const char* isa) {
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  if (std::strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  return std::strcmp(isa, "generic") == 0;
}

}  // namespace

const Kernels* kernels_for(const char* isa) {
  if (!supports(isa)) return nullptr;
  if (std::strcmp(isa, "avx512") == 0) {
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni"))
      return &kKernelsAvx512Bf16;
    return &kKernelsAvx512;
  }
  if (std::strcmp(isa, "avx2") == 0) return &kKernelsAvx2;
  return &kKernelsGeneric;
}

const Kernels& kernels() {
  static const Kernels* chosen = [] {
    for (const char* isa : {"avx512", "avx2"}) {
      if (const Kernels* k = kernels_for(isa)) return k;
    }
    return &kKernelsGeneric;
  }();
  return *chosen;
}

}  // namespace ponder::worker::cpu
