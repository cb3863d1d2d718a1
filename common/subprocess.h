// Running a helper command to completion (sbatch, squeue, scontrol, scancel, …): argv, no shell,
// stdout and stderr captured, a deadline after which the command's process group is killed.
// Linux/POSIX.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace ponder {

struct CommandResult {
  int exit_code = 0;  // the command's exit status; 128 + N when killed by signal N
  std::string out;    // all of its stdout
  std::string err;    // all of its stderr
  // The first line of stderr (else stdout), trimmed: what an error message should quote.
  std::string first_error_line() const;
};

// Runs argv[0] (searched on PATH) with argv[1..]. kNotFound when the program does not exist,
// kTimeout when it runs past `timeout` (it is then SIGKILLed). A non-zero exit is not an error
// here: the caller reads exit_code.
Expected<CommandResult> run_command(const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout);

// Whether `program` is an executable file on PATH (or a path to one).
bool on_path(const std::string& program);

}  // namespace ponder
