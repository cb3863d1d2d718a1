// `ponder complete`: batch completion of a JSONL file of prompts through the engine.
#pragma once

namespace ponder::apps {
// argv excludes "ponder complete".
int run_complete(int argc, char** argv);
}  // namespace ponder::apps
