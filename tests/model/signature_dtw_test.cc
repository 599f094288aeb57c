#include "model/signature_dtw.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

TEST(SelectAndNormalizeTest, KeepsColumnsAndZNormalizesEachOnItsOwn) {
  Series s(4, 3);
  s.mutable_frames() << 1, 5, 10, 2, 5, 20, 3, 5, 30, 6, 5, 40;
  absl::StatusOr<Series> picked = SelectAndNormalize(s, {2, 0}, false);
  ASSERT_TRUE(picked.ok()) << picked.status();
  ASSERT_EQ(picked->dims(), 2);
  EXPECT_EQ(picked->frames().col(0), s.frames().col(2));
  EXPECT_EQ(picked->frames().col(1), s.frames().col(0));
  absl::StatusOr<Series> all = SelectAndNormalize(s, {}, true);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->dims(), 3);
  // Column 0: mean 3, deviations -2,-1,0,3, spread sqrt(3.5). Column 1 is constant: zeros.
  EXPECT_NEAR(all->frames()(0, 0), -2 / std::sqrt(3.5), 1e-6);
  EXPECT_NEAR(all->frames()(3, 0), 3 / std::sqrt(3.5), 1e-6);
  EXPECT_EQ(all->frames().col(1).cwiseAbs().maxCoeff(), 0.0f);
  // Column 2: 10..40 in steps of 10, mean 25, spread sqrt(125).
  EXPECT_NEAR(all->frames()(0, 2), -15 / std::sqrt(125.0), 1e-6);
  const absl::Status bad = SelectAndNormalize(s, {0, 3}, true).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("feature 3 does not exist"));
}

TEST(SelectAndNormalizeTest, RejectsAnEmptySeries) {
  EXPECT_EQ(SelectAndNormalize(Series(), {}, true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignatureDtwTest, DefaultsUseSevenOfTheTwelveFeatures) {
  Series s(3, 12);
  for (int t = 0; t < 3; ++t) {
    for (int d = 0; d < 12; ++d) s.mutable_frames()(t, d) = static_cast<float>(d * (t + 1));
  }
  absl::StatusOr<Series> p = PrepareForSignatureDtw(s, SignatureDtwOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->dims(), 7);
  // Column d of s is d * (1, 2, 3): z-normalized it is (-1, 0, 1) * sqrt(3/2) for d > 0, and
  // column 0 (all zero) is 0.
  EXPECT_EQ(p->frames().col(0).cwiseAbs().maxCoeff(), 0.0f);
  EXPECT_NEAR(p->frames()(0, 6), -std::sqrt(1.5), 1e-6);
  EXPECT_NEAR(p->frames()(2, 6), std::sqrt(1.5), 1e-6);
}

TEST(SignatureDtwTest, MeanMutualDistanceAveragesThePairs) {
  SignatureDtwOptions raw;
  raw.features.clear();
  raw.per_series = false;
  raw.dtw = DtwOptions::NoBand();
  auto one = [](float v) {
    Series s(1, 1);
    s.mutable_frames()(0, 0) = v;
    return s;
  };
  // One-frame series: the normalized DTW distance is (a - b)^2 / 2.
  EXPECT_DOUBLE_EQ(SignatureDtwDistance(one(0), one(2), raw), 2.0);
  const std::vector<Series> refs = {one(0), one(2), one(4)};
  EXPECT_DOUBLE_EQ(MeanMutualDtwDistance(refs, raw), (2.0 + 8.0 + 2.0) / 3.0);
  // Fewer than two references: no spread to normalize by.
  EXPECT_DOUBLE_EQ(MeanMutualDtwDistance({refs[0]}, raw), 1.0);
  EXPECT_DOUBLE_EQ(MeanMutualDtwDistance({}, raw), 1.0);
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

}  // namespace
}  // namespace srn
