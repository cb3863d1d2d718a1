// Reading Hugging Face safetensors checkpoints: one file or shards with an index. Every header is
// validated up front (bounds, overlaps, dtypes, sizes) so a corrupt file is a clear error, not a
// crash. Reads are positioned reads of exactly the byte ranges asked for.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/dtype.h"

namespace ponder::worker {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset of the data in its file
  uint64_t nbytes = 0;
  int file = 0;  // index into Checkpoint::files()

  int64_t numel() const;
  std::string shape_string() const;
};

// One .safetensors file: its parsed header and an open descriptor. Thread-safe reads (pread).
class SafetensorsFile {
 public:
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // `file_index` is stored in every TensorInfo.
  static Expected<std::unique_ptr<SafetensorsFile>> open(const std::string& path, int file_index);

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Reads `nbytes` at absolute `offset` into dst.
  Status read(uint64_t offset, uint64_t nbytes, void* dst) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::vector<TensorInfo> tensors_;
};

// A model directory's weights: model.safetensors, or the shards named by
// model.safetensors.index.json.
class Checkpoint {
 public:
  static Expected<Checkpoint> open(const std::string& model_dir);

  const TensorInfo* find(const std::string& name) const;
  // Like find(), but a missing tensor is a kNotFound error naming it and the directory.
  Expected<const TensorInfo*> require(const std::string& name) const;
  // Reads bytes [begin, begin + nbytes) of a tensor's data.
  Status read(const TensorInfo& info, uint64_t begin, uint64_t nbytes, void* dst) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& dir() const { return dir_; }
  size_t tensor_count() const { return by_name_.size(); }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

}  // namespace ponder::worker
