#include "model/data/preprocess.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

Series MakeSeries(int length, int dims, const std::vector<float>& values) {
  absl::StatusOr<Series> s = Series::FromValues(values, dims);
  EXPECT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->length(), length);
  return *s;
}

TEST(PreprocessorTest, FitUsesPopulationStatisticsOverAllFrames) {
  // Feature 0 takes 1, 3, 5 across two series: mean 3, variance 8/3. Feature 1 is constant.
  const Series a = MakeSeries(2, 2, {1, 10, 3, 10});
  const Series b = MakeSeries(1, 2, {5, 10});
  absl::StatusOr<Preprocessor> p = Preprocessor::Fit({&a, &b}, 2, FeatureKind::kSignature);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, FeatureKind::kSignature);
  EXPECT_EQ(p->raw_dims, 2);
  EXPECT_EQ(p->window, 2);
  EXPECT_EQ(p->output_dims(), 4);
  EXPECT_FLOAT_EQ(p->mean[0], 3.0f);
  EXPECT_FLOAT_EQ(p->mean[1], 10.0f);
  EXPECT_FLOAT_EQ(p->scale[0], 0.6123724f);  // 1 / sqrt(8/3)
  EXPECT_EQ(p->scale[1], 1.0f);              // constant feature: left unscaled
  EXPECT_TRUE(p->Validate().ok());
}

TEST(PreprocessorTest, FitKeepsPrecisionWithLargeOffsets) {
  // Timestamps-like values: a spread of 1 on top of 1e6 must still give scale 1 (stddev 1).
  const Series a = MakeSeries(2, 1, {1e6f - 1, 1e6f + 1});
  absl::StatusOr<Preprocessor> p = Preprocessor::Fit({&a}, 1);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FLOAT_EQ(p->scale[0], 1.0f);
  EXPECT_FLOAT_EQ(p->mean[0], 1e6f);
}

