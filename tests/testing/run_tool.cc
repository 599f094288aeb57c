#include "tests/testing/run_tool.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

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

void ExpectHelpWithoutBuildPaths(const std::string& binary, const std::string& scratch_dir,
                                 const std::vector<std::string>& expected) {
  const std::string file = __FILE__;
  const std::string source_root = file.substr(0, file.rfind("/tests/"));
  const std::vector<std::string> forbidden = {"Flags from", ".cc", source_root.substr(1),
                                              binary.substr(1, binary.rfind('/'))};
  for (const char* flag : {"--help", "-help", "--helpshort", "--helpfull"}) {
    const ToolRun run = RunTool({binary, flag}, scratch_dir);
    EXPECT_EQ(run.exit_code, 0) << flag << ": " << run.err;
    for (const std::string& text : expected) {
      EXPECT_NE(run.out.find(text), std::string::npos) << flag << " should print " << text;
    }
    for (const std::string& text : forbidden) {
      EXPECT_EQ(run.out.find(text), std::string::npos) << flag << " prints " << text;
    }
  }
}

}  // namespace srn::testing
