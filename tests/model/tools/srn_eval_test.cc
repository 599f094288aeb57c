// srn-eval run as the real binary on CSV manifests written by the test: the seeded class split
// (reproducible, driven by the seed, the same as srn-train's for the same flags), --protocol=test
// on a manifest of classes the model never saw (for a trained model and for DTW), and --help.

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/dataset.h"
#include "tests/testing/run_tool.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/synthetic_data.h"

namespace srn {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class SrnEvalTest : public testing::ScratchDirTest {
 protected:
  // Writes `classes` sine classes named <prefix>0, <prefix>1, ... (20 series each, 2 features)
  // as a manifest under dir()/<folder>; returns its path.
  std::string WriteSines(const std::string& folder, int classes, const std::string& prefix,
                         uint64_t seed) {
    Dataset data = testing::MakeSineDataset(classes, 20, 2, 8, 12, seed);
    for (int c = 0; c < classes; ++c) data.label_names[c] = absl::StrCat(prefix, c);
    return testing::WriteCsvManifest(absl::StrCat(dir(), "/", folder), data);
  }

  testing::ToolRun Eval(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {SRN_EVAL_BINARY, "--threads=1", "--draws=2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return testing::RunTool(argv, dir());
  }

  // A tiny model trained by srn-train on `manifest` with `flags` added, written to dir()/m.srnw.
  std::string TrainTiny(const std::string& manifest, const std::vector<std::string>& flags) {
    const std::string out = dir() + "/m.srnw";
    std::vector<std::string> argv = {SRN_TRAIN_BINARY, "--dataset=" + manifest, "--model=srn-a",
                                     "--hidden=4", "--epochs=1", "--pairs_per_epoch=64",
                                     "--batch=16", "--threads=1", "--eval=false", "--out=" + out};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const testing::ToolRun run = testing::RunTool(argv, dir());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    train_err_ = run.err;
    return out;
  }

  std::string train_err_;  // srn-train's stderr of the last TrainTiny
};

// The line "  test classes (N): ..." of a tool's stderr.
std::string TestClassesLine(const std::string& err) {
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::StartsWith(line, "  test classes (")) return std::string(line);
  }
  return "";
}

TEST_F(SrnEvalTest, TheSeedDrivesAManifestsSplitReproducibly) {
  const std::string manifest = WriteSines("data", 10, "c", 5);
  const std::vector<std::string> common = {"--model=dtw", "--dataset=" + manifest,
                                           "--protocol=out-of-domain"};
  std::vector<std::string> lines;
  for (const char* seed : {"--seed=1", "--seed=1", "--seed=2"}) {
    std::vector<std::string> flags = common;
    flags.push_back(seed);
    const testing::ToolRun run = Eval(flags);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_THAT(run.err, HasSubstr("split drawn by seed"));
    EXPECT_THAT(run.err, HasSubstr("  train classes (7): c"));
    EXPECT_THAT(run.out, StartsWith("RESULT protocol=out-of-domain dataset=" + manifest +
                                    " model=dtw auc="));
    lines.push_back(TestClassesLine(run.err));
    EXPECT_THAT(lines.back(), StartsWith("  test classes (3): c"));
  }
  EXPECT_EQ(lines[0], lines[1]);
  EXPECT_NE(lines[0], lines[2]);
}

