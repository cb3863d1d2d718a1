// `ponder api-keys add|list|remove --file F`: the keys file of `ponder serve --api-keys-file F`
// (coordinator/http/access.h). `add` makes a random key, stores its salted hash and prints the
// key once; the file never holds a key.
#pragma once

namespace ponder::apps {

int run_api_keys(int argc, char** argv);

}  // namespace ponder::apps
