// Loading problems from JSONL: one object per line; blank lines skipped; ids unique.
#include "experiments/dataset.h"

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::experiments {
namespace {

Status read_jsonl(const std::string& path, std::optional<int> level, int64_t count,
                  std::set<std::string>& ids, std::vector<Problem>& out) {
  std::ifstream in(path);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot read the problems file", path.c_str());
  std::string line;
  int64_t line_no = 0, taken = 0;
  while (std::getline(in, line) && (count == 0 || taken < count)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const auto text = [&](const char* k) -> std::optional<std::string> {
      if (!j.is_object() || !j.contains(k)) return std::nullopt;
      if (j[k].is_string()) return j[k].get<std::string>();
      if (j[k].is_number_integer()) return std::to_string(j[k].get<int64_t>());
      return std::nullopt;
    };
    Problem p;
    for (const char* k : {"id", "question", "answer"}) {
      auto v = text(k);
      if (!v)
        return error(StatusCode::kInvalidArgument, "%s:%lld: expected a JSON object with string '%s'",
                     path.c_str(), (long long)line_no, k);
      (k[0] == 'i' ? p.id : k[0] == 'q' ? p.question : p.answer) = *v;
    }
    p.level = level;
    for (const char* k : {"level", "difficulty"})
      if (!p.level && j.contains(k) && j[k].is_number_integer()) p.level = j[k].get<int>();
    if (!ids.insert(p.id).second)
      return error(StatusCode::kInvalidArgument, "%s:%lld: problem id '%s' appears twice",
                   path.c_str(), (long long)line_no, p.id.c_str());
    out.push_back(std::move(p));
    ++taken;
  }
  if (count > 0 && taken < count)
    return error(StatusCode::kInvalidArgument, "%s: has %lld problems, dataset.count asks for %lld",
                 path.c_str(), (long long)taken, (long long)count);
  return {};
}

}  // namespace

Expected<std::vector<Problem>> load_problems(const DatasetSpec& dataset, const std::string& tasks_dir) {
  std::vector<Problem> out;
  std::set<std::string> ids;
  if (!dataset.jsonl.empty()) {
    PONDER_RETURN_IF_ERROR(read_jsonl(dataset.jsonl, std::nullopt, dataset.count, ids, out));
  } else {
    for (int level : dataset.levels) {
      const std::string path =
          strformat("%s/%s_%s_l%d.jsonl", tasks_dir.c_str(), dataset.suite.c_str(),
                    dataset.split.c_str(), level);
      if (!std::filesystem::exists(path))
        return error(StatusCode::kInvalidArgument,
                     "dataset.split: no '%s' split files for suite %s (%s is missing; the "
                     "committed split is 'test')",
                     dataset.split.c_str(), dataset.suite.c_str(), path.c_str());
      PONDER_RETURN_IF_ERROR(read_jsonl(path, level, dataset.count, ids, out));
    }
  }
  if (out.empty()) return error(StatusCode::kInvalidArgument, "dataset: no problems");
  return out;
}

}  // namespace ponder::experiments
