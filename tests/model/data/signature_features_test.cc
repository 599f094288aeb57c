#include "model/data/signature_features.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

PenSample Sample(double x, double y, double t_ms, double pressure = 0, bool start = false) {
  PenSample s;
  s.x = x;
  s.y = y;
  s.t_ms = t_ms;
  s.pressure = pressure;
  s.stroke_start = start;
  return s;
}

void ExpectNear(float got, double want, const char* what, int row) {
  EXPECT_NEAR(got, want, 1e-5 * (1 + std::abs(want))) << what << " at sample " << row;
}

// A unit square walked corner by corner, with a repeated timestamp (0 ms step) and a second
// stroke. Centroid (1, 1), RMS radius sqrt(2), so x~, y~ = +-a with a = 1/sqrt(2). The positive
// steps are 10 and 20 ms: dt = their median, 15 ms. Expected values worked out by hand:
// a/dt = 47.14045, a/dt^2 = 3142.697, 1/dt = 66.66667.
TEST(SignatureFeaturesTest, HandComputedSquare) {
  const std::vector<PenSample> samples = {
      Sample(0, 0, 0, 100, true), Sample(2, 0, 10, 200), Sample(2, 2, 10, 400),
      Sample(0, 2, 30, 0, true)};
  absl::StatusOr<Series> f = ComputeSignatureFeatures(samples, true);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->length(), 4);
  ASSERT_EQ(f->dims(), kSignatureFeatureDims);
  const double a = 0.70710678;
  const double expected[4][12] = {
      // x~  y~  vx         vy        speed     cos   sin  ax         ay        p     dp     start
      {-a, -a, 94.28090, 0, 94.28090, 1, 0, -3142.697, 3142.697, 0.25, 16.66667, 1},
      {a, -a, 47.14045, 47.14045, 66.66667, a, a, -4714.045, 1571.348, 0.5, 25.0, 0},
      {a, a, -47.14045, 47.14045, 66.66667, -a, a, -4714.045, -1571.348, 1.0, -16.66667, 0},
      {-a, a, -94.28090, 0, 94.28090, -1, 0, -3142.697, -3142.697, 0.0, -66.66667, 1},
  };
  const char* names[12] = {"x", "y", "vx", "vy", "speed", "cos", "sin", "ax", "ay", "p", "dp",
                           "start"};
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 12; ++k) ExpectNear(f->frames()(i, k), expected[i][k], names[k], i);
  }
}

TEST(SignatureFeaturesTest, NoPressureAndNoPositiveStepUseDefaults) {
  // Both samples at t = 0: dt falls back to 10 ms. x~ = -1, 1 so vx = 2 / 0.01 = 200.
  // The first sample starts a stroke even when not flagged; pressure is ignored.
  const std::vector<PenSample> samples = {Sample(5, 3, 0, 900), Sample(7, 3, 0, 300)};
  absl::StatusOr<Series> f = ComputeSignatureFeatures(samples, false);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FLOAT_EQ(f->frames()(0, 0), -1.0f);
  EXPECT_FLOAT_EQ(f->frames()(1, 0), 1.0f);
  EXPECT_FLOAT_EQ(f->frames()(0, 1), 0.0f);
  EXPECT_FLOAT_EQ(f->frames()(0, 2), 200.0f);
  EXPECT_FLOAT_EQ(f->frames()(1, 2), 200.0f);
  EXPECT_FLOAT_EQ(f->frames()(0, 7), 0.0f);  // constant velocity
  EXPECT_EQ(f->frames()(0, 9), 0.0f);
  EXPECT_EQ(f->frames()(1, 10), 0.0f);
  EXPECT_EQ(f->frames()(0, 11), 1.0f);
  EXPECT_EQ(f->frames()(1, 11), 0.0f);
}

TEST(SignatureFeaturesTest, StandingStillHasTangentOneZero) {
  // The pen rests on the middle sample: the central difference there is (x2 - x0) / 2dt = 0
  // for a back-and-forth path.
  const std::vector<PenSample> samples = {Sample(0, 0, 0), Sample(1, 0, 10), Sample(0, 0, 20)};
  absl::StatusOr<Series> f = ComputeSignatureFeatures(samples, false);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->frames()(1, 4), 0.0f);
  EXPECT_EQ(f->frames()(1, 5), 1.0f);
  EXPECT_EQ(f->frames()(1, 6), 0.0f);
  EXPECT_LT(f->frames()(2, 5), -0.99f);  // moving left at the end
}

