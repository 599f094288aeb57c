#include "model/tools/tool_common.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/data/dataset_loader.h"

namespace srn::tools {

int Fail(const std::string& tool, const absl::Status& status) {
  std::cerr << tool << ": " << status.message() << "\n";
  return 1;
}

absl::StatusOr<Split> LoadAndSplit(const std::string& dataset, const std::string& data_dir,
                                   Protocol protocol, uint64_t seed, ValidationSplit validation) {
  absl::StatusOr<Dataset> data = LoadNamedDataset(dataset, data_dir);
  if (!data.ok()) return data.status();
  absl::StatusOr<Split> split = MakeSplit(*data, dataset, protocol, seed, validation);
  if (!split.ok()) return split.status();
  std::cerr << absl::StrFormat("%s: %d series, %d classes; %s: %s\n", dataset,
                               data->examples.size(), data->num_labels(), ProtocolName(protocol),
                               split->description)
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
