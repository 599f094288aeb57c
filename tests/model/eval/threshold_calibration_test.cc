#include "model/eval/threshold_calibration.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

// Trials whose scores are drawn from fixed distributions: genuine N(0.75, 0.1), impostor
// N(0.35, 0.15), clamped to [0, 1]; the same distributions for every seed, as classes of one
// population are.
VerifyTrials DrawnTrials(int genuine, int impostor, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.75, 0.1), i(0.35, 0.15);
  VerifyTrials t;
  for (int k = 0; k < genuine; ++k) {
    t.scores.push_back(std::clamp(g(rng), 0.0, 1.0));
    t.labels.push_back(1);
  }
  for (int k = 0; k < impostor; ++k) {
    t.scores.push_back(std::clamp(i(rng), 0.0, 1.0));
    t.labels.push_back(0);
  }
  t.genuine = genuine;
  t.impostor = impostor;
  return t;
}

TEST(CalibrateThresholdsTest, ReadsTheLowestThresholdWithinEachTarget) {
  // Impostors 0.1 .. 1.0 (ten), genuines 0.55 .. 1.0 by 0.05: FAR <= 0.2 first holds at the
  // genuine score 0.85 (impostors 0.9 and 1.0 accepted), FAR <= 0.1 at 0.95.
  VerifyTrials t;
  for (int k = 1; k <= 10; ++k) {
    t.scores.push_back(k / 10.0);
    t.labels.push_back(0);
    t.scores.push_back(0.5 + k / 20.0);
    t.labels.push_back(1);
  }
  t.genuine = t.impostor = 10;
  absl::StatusOr<ThresholdCalibration> c = CalibrateThresholds(t, {0.1, 0.2}, "far=0.2");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->points.size(), 2u);
  EXPECT_EQ(c->points[0].target_far, 0.2);  // by decreasing target
  EXPECT_DOUBLE_EQ(c->points[0].threshold, 0.85);
  EXPECT_DOUBLE_EQ(c->points[0].far, 0.2);
  EXPECT_DOUBLE_EQ(c->points[1].threshold, 0.95);
  EXPECT_DOUBLE_EQ(c->points[1].far, 0.1);
  EXPECT_EQ(c->default_choice, "far=0.2");
  EXPECT_DOUBLE_EQ(c->default_threshold, 0.85);
  EXPECT_GT(c->eer, 0.0);
  EXPECT_LT(c->eer, 0.5);

  absl::StatusOr<ThresholdCalibration> eer = CalibrateThresholds(t, {0.1}, "eer");
  ASSERT_TRUE(eer.ok()) << eer.status();
  EXPECT_EQ(eer->default_threshold, eer->eer_threshold);
  absl::StatusOr<ThresholdCalibration> first = CalibrateThresholds(t, {0.2, 0.1}, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->default_choice, "far=0.2");  // the first target given
}

