// ThreadPool: a fixed set of workers that run parallel_for ranges; the calling thread takes part.
// Workers spin briefly between jobs (decode issues hundreds of small jobs per token) and then
// sleep on an atomic wait. One caller at a time (the engine thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace ponder::worker {

class ThreadPool {
 public:
  // n_threads counts the caller: 1 means everything runs inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(begin, end, thread) over [0, n) split into contiguous chunks, one per thread,
  // each a multiple of `grain` (except the last); returns when all are done.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int thread);
  void run_chunk(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace ponder::worker