std::vector<PenSample> Spiral() {
  std::vector<PenSample> samples;
  double t = 1000;
  for (int i = 0; i < 60; ++i) {
    const double r = 50 + 3 * i;
    // Irregular clock like SVC2004's: mostly 10 ms, some 0 ms and one backwards step.
    t += (i % 7 == 3) ? 0 : (i == 20 ? -10 : 10);
    samples.push_back(Sample(400 + r * std::cos(0.3 * i), 700 + r * std::sin(0.2 * i), t,
                             100 + 5 * (i % 9), i == 0 || i == 30));
  }
  return samples;
}

TEST(SignatureFeaturesTest, InvariantToTranslationAndScale) {
  const std::vector<PenSample> base = Spiral();
  absl::StatusOr<Series> want = ComputeSignatureFeatures(base, true);
  ASSERT_TRUE(want.ok()) << want.status();
  for (double scale : {0.01, 3.7, 250.0}) {
    std::vector<PenSample> moved = base;
    for (PenSample& s : moved) {
      s.x = scale * s.x + 1234.5;
      s.y = scale * s.y - 567.25;
      s.pressure *= 2;  // a tablet with twice the pressure resolution
    }
    absl::StatusOr<Series> got = ComputeSignatureFeatures(moved, true);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->length(), want->length());
    for (int i = 0; i < want->length(); ++i) {
      for (int k = 0; k < kSignatureFeatureDims; ++k) {
        const float w = want->frames()(i, k);
        EXPECT_NEAR(got->frames()(i, k), w, 1e-5 * (1 + std::abs(w)))
            << "scale " << scale << " sample " << i << " feature " << k;
      }
    }
  }
}

TEST(SignatureFeaturesTest, NormalizedPositionsHaveUnitRmsRadiusAndZeroMean) {
  absl::StatusOr<Series> f = ComputeSignatureFeatures(Spiral(), true);
  ASSERT_TRUE(f.ok()) << f.status();
  const auto xy = f->frames().leftCols(2).cast<double>();
  EXPECT_NEAR(xy.col(0).mean(), 0.0, 1e-6);
  EXPECT_NEAR(xy.col(1).mean(), 0.0, 1e-6);
  EXPECT_NEAR(xy.rowwise().squaredNorm().mean(), 1.0, 1e-6);
  EXPECT_FLOAT_EQ(f->frames().col(9).maxCoeff(), 1.0f);
  EXPECT_EQ(f->frames().col(11).sum(), 2.0f);  // two strokes
}

TEST(SignatureFeaturesTest, RejectsBadInput) {
  const std::vector<PenSample> one = {Sample(1, 2, 0)};
  absl::Status too_few = ComputeSignatureFeatures(one, false).status();
  EXPECT_EQ(too_few.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_few.message()), HasSubstr("at least 2"));
  EXPECT_EQ(ComputeSignatureFeatures({}, false).status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::vector<PenSample> same = {Sample(0.1, 0.7, 0), Sample(0.1, 0.7, 10),
                                       Sample(0.1, 0.7, 20)};
  absl::Status still = ComputeSignatureFeatures(same, false).status();
  EXPECT_EQ(still.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(still.message()), HasSubstr("same point"));

  std::vector<PenSample> bad = {Sample(0, 0, 0), Sample(1, 1, 10)};
  bad[1].x = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(ComputeSignatureFeatures(bad, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad[1].x = 1;
  bad[0].t_ms = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ComputeSignatureFeatures(bad, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad[0].t_ms = 0;
  bad[0].pressure = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ComputeSignatureFeatures(bad, true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ComputeSignatureFeatures(bad, false).ok());  // pressure unused
  bad[0].pressure = -1;
  EXPECT_EQ(ComputeSignatureFeatures(bad, true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace srn
