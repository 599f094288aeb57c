#ifndef SRN_MODEL_TOOLS_TOOL_COMMON_H_
#define SRN_MODEL_TOOLS_TOOL_COMMON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/eval/protocols.h"

namespace srn::tools {

// Prints "<tool>: <status message>" to stderr and returns the exit code for it (1).
int Fail(const std::string& tool, const absl::Status& status);

// Caps the kernels by the flag --kernels (defined in tool_common.cc, shared by srn-train and
// srn-eval; default avx2, so that results reproduce across CPUs). Call before any work.
absl::Status ApplyKernelsFlag();

// The classes chosen by the flags --test_classes and --split, which are defined in
// tool_common.cc so that srn-train and srn-eval share them: empty when neither is given,
// InvalidArgument when both are, or when the split file cannot be read or parsed.
absl::StatusOr<ClassChoice> ClassChoiceFromFlags();

// OK when --test_classes and --split are not given; InvalidArgument saying that `protocol` (a
// signature protocol: svc2004-cv, signers, cross-dataset) splits by signer itself otherwise.
absl::Status RequireNoClassChoice(const std::string& protocol);

// Loads a named dataset or CSV manifest and splits it for a protocol (MakeSplit) with the classes
// of ClassChoiceFromFlags, saying on stderr what was loaded and every class of each part. The one
// way srn-train and srn-eval split, so that the same flags give both the same test classes.
absl::StatusOr<Split> LoadAndSplit(const std::string& dataset, const std::string& data_dir,
                                   Protocol protocol, uint64_t seed,
                                   ValidationSplit validation = ValidationSplit::kAuto);

// A one-line progress bar on stderr when it is a terminal; silent otherwise.
class ProgressBar final {
 public:
  ProgressBar();
  void Update(const std::string& label, int done, int total);
  void Clear();

 private:
  bool enabled_;
  bool drawn_ = false;
};

// The command line as one shell-quoted string, for the weights file's record.
std::string CommandLine(int argc, char** argv);

}  // namespace srn::tools

#endif  // SRN_MODEL_TOOLS_TOOL_COMMON_H_
