#ifndef SRN_TESTS_TESTING_RUN_TOOL_H_
#define SRN_TESTS_TESTING_RUN_TOOL_H_

#include <string>
#include <vector>

namespace srn::testing {

struct ToolRun {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs the command-line tool `argv` (argv[0] is the binary's path) through the shell, each
// argument single-quoted, with stdout and stderr captured in files under `scratch_dir`. For
// tests of srn-train and srn-eval run as the real binaries.
ToolRun RunTool(const std::vector<std::string>& argv, const std::string& scratch_dir);

// Runs `binary` with each of --help, -help, --helpshort and --helpfull and expects: exit 0, every
// string of `expected` in stdout, and no source or build path ("Flags from", ".cc", the source
// tree, the binary's folder).
void ExpectHelpWithoutBuildPaths(const std::string& binary, const std::string& scratch_dir,
                                 const std::vector<std::string>& expected);

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_RUN_TOOL_H_
