// CpuBackend: the reference Backend. Vectorized kernels picked at run time (kernels.h), work split
// over a ThreadPool. Used by one engine thread at a time.
#pragma once

#include <memory>

#include "worker/backend/backend.h"
#include "worker/backend/cpu/kernels.h"
#include "worker/backend/cpu/thread_pool.h"

namespace ponder::worker {

struct CpuBackendOptions {
  int n_threads = 0;           // 0: every core the process may use
  const char* isa = nullptr;   // force "avx512", "avx2" or "generic"; nullptr: best available
};

class CpuBackend final : public Backend {
 public:
  static Expected<std::unique_ptr<CpuBackend>> create(const CpuBackendOptions& options);

  std::string_view name() const override { return "cpu"; }
  const char* isa() const { return k_->isa; }
  int n_threads() const { return pool_.size(); }

  void embedding(const Tensor& table, std::span<const int32_t> ids, Tensor out) override;
  void rms_norm(Tensor x, const Tensor& weight, float eps, Tensor out) override;
  void add_rms_norm(Tensor residual, Tensor x, const Tensor& weight, float eps,
                    Tensor out) override;
  void matmul(Tensor x, const Tensor& w, const Tensor& bias, Tensor y) override;
  void rope(Tensor x, std::span<const int32_t> positions, const RopeTable& table) override;
  void kv_store(KvCache& cache, int layer, Tensor k, Tensor v, const BatchLayout& batch) override;
  void attention(Tensor q, const KvCache& cache, int layer, const BatchLayout& batch, float scale,
                 Tensor out) override;
  void swiglu(Tensor gate_up, Tensor out) override;

 private:
  CpuBackend(const cpu::Kernels* k, int n_threads) : k_(k), pool_(n_threads) {}
  const cpu::Kernels* k_;
  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;  // per thread: attention scores
};

// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

}  // namespace ponder::worker
