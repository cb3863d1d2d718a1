// Safetensors header parsing and validation, shard index resolution, positioned reads.
#include "worker/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/check.h"

namespace ponder::worker {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The format caps the header at 100 MB; anything larger is corrupt, not a big model.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

Status read_fully(int fd, uint64_t offset, uint64_t nbytes, void* dst) {
  char* out = static_cast<char*>(dst);
  while (nbytes > 0) {
    ssize_t got = pread(fd, out, std::min<uint64_t>(nbytes, 1ull << 30), static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return error(StatusCode::kInternal, "read failed: %s", std::strerror(errno));
    }
    if (got == 0) return error(StatusCode::kInvalidArgument, "unexpected end of file");
    out += got;
    offset += static_cast<uint64_t>(got);
    nbytes -= static_cast<uint64_t>(got);
  }
  return {};
}

Expected<TensorInfo> parse_entry(const std::string& name, const json& entry, uint64_t data_start,
                                 uint64_t data_size, int file_index) {
  if (!entry.is_object()) return error(StatusCode::kInvalidArgument, "entry is not an object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string())
    return error(StatusCode::kInvalidArgument, "missing or non-string 'dtype'");
  if (shape_it == entry.end() || !shape_it->is_array())
    return error(StatusCode::kInvalidArgument, "missing or non-array 'shape'");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
    return error(StatusCode::kInvalidArgument, "'data_offsets' must be two non-negative integers");

  TensorInfo info;
  info.name = name;
  info.file = file_index;
  PONDER_ASSIGN_OR_RETURN(info.dtype, parse_safetensors_dtype(dtype_it->get<std::string>()));
  constexpr uint64_t kMaxElements = 1ull << 48;
  uint64_t numel = 1;
  for (const json& d : *shape_it) {
    if (!d.is_number_unsigned()) return error(StatusCode::kInvalidArgument, "shape has a non-integer or negative dimension");
    uint64_t dim = d.get<uint64_t>();
    // Each dimension on its own too: after a 0 the product stays 0, and a dimension beyond
    // int64 would become a negative TensorInfo::shape entry.
    if (dim > kMaxElements || (dim != 0 && numel > kMaxElements / dim))
      return error(StatusCode::kInvalidArgument, "shape is too large");
    numel *= dim;
    info.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end)
    return error(StatusCode::kInvalidArgument, "data_offsets [%llu, %llu] are reversed",
                 (unsigned long long)begin, (unsigned long long)end);
  if (end > data_size)
    return error(StatusCode::kInvalidArgument,
                 "data_offsets [%llu, %llu] are out of bounds: the data section has %llu bytes "
                 "(truncated file?)",
                 (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
  uint64_t expected = numel * dtype_size(info.dtype);
  if (end - begin != expected)
    return error(StatusCode::kInvalidArgument,
                 "data_offsets span %llu bytes but shape %s of %s needs %llu",
                 (unsigned long long)(end - begin), info.shape_string().c_str(),
                 std::string(dtype_name(info.dtype)).c_str(), (unsigned long long)expected);
  info.offset = data_start + begin;
  info.nbytes = end - begin;
  return info;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) close(fd_);
}

Expected<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path,
                                                                 int file_index) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  auto fail = [&](tl::unexpected<Status> e) { return tl::unexpected(e.value().with_context(path)); };
  file->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd_ < 0) {
    return fail(error(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                      "cannot open: %s", std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(file->fd_, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(error(StatusCode::kInvalidArgument, "not a regular file"));
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ < 8)
    return fail(error(StatusCode::kInvalidArgument,
                      "truncated: %llu bytes, shorter than the 8-byte header length",
                      (unsigned long long)file->size_));
  unsigned char len_bytes[8];
  PONDER_RETURN_IF_ERROR(read_fully(file->fd_, 0, 8, len_bytes).with_context(path));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file->size_ - 8)
    return fail(error(StatusCode::kInvalidArgument,
                      "header length %llu runs past the end of the file (%llu bytes)",
                      (unsigned long long)header_len, (unsigned long long)file->size_));
  if (header_len > kMaxHeaderBytes)
    return fail(error(StatusCode::kInvalidArgument, "header length %llu exceeds the 100 MB limit",
                      (unsigned long long)header_len));
  std::string header(header_len, '\0');
  PONDER_RETURN_IF_ERROR(read_fully(file->fd_, 8, header_len, header.data()).with_context(path));

  json parsed = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object())
    return fail(error(StatusCode::kInvalidArgument, "malformed JSON header (%llu bytes)",
                      (unsigned long long)header_len));

  uint64_t data_start = 8 + header_len;
  uint64_t data_size = file->size_ - data_start;
  for (const auto& [name, entry] : parsed.items()) {
    if (name == "__metadata__") continue;
    auto info = parse_entry(name, entry, data_start, data_size, file_index);
    if (!info) return fail(tl::unexpected(info.error().with_context("tensor '" + name + "'")));
    file->tensors_.push_back(std::move(*info));
  }
  // Overlap check: sort by start; each tensor must begin at or after the previous one's end.
  std::vector<const TensorInfo*> order;
  for (const auto& t : file->tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo* prev = order[i - 1];
    if (order[i]->offset < prev->offset + prev->nbytes && order[i]->nbytes > 0 && prev->nbytes > 0)
      return fail(error(StatusCode::kInvalidArgument, "tensors '%s' and '%s' overlap",
                        prev->name.c_str(), order[i]->name.c_str()));
  }
  return file;
}

Status SafetensorsFile::read(uint64_t offset, uint64_t nbytes, void* dst) const {
  return read_fully(fd_, offset, nbytes, dst).with_context(path_);
}

Expected<Checkpoint> Checkpoint::open(const std::string& model_dir) {
  Checkpoint ckpt;
  ckpt.dir_ = model_dir;
  fs::path dir(model_dir);
  fs::path index_path = dir / "model.safetensors.index.json";
  fs::path single_path = dir / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    json index = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
        !index["weight_map"].is_object())
      return error(StatusCode::kInvalidArgument,
                   "%s: malformed index (expected a JSON object with a 'weight_map' object)",
                   index_path.c_str());
    std::map<std::string, int> shard_index;
    std::map<std::string, std::string> wanted;  // tensor -> shard file
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string())
        return error(StatusCode::kInvalidArgument, "%s: weight_map['%s'] is not a file name",
                     index_path.c_str(), tensor.c_str());
      std::string shard_name = shard.get<std::string>();
      if (shard_name.find('/') != std::string::npos)
        return error(StatusCode::kInvalidArgument, "%s: shard name '%s' must be a plain file name",
                     index_path.c_str(), shard_name.c_str());
      wanted[tensor] = shard_name;
      if (!shard_index.count(shard_name)) {
        int idx = static_cast<int>(ckpt.files_.size());
        shard_index[shard_name] = idx;
        PONDER_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open((dir / shard_name).string(), idx));
        ckpt.files_.push_back(std::move(file));
      }
    }
    // No structured binding: the lambda below captures the name, which clang before 16 (the
    // fuzz build's) cannot do with a binding.
    for (const auto& entry : wanted) {
      const std::string& tensor = entry.first;
      const std::string& shard_name = entry.second;
      const SafetensorsFile& file = *ckpt.files_[shard_index[shard_name]];
      auto it = std::find_if(file.tensors().begin(), file.tensors().end(),
                             [&](const TensorInfo& t) { return t.name == tensor; });
      if (it == file.tensors().end())
        return error(StatusCode::kNotFound, "%s: the index maps '%s' to %s, which does not hold it",
                     index_path.c_str(), tensor.c_str(), shard_name.c_str());
      ckpt.by_name_[tensor] = &*it;
    }
  } else if (fs::exists(single_path, ec)) {
    PONDER_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(single_path.string(), 0));
    ckpt.files_.push_back(std::move(file));
    for (const auto& t : ckpt.files_[0]->tensors()) ckpt.by_name_[t.name] = &t;
  } else {
    return error(StatusCode::kNotFound, "%s: no model.safetensors or model.safetensors.index.json",
                 model_dir.c_str());
  }
  return ckpt;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Expected<const TensorInfo*> Checkpoint::require(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr)
    return error(StatusCode::kNotFound, "%s: missing tensor '%s'", dir_.c_str(), name.c_str());
  return info;
}

Status Checkpoint::read(const TensorInfo& info, uint64_t begin, uint64_t nbytes, void* dst) const {
  PONDER_CHECK(begin + nbytes <= info.nbytes, "read past tensor '%s'", info.name.c_str());
  return files_[info.file]->read(info.offset + begin, nbytes, dst);
}

}  // namespace ponder::worker
