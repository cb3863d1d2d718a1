// Normalized mean squared error of test outputs against a reference: infinite when `got` holds a
// non-finite value (an unwritten, NaN-poisoned element) or the sizes differ. Shared by the CPU,
// CUDA and MPI parity tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace ponder::worker {

inline double nmse(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return num / std::max(den, 1e-30);
}

inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  return nmse(got.data(), want.data(), want.size());
}

}  // namespace ponder::worker
