#include "model/metrics/metrics.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace srn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Genuine scores {0.8, 0.5}, impostor scores {0.5, 0.2, 0.9}; one tie across the classes.
const std::vector<double> kScores = {0.8, 0.5, 0.5, 0.2, 0.9};
const std::vector<int> kLabels = {1, 1, 0, 0, 0};

TEST(AucTest, PerfectSeparationIsOne) {
  EXPECT_DOUBLE_EQ(*Auc({0.9, 0.8, 0.3, 0.1}, {1, 1, 0, 0}), 1.0);
}

TEST(AucTest, ReversedIsZero) { EXPECT_DOUBLE_EQ(*Auc({0.9, 0.8, 0.3, 0.1}, {0, 0, 1, 1}), 0.0); }

TEST(AucTest, AllTiesIsOneHalf) {
  EXPECT_DOUBLE_EQ(*Auc({0.4, 0.4, 0.4, 0.4, 0.4}, {1, 0, 0, 1, 0}), 0.5);
}

TEST(AucTest, SmallCaseWithTiesByHand) {
  // Genuine 0.8 beats 0.5 and 0.2, loses to 0.9: 2. Genuine 0.5 ties 0.5 (1/2), beats 0.2: 1.5.
  EXPECT_DOUBLE_EQ(*Auc(kScores, kLabels), 3.5 / 6.0);
}

TEST(OperatingPointsTest, HandCase) {
  absl::StatusOr<std::vector<OperatingPoint>> curve = OperatingPoints(kScores, kLabels);
  ASSERT_TRUE(curve.ok()) << curve.status();
  const std::vector<OperatingPoint> expected = {
      {kInf, 0, 1}, {0.9, 1.0 / 3, 1}, {0.8, 1.0 / 3, 0.5}, {0.5, 2.0 / 3, 0}, {0.2, 1, 0}};
  ASSERT_EQ(curve->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*curve)[i].threshold, expected[i].threshold) << i;
    EXPECT_DOUBLE_EQ((*curve)[i].far, expected[i].far) << i;
    EXPECT_DOUBLE_EQ((*curve)[i].frr, expected[i].frr) << i;
  }
}

TEST(EerTest, InterpolatesBetweenAdjacentPoints) {
  // far - frr: -1, -2/3, -1/6 (at 0.8), +2/3 (at 0.5), 1. t = (1/6) / (5/6) = 0.2 from 0.8 to 0.5:
  // FAR 1/3 + 0.2 * 1/3 = 0.4 = FRR 1/2 - 0.2 * 1/2; threshold 0.8 - 0.2 * 0.3 = 0.74.
  absl::StatusOr<EerResult> eer = Eer(kScores, kLabels);
  ASSERT_TRUE(eer.ok()) << eer.status();
  EXPECT_DOUBLE_EQ(eer->eer, 0.4);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.74);
}

TEST(EerTest, ExactCrossingNeedsNoInterpolation) {
  // Points: (inf: 0, 1), (0.9: 0, 1/2), (0.8: 1/2, 1/2) -> FAR = FRR = 1/2 at 0.8.
  absl::StatusOr<EerResult> eer = Eer({0.9, 0.8, 0.7, 0.1}, {1, 0, 1, 0});
  ASSERT_TRUE(eer.ok()) << eer.status();
  EXPECT_DOUBLE_EQ(eer->eer, 0.5);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.8);
}

TEST(EerTest, CrossingRightAfterAcceptNothingReportsTheMaximumScore) {
  // (inf: 0, 1) then (0.9: 1/2, 0): t = 1 / 1.5, EER = 1/3; the threshold cannot interpolate +inf.
  absl::StatusOr<EerResult> eer = Eer({0.9, 0.9, 0.1}, {1, 0, 0});
  ASSERT_TRUE(eer.ok()) << eer.status();
  EXPECT_DOUBLE_EQ(eer->eer, 1.0 / 3);
  EXPECT_EQ(eer->threshold, 0.9);
}

TEST(EerTest, PerfectSeparationIsZero) {
  absl::StatusOr<EerResult> eer = Eer({0.9, 0.8, 0.3, 0.1}, {1, 1, 0, 0});
  ASSERT_TRUE(eer.ok());
  EXPECT_DOUBLE_EQ(eer->eer, 0.0);
  EXPECT_EQ(eer->threshold, 0.8);  // the first threshold with FRR = 0 (FAR still 0)
}

