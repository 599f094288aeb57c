#include "model/signature/verification.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

TEST(ReferenceFusionTest, FloatScoresAsTheServerFusesThem) {
  const std::vector<double> s = {0.2f, 0.9f, 0.5f, 0.7f};
  EXPECT_FLOAT_EQ(FuseReferenceScores(s, ReferenceFusion::kMax, 0), 0.9f);
  EXPECT_FLOAT_EQ(FuseReferenceScores(s, ReferenceFusion::kMean, 0), 0.575f);
  EXPECT_FLOAT_EQ(FuseReferenceScores(s, ReferenceFusion::kTopKMean, 2), 0.8f);
  EXPECT_FLOAT_EQ(FuseReferenceScores(s, ReferenceFusion::kTopKMean, 10), 0.575f);  // k clamps
  EXPECT_FLOAT_EQ(FuseReferenceScores({0.2f}, ReferenceFusion::kTopKMean, 3), 0.2f);
  // No references: 0 for every rule (never NaN).
  for (ReferenceFusion rule :
       {ReferenceFusion::kMax, ReferenceFusion::kMean, ReferenceFusion::kTopKMean}) {
    EXPECT_EQ(FuseReferenceScores({}, rule, 3), 0.0);
  }
}

TEST(ReferenceFusionTest, Rules) {
  const std::vector<double> s = {1, 5, 3};
  EXPECT_DOUBLE_EQ(FuseReferenceScores(s, ReferenceFusion::kMax, 0), 5);
  EXPECT_DOUBLE_EQ(FuseReferenceScores(s, ReferenceFusion::kMean, 0), 3);
  EXPECT_DOUBLE_EQ(FuseReferenceScores(s, ReferenceFusion::kTopKMean, 2), 4);
  EXPECT_DOUBLE_EQ(FuseReferenceScores(s, ReferenceFusion::kTopKMean, 5), 3);
  EXPECT_EQ(ParseReferenceFusion("topk").value(), ReferenceFusion::kTopKMean);
  EXPECT_EQ(ParseReferenceFusion("median").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScoreNormalization("ratio").value(), ScoreNormalization::kRatio);
}

TEST(ScoreNormalizationTest, RatioShiftAndOneReference) {
  // DTW-like: mean mutual similarity -2 (distance 2); a query at distance 2 scores -1.
  EXPECT_DOUBLE_EQ(NormalizeScore(-2, {-1, -3}, ScoreNormalization::kRatio), -1);
  EXPECT_DOUBLE_EQ(NormalizeScore(0.5, {1, 2}, ScoreNormalization::kShift), -1);
  EXPECT_DOUBLE_EQ(NormalizeScore(0.5, {1, 2}, ScoreNormalization::kNone), 0.5);
  EXPECT_DOUBLE_EQ(NormalizeScore(0.5, {}, ScoreNormalization::kShift), 0.5);
}

TEST(SubjectThresholdTest, MatchesNormalizedDecision) {
  const std::vector<double> mutual = {-4, -2, -3};  // mean -3
  EXPECT_DOUBLE_EQ(SubjectThreshold(mutual, -1.2, ScoreNormalization::kRatio), -3.6);
  EXPECT_DOUBLE_EQ(SubjectThreshold({0.5, 1.5}, 0.25, ScoreNormalization::kShift), 1.25);
  EXPECT_DOUBLE_EQ(SubjectThreshold({}, 0.25, ScoreNormalization::kShift), 0.25);
  for (ScoreNormalization n : {ScoreNormalization::kRatio, ScoreNormalization::kShift,
                               ScoreNormalization::kNone}) {
    for (double s = -6; s <= 2; s += 0.25) {
      const double t = -1.1;
      EXPECT_EQ(s >= SubjectThreshold(mutual, t, n), NormalizeScore(s, mutual, n) >= t)
          << "score " << s << " normalization " << ScoreNormalizationName(n);
    }
  }
}

