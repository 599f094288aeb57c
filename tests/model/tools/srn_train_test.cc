// srn-train run as the real binary: its refusals (no data needed), the class split of a CSV
// manifest written by the test (--test_classes, --split, their errors, and the split recorded in
// the weights file), --help, and a tiny frame-triplet run on two merged signature sets (skipped
// without the public data).

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/dataset.h"
#include "model/weights/weights_file.h"
#include "tests/testing/run_tool.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SrnTrainTest : public testing::ScratchDirTest {
 protected:
  struct Run {
    int exit_code = -1;
    std::string err;  // stderr
  };

  // Runs srn-train with `flags` (no shell metacharacters in them), stderr captured.
  Run Train(const std::vector<std::string>& flags) {
    const std::string err_path = absl::StrCat(dir(), "/stderr.txt");
    const std::string command =
        absl::StrCat(SRN_TRAIN_BINARY, " ", absl::StrJoin(flags, " "), " 2>", err_path);
    Run run;
    const int status = std::system(command.c_str());
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    std::stringstream text;
    text << in.rdbuf();
    run.err = text.str();
    return run;
  }
};

TEST_F(SrnTrainTest, RefusesNonSignatureDatasetsInAList) {
  const Run run = Train({"--dataset=svc2004,arabic-digit", "--protocol=signers",
                         "--data_dir=/nonexistent", "--out=" + dir() + "/m.srnw"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("'arabic-digit' is not a signature dataset"));
}

TEST_F(SrnTrainTest, AListTrainsWithTheSignersProtocolOnly) {
  const Run run = Train({"--dataset=svc2004,svc2004-task1", "--protocol=svc2004-cv",
                         "--data_dir=/nonexistent", "--out=" + dir() + "/m.srnw"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("--protocol=signers"));
}

TEST_F(SrnTrainTest, RefusesAPressureDropoutOutsideZeroToOne) {
  const Run run = Train({"--dataset=svc2004", "--protocol=signers", "--pressure_dropout=1.5",
                         "--data_dir=/nonexistent", "--out=" + dir() + "/m.srnw"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("--pressure_dropout must be in [0, 1]"));
}

TEST_F(SrnTrainTest, ExtraTrainingDataOnlyJoinsSvc2004CvFolds) {
  const Run run = Train({"--dataset=svc2004", "--protocol=signers", "--extra_train=svc2004-task1",
                         "--data_dir=/nonexistent", "--out=" + dir() + "/m.srnw"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("--extra_train adds training data to --protocol=svc2004-cv"));
}

TEST_F(SrnTrainTest, Svc2004CvFoldTrainsOnExtraSetsAndRecordsThem) {
  SRN_REQUIRE_DATA(task2, "svc2004/Task2");
  SRN_REQUIRE_DATA(nisdcc, "sigcomp2009/NISDCC");
  const std::string out = dir() + "/fold.srnw";
  const Run run = Train({"--dataset=svc2004", "--protocol=svc2004-cv", "--fold=1",
                         "--extra_train=sigcomp2009-nisdcc", "--data_dir=" + DataDir(),
                         "--objective=frame-triplet", "--model=gru-a", "--hidden=4",
                         "--frame_norm=l2", "--epochs=1", "--triplets_per_epoch=32",
                         "--threads=2", "--out=" + out});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(out);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT((*model)->metadata().training_data,
              HasSubstr("also trained on every signer of sigcomp2009-nisdcc (12 signers)"));
}

TEST_F(SrnTrainTest, FrameTripletOnTwoMergedSetsRecordsThemAndThePressureDropout) {
  SRN_REQUIRE_DATA(task1, "svc2004/Task1");
  SRN_REQUIRE_DATA(nisdcc, "sigcomp2009/NISDCC");
  const std::string out = dir() + "/tiny.srnw";
  const Run run = Train({"--dataset=svc2004-task1,sigcomp2009-nisdcc", "--protocol=signers",
                         "--data_dir=" + DataDir(), "--objective=frame-triplet",
                         "--model=gru-a", "--hidden=4", "--frame_norm=l2", "--epochs=1",
                         "--triplets_per_epoch=32", "--augment_copies=1",
                         "--pressure_dropout=0.5", "--threads=2", "--out=" + out});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("val skilled EER"));
  EXPECT_THAT(run.err, HasSubstr("head (pooled embedding): logistic regression on 4000"));
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(out);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelMetadata& meta = (*model)->metadata();
  EXPECT_THAT(meta.training_data,
              HasSubstr("svc2004-task1,sigcomp2009-nisdcc (signers): merged svc2004-task1 (40 "
                        "signers), sigcomp2009-nisdcc (12 signers)"));
  // 10% of the 40 Task 1 signers (NISDCC's have 5 genuine signatures: too few to validate on).
  EXPECT_THAT(meta.training_data, HasSubstr("validation signers svc2004-task1/"));
  EXPECT_THAT(meta.training_data, HasSubstr("(4 of the 40 with skilled forgeries"));
  EXPECT_THAT(meta.training_data, HasSubstr("48 training signers"));
  EXPECT_THAT(meta.hyperparameters.at("augment"), HasSubstr("pressure_dropout 0.5"));
  EXPECT_EQ(meta.hyperparameters.at("objective"), "frame-triplet");
  EXPECT_THAT(meta.hyperparameters.at("head"), HasSubstr("logistic regression"));
  EXPECT_GT(meta.metrics.at("val_auc"), 0);
}

// A manifest of 10 sine classes named c0 .. c9 under dir()/data: 20 series each (2 held out of
// each training class for validation), 2 features.
class SrnTrainSplitTest : public SrnTrainTest {
 protected:
  void SetUp() override {
    SrnTrainTest::SetUp();
    Dataset data = testing::MakeSineDataset(10, 20, 2, 8, 12, 5);
    for (int c = 0; c < 10; ++c) data.label_names[c] = absl::StrCat("c", c);
    manifest_ = testing::WriteCsvManifest(dir() + "/data", data);
  }

  // A tiny training run on the manifest with `flags` added; the weights go to dir()/m.srnw.
  testing::ToolRun TrainTiny(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {SRN_TRAIN_BINARY, "--dataset=" + manifest_, "--model=srn-a",
                                     "--hidden=4", "--epochs=1", "--pairs_per_epoch=64",
                                     "--batch=16", "--threads=1", "--draws=2",
                                     "--out=" + dir() + "/m.srnw"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return testing::RunTool(argv, dir());
  }

  std::string TrainingData() {
    absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(dir() + "/m.srnw");
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? (*model)->metadata().training_data : "";
  }

  std::string manifest_;
};

TEST_F(SrnTrainSplitTest, TestClassesAreHonouredPrintedAndRecorded) {
  const testing::ToolRun run = TrainTiny({"--test_classes=c7,c3"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("  train classes (8): c0, c1, c2, c4, c5, c6, c8, c9\n"));
  EXPECT_THAT(run.err, HasSubstr("  test classes (2): c3, c7\n"));
  EXPECT_THAT(run.out, HasSubstr("RESULT protocol=out-of-domain dataset=" + manifest_));
  EXPECT_EQ(TrainingData(),
            absl::StrCat(manifest_, " (out-of-domain): split of --test_classes; train classes (8): "
                         "c0, c1, c2, c4, c5, c6, c8, c9; validation: 10% of each training "
                         "class's examples; test classes (2): c3, c7"));
}

TEST_F(SrnTrainSplitTest, ASplitFileIsHonouredAndRecorded) {
  const std::string split =
      Write("split.csv",
            "class,part\nc0,train\nc1,train\nc2,validation\nc3,train\nc4,test\nc5,train\n"
            "c6,train\nc7,validation\nc8,test\nc9,train\n");
  const testing::ToolRun run = TrainTiny({"--split=" + split, "--eval=false"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(TrainingData(),
              HasSubstr(absl::StrCat("split of --split=", split, "; train classes (6): c0, c1, "
                                     "c3, c5, c6, c9; validation classes (2): c2, c7; test "
                                     "classes (2): c4, c8")));
}

TEST_F(SrnTrainSplitTest, ASeededSplitIsRecordedWithItsSeed) {
  const testing::ToolRun run = TrainTiny({"--seed=4", "--eval=false"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(TrainingData(), HasSubstr("split drawn by seed 4 (choose one with --test_classes "
                                        "or --split); train classes (7): "));
  EXPECT_THAT(TrainingData(), HasSubstr("; test classes (3): "));
}

TEST_F(SrnTrainSplitTest, SplitErrorsSayWhatToDo) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::string two_parts = Write("two.csv", "c0,train\nc1,test\nc0,test\n");
  const std::string no_test = Write(
      "no_test.csv",
      "c0,train\nc1,train\nc2,train\nc3,train\nc4,validation\nc5,train\nc6,train\n"
      "c7,train\nc8,train\nc9,train\n");
  const std::vector<Case> cases = {
      {{"--test_classes=c3,walk"},
       "--test_classes: class 'walk' is not in the dataset; use the names of its label column "
       "(10 classes: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)"},
      {{"--split=" + two_parts},
       two_parts + ":3: class 'c0' is already assigned on line 1: give each class one line, in "
       "one part"},
      {{"--split=" + no_test}, "no test class; give at least one class the part 'test'"},
      {{"--test_classes=c0,c1,c2,c3,c4,c5,c6,c7,c8,c9"},
       "no training class (all 10 classes are test or validation classes)"},
      {{"--split=" + dir() + "/none.csv"}, "none.csv"},
      {{"--test_classes=c1", "--split=" + no_test},
       "--test_classes and --split both choose the split: give one"},
      {{"--test_classes=c1", "--protocol=within-domain"},
       "--test_classes chooses the classes of --protocol=out-of-domain or one-shot"},
      {{"--protocol=test"}, "--protocol=test has no training classes"},
  };
  for (const Case& c : cases) {
    const testing::ToolRun run = TrainTiny(c.flags);
    EXPECT_EQ(run.exit_code, 1) << absl::StrJoin(c.flags, " ") << ": " << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << absl::StrJoin(c.flags, " ");
    EXPECT_THAT(run.err, Not(HasSubstr("epoch"))) << "trained before refusing";
  }
}

TEST_F(SrnTrainTest, HelpExitsZeroAndNamesNoBuildPath) {
  testing::ExpectHelpWithoutBuildPaths(SRN_TRAIN_BINARY, dir(),
                                       {"srn-train: trains a siamese similarity model",
                                        "  --test_classes (default \"\")\n",
                                        "  --split (default \"\")\n"});
}

}  // namespace
}  // namespace srn