TEST(PreprocessorTest, FitRejectsBadInput) {
  const Series a = MakeSeries(1, 2, {1, 2});
  const Series b = MakeSeries(1, 3, {1, 2, 3});
  EXPECT_EQ(Preprocessor::Fit({}, 1).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status mismatch = Preprocessor::Fit({&a, &b}, 1).status();
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("series 1"));
  EXPECT_EQ(Preprocessor::Fit({&a}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Preprocessor::Fit({&a}, 65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Preprocessor::Fit({&a}, 64).ok());
  EXPECT_EQ(Preprocessor::Fit({&a, nullptr}, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  const Series empty;
  EXPECT_EQ(Preprocessor::Fit({&empty}, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

Preprocessor Identity(int dims, int window) {
  Preprocessor p;
  p.raw_dims = dims;
  p.mean = Vector::Zero(dims);
  p.scale = Vector::Ones(dims);
  p.window = window;
  return p;
}

TEST(PreprocessorTest, ApplyStandardizes) {
  Preprocessor p = Identity(2, 1);
  p.mean << 1, -2;
  p.scale << 0.5, 2;
  const Series raw = MakeSeries(2, 2, {3, 0, 1, -2});
  absl::StatusOr<Series> out = p.Apply(raw);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->length(), 2);
  ASSERT_EQ(out->dims(), 2);
  EXPECT_FLOAT_EQ(out->frames()(0, 0), 1.0f);  // (3 - 1) * 0.5
  EXPECT_FLOAT_EQ(out->frames()(0, 1), 4.0f);  // (0 + 2) * 2
  EXPECT_FLOAT_EQ(out->frames()(1, 0), 0.0f);
  EXPECT_FLOAT_EQ(out->frames()(1, 1), 0.0f);
}

TEST(PreprocessorTest, ApplyWindowsFrameMajor) {
  // Two features per frame, window 2: output frame t = [x_t(0), x_t(1), x_{t+1}(0), x_{t+1}(1)].
  const Preprocessor p = Identity(2, 2);
  const Series raw = MakeSeries(3, 2, {1, 2, 3, 4, 5, 6});
  absl::StatusOr<Series> out = p.Apply(raw);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->length(), 2);
  ASSERT_EQ(out->dims(), 4);
  const std::vector<float> expected = {1, 2, 3, 4, 3, 4, 5, 6};
  EXPECT_EQ(std::vector<float>(out->data(), out->data() + 8), expected);
}

TEST(PreprocessorTest, ApplyPadsShortSeriesWithTheLastFrame) {
  const Preprocessor p = Identity(1, 4);
  absl::StatusOr<Series> out = p.Apply(MakeSeries(2, 1, {7, 8}));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->length(), 1);
  const std::vector<float> expected = {7, 8, 8, 8};
  EXPECT_EQ(std::vector<float>(out->data(), out->data() + 4), expected);
  // Exactly the window length: one frame, no padding.
  out = p.Apply(MakeSeries(4, 1, {1, 2, 3, 4}));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->length(), 1);
  EXPECT_EQ(out->frames()(0, 3), 4.0f);
}

TEST(PreprocessorTest, ApplyMatchesANaiveReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int window : {1, 2, 3, 5, 64}) {
    for (int length : {1, 2, 4, 9, 70}) {
      const int dims = 3;
      Preprocessor p = Identity(dims, window);
      for (int d = 0; d < dims; ++d) {
        p.mean[d] = normal(rng);
        p.scale[d] = 0.5f + std::abs(normal(rng));
      }
      Series raw(length, dims);
      for (int i = 0; i < raw.frames().size(); ++i) raw.mutable_frames().data()[i] = normal(rng);
      absl::StatusOr<Series> out = p.Apply(raw);
      ASSERT_TRUE(out.ok()) << out.status();
      const int out_length = std::max(1, length - window + 1);
      ASSERT_EQ(out->length(), out_length);
      ASSERT_EQ(out->dims(), dims * window);
      for (int t = 0; t < out_length; ++t) {
        for (int k = 0; k < window; ++k) {
          const int src = std::min(t + k, length - 1);
          for (int d = 0; d < dims; ++d) {
            const float want = (raw.frames()(src, d) - p.mean[d]) * p.scale[d];
            ASSERT_EQ(out->frames()(t, k * dims + d), want)
                << "window " << window << " length " << length << " t " << t << " k " << k;
          }
        }
      }
    }
  }
}

TEST(PreprocessorTest, ApplyRejectsBadInput) {
  const Preprocessor p = Identity(2, 1);
  EXPECT_EQ(p.Apply(Series()).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status wrong = p.Apply(MakeSeries(1, 3, {1, 2, 3})).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("3 features"));
  EXPECT_EQ(Preprocessor().Apply(MakeSeries(1, 2, {1, 2})).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Preprocessor short_mean = Identity(2, 1);
  short_mean.mean.resize(1);
  EXPECT_EQ(short_mean.Apply(MakeSeries(1, 2, {1, 2})).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(PreprocessorTest, CentringRemovesEachSeriesOffset) {
  Series a(4, 2), b(3, 2);
  a.mutable_frames() << 1, 10, 2, 20, 3, 30, 6, 40;
  b.mutable_frames() << 100, -5, 101, -4, 105, -9;
  absl::StatusOr<Preprocessor> p = Preprocessor::Fit({&a, &b}, 1, FeatureKind::kFrames, true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->center_series);
  // Centred frames average to zero, whatever the offsets.
  EXPECT_NEAR(p->mean[0], 0.0f, 1e-6);
  EXPECT_NEAR(p->mean[1], 0.0f, 1e-6);
  // Within-series spread of feature 0: deviations -2,-1,0,3 (mean 3) and -2,-1,3 (mean 102)
  // -> mean square 28/7 = 4, so the scale is 1/2.
  EXPECT_NEAR(p->scale[0], 0.5, 1e-6);
  // A shifted copy of a series preprocesses to the same frames.
  Series shifted = a;
  shifted.mutable_frames().col(0).array() += 1000.0f;
  shifted.mutable_frames().col(1).array() -= 7.5f;
  const Series x = *p->Apply(a), y = *p->Apply(shifted);
  EXPECT_LT((x.frames() - y.frames()).cwiseAbs().maxCoeff(), 1e-3);
  EXPECT_NEAR(x.frames().col(0).mean(), 0.0f, 1e-5);
  // Without centring the offset matters.
  absl::StatusOr<Preprocessor> plain = Preprocessor::Fit({&a, &b}, 1);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->center_series);
  EXPECT_GT((plain->Apply(a)->frames() - plain->Apply(shifted)->frames()).cwiseAbs().maxCoeff(),
            1.0f);
}

TEST(PreprocessorTest, ValidateChecksEveryField) {
  EXPECT_TRUE(Identity(3, 2).Validate().ok());
  EXPECT_EQ(Preprocessor().Validate().code(), absl::StatusCode::kInvalidArgument);
  Preprocessor p = Identity(3, 2);
  p.mean.resize(2);
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, 2);
  p.scale.resize(4);
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, 2);
  p.mean[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, 2);
  p.scale[2] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p.scale[2] = 0.0f;  // would erase the feature
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p.scale[2] = -1.0f;
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, 0);
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, kMaxPreprocessWindow + 1);
  EXPECT_EQ(p.Validate().code(), absl::StatusCode::kInvalidArgument);
  p = Identity(3, kMaxPreprocessWindow);
  EXPECT_TRUE(p.Validate().ok());
}

}  // namespace
}  // namespace srn
