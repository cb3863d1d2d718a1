// `ponder bench --tp T --pp P`: speed of a tensor/pipeline-parallel replica and the bytes each rank
// communicated per token, next to the analytical count.
#pragma once

#include "apps/args.h"

namespace ponder::apps {
// Runs on every rank of an mpirun job (`ponder bench` starts one itself when tp × pp > 1).
Status bench_distributed(const Args& args, int* argc, char*** argv);
}  // namespace ponder::apps
