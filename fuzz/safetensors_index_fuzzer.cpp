// Fuzzes Checkpoint::open's model.safetensors.index.json reader (worker/safetensors.cpp): the
// JSON, weight_map, shard names, and the tensors each shard must hold. The model directory is a
// temporary copy of tests/data/models/qwen3_bf16_sharded's four shards plus a truncated shard, a
// subdirectory and a plain file that is no safetensors file; each input is written as its index.
// Whatever it accepts must be readable: every tensor it names lies inside its shard.
//
// Input: the index file's contents.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "worker/safetensors.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "safetensors_index_fuzzer: %s\n", what.c_str());
  std::abort();
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail("cannot write " + path.string());
}

const fs::path& model_dir() {
  static const fs::path dir = [] {
    std::string pattern = (fs::temp_directory_path() / "ponder-fuzz-index-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
    const fs::path d = pattern;
    const fs::path source = PONDER_SOURCE_DIR "/tests/data/models/qwen3_bf16_sharded";
    for (int i = 1; i <= 4; ++i) {
      const std::string shard = "model-0000" + std::to_string(i) + "-of-00004.safetensors";
      fs::copy_file(source / shard, d / shard);
    }
    write_file(d / "truncated.safetensors", std::string("\x40\x00\x00\x00\x00\x00\x00\x00{}", 10));
    write_file(d / "config.json", "{\"model_type\": \"qwen3\"}");
    fs::create_directory(d / "shards");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(model_dir(), ec);
    });
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)model_dir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& dir = model_dir();
  write_file(dir / "model.safetensors.index.json",
             std::string_view(reinterpret_cast<const char*>(data), size));
  auto ckpt = ponder::worker::Checkpoint::open(dir.string());
  if (!ckpt) return 0;
  for (const auto& file : ckpt->files()) {
    for (const ponder::worker::TensorInfo& t : file->tensors()) {
      const ponder::worker::TensorInfo* found = ckpt->find(t.name);
      if (found == nullptr) continue;  // in a shard, but not in the index
      if (found->file < 0 || static_cast<size_t>(found->file) >= ckpt->files().size())
        fail("tensor '" + t.name + "' names no shard");
      const auto& shard = *ckpt->files()[found->file];
      if (found->offset > shard.size() || found->nbytes > shard.size() - found->offset)
        fail("tensor '" + t.name + "' lies outside its shard");
      if (found->nbytes == 0) continue;
      unsigned char last = 0;
      if (!ckpt->read(*found, found->nbytes - 1, 1, &last).ok())
        fail("the last byte of tensor '" + t.name + "' cannot be read");
    }
  }
  return 0;
}
