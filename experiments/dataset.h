// The problems of a sweep: a task suite's committed split files (arith: tests/data/tasks/
// arith_<split>_l<level>.jsonl) or a JSONL file of {id, question, answer} lines.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "experiments/sweep_spec.h"

namespace ponder::experiments {

struct Problem {
  std::string id;
  std::optional<int> level;
  std::string question;
  std::string answer;
};

// `tasks_dir` holds the suites' split files. Errors name the file and line, or the spec key.
Expected<std::vector<Problem>> load_problems(const DatasetSpec& dataset,
                                             const std::string& tasks_dir);

}  // namespace ponder::experiments
