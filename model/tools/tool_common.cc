#include "model/tools/tool_common.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "model/data/dataset_loader.h"
#include "model/nn/relu_kernels.h"

ABSL_FLAG(std::string, kernels, "avx2",
          "the recurrent ReLU layers' kernels: avx2 (default) gives the same model and metrics "
          "for a seed on every x86-64 CPU with AVX2, with AVX-512 or without; auto also uses "
          "AVX-512 where the CPU has it (other last bits, so after training another model: "
          "docs/RESULTS.md, 'Reproducing results'); portable uses none (the generic code)");
ABSL_FLAG(std::string, test_classes, "",
          "out-of-domain and one-shot: the test classes, a comma list of class names as in the "
          "dataset (a manifest's label column, e.g. walk,wave); every other class trains "
          "(minus the validation classes). srn-eval needs the same flag as srn-train");
ABSL_FLAG(std::string, split, "",
          "out-of-domain and one-shot: a split file with one line '<class>,<part>' per class of "
          "the dataset, part train, validation or test (docs/DATA_FORMATS.md). Without "
          "--test_classes or --split a CSV manifest is split by --seed (70% of the classes "
          "train), the public data sets by their fixed splits");

namespace srn::tools {

int Fail(const std::string& tool, const absl::Status& status) {
  std::cerr << tool << ": " << status.message() << "\n";
  return 1;
}

absl::Status ApplyKernelsFlag() {
  SRN_ASSIGN_OR_RETURN(const relu_kernels::Isa cap,
                       relu_kernels::ParseKernels(absl::GetFlag(FLAGS_kernels)));
  relu_kernels::CapIsa(cap);
  return absl::OkStatus();
}

absl::StatusOr<ClassChoice> ClassChoiceFromFlags() {
  const std::string test_classes = absl::GetFlag(FLAGS_test_classes);
  const std::string split = absl::GetFlag(FLAGS_split);
  if (!test_classes.empty() && !split.empty()) {
    return absl::InvalidArgumentError(
        "--test_classes and --split both choose the split: give one (a split file can list the "
        "test classes as '<class>,test' lines)");
  }
  if (!test_classes.empty()) return ParseTestClasses(test_classes);
  if (!split.empty()) return ReadSplitFile(split);
  return ClassChoice{};
}

absl::Status RequireNoClassChoice(const std::string& protocol) {
  SRN_ASSIGN_OR_RETURN(const ClassChoice classes, ClassChoiceFromFlags());
  if (classes.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      classes.origin, " chooses the classes of --protocol=out-of-domain or one-shot; --protocol=",
      protocol, " splits by signer itself"));
}

absl::StatusOr<Split> LoadAndSplit(const std::string& dataset, const std::string& data_dir,
                                   Protocol protocol, uint64_t seed, ValidationSplit validation) {
  absl::StatusOr<ClassChoice> classes = ClassChoiceFromFlags();
  if (!classes.ok()) return classes.status();
  absl::StatusOr<Dataset> data = LoadNamedDataset(dataset, data_dir);
  if (!data.ok()) return data.status();
  absl::StatusOr<Split> split = MakeSplit(*data, dataset, protocol, seed, validation, *classes);
  if (!split.ok()) return split.status();
  // One part per line: every class name of each part.
  std::cerr << absl::StrFormat("%s: %d series, %d classes; %s: %s\n", dataset,
                               data->examples.size(), data->num_labels(), ProtocolName(protocol),
                               absl::StrReplaceAll(split->description, {{"; ", "\n  "}}))
            << absl::StrFormat("  train %d, validation %d, test %d series\n",
                               split->train.examples.size(), split->validation.examples.size(),
                               split->test.examples.size());
  return split;
}

ProgressBar::ProgressBar() : enabled_(isatty(STDERR_FILENO) != 0) {}

void ProgressBar::Update(const std::string& label, int done, int total) {
  if (!enabled_ || total <= 0) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(static_cast<int64_t>(kWidth) * done / total);
  std::fprintf(stderr, "\r%s [%s%s] %3d%%", label.c_str(), std::string(filled, '=').c_str(),
               std::string(kWidth - filled, ' ').c_str(), static_cast<int>(100LL * done / total));
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r%s\r", std::string(60, ' ').c_str());
  drawn_ = false;
}

std::string CommandLine(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.find_first_of(" \t'\"$\\") != std::string::npos) {
      std::string quoted = "'";
      for (char c : arg) {
        if (c == '\'') {
          quoted += "'\\''";
        } else {
          quoted += c;
        }
      }
      arg = quoted + "'";
    }
    absl::StrAppend(&line, i ? " " : "", arg);
  }
  return line;
}

}  // namespace srn::tools
