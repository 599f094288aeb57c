#include "model/tools/cross_dataset_report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/signature_features.h"
#include "model/weights/weights_file.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

namespace fs = std::filesystem;

// Writes into `root` a folder laid out as ../shared/data (svc2004/<task>/U<u>S<s>.TXT, 40 users
// x 40 files: 20 genuine, then 20 skilled forgeries) holding small synthetic signatures: each
// user's genuine signatures trace one Lissajous-like curve of its own with a little noise, its
// forgeries the same curve drawn at another pace and with more tremor. Task2 adds azimuth,
// altitude and pressure columns; `seed` draws the noise and lengths.
void WriteSyntheticSvc2004(const fs::path& root, const std::string& task, uint64_t seed) {
  const bool task2 = task == "Task2";
  const fs::path dir = root / "svc2004" / task;
  fs::create_directories(dir);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (int u = 1; u <= 40; ++u) {
    const double fx = 1 + (u % 5), fy = 1 + (u % 3) + 0.5 * (u % 2), phase = 0.37 * u;
    for (int s = 1; s <= 40; ++s) {
      const bool forgery = s > 20;
      const int n = 28 + static_cast<int>(rng() % 8);
      const double pace = forgery ? 1.35 : 1.0, tremor = forgery ? 9.0 : 3.0;
      std::ofstream f(dir / absl::StrCat("U", u, "S", s, ".TXT"));
      f << n << "\n";
      for (int i = 0; i < n; ++i) {
        const double t = std::pow(static_cast<double>(i) / (n - 1), pace) * 6.28;
        const int x = 3000 + static_cast<int>(800 * std::sin(fx * t + phase) + tremor * noise(rng));
        const int y = 3000 + static_cast<int>(500 * std::cos(fy * t) + tremor * noise(rng));
        f << x << " " << y << " " << 1000 + 10 * i << " " << 1;
        if (task2) f << " 900 500 " << 300 + 40 * ((i + u) % 7) + (forgery ? 60 : 0);
        f << "\n";
      }
    }
  }
}

std::string MakeSyntheticTask1(const std::string& name) {
  const fs::path root = fs::path(::testing::TempDir()) / name;
  WriteSyntheticSvc2004(root, "Task1", 7);
  return root.string();
}

// A small GRU whose metadata says it was trained by the frame-triplet objective on `trained_on`.
std::string StatesModelFile(const std::string& name, const std::string& trained_on) {
  std::shared_ptr<const SimilarityModel> random =
      testing::RandomModel("gru-a", kSignatureFeatureDims, 8, 11, /*signature=*/true);
  ModelMetadata metadata = random->metadata();
  metadata.training_data = trained_on;
  metadata.hyperparameters["objective"] = "frame-triplet";
  metadata.hyperparameters["frame_normalization"] = "l2";
  std::shared_ptr<const SimilarityModel> model = *SimilarityModel::Create(
      random->architecture(), random->preprocessor(), random->params(), metadata);
  const std::string path = (fs::path(::testing::TempDir()) / name).string();
  EXPECT_TRUE(SaveModel(*model, path).ok());
  return path;
}

// The value of `key=` in a RESULT line of `model` with `refs` references; NaN when absent.
double ResultValue(const std::vector<std::string>& lines, const std::string& model, int refs,
                   const std::string& key) {
  for (const std::string& line : lines) {
    if (!absl::StrContains(line, absl::StrCat(" model=", model, " refs=", refs, " "))) continue;
    for (absl::string_view part : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&part, absl::StrCat(key, "="))) return std::stod(std::string(part));
    }
  }
  return std::nan("");
}

// The calibration a report printed for srn-eval --stamp_out ("to deploy: --verification=..."),
// or "" when it printed none.
std::string DeployedCalibration(const std::string& log) {
  std::smatch deploy;
  if (!std::regex_search(log, deploy, std::regex("to deploy: --verification=\"([^\"]*)\""))) {
    return "";
  }
  return deploy[1].str();
}

TEST(CrossDatasetReportTest, RejectsADataSetThatIsNotSignatures) {
  CrossDatasetRequest request;
  request.dataset = "arabic-voice";
  request.model = "dtw";
  std::ostringstream log;
  const absl::Status status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("signature data set"));
}

