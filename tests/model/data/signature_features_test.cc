#include "model/data/signature_features.h"

#include <cmath>
#include <cstdint>
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

// Dropping pressure gives exactly the features of the same samples from a tablet without it.
TEST(SignatureFeaturesTest, DropPressureIsATabletWithoutPressure) {
  std::vector<PenSample> samples = Spiral();
  for (size_t i = 0; i < samples.size(); ++i) samples[i].pressure = 100 + 7 * (i % 5);
  absl::StatusOr<Series> with = ComputeSignatureFeatures(samples, /*has_pressure=*/true);
  absl::StatusOr<Series> without = ComputeSignatureFeatures(samples, /*has_pressure=*/false);
  ASSERT_TRUE(with.ok() && without.ok());
  ASSERT_GT(with->frames().col(9).cwiseAbs().maxCoeff(), 0.5f);
  Series dropped = *with;
  ASSERT_TRUE(DropPressure(&dropped).ok());
  EXPECT_EQ(dropped.frames(), without->frames());
  Series frames(RowMatrix::Zero(3, 4));
  const absl::Status bad = DropPressure(&frames);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("12 signature features"));
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

// Three strokes at 200 Hz: the first with an irregular clock (4, 9 and 7 ms steps), the second
// 5 ms long, the third one sample. Expected values by hand.
TEST(ResamplePenSamplesTest, InterpolatesStrokeByStrokeByTime) {
  const std::vector<PenSample> samples = {
      Sample(0, 100, 0, 200, true), Sample(4, 100, 4, 400), Sample(22, 91, 13, 100),
      Sample(29, 70, 20, 800),                                 // stroke 1: 0..20 ms
      Sample(50, 50, 40, 300, true), Sample(60, 40, 45, 500),  // stroke 2: 40..45 ms
      Sample(70, 30, 55, 900, true)};                          // stroke 3: one sample
  absl::StatusOr<std::vector<PenSample>> r = ResamplePenSamples(samples, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 5u);
  // t = 10 lies between the samples at 4 and 13 ms, 6/9 of the way: x = 4 + 18 * 2/3 = 16,
  // y = 100 - 9 * 2/3 = 94, pressure = 400 - 300 * 2/3 = 200.
  const double want[5][5] = {
      // t   x   y    p    start
      {0, 0, 100, 200, 1}, {10, 16, 94, 200, 0}, {20, 29, 70, 800, 0},
      {40, 50, 50, 300, 1},  // not 30 ms: nothing is made inside the pen-up gap
      {55, 70, 30, 900, 1}};
  for (int i = 0; i < 5; ++i) {
    const PenSample& s = (*r)[i];
    EXPECT_DOUBLE_EQ(s.t_ms, want[i][0]) << i;
    EXPECT_NEAR(s.x, want[i][1], 1e-12) << i;
    EXPECT_NEAR(s.y, want[i][2], 1e-12) << i;
    EXPECT_NEAR(s.pressure, want[i][3], 1e-12) << i;
    EXPECT_EQ(s.stroke_start, want[i][4] == 1) << i;
  }
}

TEST(ResamplePenSamplesTest, EqualTimesTakeTheLaterSampleAndStrokesMayGoBackInTime) {
  // The second stroke starts before the first ended: allowed, only within a stroke is time
  // ordered.
  const std::vector<PenSample> samples = {Sample(0, 0, 0, 0, true), Sample(5, 0, 10),
                                          Sample(7, 0, 10), Sample(9, 0, 20),
                                          Sample(1, 1, 15, 0, true), Sample(3, 1, 25)};
  absl::StatusOr<std::vector<PenSample>> r = ResamplePenSamples(samples, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[1].x, 7);
  EXPECT_EQ((*r)[2].x, 9);
  EXPECT_EQ((*r)[3].t_ms, 15);
  EXPECT_TRUE((*r)[3].stroke_start);
  EXPECT_EQ((*r)[4].x, 3);
  EXPECT_EQ((*r)[4].t_ms, 25);
}

