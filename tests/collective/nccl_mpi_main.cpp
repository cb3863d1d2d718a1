// NcclCommunicator across mpirun ranks, one GPU per rank (device = rank): every collective on
// device buffers against a reference reduction of every rank's data, odd and zero sizes, a
// send/recv ring. Exit 77 (skip) when the machine has fewer GPUs than ranks, 0 when every rank
// passes.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "collective/mpi_communicator.h"
#include "collective/nccl_communicator.h"

using namespace ponder;
using namespace ponder::collective;

namespace {

int failures = 0;
#define EXPECT(cond, ...)                                                  \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

std::vector<float> data_of(int rank, size_t n) {
  std::mt19937 gen(1234 + rank);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

struct DeviceVec {
  float* p = nullptr;
  size_t n = 0;
  explicit DeviceVec(const std::vector<float>& host) : n(host.size()) {
    cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float));
    if (n) cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  }
  ~DeviceVec() { cudaFree(p); }
  std::vector<float> host() const {
    std::vector<float> out(n);
    if (n) cudaMemcpy(out.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost);
    return out;
  }
};

void test_collectives(Communicator& c) {
  const int r = c.rank(), p = c.size();
  auto dl = [] { return deadline_in(std::chrono::seconds(20)); };
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{65537}}) {
    std::vector<float> want(n, 0.0f);
    for (int q = 0; q < p; ++q) {
      std::vector<float> other = data_of(q, n);
      for (size_t i = 0; i < n; ++i) want[i] += other[i];
    }
    DeviceVec sum(data_of(r, n));
    Status st = c.all_reduce_sum(sum.p, n, dl());
    EXPECT(st.ok(), "all_reduce n=%zu: %s", n, st.to_string().c_str());
    std::vector<float> got = sum.host();
    for (size_t i = 0; i < n; ++i)
      EXPECT(std::fabs(got[i] - want[i]) < 1e-5f, "all_reduce n=%zu i=%zu", n, i);

    DeviceVec mine(data_of(r, n)), all(std::vector<float>(n * p, NAN));
    st = c.all_gather(mine.p, all.p, n * sizeof(float), dl());
    EXPECT(st.ok(), "all_gather n=%zu: %s", n, st.to_string().c_str());
    std::vector<float> gathered = all.host();
    for (int q = 0; q < p; ++q)
      EXPECT(std::memcmp(gathered.data() + q * n, data_of(q, n).data(), n * sizeof(float)) == 0,
             "all_gather block %d n=%zu", q, n);

    std::vector<float> total(n * p, 0.0f);
    for (int q = 0; q < p; ++q) {
      std::vector<float> other = data_of(q, n * p);
      for (size_t i = 0; i < n * p; ++i) total[i] += other[i];
    }
    DeviceVec big(data_of(r, n * p)), part(std::vector<float>(n, NAN));
    st = c.reduce_scatter_sum(big.p, part.p, n, dl());
    EXPECT(st.ok(), "reduce_scatter n=%zu: %s", n, st.to_string().c_str());
    std::vector<float> piece = part.host();
    for (size_t i = 0; i < n; ++i)
      EXPECT(std::fabs(piece[i] - total[r * n + i]) < 1e-5f, "reduce_scatter n=%zu i=%zu", n, i);

    DeviceVec b(r == p - 1 ? data_of(99, n) : std::vector<float>(n, 0.0f));
    st = c.broadcast(b.p, n * sizeof(float), p - 1, dl());
    EXPECT(st.ok(), "broadcast: %s", st.to_string().c_str());
    EXPECT(b.host() == data_of(99, n), "broadcast n=%zu differs", n);
  }
  if (p > 1) {
    DeviceVec out(data_of(r, 333)), in(std::vector<float>(333, 0.0f));
    const int next = (r + 1) % p, prev = (r + p - 1) % p;
    Status s1, s2;
    if (r % 2 == 0) {
      s1 = c.send(out.p, 333 * 4, next, 5, dl());
      s2 = c.recv(in.p, 333 * 4, prev, 5, dl());
    } else {
      s2 = c.recv(in.p, 333 * 4, prev, 5, dl());
      s1 = c.send(out.p, 333 * 4, next, 5, dl());
    }
    EXPECT(s1.ok() && s2.ok(), "ring: %s / %s", s1.to_string().c_str(), s2.to_string().c_str());
    EXPECT(in.host() == data_of(prev, 333), "ring payload from %d", prev);
  }
  // All-to-all (expert parallelism): rank r sends (r + q) % 3 + 1 floats of data_of(10r + q) to q.
  {
    auto count = [](int from, int to) { return size_t((from + to) % 3 + 1); };
    std::vector<float> out_host, want;
    std::vector<size_t> send_bytes(p), recv_bytes(p);
    for (int q = 0; q < p; ++q) {
      const std::vector<float> block = data_of(10 * r + q, count(r, q));
      out_host.insert(out_host.end(), block.begin(), block.end());
      const std::vector<float> from = data_of(10 * q + r, count(q, r));
      want.insert(want.end(), from.begin(), from.end());
      send_bytes[q] = count(r, q) * sizeof(float);
      recv_bytes[q] = count(q, r) * sizeof(float);
    }
    DeviceVec out(out_host), in(std::vector<float>(want.size(), 0.0f));
    Status a2a = c.all_to_all(out.p, send_bytes.data(), in.p, recv_bytes.data(), dl());
    EXPECT(a2a.ok(), "all_to_all: %s", a2a.to_string().c_str());
    EXPECT(in.host() == want, "all_to_all payload");
  }
  Status st = c.barrier(dl());
  EXPECT(st.ok(), "barrier: %s", st.to_string().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  auto rt = MpiRuntime::init(&argc, &argv);
  if (!rt) {
    std::fprintf(stderr, "%s\n", rt.error().to_string().c_str());
    return 1;
  }
  auto world = MpiCommunicator::world();
  const int rank = (*world)->rank(), size = (*world)->size();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  if (devices < size) {
    if (rank == 0) std::printf("SKIP: %d ranks need %d GPUs, %d visible\n", size, size, devices);
    return 77;
  }
  auto comm = NcclCommunicator::create(**world, rank, deadline_in(std::chrono::seconds(60)));
  if (!comm) {
    std::fprintf(stderr, "FAIL rank %d: %s\n", rank, comm.error().to_string().c_str());
    return 1;
  }
  test_collectives(**comm);
  if (failures == 0) std::printf("rank %d: NCCL collectives PASS\n", rank);
  return failures == 0 ? 0 : 1;
}
