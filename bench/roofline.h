// Physical-limit probes measured in the same run as a benchmark: streaming read bandwidth from a
// region (anonymous with or without huge pages, or a file mapping) and peak FMA throughput.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ponder::bench {

// Best read bandwidth in bytes/s over [data, data + bytes) with `threads` threads, each streaming
// a contiguous share, over `passes` passes of several access patterns (1, 4, 8 streams).
double read_bandwidth(const char* data, size_t bytes, int threads, int passes = 5);

// Bytes/s of reading whole files into fresh anonymous huge-page memory with pread, `threads`
// threads taking 8 MiB pieces in turn: what a loader that reads (rather than maps) a checkpoint
// from the page cache or the disk can reach. 0 when a file cannot be read.
double file_read_bandwidth(const std::vector<std::string>& paths, int threads);

// Peak f32 FMA throughput (FLOP/s, 2 per FMA lane) with `threads` threads, using the widest
// vector ISA this CPU has.
double fma_peak_flops(int threads);

// Peak bf16 dot-product throughput (FLOP/s, 2 per multiply-add) with AVX512_BF16's vdpbf16ps;
// 0 when the CPU lacks the instruction.
double bf16_dot_peak_flops(int threads);

}  // namespace ponder::bench