TEST(ResamplePenSamplesTest, RejectsBadInput) {
  const std::vector<PenSample> ok = {Sample(0, 0, 0), Sample(1, 1, 5)};
  for (double step : {0.0, -10.0, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()}) {
    absl::Status status = ResamplePenSamples(ok, step).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << step;
    EXPECT_THAT(std::string(status.message()), HasSubstr("step must be positive")) << step;
  }
  const std::vector<PenSample> backwards = {Sample(0, 0, 10), Sample(1, 1, 5)};
  absl::Status status = ResamplePenSamples(backwards, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("pen sample 1 goes back in time"));
  std::vector<PenSample> nan = ok;
  nan[1].pressure = std::numeric_limits<double>::quiet_NaN();
  status = ResamplePenSamples(nan, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("pen sample 1 has a non-finite value"));
  const std::vector<PenSample> huge = {Sample(0, 0, 0), Sample(1, 1, 1e12)};
  status = ResamplePenSamples(huge, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("too many samples"));
  EXPECT_TRUE(ResamplePenSamples({}, 10).ok());
}

TEST(ResamplePenSamplesTest, RefusesToMakeMoreThanMaxSamplesBeforeMakingAny) {
  // Two strokes of 0..90 ms and 100..190 ms: 10 + 10 samples every 10 ms.
  const std::vector<PenSample> two = {Sample(0, 0, 0, 1, true), Sample(1, 1, 90),
                                      Sample(2, 0, 100, 1, true), Sample(3, 1, 190)};
  absl::StatusOr<std::vector<PenSample>> at_limit = ResamplePenSamples(two, 10, 20);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->size(), 20u);
  absl::Status status = ResamplePenSamples(two, 10, 19).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("more than 19 samples"));
  status = ResamplePenSamples(two, 10, 9).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("more than the limit of 9"));
  // A larger max_samples does not lift the absolute limit.
  const std::vector<PenSample> long_stroke = {Sample(0, 0, 0), Sample(1, 1, 1e9)};
  status = ResamplePenSamples(long_stroke, 10, int64_t{1} << 40).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("too many samples"));
}

// A smooth two-stroke signature "recorded" at 100 Hz and at 200 Hz.
std::vector<PenSample> Recorded(double rate_hz) {
  std::vector<PenSample> out;
  const double step = 1000.0 / rate_hz;
  for (int stroke = 0; stroke < 2; ++stroke) {
    const double start = stroke * 1200.0;  // ms; a 200 ms pen-up gap after the first
    for (double t = 0; t <= 1000.0 + 1e-9; t += step) {
      const double u = t / 1000.0;
      out.push_back(Sample(1000 * std::cos(3 * u + stroke) + 300 * u,
                           800 * std::sin(5 * u) + 2000 * stroke, start + t,
                           500 + 300 * std::sin(7 * u), t == 0));
    }
  }
  return out;
}

TEST(ComputeTabletSignatureFeaturesTest, A200HzTabletGivesThe100HzFeatures) {
  absl::StatusOr<Series> at100 = ComputeSignatureFeatures(Recorded(100), true);
  absl::StatusOr<Series> at200 = ComputeTabletSignatureFeatures(Recorded(200), true, 200);
  ASSERT_TRUE(at100.ok()) << at100.status();
  ASSERT_TRUE(at200.ok()) << at200.status();
  ASSERT_EQ(at200->length(), at100->length());
  EXPECT_EQ(at200->length(), 202);
  const float scale = at100->frames().cwiseAbs().maxCoeff();
  EXPECT_LT((at200->frames() - at100->frames()).cwiseAbs().maxCoeff(), 1e-5f * scale);
  // Without resampling the same signature would have twice the frames.
  absl::StatusOr<Series> raw200 = ComputeSignatureFeatures(Recorded(200), true);
  ASSERT_TRUE(raw200.ok()) << raw200.status();
  EXPECT_EQ(raw200->length(), 402);
}

