// Collectives under real mpirun ranks: results against a reference reduction on random data, odd
// sizes and zero-length buffers; and, with `kill-peer`, a rank that exits mid-collective must make
// the others fail with kRemote or kTimeout within the deadline. Exit code 0 on every rank = pass.
#include <csignal>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "collective/mpi_communicator.h"

using namespace ponder;
using namespace ponder::collective;

namespace {

int failures = 0;
#define EXPECT(cond, ...)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                               \
      std::fprintf(stderr, "\n");                                      \
      ++failures;                                                      \
    }                                                                  \
  } while (0)

// Rank r's deterministic data: reference results are computed by every rank from all seeds.
std::vector<float> data_of(int rank, size_t n) {
  std::mt19937 gen(1234 + rank);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

void test_collectives(Communicator& c) {
  const int r = c.rank(), p = c.size();
  auto dl = [] { return deadline_in(std::chrono::seconds(20)); };
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{65537}}) {
    std::vector<float> mine = data_of(r, n), want(n, 0.0f);
    for (int q = 0; q < p; ++q) {
      std::vector<float> other = data_of(q, n);
      for (size_t i = 0; i < n; ++i) want[i] += other[i];
    }
    std::vector<float> got = mine;
    Status st = c.all_reduce_sum(got.data(), n, dl());
    EXPECT(st.ok(), "all_reduce n=%zu: %s", n, st.to_string().c_str());
    for (size_t i = 0; i < n; ++i) EXPECT(std::fabs(got[i] - want[i]) < 1e-5f, "all_reduce n=%zu i=%zu", n, i);

    std::vector<float> gathered(n * p, NAN);
    st = c.all_gather(mine.data(), gathered.data(), n * sizeof(float), dl());
    EXPECT(st.ok(), "all_gather n=%zu: %s", n, st.to_string().c_str());
    for (int q = 0; q < p; ++q) {
      std::vector<float> other = data_of(q, n);
      EXPECT(std::memcmp(gathered.data() + q * n, other.data(), n * sizeof(float)) == 0,
             "all_gather block %d n=%zu", q, n);
    }

    std::vector<float> big = data_of(r, n * p), part(n, NAN), sum(n * p, 0.0f);
    for (int q = 0; q < p; ++q) {
      std::vector<float> other = data_of(q, n * p);
      for (size_t i = 0; i < n * p; ++i) sum[i] += other[i];
    }
    st = c.reduce_scatter_sum(big.data(), part.data(), n, dl());
    EXPECT(st.ok(), "reduce_scatter n=%zu: %s", n, st.to_string().c_str());
    for (size_t i = 0; i < n; ++i)
      EXPECT(std::fabs(part[i] - sum[r * n + i]) < 1e-5f, "reduce_scatter n=%zu i=%zu", n, i);

    std::vector<float> b = r == p - 1 ? data_of(99, n) : std::vector<float>(n, 0.0f);
    st = c.broadcast(b.data(), n * sizeof(float), p - 1, dl());
    EXPECT(st.ok(), "broadcast: %s", st.to_string().c_str());
    EXPECT(b == data_of(99, n), "broadcast n=%zu differs", n);
  }
  // A ring of send/recv: even ranks send first, odd ranks receive first.
  if (p > 1) {
    std::vector<float> out = data_of(r, 333), in(333);
    int next = (r + 1) % p, prev = (r + p - 1) % p;
    Status s1, s2;
    if (r % 2 == 0) {
      s1 = c.send(out.data(), out.size() * 4, next, 5, dl());
      s2 = c.recv(in.data(), in.size() * 4, prev, 5, dl());
    } else {
      s2 = c.recv(in.data(), in.size() * 4, prev, 5, dl());
      s1 = c.send(out.data(), out.size() * 4, next, 5, dl());
    }
    EXPECT(s1.ok() && s2.ok(), "ring: %s / %s", s1.to_string().c_str(), s2.to_string().c_str());
    EXPECT(in == data_of(prev, 333), "ring payload from %d", prev);
  }
  // All-to-all with a different block size for every (sender, receiver) pair, empty ones too.
  {
    auto block = [](int from, int to) { return size_t((from * 7 + to * 3) % 5) * 13; };
    std::vector<size_t> send_bytes(p), recv_bytes(p);
    std::vector<char> out, in;
    for (int q = 0; q < p; ++q) {
      send_bytes[q] = block(r, q);
      recv_bytes[q] = block(q, r);
      for (size_t i = 0; i < send_bytes[q]; ++i) out.push_back(char(r * 31 + q * 5 + i));
    }
    in.assign(out.size() + 1000, 0);
    const uint64_t before = c.stats().all_to_all_bytes;
    Status st = c.all_to_all(out.data(), send_bytes.data(), in.data(), recv_bytes.data(), dl());
    EXPECT(st.ok(), "all_to_all: %s", st.to_string().c_str());
    size_t at = 0;
    for (int q = 0; q < p; ++q)
      for (size_t i = 0; i < recv_bytes[q]; ++i, ++at)
        EXPECT(in[at] == char(q * 31 + r * 5 + i), "all_to_all byte %zu from %d", i, q);
    EXPECT(c.stats().all_to_all_bytes - before == out.size() - send_bytes[r],
           "all_to_all counted %llu bytes", (unsigned long long)(c.stats().all_to_all_bytes - before));
  }
  Status st = c.barrier(dl());
  EXPECT(st.ok(), "barrier: %s", st.to_string().c_str());
  EXPECT(c.broadcast(nullptr, 0, p, dl()).code() == StatusCode::kInvalidArgument, "bad root accepted");
}

