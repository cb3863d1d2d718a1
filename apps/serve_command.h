#pragma once

namespace ponder::apps {

// `ponder serve`: the OpenAI-compatible server and its replicas.
int run_serve(int argc, char** argv);

}  // namespace ponder::apps
