#include "coordinator/replicas/in_process_dispatcher.h"

#include <chrono>

#include "common/check.h"
#include "common/log.h"

namespace ponder::coordinator {

Expected<std::unique_ptr<InProcessDispatcher>> InProcessDispatcher::create(InProcessOptions options) {
  std::unique_ptr<InProcessDispatcher> d(new InProcessDispatcher());
  d->options_ = std::move(options);
  const InProcessOptions& o = d->options_;
  PONDER_ASSIGN_OR_RETURN(d->model_, worker::DecoderModel::load(o.model_dir, {.quantize = o.quantize}));
  PONDER_ASSIGN_OR_RETURN(
      d->backend_,
      worker::create_backend(
          {.kind = o.backend, .cpu = {.n_threads = o.threads, .precision = o.precision}}));
  PONDER_RETURN_IF_ERROR(d->model_->move_to(*d->backend_));
  worker::KvCacheConfig probe = d->model_->kv_cache_config(1, 16, o.kv_dtype);
  const int64_t n_blocks = o.kv_cache_bytes / worker::KvCache::block_bytes(probe);
  if (n_blocks < 2)
    return error(StatusCode::kInvalidArgument,
                 "kv_cache_bytes %lld holds fewer than 2 KV blocks of %lld bytes",
                 (long long)o.kv_cache_bytes, (long long)worker::KvCache::block_bytes(probe));
  PONDER_ASSIGN_OR_RETURN(worker::KvCache cache,
                          worker::KvCache::create(d->model_->kv_cache_config(n_blocks, 16, o.kv_dtype),
                                                  d->backend_->memory()));
  d->cache_ = std::make_unique<worker::KvCache>(std::move(cache));
  d->executor_ = std::make_unique<worker::LocalExecutor>(*d->model_, *d->backend_, *d->cache_);
  d->engine_ = std::make_unique<worker::Engine>(*d->executor_, o.engine);
  PONDER_LOG(kInfo, "replica", "in-process replica: %s, %.1f M parameters, %lld KV blocks, %s backend (%s)",
             o.model_dir.c_str(), d->model_->config().total_params() / 1e6, (long long)n_blocks,
             std::string(d->backend_->name()).c_str(), d->backend_->description().c_str());
  d->thread_ = std::thread([raw = d.get()] { raw->run(); });
  return d;
}

void InProcessDispatcher::run() {
  Status st = engine_->run(stop_);
  if (!st.ok()) {
    failed_ = true;
    PONDER_LOG(kError, "replica", "engine stopped: %s", st.to_string().c_str());
  }
}

InProcessDispatcher::~InProcessDispatcher() {
  if (!thread_.joinable()) return;
  // Cancel what is left and let the engine report it before the thread goes.
  engine_->cancel_all();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (in_flight_.load() > 0 && !failed_.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop_ = true;
  thread_.join();
}

Expected<int64_t> InProcessDispatcher::submit(worker::EngineRequest request, OutputFn on_output) {
  if (failed_.load()) return error(StatusCode::kUnavailable, "the replica's engine has stopped");
  if (in_flight_.load() >= options_.max_queued)
    return error(StatusCode::kUnavailable, "%lld requests in flight: the queue is full",
                 (long long)in_flight_.load());
  // The request counts as in flight until each of its samples has finished.
  auto remaining = std::make_shared<int32_t>(request.n);
  ++in_flight_;
  auto id = engine_->enqueue(std::move(request),
                             [this, remaining, fn = std::move(on_output)](const worker::EngineOutput& o) {
                               fn(o);
                               if (o.finished && --*remaining == 0) --in_flight_;
                             });
  if (!id) --in_flight_;
  return id;
}

void InProcessDispatcher::cancel(int64_t request_id) { engine_->cancel(request_id); }

DispatcherStats InProcessDispatcher::stats() const {
  worker::EngineStats e = engine_->stats();
  const bool alive = !failed_.load();
  return {.replicas = 1,
          .healthy_replicas = alive ? 1 : 0,
          .requests_in_flight = in_flight_.load(),
          .waiting = e.waiting,
          .running = e.running,
          .kv_blocks_used = e.kv_blocks_used,
          .kv_blocks_free = e.kv_blocks_free,
          .kv_tokens_per_replica = cache_->config().n_blocks * cache_->config().block_size,
          .kv_bytes_per_token = worker::KvCache::block_bytes(cache_->config()) / cache_->config().block_size,
          .prefix_cache_queries = e.prefix_cache_queries,
          .prefix_cache_hits = e.prefix_cache_hits,
          .tokens_generated = e.tokens_generated,
          .preemptions = e.preemptions,
          .prefills = e.prefills,
          .prompt_tokens_computed = e.prompt_tokens_computed};
}

}  // namespace ponder::coordinator
