// `ponder tokenize`: token ids of each line of a file (or of the whole file) with a model's
// Hugging Face tokenizer, or text back from ids with --decode.
#pragma once

namespace ponder::apps {
// argv excludes "ponder tokenize": argv[0] is the first option.
int run_tokenize(int argc, char** argv);
}  // namespace ponder::apps
