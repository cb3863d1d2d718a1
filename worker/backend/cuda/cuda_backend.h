// CudaBackend: the Backend on one NVIDIA GPU. Tensors live in the GPU's memory (memory()): the
// model's weights are moved there once (DecoderModel::move_to), the KV cache and activations are
// allocated there; ops are kernels and cuBLASLt calls queued on one stream. begin_step() uploads
// the batch layout once per forward step; decode steps (every sequence one token, no collectives)
// are padded to a batch-size bucket and recorded as CUDA graphs, then replayed (step_graphs.h).
// Activations f32; matmuls round f32 activations to the weights' dtype (bf16/f16) and accumulate
// in f32, f32 weights use f32 GEMMs. Used by one engine thread at a time; one device per process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "worker/backend/backend.h"
#include "worker/backend/cuda/graph_stats.h"

namespace ponder::worker {

struct CudaBackendOptions {
  int device = 0;
  // Decode steps of up to this many sequences are padded to a bucket (1, 2, 4, 8, 16, 24, 32, 48,
  // 64, 96, 128, then multiples of 64) and replayed as CUDA graphs; 0 turns graphs off.
  int graph_max_batch = 64;
};

// CUDA devices this process can see: 0 without a driver or a device (never fails).
int cuda_device_count();
// Why there is none ("CUDA driver version is insufficient…", "no CUDA-capable device…").
std::string cuda_unavailable_reason();

class CudaBackend final : public Backend {
 public:
  // kUnavailable when no device is visible.
  static Expected<std::unique_ptr<CudaBackend>> create(const CudaBackendOptions& options = {});
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  MemorySpace& memory() const override;
  StepShape begin_step(const BatchLayout& batch, const StepOptions& options) override;
  Status end_step() override;
  Status synchronize() override;

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
  void copy_columns(Tensor src, int64_t src_col, Tensor dst, int64_t dst_col,
                    int64_t cols) override;
  void add(Tensor x, Tensor y) override;
  void gather_rows(Tensor src, std::span<const int32_t> rows, Tensor dst) override;
  void head_matmul(Tensor x, int64_t x_stride, const Tensor& w, int64_t heads, Tensor y,
                   int64_t y_stride) override;
  void scatter_add_rows(Tensor src, std::span<const int32_t> rows, std::span<const float> scales,
                        Tensor dst) override;
  void zero(Tensor x) override;
  // MLA and MoE models run on the CPU backend only, for now.
  Status supports(const ModelConfig& config) const override;

  // Fills a device tensor (f32, f16, bf16) with mean + halfwidth · U[-1, 1) from `seed`
  // (random-weight models made on the device).
  void fill_random(Tensor t, float mean, float halfwidth, uint64_t seed);
  // The cudaStream_t every op is queued on (device sampling and benchmarks queue there too).
  void* stream() const;
  int device_index() const;
  int multiprocessors() const;
  std::string description() const override;
  const cuda::GraphStats& graph_stats() const;

 private:
  struct Impl;
  explicit CudaBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder::worker
