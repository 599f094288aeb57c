#include "tests/testing/run_tool.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace srn::testing {

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ToolRun RunTool(const std::vector<std::string>& argv, const std::string& scratch_dir) {
  const std::string out_path = absl::StrCat(scratch_dir, "/tool_stdout.txt");
  const std::string err_path = absl::StrCat(scratch_dir, "/tool_stderr.txt");
  std::string command;
  for (const std::string& arg : argv) {
    absl::StrAppend(&command, command.empty() ? "" : " ", "'",
                    absl::StrReplaceAll(arg, {{"'", "'\\''"}}), "'");
  }
  absl::StrAppend(&command, " >'", out_path, "' 2>'", err_path, "'");
  ToolRun run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Slurp(out_path);
  run.err = Slurp(err_path);
  return run;
}

}  // namespace srn::testing
