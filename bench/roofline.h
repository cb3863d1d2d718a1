// Physical-limit probes measured in the same run as a benchmark: streaming read bandwidth from a
// region (anonymous with or without huge pages, or a file mapping) and peak FMA throughput.
#pragma once

#include <cstddef>

namespace ponder::bench {

// Best read bandwidth in bytes/s over [data, data + bytes) with `threads` threads, each streaming
// a contiguous share, over `passes` passes of several access patterns (1, 4, 8 streams).
double read_bandwidth(const char* data, size_t bytes, int threads, int passes = 5);

// Peak f32 FMA throughput (FLOP/s, 2 per FMA lane) with `threads` threads, using the widest
// vector ISA this CPU has.
double fma_peak_flops(int threads);

// Peak bf16 dot-product throughput (FLOP/s, 2 per multiply-add) with AVX512_BF16's vdpbf16ps;
// 0 when the CPU lacks the instruction.
double bf16_dot_peak_flops(int threads);

}  // namespace ponder::bench