TEST(ThresholdForFarTest, HandComputed) {
  const std::vector<double> imp = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(*ThresholdForFar(imp, 0.2), 9);   // accepts 9 and 10
  EXPECT_DOUBLE_EQ(*ThresholdForFar(imp, 0.25), 9);
  EXPECT_DOUBLE_EQ(*ThresholdForFar(imp, 1.0), 1);
  EXPECT_TRUE(std::isinf(*ThresholdForFar(imp, 0.05)));
  // Ties: accepting 5 accepts both fives.
  EXPECT_TRUE(std::isinf(*ThresholdForFar({5, 5, 1, 1}, 0.25)));
  EXPECT_DOUBLE_EQ(*ThresholdForFar({5, 5, 1, 1}, 0.5), 5);
  EXPECT_EQ(ThresholdForFar(imp, 1.5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ThresholdForFar({}, 0.1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ThresholdForFar({std::nan("")}, 0.1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FusedVerificationScoreTest, MatchesTheCrossValidatedFusion) {
  const DtwFusionCalibration c{4.0, -1.0, 2.0, -3.0};
  // Several references: f = 0.7 - 0.6 - 2 * 1.5 = -2.9; sigmoid(-2.9 + 3) = sigmoid(0.1).
  EXPECT_NEAR(FusedVerificationScore(0.7, 0.6, 1.5, 5, c), 1 / (1 + std::exp(-0.1)), 1e-12);
  // One reference: no mutual similarity; f = 0.7 - 4 * 0.4 = -0.9; sigmoid(0.1) again.
  EXPECT_NEAR(FusedVerificationScore(0.7, 0.6, 0.4, 1, c), 1 / (1 + std::exp(-0.1)), 1e-12);
  // At the equal-error point the score is one half, and it falls as the DTW distance grows.
  EXPECT_DOUBLE_EQ(FusedVerificationScore(0.5, 0.5, 1.5, 2, c), 0.5);
  EXPECT_LT(FusedVerificationScore(0.5, 0.5, 2.0, 2, c), 0.5);
  EXPECT_FALSE(DtwFusionCalibration{}.enabled());
  EXPECT_TRUE(c.enabled());
}

TEST(ParseDtwFusionCalibrationTest, ReadsWhatSrnEvalPrints) {
  absl::StatusOr<DtwFusionCalibration> c = ParseDtwFusionCalibration("8:-4.04653,4:-4.96438");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->weight_one, 8);
  EXPECT_EQ(c->offset_one, -4.04653);
  EXPECT_EQ(c->weight_many, 4);
  EXPECT_EQ(c->offset_many, -4.96438);
  for (const char* bad :
       {"", "8:-4", "8:-4,4", "8:-4,4:x", "-1:0,1:0", "inf:0,1:0", "1:nan,1:0", "1:0,1:0,1:0"}) {
    const absl::Status status = ParseDtwFusionCalibration(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("W1:O1,WN:ON")) << bad;
  }
}

TEST(VerificationCalibrationTest, FormatAndParseRoundTrip) {
  VerificationCalibration c;
  EXPECT_EQ(FormatVerificationCalibration(c), "");
  EXPECT_FALSE(ParseVerificationCalibration("")->dtw_fusion.enabled());
  c.dtw_fusion = {2.0, -2.00308, 4.0, -4.95391};
  DtwSpreadModel spread;
  spread.coefficients = {-0.423193, -0.255644, -0.693426, 0.0868051};
  spread.log_min = -1.27963;
  spread.log_max = -0.0237914;
  c.dtw_spread = spread;
  const std::string text = FormatVerificationCalibration(c);
  EXPECT_EQ(text,
            "dtw_fusion=2:-2.00308,4:-4.95391 "
            "dtw_spread=-0.423193,-0.255644,-0.693426,0.0868051,-1.27963,-0.0237914");
  absl::StatusOr<VerificationCalibration> parsed = ParseVerificationCalibration(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(FormatVerificationCalibration(*parsed), text);
  EXPECT_EQ(parsed->dtw_fusion.offset_many, -4.95391);
  const absl::Status bad = ParseVerificationCalibration("dtw_fusion=2:1,4:2 colour=blue").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("colour=blue"));
  EXPECT_FALSE(ParseVerificationCalibration("dtw_fusion=2:1").ok());
}

TEST(ScoreVerificationTest, FusesDtwOnlyWhenEnabledAndGiven) {
  const std::vector<double> sims = {0.8, 0.6};
  const std::vector<double> dists = {3.0, 5.0};
  VerificationEvidence e;
  e.similarities = sims;
  e.mutual_similarity = 0.5;
  e.dtw_distances = dists;
  e.dtw_spread = 2.0;
  VerificationPolicy policy;
  VerificationScore plain = ScoreVerification(e, policy);
  EXPECT_DOUBLE_EQ(plain.srn, 0.7);
  EXPECT_DOUBLE_EQ(plain.score, 0.7);
  EXPECT_FALSE(plain.dtw_ratio.has_value());
  policy.dtw_fusion = {2.0, -1.0, 0.5, -0.3};
  VerificationScore fused = ScoreVerification(e, policy);
  ASSERT_TRUE(fused.dtw_ratio.has_value());
  EXPECT_DOUBLE_EQ(*fused.dtw_ratio, 2.0);  // mean 4 over spread 2
  // Two references: f = s - m - w_many * ratio; score = sigmoid(f - offset_many).
  EXPECT_DOUBLE_EQ(fused.score, 1 / (1 + std::exp(-((0.7 - 0.5 - 0.5 * 2.0) + 0.3))));
  EXPECT_EQ(fused.score, FusedVerificationScore(0.7, 0.5, 2.0, 2, policy.dtw_fusion));
  e.dtw_distances = {};
  EXPECT_DOUBLE_EQ(ScoreVerification(e, policy).score, 0.7);
}

TEST(VerificationCalibrationTest, StatesDtwRoundTripsAndRejectsBadParts) {
  VerificationCalibration c;
  c.learned = LearnedScore::kStatesDtw;
  c.states_dtw = DtwOptions::Fraction(0.25).WithCost(DtwLocalCost::kSquaredEuclidean);
  DtwSpreadModel spread;
  spread.coefficients = {-1.5, 0.25, 0, 0.125};
  spread.log_min = -2;
  spread.log_max = -0.5;
  c.states_spread = spread;
  // Weights 0 (the learned score alone): the offsets are still recorded.
  c.dtw_fusion = {0.0, -1.25, 0.0, -1.5};
  const std::string text = FormatVerificationCalibration(c);
  EXPECT_EQ(text,
            "learned=states-dtw states_band=0.25 states_cost=squared "
            "states_spread=-1.5,0.25,0,0.125,-2,-0.5 dtw_fusion=0:-1.25,0:-1.5");
  absl::StatusOr<VerificationCalibration> parsed = ParseVerificationCalibration(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->learned, LearnedScore::kStatesDtw);
  EXPECT_EQ(parsed->states_dtw.band_fraction, 0.25);
  EXPECT_EQ(parsed->states_dtw.band_frames, -1);
  EXPECT_EQ(parsed->states_dtw.local_cost, DtwLocalCost::kSquaredEuclidean);
  EXPECT_EQ(parsed->dtw_fusion.offset_many, -1.5);
  EXPECT_EQ(FormatVerificationCalibration(*parsed), text);
  for (const char* bad : {"learned=pooled", "states_band=0", "states_band=1.5", "states_band=x",
                          "states_cost=manhattan", "states_spread=1,2"}) {
    const absl::Status status = ParseVerificationCalibration(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(std::string(ParseVerificationCalibration("learned=pooled").status().message()),
              ::testing::HasSubstr("states-dtw"));
}

TEST(ScoreVerificationTest, StatesDtwIsTheCalibratedRatioFusedWithDtwWhenWeighted) {
  // Distances 1 and 3 to the references (similarities are minus them), spread 2: ratio 1.
  const std::vector<double> sims = {-1.0, -3.0};
  const std::vector<double> dists = {3.0, 5.0};
  VerificationEvidence e;
  e.similarities = sims;
  e.mutual_similarity = -2.0;
  e.dtw_distances = dists;
  e.dtw_spread = 2.0;
  VerificationPolicy policy;
  policy.learned = LearnedScore::kStatesDtw;
  policy.fusion = ReferenceFusion::kMax;  // ignored: the states' distances are averaged
  policy.dtw_fusion = {0.0, -0.5, 0.0, -1.0};
  const VerificationScore alone = ScoreVerification(e, policy);
  EXPECT_DOUBLE_EQ(alone.srn, -2.0);
  EXPECT_FALSE(alone.dtw_ratio.has_value()) << "weight 0: the DTW verifier is not consulted";
  // f = -1; sigmoid(f - offset_many) = sigmoid(0) = 0.5: a query as far from the references as
  // they are from each other sits at this calibration's threshold.
  EXPECT_DOUBLE_EQ(alone.score, 0.5);
  EXPECT_EQ(alone.score, StatesVerificationScore(1.0, 0.0, 2, policy.dtw_fusion));
  // Closer than the references are to each other: above one half.
  const std::vector<double> closer = {-0.5, -0.5};
  e.similarities = closer;
  EXPECT_GT(ScoreVerification(e, policy).score, 0.5);
  e.similarities = sims;
  // With weight 0.5 for several references: f = -1 - 0.5 * (4 / 2) = -2; sigmoid(-2 + 1).
  policy.dtw_fusion.weight_many = 0.5;
  const VerificationScore fused = ScoreVerification(e, policy);
  ASSERT_TRUE(fused.dtw_ratio.has_value());
  EXPECT_DOUBLE_EQ(*fused.dtw_ratio, 2.0);
  EXPECT_DOUBLE_EQ(fused.score, 1 / (1 + std::exp(1.0)));
  // One reference uses the one-reference weight (0) and offset, and its spread.
  const std::vector<double> one = {-1.0};
  e.similarities = one;
  e.mutual_similarity = -4.0;
  EXPECT_DOUBLE_EQ(ScoreVerification(e, policy).score, 1 / (1 + std::exp(-(-0.25 + 0.5))));
}

TEST(MutualSimilaritiesTest, PairsInOrderAndSymmetricToTheBit) {
  std::shared_ptr<const SimilarityModel> model = testing::RandomModel("srn-a", 3, 8, 5);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  RowMatrix refs(4, model->embedding_dims());
  for (int i = 0; i < refs.size(); ++i) refs.data()[i] = n(rng);
  const std::vector<double> mutual = MutualSimilarities(*model, refs);
  ASSERT_EQ(mutual.size(), 6u);
  int k = 0;
  for (int i = 0; i < 4; ++i) {
    for (int j = i + 1; j < 4; ++j, ++k) {
      double ij, ji;
      model->Score(refs.row(i).data(), refs.row(j).data(), 1, &ij);
      model->Score(refs.row(j).data(), refs.row(i).data(), 1, &ji);
      EXPECT_EQ(mutual[k], ij);
      EXPECT_EQ(ij, ji);  // an evaluation scores each unordered pair once
    }
  }
  EXPECT_TRUE(MutualSimilarities(*model, refs.topRows(1)).empty());
}

TEST(DerivedThresholdTest, ShiftFromMutualOrFromTheFusedMidpoint) {
  EXPECT_DOUBLE_EQ(*DerivedThreshold(3, 0.7, 0.1, false), 0.8);
  EXPECT_DOUBLE_EQ(*DerivedThreshold(3, 0.7, 0.1, true), 0.6);
  EXPECT_DOUBLE_EQ(*DerivedThreshold(2, 0.95, 0.2, false), 1.0);  // clamped
  const absl::Status one = DerivedThreshold(1, 0.0, 0.1, false).status();
  EXPECT_EQ(one.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(one.message()), ::testing::HasSubstr("at least 2"));
}

}  // namespace
}  // namespace srn
