// InProcessDispatcher: one replica of one rank inside the coordinator's process — the model, the
// backend (CPU, or one GPU) and the engine, stepped by a thread of its own. `ponder serve` uses it when the
// deployment is a single replica with tp = pp = 1; tests use it to drive the HTTP front with a
// real engine.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "coordinator/replicas/dispatcher.h"
#include "worker/backend/backend_factory.h"
#include "worker/engine/engine.h"
#include "worker/model/decoder_model.h"

namespace ponder::coordinator {

struct InProcessOptions {
  std::string model_dir;
  worker::BackendKind backend = worker::BackendKind::kCpu;
  int threads = 0;  // 0: the CPU backend's default
  worker::MatmulPrecision precision = worker::MatmulPrecision::kBf16;
  int64_t kv_cache_bytes = int64_t{256} << 20;
  worker::DType kv_dtype = worker::DType::kF32;  // or kBF16: twice the tokens in the same bytes
  worker::WeightQuant quantize = worker::WeightQuant::kNone;  // kInt8: int8 weights (CPU)
  worker::EngineOptions engine;  // thinking delimiters and token bytes: ModelText::engine_options()
  int64_t max_queued = 1024;     // requests in flight beyond which submit() says kUnavailable
};

class InProcessDispatcher final : public Dispatcher {
 public:
  static Expected<std::unique_ptr<InProcessDispatcher>> create(InProcessOptions options);
  // Stops the engine thread; requests still in flight end with finish_reason "cancelled".
  ~InProcessDispatcher() override;

  Expected<int64_t> submit(worker::EngineRequest request, OutputFn on_output) override;
  void cancel(int64_t request_id) override;
  DispatcherStats stats() const override;

  const worker::ModelConfig& config() const { return model_->config(); }
  int64_t kv_blocks() const { return cache_->config().n_blocks; }

 private:
  InProcessDispatcher() = default;
  void run();

  InProcessOptions options_;
  std::unique_ptr<worker::DecoderModel> model_;
  std::unique_ptr<worker::Backend> backend_;
  std::unique_ptr<worker::KvCache> cache_;
  std::unique_ptr<worker::LocalExecutor> executor_;
  std::unique_ptr<worker::Engine> engine_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int64_t> in_flight_{0};
  std::thread thread_;
};

}  // namespace ponder::coordinator