TEST_F(SrnEvalTest, TrainAndEvalAgreeOnTheSplitForTheSameFlags) {
  const std::string manifest = WriteSines("data", 10, "c", 5);
  // The seed: srn-eval reads it from the weights file.
  const std::string model = TrainTiny(manifest, {"--seed=3"});
  testing::ToolRun run = Eval({"--model=" + model, "--dataset=" + manifest});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(TestClassesLine(run.err), TestClassesLine(train_err_));
  EXPECT_THAT(TestClassesLine(run.err), StartsWith("  test classes (3): "));
  // Chosen classes: the same flag on both.
  TrainTiny(manifest, {"--test_classes=c2,c9"});
  run = Eval({"--model=" + model, "--dataset=" + manifest, "--test_classes=c2,c9"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(TestClassesLine(run.err), "  test classes (2): c2, c9");
  EXPECT_EQ(TestClassesLine(run.err), TestClassesLine(train_err_));
}

TEST_F(SrnEvalTest, TheTestProtocolEvaluatesAManifestOfClassesTheModelNeverSaw) {
  const std::string model = TrainTiny(WriteSines("train", 10, "c", 5), {});
  const std::string unseen = WriteSines("unseen", 4, "new", 11);
  testing::ToolRun run = Eval({"--model=" + model, "--dataset=" + unseen, "--protocol=test"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("test: every class tests\n  test classes (4): new0, new1, new2, "
                                 "new3\n"));
  EXPECT_THAT(run.out, ContainsRegex("^RESULT protocol=test dataset=" + unseen +
                                     " model=srn-a auc=[0-9.]+ oneshot=[0-9.]+\n$"));
  // The DTW baseline on the same manifest.
  run = Eval({"--model=dtw", "--dataset=" + unseen, "--protocol=test"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, ContainsRegex("^RESULT protocol=test dataset=" + unseen +
                                     " model=dtw auc=[0-9.]+ oneshot=[0-9.]+\n$"));
}

TEST_F(SrnEvalTest, TheTestProtocolRefusesAChosenSplitAndAllPointsToIt) {
  const std::string manifest = WriteSines("data", 4, "c", 5);
  testing::ToolRun run =
      Eval({"--model=dtw", "--dataset=" + manifest, "--protocol=test", "--test_classes=c1"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("--protocol=out-of-domain or one-shot; test tests every class"));
  run = Eval({"--model=dtw", "--dataset=" + manifest, "--protocol=all"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("use --protocol=test"));
  run = Eval({"--model=fisher-kernel", "--dataset=" + manifest, "--protocol=test"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("--protocol=test has none"));
}

TEST_F(SrnEvalTest, CalibrateRecordsThresholdsAndDrawsThePicture) {
  const std::string model = TrainTiny(WriteSines("train", 10, "c", 5), {});
  const std::string unseen = WriteSines("unseen", 6, "new", 11);
  const std::string calibrated = dir() + "/calibrated.srnw";
  testing::ToolRun run =
      Eval({"--model=" + model, "--dataset=" + unseen, "--protocol=test", "--calibrate",
            "--target_far=0.1,0.05", "--calibrated_out=" + calibrated,
            "--roc_csv=" + dir() + "/roc.csv"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, ContainsRegex("check: FAR <= 0.1 calibrated on 3 classes, measured on 3 "
                                     "others, 10 random halvings: FAR mean [0-9.]+"));
  EXPECT_THAT(run.out, ContainsRegex("threshold [0-9.]+ for FAR <= 0.05: FAR 0\\.0[0-5]"));
  EXPECT_THAT(run.out, ContainsRegex("default threshold \\(far=0.1\\): [0-9.]+\n"));
  EXPECT_THAT(run.out, HasSubstr("measured on " + unseen + " (--protocol=test): 6 classes never "
                                 "trained on"));
  EXPECT_THAT(run.out, HasSubstr("wrote " + calibrated));
  EXPECT_THAT(run.out, ContainsRegex("\nRESULT protocol=test [^\n]*\n$"));  // still last
  EXPECT_THAT(run.err, HasSubstr("wrote " + dir() + "/roc.svg"));
  // The ROC CSV's thresholds are similarities, as the server's.
  std::ifstream roc(dir() + "/roc.csv");
  std::string line;
  std::getline(roc, line);
  EXPECT_EQ(line, "threshold,far,frr");
  while (std::getline(roc, line)) {
    const double threshold = std::stod(line.substr(0, line.find(',')));
    if (!std::isinf(threshold)) EXPECT_TRUE(threshold >= 0 && threshold <= 1) << line;
  }

  // Calibrating on the classes it trained on is refused, naming them.
  run = Eval({"--model=" + calibrated, "--dataset=" + dir() + "/train/manifest.csv",
              "--protocol=test", "--calibrate", "--target_far=0.1"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("the model was trained on"));
  EXPECT_THAT(run.err, HasSubstr("Calibrate on classes it never saw"));
  // And calibrating a baseline, or on a protocol without unseen classes, says what to give.
  run = Eval({"--model=dtw", "--dataset=" + unseen, "--protocol=test", "--calibrate"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("give --model=<file.srnw>"));
}

TEST_F(SrnEvalTest, HelpExitsZeroAndNamesNoBuildPath) {
  testing::ExpectHelpWithoutBuildPaths(SRN_EVAL_BINARY, dir(),
                                       {"srn-eval: evaluates a weights file", "--protocol=test",
                                        "  --test_classes (default \"\")\n"});
}

}  // namespace
}  // namespace srn
