// `ponder tokenize`: encodes text to JSON arrays of token ids (one per line, or one for the whole
// file) or decodes such arrays back to text. Output on stdout; errors on stderr.
#include "apps/tokenize_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "apps/args.h"
#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/tokenizer.h"

namespace ponder::apps {
namespace {

constexpr const char* kUsage =
    R"(usage: ponder tokenize --model DIR [--whole] [--decode [--skip-special]] FILE

Tokenizes FILE ("-" for stdin) with DIR/tokenizer.json (+ tokenizer_config.json).

Encoding (default): prints one JSON array of token ids per line of FILE. Lines are split on
"\n" only; every other character ("\r", U+2028, ...) belongs to the line. A final "\n" does not
start another line. Encoding is raw: no BOS/EOS is added, and special tokens written in the
text (e.g. <|im_start|>) are matched as such.

  --whole          encode the whole file as one text: one array, newlines included.
  --decode         the other way: each line of FILE is a JSON array of ids; prints the decoded
                   text of each followed by "\n". With --whole, FILE is one JSON array and the
                   decoded text is printed exactly, without a newline added, so
                   `tokenize --whole F | tokenize --whole --decode -` gives F back.
  --skip-special   with --decode: drop special tokens (<|im_start|>, <s>, ...).
  --help           this text.

Exit status: 0 on success, 1 if the tokenizer cannot be loaded or the input is bad, 2 on a
usage error.
)";

Expected<std::string> read_input(const std::string& path) {
  std::ostringstream contents;
  if (path == "-") {
    contents << std::cin.rdbuf();
    if (std::cin.bad()) return error(StatusCode::kUnavailable, "cannot read stdin");
    return std::move(contents).str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot open for reading", path.c_str());
  contents << in.rdbuf();
  if (in.bad()) return error(StatusCode::kUnavailable, "%s: read error", path.c_str());
  return std::move(contents).str();
}

// The lines of `text` split on '\n'; a trailing '\n' ends the last line rather than starting
// an empty one.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

void append_ids_json(const std::vector<int32_t>& ids, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->append(std::to_string(ids[i]));
  }
  out->append("]\n");
}

Expected<std::vector<int32_t>> parse_ids(std::string_view text, const text::Tokenizer& tok,
                                         const std::string& where) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return error(StatusCode::kInvalidArgument, "%s: expected a JSON array of token ids",
                 where.c_str());
  }
  std::vector<int32_t> ids;
  ids.reserve(json.size());
  for (const nlohmann::json& v : json) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size()) {
      return error(StatusCode::kInvalidArgument,
                   "%s: %s is not a token id (the vocabulary has ids 0..%d)", where.c_str(),
                   v.dump().c_str(), tok.vocab_size() - 1);
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

Status write_stdout(const std::string& out) {
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    return error(StatusCode::kUnavailable, "cannot write to stdout");
  }
  return Status::ok_status();
}

Status tokenize(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(std::string model_dir, args.require("model"));
  if (args.positional().size() != 1) {
    return error(StatusCode::kInvalidArgument, "expected one FILE (or \"-\" for stdin), got %zu",
                 args.positional().size());
  }
  const std::string& path = args.positional()[0];
  bool whole = args.has("whole"), decode = args.has("decode"), skip = args.has("skip-special");
  if (skip && !decode) {
    return error(StatusCode::kInvalidArgument, "--skip-special only applies with --decode");
  }
  // Load failures and bad input are not usage errors: report them as kFailedPrecondition.
  auto failed = [](const Status& s) {
    return Status(StatusCode::kFailedPrecondition, s.message());
  };
  Expected<text::Tokenizer> tok = text::Tokenizer::load(model_dir);
  if (!tok) return failed(tok.error());
  Expected<std::string> input = read_input(path);
  if (!input) return failed(input.error());

  std::string out;
  if (!decode) {
    if (whole) {
      append_ids_json(tok->encode(*input), &out);
    } else {
      for (std::string_view line : split_lines(*input)) append_ids_json(tok->encode(line), &out);
    }
    return write_stdout(out);
  }
  if (whole) {
    Expected<std::vector<int32_t>> ids = parse_ids(*input, *tok, path);
    if (!ids) return failed(ids.error());
    return write_stdout(tok->decode(*ids, skip));
  }
  std::vector<std::string_view> lines = split_lines(*input);
  for (size_t i = 0; i < lines.size(); ++i) {
    Expected<std::vector<int32_t>> ids =
        parse_ids(lines[i], *tok, strformat("%s:%zu", path.c_str(), i + 1));
    if (!ids) return failed(ids.error());
    out += tok->decode(*ids, skip);
    out.push_back('\n');
  }
  return write_stdout(out);
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  Expected<Args> args =
      Args::parse(argc, argv, {"help", "whole", "decode", "skip-special"}, {"model"});
  if (args && args->has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status st = args ? tokenize(*args) : args.error();
  if (st.ok()) return 0;
  std::fprintf(stderr, "ponder tokenize: %s\n", st.message().c_str());
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace ponder::apps