// The last rank is killed (SIGKILL) in the middle of the job; every other rank's next collective must come
// back with a named error before its deadline, not hang.
int test_killed_peer(Communicator& c, bool all_to_all) {
  const int r = c.rank(), p = c.size();
  std::vector<float> v(1024, 1.0f);
  Status st = c.all_reduce_sum(v.data(), v.size(), deadline_in(std::chrono::seconds(20)));
  if (!st.ok()) {
    std::fprintf(stderr, "FAIL warm-up all_reduce: %s\n", st.to_string().c_str());
    return 1;
  }
  if (r == p - 1) {
    std::fprintf(stderr, "rank %d killing itself mid-job on purpose\n", r);
    raise(SIGKILL);
  }
  auto t0 = std::chrono::steady_clock::now();
  if (all_to_all) {  // what expert parallelism does with every MoE layer
    std::vector<size_t> bytes(p, 64);
    std::vector<char> out(64 * p, 1), in(64 * p);
    st = c.all_to_all(out.data(), bytes.data(), in.data(), bytes.data(),
                      deadline_in(std::chrono::seconds(3)));
  } else {
    st = c.all_reduce_sum(v.data(), v.size(), deadline_in(std::chrono::seconds(3)));
  }
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "rank %d: %s without the dead peer returned after %.2f s: %s\n", r,
               all_to_all ? "all_to_all" : "all_reduce", waited, st.to_string().c_str());
  if (all_to_all && st.message().find("all_to_all") == std::string::npos) return 1;
  if (st.ok()) return 1;
  if (st.code() != StatusCode::kTimeout && st.code() != StatusCode::kRemote) return 1;
  if (waited > 10.0) return 1;
  // The broken communicator refuses further work instead of hanging.
  Status again = c.barrier(deadline_in(std::chrono::seconds(1)));
  if (again.code() != StatusCode::kFailedPrecondition) return 1;
  std::printf("rank %d: named error within the deadline: PASS\n", r);
  std::fflush(stdout);
  _exit(0);  // MPI_Finalize would wait for the dead peer
}

}  // namespace

int main(int argc, char** argv) {
  auto rt = MpiRuntime::init(&argc, &argv);
  if (!rt) {
    std::fprintf(stderr, "%s\n", rt.error().to_string().c_str());
    return 1;
  }
  auto world = MpiCommunicator::world();
  if (argc > 1 && std::strcmp(argv[1], "kill-peer") == 0)
    return test_killed_peer(**world, argc > 2 && std::strcmp(argv[2], "all_to_all") == 0);
  test_collectives(**world);
  // The same on a split: odd and even ranks.
  auto half = (*world)->split((*world)->rank() % 2, (*world)->rank(), deadline_in(std::chrono::seconds(20)));
  EXPECT(half.has_value(), "split");
  if (half) test_collectives(**half);
  if (failures == 0) std::printf("rank %d: collectives PASS\n", (*world)->rank());
  return failures == 0 ? 0 : 1;
}