TEST(ComputeTabletSignatureFeaturesTest, At100HzSamplesAreUsedAsRecorded) {
  // SVC2004's clock: a 0 ms step, an 11 ms step and one going backwards. Resampling would refuse
  // the backwards step; at 100 Hz the samples go to ComputeSignatureFeatures untouched.
  const std::vector<PenSample> samples = {Sample(0, 0, 0, 100, true), Sample(3, 1, 10, 200),
                                          Sample(4, 3, 10, 300),      Sample(6, 2, 21, 250),
                                          Sample(5, 5, 14, 50),       Sample(9, 4, 24, 80)};
  absl::StatusOr<Series> want = ComputeSignatureFeatures(samples, true);
  absl::StatusOr<Series> got = ComputeTabletSignatureFeatures(samples, true, kSignatureRateHz);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->frames() == want->frames());
  EXPECT_EQ(ComputeTabletSignatureFeatures(samples, true, 200).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (double rate : {0.0, -100.0, std::numeric_limits<double>::quiet_NaN()}) {
    absl::Status status = ComputeTabletSignatureFeatures(samples, true, rate).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(std::string(status.message()), HasSubstr("tablet rate")) << rate;
  }
}

TEST(ComputePenSignatureFeaturesTest, ResamplesWhenTheMedianStepIsNotAbout10Ms) {
  // A 200 Hz pen: the same features as the known-rate pipeline.
  absl::StatusOr<Series> known = ComputeTabletSignatureFeatures(Recorded(200), true, 200);
  absl::StatusOr<Series> guessed = ComputePenSignatureFeatures(Recorded(200), true);
  ASSERT_TRUE(known.ok()) << known.status();
  ASSERT_TRUE(guessed.ok()) << guessed.status();
  EXPECT_TRUE(guessed->frames() == known->frames());
  // 100 Hz, and SVC2004's irregular clock, are used as recorded.
  absl::StatusOr<Series> at100 = ComputePenSignatureFeatures(Recorded(100), true);
  ASSERT_TRUE(at100.ok()) << at100.status();
  EXPECT_TRUE(at100->frames() == ComputeSignatureFeatures(Recorded(100), true)->frames());
  const std::vector<PenSample> svc = {Sample(0, 0, 0, 100, true), Sample(3, 1, 10, 200),
                                      Sample(4, 3, 10, 300),      Sample(6, 2, 21, 250),
                                      Sample(5, 5, 14, 50),       Sample(9, 4, 24, 80)};
  absl::StatusOr<Series> irregular = ComputePenSignatureFeatures(svc, true);
  ASSERT_TRUE(irregular.ok()) << irregular.status();
  EXPECT_TRUE(irregular->frames() == ComputeSignatureFeatures(svc, true)->frames());
  // A 50 Hz pen is resampled up to 100 Hz: about twice the frames.
  absl::StatusOr<Series> at50 = ComputePenSignatureFeatures(Recorded(50), true);
  ASSERT_TRUE(at50.ok()) << at50.status();
  EXPECT_EQ(at50->length(), at100->length());
}

// Found by fuzz/series_input_fuzzer: a few pen samples far apart in time resampled to a series
// far longer than the caller's limit (here up to 2^24 frames from 2 samples), allocated before
// anyone could check its length.
TEST(ComputePenSignatureFeaturesTest, ResamplesToAtMostMaxFrames) {
  const std::vector<PenSample> slow = {Sample(0, 0, 0, 1, true), Sample(5, 3, 1000, 2),
                                       Sample(9, 1, 1e6, 1)};
  absl::Status status = ComputePenSignatureFeatures(slow, true, 20000).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("more than the limit of 20000"));
  absl::StatusOr<Series> within = ComputePenSignatureFeatures(slow, true, 100001);
  ASSERT_TRUE(within.ok()) << within.status();
  EXPECT_EQ(within->length(), 100001);
  // Samples used as recorded give a frame each.
  absl::StatusOr<Series> at100 = ComputePenSignatureFeatures(Recorded(100), true, 202);
  ASSERT_TRUE(at100.ok()) << at100.status();
  EXPECT_EQ(at100->length(), 202);
  status = ComputePenSignatureFeatures(Recorded(100), true, 201).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("202 pen samples make more than 201"));
}

}  // namespace
}  // namespace srn
