#include "model/signature/signature_dtw.h"

#include <cmath>
#include <random>
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

TEST(SignatureDtwTest, LongSeriesAreResampledToBoundTheCost) {
  // 20,000 frames (200 s at 100 Hz) enter DTW as kMaxDtwFrames, the same ramp.
  Series s(20000, 12);
  for (int t = 0; t < s.length(); ++t) s.mutable_frames().row(t).setConstant(t * 0.001f);
  absl::StatusOr<Series> p = PrepareForSignatureDtw(s, SignatureDtwOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->length(), kMaxDtwFrames);
  Series short_one(kMaxDtwFrames, 12);
  short_one.mutable_frames().setRandom();
  EXPECT_EQ(PrepareForSignatureDtw(short_one, SignatureDtwOptions{})->length(), kMaxDtwFrames);
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

// A 12-feature signature whose trajectory (features 0 and 1) and pressure (feature 9) are given;
// the other features are left at zero.
Series Signature(const std::vector<double>& x, const std::vector<double>& y,
                 const std::vector<double>& p) {
  Series s(static_cast<int>(x.size()), 12);
  s.mutable_frames().setZero();
  for (size_t t = 0; t < x.size(); ++t) {
    s.mutable_frames()(t, 0) = static_cast<float>(x[t]);
    s.mutable_frames()(t, 1) = static_cast<float>(y[t]);
    s.mutable_frames()(t, 9) = static_cast<float>(p[t]);
  }
  return s;
}

TEST(SignatureShapeDescriptorsTest, HandComputed) {
  // Width 2, height 1, path 2 + 1 = 3, mean pressure 0.5.
  absl::StatusOr<std::array<double, kSpreadDescriptors>> d =
      SignatureShapeDescriptors(Signature({0, 2, 2}, {0, 0, 1}, {0.5, 1, 0}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NEAR((*d)[0], std::log(2.0), 1e-6);
  EXPECT_NEAR((*d)[1], 0.5, 1e-6);
  EXPECT_NEAR((*d)[2], std::log(3.0), 1e-6);
  // A flat stroke stays finite.
  d = SignatureShapeDescriptors(Signature({0, 1}, {0, 0}, {1, 1}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(std::isfinite((*d)[0]));
  EXPECT_EQ(SignatureShapeDescriptors(Signature({0}, {0}, {1})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureShapeDescriptors(Series(5, 7)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Signers whose genuine signatures are one random trajectory plus noise of a per-signer size,
// with one skilled forgery each.
Dataset SpreadData(int signers, int genuine) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  Dataset d;
  d.name = "synthetic";
  for (int s = 0; s < signers; ++s) {
    d.label_names.push_back("S" + std::to_string(s));
    const int length = 20 + 5 * s;
    std::vector<double> bx(length), by(length), bp(length);
    for (int t = 0; t < length; ++t) {
      bx[t] = std::sin(0.3 * t * (1 + s)) * (1 + 0.2 * s);
      by[t] = std::cos(0.2 * t);
      bp[t] = 0.3 + 0.05 * s + 0.1 * std::sin(0.1 * t);
    }
    const double noise = 0.05 * (1 + s);
    for (int k = 0; k <= genuine; ++k) {
      std::vector<double> x = bx, y = by, p = bp;
      for (int t = 0; t < length; ++t) {
        x[t] += noise * normal(rng) + (k == genuine ? 0.5 : 0.0);
        y[t] += noise * normal(rng);
      }
      Example e;
      e.series = Signature(x, y, p);
      e.label = s;
      e.forgery = k == genuine;
      d.examples.push_back(std::move(e));
    }
  }
  return d;
}

TEST(DtwSpreadModelTest, FitIsTheLeastSquaresSolutionOnGenuineSignatures) {
  const Dataset data = SpreadData(5, 4);
  const SignatureDtwOptions options;
  absl::StatusOr<std::vector<SpreadSample>> samples = DtwSpreadSamples(data, options, 2);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 20u);  // the 4 genuine signatures of each of 5 signers
  absl::StatusOr<DtwSpreadModel> model = FitDtwSpreadModel(*samples);
  ASSERT_TRUE(model.ok()) << model.status();
  // Recompute each genuine signature's target and residual by hand: least squares leaves
  // residuals orthogonal to the intercept and to every descriptor.
  std::array<double, kSpreadDescriptors + 1> normal_equations = {};
  double lo = 1e300, hi = -1e300;
  for (int s = 0; s < 5; ++s) {
    std::vector<Series> prepared;
    std::vector<const Series*> raw;
    for (const Example& e : data.examples) {
      if (e.label != s || e.forgery) continue;
      prepared.push_back(*PrepareForSignatureDtw(e.series, options));
      raw.push_back(&e.series);
    }
    for (size_t a = 0; a < prepared.size(); ++a) {
      double sum = 0;
      for (size_t b = 0; b < prepared.size(); ++b) {
        if (b != a) sum += SignatureDtwDistance(prepared[a], prepared[b], options);
      }
      const double target = std::log(sum / static_cast<double>(prepared.size() - 1));
      lo = std::min(lo, target);
      hi = std::max(hi, target);
      const std::array<double, kSpreadDescriptors> d = *SignatureShapeDescriptors(*raw[a]);
      double predicted = model->coefficients[0];
      for (int k = 0; k < kSpreadDescriptors; ++k) predicted += model->coefficients[k + 1] * d[k];
      const double residual = target - predicted;
      normal_equations[0] += residual;
      for (int k = 0; k < kSpreadDescriptors; ++k) normal_equations[k + 1] += residual * d[k];
    }
  }
  for (double n : normal_equations) EXPECT_NEAR(n, 0.0, 1e-6);
  EXPECT_NEAR(model->log_min, lo, 1e-9);
  EXPECT_NEAR(model->log_max, hi, 1e-9);
  EXPECT_LT(model->log_min, model->log_max);
  // Forgeries take no part.
  Dataset genuine_only = data.Filter([](const Example& e) { return !e.forgery; });
  absl::StatusOr<DtwSpreadModel> again =
      FitDtwSpreadModel(*DtwSpreadSamples(genuine_only, options, 1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->coefficients, model->coefficients);
  // Too few signatures to fit four coefficients.
  const absl::Status few =
      FitDtwSpreadModel(*DtwSpreadSamples(SpreadData(2, 4), options, 1)).status();
  EXPECT_EQ(few.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(few.message()), ::testing::HasSubstr("at least 10"));
}

TEST(DtwSpreadModelTest, SamplesRejectDuplicatesAndNameTheSignature) {
  Dataset data = SpreadData(1, 2);
  data.examples[1].series = data.examples[0].series;  // distance 0: no spread to learn
  data.examples[1].source = "U1S2.TXT";
  const absl::Status status = DtwSpreadSamples(data, SignatureDtwOptions{}, 1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("duplicates"));
  EXPECT_EQ(MakeSpreadSample(data.examples[0].series, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SpreadSample> one = MakeSpreadSample(data.examples[0].series, {1.0, 3.0});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_DOUBLE_EQ(one->log_spread, std::log(2.0));
}

TEST(DtwSpreadModelTest, PredictsWithinTheFittedRange) {
  DtwSpreadModel model;
  model.coefficients = {0.1, 0.2, -0.3, 0.4};
  model.log_min = -2;
  model.log_max = 1;
  const Series s = Signature({0, 2, 2}, {0, 0, 1}, {0.5, 1, 0});
  absl::StatusOr<double> spread = PredictDtwSpread(model, s);
  ASSERT_TRUE(spread.ok()) << spread.status();
  EXPECT_NEAR(*spread, std::exp(0.1 + 0.2 * std::log(2.0) - 0.3 * 0.5 + 0.4 * std::log(3.0)), 1e-9);
  model.coefficients[0] = 10;  // far outside what it was fitted on: clamped
  EXPECT_NEAR(*PredictDtwSpread(model, s), std::exp(1.0), 1e-9);
  model.coefficients[0] = -10;
  EXPECT_NEAR(*PredictDtwSpread(model, s), std::exp(-2.0), 1e-9);
  EXPECT_EQ(PredictDtwSpread(model, Series(3, 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A signature without pressure (a tablet or pad that reports none: mean pressure exactly 0) is
// predicted as if it had the fitting signatures' mean pressure, not a pressure of 0 that none of
// them had.
TEST(DtwSpreadModelTest, ASignatureWithoutPressureTakesTheMeanPressure) {
  const Dataset data = SpreadData(5, 4);
  absl::StatusOr<std::vector<SpreadSample>> samples =
      DtwSpreadSamples(data, SignatureDtwOptions{}, 2);
  ASSERT_TRUE(samples.ok()) << samples.status();
  absl::StatusOr<DtwSpreadModel> model = FitDtwSpreadModel(*samples);
  ASSERT_TRUE(model.ok()) << model.status();
  double mean = 0;
  for (const SpreadSample& s : *samples) mean += s.descriptors[1];
  mean /= static_cast<double>(samples->size());
  EXPECT_NEAR(model->mean_pressure, mean, 1e-12);
  model->log_min = -100;  // no clamp, to see the prediction itself
  model->log_max = 100;
  const Series with = Signature({0, 2, 2}, {0, 0, 1}, {0.5, 1, 0});
  const Series without = Signature({0, 2, 2}, {0, 0, 1}, {0, 0, 0});
  const std::array<double, kSpreadDescriptors> d = *SignatureShapeDescriptors(without);
  const double expected = model->coefficients[0] + model->coefficients[1] * d[0] +
                          model->coefficients[2] * mean + model->coefficients[3] * d[2];
  EXPECT_NEAR(*PredictDtwSpread(*model, without), std::exp(expected), 1e-9);
  EXPECT_NE(*PredictDtwSpread(*model, without), *PredictDtwSpread(*model, with));
  // Without a known mean, 0 is used as it is.
  model->mean_pressure = 0;
  EXPECT_NEAR(*PredictDtwSpread(*model, without),
              std::exp(expected - model->coefficients[2] * mean), 1e-9);
}

TEST(DtwSpreadModelTest, FormatAndParseRoundTrip) {
  DtwSpreadModel model;
  model.coefficients = {-0.423193, -0.255644, -0.693426, 0.0868051};
  model.log_min = -1.27963;
  model.log_max = -0.0237914;
  const std::string text = FormatDtwSpreadModel(model);
  EXPECT_EQ(text, "-0.423193,-0.255644,-0.693426,0.0868051,-1.27963,-0.0237914");
  absl::StatusOr<DtwSpreadModel> parsed = ParseDtwSpreadModel(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->coefficients, model.coefficients);
  EXPECT_EQ(parsed->log_min, model.log_min);
  EXPECT_EQ(parsed->log_max, model.log_max);
  // A known mean pressure is the seventh number.
  model.mean_pressure = 0.52;
  EXPECT_EQ(FormatDtwSpreadModel(model), text + ",0.52");
  parsed = ParseDtwSpreadModel(text + ",0.52");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->mean_pressure, 0.52);
  EXPECT_EQ(ParseDtwSpreadModel(text)->mean_pressure, 0);
  for (const char* bad : {"", "1,2,3,4,5", "1,2,3,4,5,6,7,8", "1,2,x,4,5,6", "1,2,3,4,nan,6",
                          "1,2,3,4,1,0", "1,2,3,4,5,6,0", "1,2,3,4,5,6,-1"}) {
    const absl::Status status = ParseDtwSpreadModel(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("c0,c1,c2,c3")) << bad;
  }
}

}  // namespace
}  // namespace srn
