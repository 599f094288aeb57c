#include "model/tools/calibration_report.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class CalibrationReportTest : public testing::ScratchDirTest {
 protected:
  // A random srn-a over 2 features, with `metadata`.
  static std::shared_ptr<const SimilarityModel> Model(ModelMetadata metadata) {
    const auto m = testing::RandomModel("srn-a", 2, 6, 5);
    return *SimilarityModel::Create(m->architecture(), m->preprocessor(), m->params(),
                                    std::move(metadata));
  }

  CalibrationRequest Request(std::shared_ptr<const SimilarityModel> model) const {
    CalibrationRequest r;
    r.model = std::move(model);
    r.data = testing::MakeSineDataset(12, 6, 2, 20, 30, 9);
    r.measured_on = "sines (--protocol=test)";
    r.target_fars = {0.05};
    r.trials.draws = 3;
    r.out = dir() + "/calibrated.srnw";
    return r;
  }
};

TEST_F(CalibrationReportTest, RecordsTheThresholdsTheReportPrints) {
  ModelMetadata meta;
  meta.training_data = "other sines";
  meta.trained_classes = {"class-a", "class-b"};  // not among the sines' class names
  const auto model = Model(meta);
  std::ostringstream log;
  absl::StatusOr<CalibrationReport> report = RunCalibration(Request(model), log);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> written =
      LoadModel(dir() + "/calibrated.srnw");
  ASSERT_TRUE(written.ok()) << written.status();
  const ModelMetadata& m = (*written)->metadata();
  ASSERT_TRUE(m.thresholds.has_value());
  EXPECT_EQ(m.thresholds->default_threshold, report->calibration.default_threshold);
  EXPECT_EQ(m.thresholds->default_choice, "far=0.05");
  EXPECT_THAT(m.thresholds->measured_on, HasSubstr("sines (--protocol=test): 12 classes"));
  EXPECT_EQ(m.training_data, "other sines");  // the rest of the metadata kept
  EXPECT_EQ(m.trained_classes, meta.trained_classes);
  EXPECT_EQ(ModelFingerprint(**written), ModelFingerprint(*model));  // the same model
  // The check on the other half of the classes is printed before the thresholds.
  ASSERT_FALSE(report->lines.empty());
  EXPECT_THAT(report->lines.front(),
              HasSubstr("check: FAR <= 0.05 calibrated on 6 classes, measured on 6 others"));
  EXPECT_THAT(report->lines.back(), HasSubstr("wrote " + dir() + "/calibrated.srnw"));
}

TEST_F(CalibrationReportTest, RefusesClassesTheModelWasTrainedOn) {
  ModelMetadata meta;
  const Dataset sines = testing::MakeSineDataset(12, 6, 2, 20, 30, 9);
  meta.trained_classes = {sines.label_names[0], sines.label_names[3]};
  std::sort(meta.trained_classes.begin(), meta.trained_classes.end());
  std::ostringstream log;
  absl::StatusOr<CalibrationReport> report = RunCalibration(Request(Model(meta)), log);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("trained on 2 of these classes"));
  EXPECT_THAT(report.status().message(), HasSubstr(sines.label_names[3]));
  EXPECT_THAT(report.status().message(), HasSubstr("srnctl model-info"));
}

TEST_F(CalibrationReportTest, RefusesAModelWhoseVerifyScoreIsAlreadyCalibrated) {
  // A signature model fused with DTW: its score is 0.5 at the equal-error point.
  const auto sig = testing::RandomModel("srn-a", 2, 6, 5, /*signature=*/true);
  ModelMetadata meta;
  meta.verification = "dtw_fusion=1:-1,2:-2";
  const auto model = *SimilarityModel::Create(sig->architecture(), sig->preprocessor(),
                                              sig->params(), meta);
  std::ostringstream log;
  absl::StatusOr<CalibrationReport> report = RunCalibration(Request(model), log);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("--protocol=cross-dataset --thresholds"));
}

}  // namespace
}  // namespace srn
