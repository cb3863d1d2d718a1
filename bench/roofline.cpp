// Bandwidth and FMA probes. Each probe runs long enough (~0.1-0.3 s) to be stable and reports
// the best pass, like STREAM does.
#include "bench/roofline.h"

#include <immintrin.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ponder::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Sums `bytes` as S contiguous parts read in lockstep (S hardware-prefetch streams), the way a
// matrix-vector product reads S weight rows at once.
template <int S>
__attribute__((target("avx512f"))) float sum_streams_avx512(const char* p, size_t bytes) {
  const float* f = reinterpret_cast<const float*>(p);
  const size_t n = bytes / 4 / S / 64 * 64;
  __m512 a[S][2];
  for (int s = 0; s < S; ++s) a[s][0] = a[s][1] = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 32) {
    for (int s = 0; s < S; ++s) {
      a[s][0] = _mm512_add_ps(a[s][0], _mm512_loadu_ps(f + s * n + i));
      a[s][1] = _mm512_add_ps(a[s][1], _mm512_loadu_ps(f + s * n + i + 16));
    }
  }
  __m512 t = _mm512_setzero_ps();
  for (int s = 0; s < S; ++s) t = _mm512_add_ps(t, _mm512_add_ps(a[s][0], a[s][1]));
  return _mm512_reduce_add_ps(t);
}

__attribute__((target("avx512f"))) float sum_avx512(const char* p, size_t bytes, int streams) {
  switch (streams) {
    case 4: return sum_streams_avx512<4>(p, bytes);
    case 8: return sum_streams_avx512<8>(p, bytes);
    default: return sum_streams_avx512<1>(p, bytes);
  }
}

__attribute__((target("avx2"))) float sum_avx2(const char* p, size_t bytes) {
  const float* f = reinterpret_cast<const float*>(p);
  size_t n = bytes / 4;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(f + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(f + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(f + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(f + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

float sum_any(const char* p, size_t bytes, int streams) {
  if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, bytes, streams);
  if (__builtin_cpu_supports("avx2")) return sum_avx2(p, bytes);
  float s = 0;
  const float* f = reinterpret_cast<const float*>(p);
  for (size_t i = 0; i < bytes / 4; ++i) s += f[i];
  return s;
}

// Runs fn(thread) on `threads` threads at once and returns the wall time of the slowest.
template <class F>
double timed_parallel(int threads, F fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  std::vector<double> seconds(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      auto t0 = Clock::now();
      fn(t);
      seconds[t] = std::chrono::duration<double>(Clock::now() - t0).count();
    });
  }
  while (ready.load() != threads) {
  }
  go = true;
  for (auto& th : pool) th.join();
  return *std::max_element(seconds.begin(), seconds.end());
}

volatile float g_sink;

__attribute__((target("avx512f,fma"))) void fma_loop_avx512(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  g_sink = _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) void fma_loop_avx2(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
  }
  float out[8];
  _mm256_storeu_ps(out, a[0]);
  g_sink = out[0];
}

__attribute__((target("avx512f,avx512bf16"))) void bf16_loop(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbf16_ps(a[i], x, y);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  g_sink = _mm512_reduce_add_ps(s);
}

}  // namespace

double read_bandwidth(const char* data, size_t bytes, int threads, int passes) {
  double best = 0;
  size_t share = bytes / threads / 4096 * 4096;
  std::vector<float> sinks(threads);
  // Best over access patterns (1, 4 and 8 streams per thread) and passes: the machine's limit,
  // not one pattern's.
  for (int p = 0; p < passes; ++p) {
    for (int streams : {1, 4, 8}) {
      double s = timed_parallel(threads, [&](int t) {
        sinks[t] += sum_any(data + t * share, share, streams);
      });
      best = std::max(best, static_cast<double>(share) * threads / s);
    }
  }
  g_sink = sinks[0];
  return best;
}

double fma_peak_flops(int threads) {
  const int64_t iters = 20'000'000;
  if (__builtin_cpu_supports("avx512f")) {
    double s = timed_parallel(threads, [&](int) { fma_loop_avx512(iters); });
    return 2.0 * 16 * 12 * iters * threads / s;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    double s = timed_parallel(threads, [&](int) { fma_loop_avx2(iters); });
    return 2.0 * 8 * 12 * iters * threads / s;
  }
  return 0.0;
}

double bf16_dot_peak_flops(int threads) {
  if (!__builtin_cpu_supports("avx512bf16")) return 0.0;
  const int64_t iters = 20'000'000;
  double s = timed_parallel(threads, [&](int) { bf16_loop(iters); });
  return 2.0 * 32 * 12 * iters * threads / s;  // 16 lanes × 2 products each
}

double file_read_bandwidth(const std::vector<std::string>& paths, int threads) {
  constexpr size_t kPiece = size_t{8} << 20;
  struct Piece {
    int fd;
    size_t offset, bytes, dst;
  };
  std::vector<int> fds;
  std::vector<Piece> pieces;
  size_t total = 0;
  for (const std::string& path : paths) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    fds.push_back(fd);
    const off_t size = lseek(fd, 0, SEEK_END);
    for (size_t at = 0; size > 0 && at < static_cast<size_t>(size); at += kPiece) {
      const size_t n = std::min(kPiece, static_cast<size_t>(size) - at);
      pieces.push_back({fd, at, n, total});
      total += n;
    }
  }
  double result = 0.0;
  void* region = total == 0 || fds.size() != paths.size()
                     ? MAP_FAILED
                     : mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region != MAP_FAILED) {
    madvise(region, total, MADV_HUGEPAGE);
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    auto t0 = std::chrono::steady_clock::now();
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
        const Piece& p = pieces[i];
        for (size_t done = 0; done < p.bytes;) {
          const ssize_t got = pread(p.fd, static_cast<char*>(region) + p.dst + done, p.bytes - done,
                                    static_cast<off_t>(p.offset + done));
          if (got <= 0) {
            failed = true;
            break;
          }
          done += static_cast<size_t>(got);
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!failed && s > 0) result = static_cast<double>(total) / s;
    munmap(region, total);
  }
  for (int fd : fds) close(fd);
  return result;
}

}  // namespace ponder::bench