TEST(CrossDatasetReportTest, FittingNeedsOneReferenceAndSeveral) {
  CrossDatasetRequest request;
  request.dataset = "svc2004-task1";
  request.model = "dtw";
  request.fit_calibration = true;
  request.options.refs = {5};
  std::ostringstream log;
  const absl::Status status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("one reference and with several"));
}

TEST(CrossDatasetReportTest, RefusesAModelTrainedOnTheDataSet) {
  CrossDatasetRequest request;
  request.dataset = "svc2004-task1";
  request.data_dir = "/nonexistent";  // never read: the model is refused first
  request.model =
      StatesModelFile("trained_on_task1.srnw", "svc2004,svc2004-task1: 72 train signers");
  std::ostringstream log;
  const absl::Status status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("never saw"));
  // A name that merely contains the data set's is not a match.
  request.model = StatesModelFile("trained_on_task2.srnw", "svc2004: 36 train signers");
  EXPECT_NE(RunCrossDatasetReport(request, log).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CrossDatasetReportTest, FitsACalibrationThatServesTheLearnedScoreItsOwnWay) {
  CrossDatasetRequest request;
  request.data_dir = MakeSyntheticTask1("synthetic_task1");
  request.dataset = "svc2004-task1";
  request.model = StatesModelFile("states.srnw", "sigcomp2009-nisdcc: 10 train signers");
  request.name = "tiny";
  request.options.refs = {1, 3};
  request.options.draws = 2;
  request.fit_calibration = true;
  std::ostringstream log;
  absl::StatusOr<std::vector<std::string>> fitted = RunCrossDatasetReport(request, log);
  ASSERT_TRUE(fitted.ok()) << fitted.status() << "\n" << log.str();
  // Each reference count reports the DTW verifier, the learned part alone and the served score,
  // on one line each, the served one with its error rates at the shipped threshold.
  for (int refs : {1, 3}) {
    for (const std::string model : {"dtw", "tiny-alone", "tiny"}) {
      const double eer = ResultValue(*fitted, model, refs, "eer_skilled");
      EXPECT_TRUE(eer >= 0 && eer <= 1) << model << " " << refs << "\n" << log.str();
    }
    EXPECT_FALSE(std::isnan(ResultValue(*fitted, "tiny", refs, "far_skilled")));
    EXPECT_TRUE(std::isnan(ResultValue(*fitted, "tiny-alone", refs, "frr")));
  }
  // The fitted calibration is printed for srn-eval --stamp_out.
  const std::string text = log.str();
  const std::string deployed = DeployedCalibration(text);
  ASSERT_FALSE(deployed.empty()) << text;
  absl::StatusOr<VerificationCalibration> calibration = ParseVerificationCalibration(deployed);
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  EXPECT_EQ(calibration->learned, LearnedScore::kStatesDtw);
  EXPECT_TRUE(calibration->states_spread.has_value());
  EXPECT_TRUE(calibration->dtw_spread.has_value());

  // Served with that calibration (weights 0: the learned score alone, through the sigmoid), the
  // served score ranks trials exactly as the learned part alone, so their EERs agree; and at
  // the equal-error offsets the shipped threshold sits near the equal-error point.
  request.fit_calibration = false;
  request.calibration = *calibration;
  absl::StatusOr<std::vector<std::string>> served = RunCrossDatasetReport(request, log);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_DOUBLE_EQ(ResultValue(*served, "tiny", 3, "eer_skilled"),
                   ResultValue(*served, "tiny-alone", 3, "eer_skilled"));
  const double eer = ResultValue(*served, "tiny", 3, "eer_skilled");
  EXPECT_LE(ResultValue(*served, "tiny", 3, "frr"), eer + 0.25);
  EXPECT_LE(ResultValue(*served, "tiny", 3, "far_skilled"), eer + 0.25);

  // With the DTW verifier weighted in, the served score is no longer the learned part alone.
  calibration->dtw_fusion.weight_many = 4.0;
  request.calibration = *calibration;
  absl::StatusOr<std::vector<std::string>> fused = RunCrossDatasetReport(request, log);
  ASSERT_TRUE(fused.ok()) << fused.status();
  EXPECT_NE(
      ResultValue(*fused, "tiny", 3, "eer_random") + ResultValue(*fused, "tiny", 3, "eer_skilled"),
      ResultValue(*fused, "tiny-alone", 3, "eer_random") +
          ResultValue(*fused, "tiny-alone", 3, "eer_skilled"));
}