TEST(AtThresholdTest, CountsAcceptsAtOrAboveTheThreshold) {
  OperatingPoint at_tie = *AtThreshold(kScores, kLabels, 0.5);  // accepts 0.9n 0.8g 0.5g 0.5n
  EXPECT_DOUBLE_EQ(at_tie.far, 2.0 / 3);
  EXPECT_DOUBLE_EQ(at_tie.frr, 0.0);
  EXPECT_EQ(at_tie.threshold, 0.5);
  OperatingPoint mid = *AtThreshold(kScores, kLabels, 0.6);  // accepts 0.9n 0.8g
  EXPECT_DOUBLE_EQ(mid.far, 1.0 / 3);
  EXPECT_DOUBLE_EQ(mid.frr, 0.5);
  OperatingPoint none = *AtThreshold(kScores, kLabels, kInf);
  EXPECT_EQ(none.far, 0.0);
  EXPECT_EQ(none.frr, 1.0);
  OperatingPoint all = *AtThreshold(kScores, kLabels, -kInf);
  EXPECT_EQ(all.far, 1.0);
  EXPECT_EQ(all.frr, 0.0);
  EXPECT_EQ(AtThreshold(kScores, kLabels, kNaN).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AtFarTest, PicksTheLowestFrrWithinTheFarBudget) {
  OperatingPoint half = *AtFar(kScores, kLabels, 0.5);
  EXPECT_EQ(half.threshold, 0.8);
  EXPECT_DOUBLE_EQ(half.far, 1.0 / 3);
  EXPECT_DOUBLE_EQ(half.frr, 0.5);
  EXPECT_EQ(AtFar(kScores, kLabels, 1.0 / 3)->threshold, 0.8);  // FAR exactly at the budget
  OperatingPoint zero = *AtFar(kScores, kLabels, 0.0);
  EXPECT_EQ(zero.threshold, kInf);
  EXPECT_EQ(zero.frr, 1.0);
  OperatingPoint two_thirds = *AtFar(kScores, kLabels, 0.7);
  EXPECT_EQ(two_thirds.threshold, 0.5);
  EXPECT_EQ(two_thirds.frr, 0.0);
  EXPECT_EQ(AtFar(kScores, kLabels, 1.0)->threshold, 0.2);
  for (double bad : {-0.1, 1.5, kNaN}) {
    EXPECT_EQ(AtFar(kScores, kLabels, bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(MetricsErrorsTest, EveryScoredPairFunctionRejectsBadInput) {
  struct Case {
    const char* what;
    std::vector<double> scores;
    std::vector<int> labels;
  };
  const std::vector<Case> cases = {
      {"size mismatch", {0.1, 0.2, 0.3}, {1, 0}}, {"no positives", {0.1, 0.2}, {0, 0}},
      {"no negatives", {0.1, 0.2}, {1, 1}},       {"empty", {}, {}},
      {"NaN score", {0.1, kNaN, 0.3}, {1, 0, 0}}, {"infinite score", {0.1, kInf, 0.3}, {1, 0, 0}},
      {"label 2", {0.1, 0.2, 0.3}, {1, 0, 2}},    {"label -1", {0.1, 0.2, 0.3}, {1, -1, 0}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(Auc(c.scores, c.labels).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(OperatingPoints(c.scores, c.labels).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Eer(c.scores, c.labels).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(AtThreshold(c.scores, c.labels, 0.5).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(AtFar(c.scores, c.labels, 0.5).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

std::vector<OperatingPoint> RandomCurve(int pairs) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> scores;
  std::vector<int> labels;
  for (int i = 0; i < pairs; ++i) {
    labels.push_back(i % 2);
    scores.push_back(noise(rng) + labels.back());
  }
  return *OperatingPoints(scores, labels);
}

TEST(ThinCurveTest, KeepsEndsAndTheEerBracketWithinBudget) {
  const std::vector<OperatingPoint> curve = RandomCurve(2000);
  ASSERT_EQ(curve.size(), 2001u);
  int bracket = -1;
  for (size_t k = 0; k + 1 < curve.size() && bracket < 0; ++k) {
    if (curve[k].far < curve[k].frr && curve[k + 1].far >= curve[k + 1].frr) bracket = k;
  }
  ASSERT_GE(bracket, 0);
  const std::vector<OperatingPoint> thin = ThinCurve(curve, 50);
  EXPECT_LE(thin.size(), 50u);
  EXPECT_GE(thin.size(), 40u);  // the spread points rarely collide on a long curve
  EXPECT_EQ(thin.front().threshold, curve.front().threshold);
  EXPECT_EQ(thin.back().threshold, curve.back().threshold);
  bool has_left = false, has_right = false;
  for (size_t i = 0; i < thin.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(thin[i].threshold, thin[i - 1].threshold);  // original order, no repeats
    }
    has_left |= thin[i].threshold == curve[bracket].threshold;
    has_right |= thin[i].threshold == curve[bracket + 1].threshold;
  }
  EXPECT_TRUE(has_left);
  EXPECT_TRUE(has_right);
  // Spread along the curve: no gap in (far, frr) longer than a few budget steps (length 2 / 46).
  for (size_t i = 1; i < thin.size(); ++i) {
    EXPECT_LT(std::abs(thin[i].far - thin[i - 1].far) + std::abs(thin[i].frr - thin[i - 1].frr),
              0.1)
        << i;
  }
}

TEST(ThinCurveTest, ShortCurvesAndTinyBudgets) {
  const std::vector<OperatingPoint> curve = RandomCurve(20);
  EXPECT_EQ(ThinCurve(curve, 21).size(), 21u);
  EXPECT_EQ(ThinCurve(curve, 100).size(), 21u);
  const std::vector<OperatingPoint> ends = ThinCurve(curve, 0);
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].threshold, kInf);
  EXPECT_EQ(ends[1].far, 1.0);
  EXPECT_EQ(ThinCurve(curve, 3).size(), 3u);
  EXPECT_TRUE(ThinCurve({}, 10).empty());
}

TEST(WriteOperatingPointsCsvTest, WritesShortestRoundTripText) {
  const std::string path = ::testing::TempDir() + "/metrics_test_curve.csv";
  ASSERT_TRUE(WriteOperatingPointsCsv(*OperatingPoints(kScores, kLabels), path).ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(),
            "threshold,far,frr\n"
            "inf,0,1\n"
            "0.9,0.3333333333333333,1\n"
            "0.8,0.3333333333333333,0.5\n"
            "0.5,0.6666666666666666,0\n"
            "0.2,1,0\n");
}

TEST(WriteOperatingPointsCsvTest, MissingDirectoryIsNotFound) {
  absl::Status status = WriteOperatingPointsCsv({}, "/nonexistent-srn-dir/curve.csv");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent-srn-dir/curve.csv"), absl::string_view::npos);
}

// --- one-shot 1-NN ---

TEST(OneShotTest, PerfectScoresGiveAccuracyOne) {
  const std::vector<int> labels = {0, 0, 0, 1, 1, 1, 2, 2};
  auto score = [&](int q, int r) { return labels[q] == labels[r] ? 1.0 : 0.0; };
  absl::StatusOr<OneShotResult> result = OneShotAccuracy(labels, 20, 1, score);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->accuracy, 1.0);
  EXPECT_EQ(result->stddev, 0.0);
  EXPECT_EQ(result->draws, 20);
  EXPECT_EQ(result->queries_per_draw, 5);
}

TEST(OneShotTest, TiesGoToTheSmallestClassLabel) {
  // Constant scores: every query is assigned class 3 (the smallest label). Queries are the
  // 2 other examples of class 3 and the 1 other of class 7; class 9 (a single example) only
  // references. Accuracy = 2/3 in every draw.
  const std::vector<int> labels = {7, 3, 9, 3, 7, 3};
  absl::StatusOr<OneShotResult> result =
      OneShotAccuracy(labels, 10, 42, [](int, int) { return 0.5; });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->accuracy, 2.0 / 3);
  EXPECT_EQ(result->stddev, 0.0);
  EXPECT_EQ(result->queries_per_draw, 3);
}

// Class 0 at positions {0, 1, 10}, class 1 only at 5; similarity = -|x_q - x_r|.
// Reference 0 or 1 classifies one of the two class-0 queries correctly (1/2); reference 10 none
// (0).
const std::vector<int> kLineLabels = {0, 0, 0, 1};
const std::vector<double> kLinePositions = {0, 1, 10, 5};

double LineScore(int q, int r) { return -std::abs(kLinePositions[q] - kLinePositions[r]); }

TEST(OneShotTest, AccuracyMatchesTheDrawnReferencesExactly) {
  std::vector<std::vector<int>> calls;  // single-threaded: (query, reference) in call order
  auto recording = [&](int q, int r) {
    calls.push_back({q, r});
    return LineScore(q, r);
  };
  const int draws = 200;
  absl::StatusOr<OneShotResult> result = OneShotAccuracy(kLineLabels, draws, 3, recording);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->queries_per_draw, 2);
  // Each draw scores 2 queries x 2 references, the class-0 reference first.
  ASSERT_EQ(calls.size(), static_cast<size_t>(draws) * 4);
  std::vector<double> fractions;
  std::map<int, int> picked;
  for (int d = 0; d < draws; ++d) {
    const int reference = calls[d * 4][1];
    EXPECT_EQ(calls[d * 4 + 1][1], 3);      // the singleton class always references
    EXPECT_NE(calls[d * 4][0], reference);  // references are never queries
    ++picked[reference];
    fractions.push_back(reference == 2 ? 0.0 : 0.5);  // example 2 sits at position 10
  }
  double mean = 0;
  for (double f : fractions) mean += f / draws;
  double variance = 0;
  for (double f : fractions) variance += (f - mean) * (f - mean) / draws;
  EXPECT_DOUBLE_EQ(result->accuracy, mean);
  EXPECT_NEAR(result->stddev, std::sqrt(variance), 1e-12);
  // The reference is drawn uniformly: about 1/3 each, so accuracy about 1/3.
  for (int example : {0, 1, 2}) EXPECT_NEAR(picked[example], draws / 3.0, 30) << example;
  EXPECT_NEAR(result->accuracy, 1.0 / 3, 0.07);
}

TEST(OneShotTest, DeterministicForSeedAndThreadCount) {
  std::mt19937 rng(5);
  std::vector<int> labels;
  std::vector<double> x;
  for (int i = 0; i < 300; ++i) {
    labels.push_back(i % 7);
    x.push_back(labels.back() + 2.0 * std::uniform_real_distribution<double>(0, 1)(rng));
  }
  auto score = [&](int q, int r) { return -std::abs(x[q] - x[r]); };
  const OneShotResult one = *OneShotAccuracy(labels, 30, 11, score, 1);
  const OneShotResult four = *OneShotAccuracy(labels, 30, 11, score, 4);
  const OneShotResult again = *OneShotAccuracy(labels, 30, 11, score, 3);
  const OneShotResult other_seed = *OneShotAccuracy(labels, 30, 12, score, 1);
  EXPECT_EQ(one.accuracy, four.accuracy);
  EXPECT_EQ(one.stddev, four.stddev);
  EXPECT_EQ(one.accuracy, again.accuracy);
  EXPECT_NE(one.accuracy, other_seed.accuracy);
  EXPECT_GT(one.stddev, 0.0);
  EXPECT_GT(one.accuracy, 0.2);  // well above chance (1/7): overlapping but informative
  EXPECT_LT(one.accuracy, 0.95);
}

TEST(OneShotTest, BatchScorerSeesAllReferencesInClassOrder) {
  std::mutex mutex;
  int calls = 0;
  ReferenceScorer scorer = [&](int q, absl::Span<const int> refs, double* out) {
    std::lock_guard<std::mutex> lock(mutex);
    ++calls;
    EXPECT_EQ(refs.size(), 2u);
    EXPECT_EQ(kLineLabels[refs[0]], 0);
    EXPECT_EQ(refs[1], 3);
    for (size_t k = 0; k < refs.size(); ++k) out[k] = LineScore(q, refs[k]);
  };
  const OneShotResult batch = *OneShotAccuracyBatch(kLineLabels, 50, 9, scorer, 2);
  const OneShotResult pair = *OneShotAccuracy(kLineLabels, 50, 9, LineScore);
  EXPECT_EQ(calls, 100);
  EXPECT_EQ(batch.accuracy, pair.accuracy);
}

TEST(OneShotTest, RejectsBadInput) {
  auto score = [](int, int) { return 0.0; };
  const std::vector<int> labels = {0, 0, 1, 1};
  EXPECT_EQ(OneShotAccuracy({}, 1, 1, score).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneShotAccuracy({4, 4, 4}, 1, 1, score).status().code(),
            absl::StatusCode::kInvalidArgument);  // one class
  EXPECT_EQ(OneShotAccuracy({0, 1, 2}, 1, 1, score).status().code(),
            absl::StatusCode::kInvalidArgument);  // no class can provide a query
  EXPECT_EQ(OneShotAccuracy(labels, 0, 1, score).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneShotAccuracy(labels, 1, 1, score, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneShotAccuracy(labels, 1, 1, PairScore()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneShotAccuracyBatch(labels, 1, 1, ReferenceScorer()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status nan = OneShotAccuracy(
                         labels, 3, 1, [](int, int) { return kNaN; }, 2)
                         .status();
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan.message().find("NaN"), absl::string_view::npos);
}

}  // namespace
}  // namespace srn
