// `ponder generate`: load a model, run one prompt, stream the continuation to stdout.
#pragma once

namespace ponder::apps {
// argv excludes "ponder generate".
int run_generate(int argc, char** argv);
}  // namespace ponder::apps