TEST(CrossDatasetReportTest, PoolsSeveralDataSetsEachWithAModelThatNeverSawIt) {
  const fs::path root = fs::path(::testing::TempDir()) / "synthetic_task1_task2";
  WriteSyntheticSvc2004(root, "Task1", 7);
  WriteSyntheticSvc2004(root, "Task2", 8);
  CrossDatasetRequest request;
  request.data_dir = root.string();
  request.dataset = "svc2004-task1,svc2004";
  request.model = absl::StrCat(StatesModelFile("without_task1.srnw", "svc2004 (36 signers)"), ",",
                               StatesModelFile("without_task2.srnw", "svc2004-task1 (36)"));
  request.name = "pooled";
  request.options.refs = {1, 3};
  request.options.draws = 2;
  request.fit_calibration = true;
  std::ostringstream log;
  absl::StatusOr<std::vector<std::string>> fitted = RunCrossDatasetReport(request, log);
  ASSERT_TRUE(fitted.ok()) << fitted.status() << "\n" << log.str();
  const std::string text = log.str();
  // Both data sets were scored, each in its groups of 10 signers, and the trials of all 8 groups
  // are one pool: the RESULT lines and the fitted calibration name both data sets.
  EXPECT_THAT(text, ::testing::HasSubstr("cross-dataset: svc2004-task1, 40 signers in 4 groups"));
  EXPECT_THAT(text, ::testing::HasSubstr("cross-dataset: svc2004, 40 signers in 4 groups"));
  EXPECT_THAT(text, ::testing::HasSubstr("(fitted on svc2004-task1+svc2004)"));
  for (const std::string& line : *fitted) {
    EXPECT_THAT(line, ::testing::HasSubstr(" dataset=svc2004-task1+svc2004 "));
  }
  const std::string deployed = DeployedCalibration(text);
  ASSERT_FALSE(deployed.empty()) << text;
  absl::StatusOr<VerificationCalibration> pooled = ParseVerificationCalibration(deployed);
  ASSERT_TRUE(pooled.ok()) << pooled.status();

  // Fitted on one of the two alone, the calibration differs: the pool moved it.
  request.dataset = "svc2004-task1";
  request.model = StatesModelFile("without_task1_again.srnw", "svc2004 (36 signers)");
  std::ostringstream one_log;
  ASSERT_TRUE(RunCrossDatasetReport(request, one_log).ok()) << one_log.str();
  const std::string alone = DeployedCalibration(one_log.str());
  ASSERT_FALSE(alone.empty()) << one_log.str();
  EXPECT_NE(alone, deployed);
}

TEST(CrossDatasetReportTest, SeveralDataSetsNeedAModelEachAndAFit) {
  CrossDatasetRequest request;
  request.data_dir = "/nonexistent";  // never read: the request is refused first
  request.dataset = "svc2004-task1,svc2004";
  request.model = StatesModelFile("only_one.srnw", "sigcomp2009-nisdcc");
  request.fit_calibration = true;
  request.options.refs = {1, 5};
  std::ostringstream log;
  absl::Status status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("--dataset names 2 and --model 1"));

  // Each model is checked against its own data set.
  request.model = absl::StrCat(StatesModelFile("saw_nisdcc.srnw", "sigcomp2009-nisdcc"), ",",
                               StatesModelFile("saw_task2.srnw", "svc2004, sigcomp2009-nisdcc"));
  status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("saw_task2.srnw was trained on"));

  // Pooling serves fitting only.
  request.model = absl::StrCat(StatesModelFile("a.srnw", "sigcomp2009-nisdcc"), ",",
                               StatesModelFile("b.srnw", "sigcomp2009-nisdcc"));
  request.fit_calibration = false;
  status = RunCrossDatasetReport(request, log).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("--fit_calibration"));
}

}  // namespace
}  // namespace srn
