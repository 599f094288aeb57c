// srn-train's multi-dataset and pressure-dropout paths, run as the real binary: its refusals
// (no data needed) and a tiny frame-triplet run on two merged signature sets (skipped without
// the public data).

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
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace srn