TEST(CalibrateThresholdsTest, RefusesWhatCannotBeMeasuredSayingWhatToDo) {
  const VerifyTrials t = DrawnTrials(50, 200, 1);
  for (double bad : {0.0, 1.0, -0.1, 1.5}) {
    absl::StatusOr<ThresholdCalibration> c = CalibrateThresholds(t, {bad}, "");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("(0, 1)"));
  }
  absl::StatusOr<ThresholdCalibration> tiny = CalibrateThresholds(t, {0.001}, "");
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tiny.status().message(), HasSubstr("more classes or draws"));
  absl::StatusOr<ThresholdCalibration> choice = CalibrateThresholds(t, {0.05}, "far=0.1");
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(choice.status().message(), HasSubstr("far=0.05"));
  EXPECT_EQ(CalibrateThresholds(t, {}, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CalibrateThresholdsTest, FarOnOtherTrialsOfThePopulationStaysWithinTwiceTheTarget) {
  // The known answer: thresholds read off one sample of trials hold on another sample of the
  // same population (the held-out classes) to within 2x of each target.
  const VerifyTrials calibration = DrawnTrials(2000, 20000, 7);
  const VerifyTrials other = DrawnTrials(2000, 20000, 8);
  absl::StatusOr<ThresholdCalibration> c = CalibrateThresholds(calibration, {0.05, 0.01}, "");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<ThresholdCalibration> held = MeasureAtThresholds(*c, other);
  ASSERT_TRUE(held.ok()) << held.status();
  for (const ThresholdCalibration::Point& p : held->points) {
    EXPECT_GT(p.far, p.target_far / 2) << p.target_far;
    EXPECT_LT(p.far, p.target_far * 2) << p.target_far;
    EXPECT_GT(p.frr, 0.0);
  }
  // The normal quantiles: impostors above 0.35 + 1.645 * 0.15 are 5%.
  EXPECT_NEAR(c->points[0].threshold, 0.35 + 1.6449 * 0.15, 0.02);
}

TEST(ScoreVerifyTrialsTest, EnrollsEveryClassAndScoresEveryOtherExample) {
  // 4 classes x 5 examples, 1 of them forged per class: each draw enrolls 2 genuine references
  // of each class; queries are the 16 + 4 other examples.
  const Dataset data = testing::MakeSineDataset(4, 4, 2, 20, 30, 3, /*forgeries=*/1);
  const auto model = testing::RandomModel("srn-a", 2, 6, 11);
  VerifyTrialOptions options;
  options.references = 2;
  options.draws = 3;
  absl::StatusOr<VerifyTrials> t = ScoreVerifyTrials(*model, data, options);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->subjects, 4);
  // Per subject and draw: 2 genuine queries, 12 other-class genuines + 4 forgeries impostors.
  EXPECT_EQ(t->genuine, 3 * 4 * 2);
  EXPECT_EQ(t->impostor, 3 * 4 * 16);
  ASSERT_EQ(t->scores.size(), t->labels.size());
  for (double s : t->scores) {
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, 1.0);
  }
  // Deterministic for the seed.
  absl::StatusOr<VerifyTrials> again = ScoreVerifyTrials(*model, data, options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->scores, t->scores);
}

TEST(ScoreVerifyTrialsTest, AScorerLimitedToSomeClassesScoresAsIfTheDataHeldOnlyThose) {
  const Dataset data = testing::MakeSineDataset(6, 4, 2, 20, 30, 3);
  const auto model = testing::RandomModel("srn-a", 2, 6, 11);
  absl::StatusOr<VerifyTrialScorer> scorer = VerifyTrialScorer::Create(*model, data);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  VerifyTrialOptions options;
  const std::vector<int> some = {1, 4, 5};
  absl::StatusOr<VerifyTrials> limited = scorer->Score(options, &some);
  ASSERT_TRUE(limited.ok()) << limited.status();
  absl::StatusOr<VerifyTrials> alone = ScoreVerifyTrials(
      *model, data.Filter([](const Example& e) { return e.label == 1 || e.label >= 4; }),
      options);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(limited->subjects, 3);
  EXPECT_EQ(limited->impostor, 10 * 3 * 8);  // 3 subjects x 8 other-class queries per draw
  EXPECT_EQ(limited->scores, alone->scores);
  EXPECT_EQ(limited->labels, alone->labels);
  const std::vector<int> one = {2};
  EXPECT_EQ(scorer->Score(options, &one).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ScoreVerifyTrialsTest, RefusesTooFewClassesAndForeignFeatures) {
  const auto model = testing::RandomModel("srn-a", 2, 6, 11);
  VerifyTrialOptions options;
  options.references = 5;  // every class has only 4 examples
  absl::StatusOr<VerifyTrials> t =
      ScoreVerifyTrials(*model, testing::MakeSineDataset(3, 4, 2, 20, 30, 3), options);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("--calibration_refs"));
  options.references = 1;
  t = ScoreVerifyTrials(*model, testing::MakeSineDataset(3, 4, 3, 20, 30, 3), options);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("features per frame"));
}

TEST(DescribeThresholdCalibrationTest, SaysWhatEachThresholdIsFor) {
  ThresholdCalibration c;
  c.points = {{0.01, 0.9, 0.0098, 0.2}};
  c.eer = 0.07;
  c.eer_threshold = 0.6;
  c.default_choice = "far=0.01";
  c.default_threshold = 0.9;
  c.genuine_trials = 10;
  c.impostor_trials = 1000;
  c.measured_on = "x.csv";
  const std::vector<std::string> lines = DescribeThresholdCalibration(c);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0], HasSubstr("threshold 0.900000 for FAR <= 0.01"));
  EXPECT_THAT(lines[2], HasSubstr("default threshold (far=0.01): 0.900000"));
  EXPECT_THAT(lines[3], HasSubstr("x.csv"));
}

}  // namespace
}  // namespace srn
