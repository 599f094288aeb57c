#include "model/train/augment.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/signature_features.h"

namespace srn {
namespace {

// A looping two-stroke pen trajectory with varying pressure, as features.
Series Features() {
  std::vector<PenSample> samples;
  for (int i = 0; i < 120; ++i) {
    PenSample s;
    s.x = 1000 + 300 * std::cos(0.07 * i) + 2 * i;
    s.y = 500 + 150 * std::sin(0.11 * i);
    s.t_ms = 10.0 * i;
    s.pressure = 200 + 100 * std::sin(0.05 * i);
    s.stroke_start = i == 0 || i == 60;
    samples.push_back(s);
  }
  return *ComputeSignatureFeatures(samples, true);
}

AugmentOptions Off() {
  AugmentOptions o;
  o.max_rotation = o.max_scale = o.max_shear = o.time_warp = o.max_length_change = 0;
  return o;
}

TEST(AugmentTest, ZeroAmplitudesReturnTheInput) {
  const Series in = Features();
  std::mt19937_64 rng(1);
  absl::StatusOr<Series> out = AugmentSignature(in, Off(), &rng);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->length(), in.length());
  for (int t = 0; t < in.length(); ++t) {
    for (int d = 0; d < kSignatureFeatureDims; ++d) {
      EXPECT_NEAR(out->frames()(t, d), in.frames()(t, d), 1e-3 * (1 + std::abs(in.frames()(t, d))))
          << "frame " << t << " feature " << d;
    }
  }
}

TEST(AugmentTest, KeepsTheFeatureDefinitions) {
  const Series in = Features();
  AugmentOptions o;
  o.max_rotation = 0.3;
  o.max_scale = 0.3;
  o.max_shear = 0.3;
  o.time_warp = 0.5;
  o.max_length_change = 0.2;
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    absl::StatusOr<Series> out = AugmentSignature(in, o, &rng);
    ASSERT_TRUE(out.ok()) << out.status();
    const RowMatrix& f = out->frames();
    const int t = out->length();
    EXPECT_GE(t, static_cast<int>(0.8 * in.length()) - 1);
    EXPECT_LE(t, static_cast<int>(1.2 * in.length()) + 1);
    // Centred, unit RMS radius.
    EXPECT_NEAR(f.col(0).cast<double>().mean(), 0, 1e-4);
    EXPECT_NEAR(f.col(1).cast<double>().mean(), 0, 1e-4);
    const double rms = std::sqrt((f.col(0).cast<double>().array().square() +
                                  f.col(1).cast<double>().array().square()).mean());
    EXPECT_NEAR(rms, 1, 1e-4);
    EXPECT_EQ(f(0, 11), 1.0f);
    for (int k = 0; k < t; ++k) {
      EXPECT_NEAR(f(k, 4), std::hypot(f(k, 2), f(k, 3)), 1e-3 * (1 + f(k, 4)));
      EXPECT_NEAR(f(k, 5) * f(k, 5) + f(k, 6) * f(k, 6), 1, 1e-4);
      EXPECT_TRUE(f(k, 11) == 0.0f || f(k, 11) == 1.0f);
      EXPECT_GE(f(k, 9), in.frames().col(9).minCoeff() - 1e-6);  // interpolated pressure
      EXPECT_LE(f(k, 9), in.frames().col(9).maxCoeff() + 1e-6);
    }
  }
}

TEST(AugmentTest, RotationKeepsSpeedAndTimeWarpKeepsEnds) {
  const Series in = Features();
  AugmentOptions rotate = Off();
  rotate.max_rotation = 0.5;
  std::mt19937_64 rng(3);
  absl::StatusOr<Series> rotated = AugmentSignature(in, rotate, &rng);
  ASSERT_TRUE(rotated.ok());
  ASSERT_EQ(rotated->length(), in.length());
  bool moved = false;
  for (int k = 0; k < in.length(); ++k) {
    EXPECT_NEAR(rotated->frames()(k, 4), in.frames()(k, 4), 1e-3 * (1 + in.frames()(k, 4)));
    EXPECT_NEAR(rotated->frames()(k, 9), in.frames()(k, 9), 1e-6);
    moved |= std::abs(rotated->frames()(k, 0) - in.frames()(k, 0)) > 1e-3;
  }
  EXPECT_TRUE(moved);

  AugmentOptions warp = Off();
  warp.time_warp = 0.6;
  absl::StatusOr<Series> warped = AugmentSignature(in, warp, &rng);
  ASSERT_TRUE(warped.ok());
  const int last = warped->length() - 1;
  EXPECT_NEAR(warped->frames()(0, 9), in.frames()(0, 9), 1e-6);
  EXPECT_NEAR(warped->frames()(last, 9), in.frames()(in.length() - 1, 9), 1e-6);
}

TEST(AugmentTest, RejectsBadInput) {
  std::mt19937_64 rng(1);
  AugmentOptions bad;
  bad.time_warp = 1.0;  // g would stop being increasing
  EXPECT_EQ(AugmentSignature(Features(), bad, &rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = AugmentOptions();
  bad.max_rotation = -1;
  EXPECT_EQ(AugmentSignature(Features(), bad, &rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AugmentSignature(Series(10, 3), AugmentOptions(), &rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      AugmentSignature(Series(1, kSignatureFeatureDims), AugmentOptions(), &rng).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(AugmentDatasetTest, AddsLabelledCopiesDeterministically) {
  Dataset d{"svc", {"A", "B"}, {}};
  for (int k = 0; k < 3; ++k) {
    Example e;
    e.series = Features();
    e.label = k % 2;
    e.forgery = k == 2;
    e.group = k;
    e.source = "f" + std::to_string(k);
    d.examples.push_back(e);
  }
  AugmentOptions o;
  o.copies = 2;
  o.seed = 9;
  absl::StatusOr<Dataset> a = AugmentDataset(d, o, FeatureKind::kSignature);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->examples.size(), 9u);
  for (int i = 0; i < 9; ++i) {
    const Example& orig = d.examples[i % 3];
    EXPECT_EQ(a->examples[i].label, orig.label);
    EXPECT_EQ(a->examples[i].forgery, orig.forgery);
    EXPECT_EQ(a->examples[i].group, orig.group);
  }
  EXPECT_EQ(a->examples[4].source, "f1#aug1");
  EXPECT_EQ(a->examples[8].source, "f2#aug2");
  absl::StatusOr<Dataset> again = AugmentDataset(d, o, FeatureKind::kSignature);
  EXPECT_EQ(a->examples[5].series.frames(), again->examples[5].series.frames());
  // The two copies of one example differ.
  const RowMatrix& c1 = a->examples[3].series.frames();
  const RowMatrix& c2 = a->examples[6].series.frames();
  EXPECT_FALSE(c1.rows() == c2.rows() && c1 == c2);
}

// A series of `length` frames whose feature c is a sine of its own frequency and amplitude.
Series Waves(int length, int dims) {
  Series s(length, dims);
  for (int t = 0; t < length; ++t) {
    for (int c = 0; c < dims; ++c) {
      s.mutable_frames()(t, c) = static_cast<float>((c + 1) * std::sin(0.05 * (c + 1) * t) + c);
    }
  }
  return s;
}

TEST(AugmentFramesTest, WithoutWarpOrNoiseTheCopyIsTheOriginal) {
  const Series s = Waves(50, 3);
  AugmentOptions o;
  o.time_warp = 0;
  o.max_length_change = 0;
  std::mt19937_64 rng(1);
  absl::StatusOr<Series> copy = AugmentFrames(s, o, &rng);
  ASSERT_TRUE(copy.ok()) << copy.status();
  ASSERT_EQ(copy->length(), 50);
  EXPECT_LT((copy->frames() - s.frames()).cwiseAbs().maxCoeff(), 1e-5f);
}

TEST(AugmentFramesTest, WarpsTimeWithinTheBoundsAndAddsNoiseScaledPerFeature) {
  const Series s = Waves(2000, 3);
  AugmentOptions o;
  o.max_length_change = 0.1;
  std::mt19937_64 rng(4);
  for (int k = 0; k < 20; ++k) {
    absl::StatusOr<Series> copy = AugmentFrames(s, o, &rng);
    ASSERT_TRUE(copy.ok()) << copy.status();
    EXPECT_GE(copy->length(), 1800);
    EXPECT_LE(copy->length(), 2200);
    // Ends stay ends: the warp maps [0, 1] onto itself.
    EXPECT_LT((copy->frames().row(0) - s.frames().row(0)).cwiseAbs().maxCoeff(), 1e-5f);
    EXPECT_LT((copy->frames().bottomRows(1) - s.frames().bottomRows(1)).cwiseAbs().maxCoeff(),
              1e-5f);
  }
  // Noise only: the difference has each feature's spread times `noise`.
  o.time_warp = 0;
  o.max_length_change = 0;
  o.noise = 0.2;
  absl::StatusOr<Series> noisy = AugmentFrames(s, o, &rng);
  ASSERT_TRUE(noisy.ok()) << noisy.status();
  for (int c = 0; c < 3; ++c) {
    const auto orig = s.frames().col(c).cast<double>();
    const double sd = std::sqrt((orig.array() - orig.mean()).square().mean());
    const auto diff = (noisy->frames().col(c).cast<double>() - orig).eval();
    const double diff_sd = std::sqrt((diff.array() - diff.mean()).square().mean());
    EXPECT_NEAR(diff_sd, 0.2 * sd, 0.02 * sd) << "feature " << c;
    EXPECT_NEAR(diff.mean(), 0.0, 0.02 * sd) << "feature " << c;
  }
}

TEST(AugmentFramesTest, RejectsTooShortSeriesAndBadOptions) {
  AugmentOptions o;
  std::mt19937_64 rng(1);
  EXPECT_EQ(AugmentFrames(Waves(1, 2), o, &rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.noise = -0.1;
  EXPECT_EQ(AugmentFrames(Waves(10, 2), o, &rng).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AugmentDatasetTest, FramesGetFrameCopiesAndErrorsNameTheExample) {
  Dataset d{"voice", {"A"}, {}};
  Example e;
  e.series = Waves(30, 13);  // 13 features: not a signature
  e.source = "utterance 7";
  d.examples.push_back(e);
  AugmentOptions o;
  o.copies = 2;
  absl::StatusOr<Dataset> a = AugmentDataset(d, o, FeatureKind::kFrames);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->examples.size(), 3u);
  EXPECT_EQ(a->examples[2].series.dims(), 13);
  EXPECT_EQ(a->examples[2].source, "utterance 7#aug2");
  // As signatures, 13 features are an error that names the example.
  const absl::Status bad = AugmentDataset(d, o, FeatureKind::kSignature).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("utterance 7"));
}

// `n` signatures (the same trajectory) of two signers, with their pressure.
Dataset PressureData(int n) {
  Dataset d{"toy", {"a", "b"}, {}};
  const Series f = Features();
  for (int i = 0; i < n; ++i) {
    Example e;
    e.series = f;
    e.label = i % 2;
    e.source = "s" + std::to_string(i);
    d.examples.push_back(e);
  }
  return d;
}

constexpr int kPressure = 9, kPressureChange = 10;

bool PressureZero(const Series& s) {
  return s.frames().col(kPressure).isZero(0) && s.frames().col(kPressureChange).isZero(0);
}

TEST(PressureDropoutTest, ProbabilityOneZeroesEveryExampleAndCopy) {
  const Dataset d = PressureData(10);
  ASSERT_FALSE(PressureZero(d.examples[0].series));
  AugmentOptions o;
  o.copies = 2;
  o.pressure_dropout = 1;
  absl::StatusOr<Dataset> a = AugmentDataset(d, o, FeatureKind::kSignature);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->examples.size(), 30u);
  for (const Example& e : a->examples) EXPECT_TRUE(PressureZero(e.series)) << e.source;
}

TEST(PressureDropoutTest, ZeroChangesNothingAndHalfDropsAboutHalfOfTheExamplesAlone) {
  const Dataset d = PressureData(200);
  AugmentOptions o;
  o.copies = 1;
  o.seed = 7;
  absl::StatusOr<Dataset> plain = AugmentDataset(d, o, FeatureKind::kSignature);
  ASSERT_TRUE(plain.ok()) << plain.status();
  // Without dropout, the record reads as it always has.
  EXPECT_THAT(DescribeAugment(o), ::testing::Not(::testing::HasSubstr("pressure")));
  for (const Example& e : plain->examples) EXPECT_FALSE(PressureZero(e.series)) << e.source;

  o.pressure_dropout = 0.5;
  EXPECT_THAT(DescribeAugment(o), ::testing::HasSubstr("pressure_dropout 0.5"));
  absl::StatusOr<Dataset> dropped = AugmentDataset(d, o, FeatureKind::kSignature);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ASSERT_EQ(dropped->examples.size(), plain->examples.size());
  int zeroed = 0, zeroed_copies = 0;
  for (size_t i = 0; i < dropped->examples.size(); ++i) {
    const Series& got = dropped->examples[i].series;
    const Series& want = plain->examples[i].series;
    ASSERT_EQ(got.length(), want.length()) << "the copies do not depend on the dropout";
    for (int c = 0; c < got.dims(); ++c) {
      if (c == kPressure || c == kPressureChange) continue;
      EXPECT_TRUE(got.frames().col(c) == want.frames().col(c)) << "example " << i << " col " << c;
    }
    if (PressureZero(got)) {
      ++zeroed;
      zeroed_copies += i >= d.examples.size();
    } else {
      EXPECT_TRUE(got.frames() == want.frames()) << "example " << i;
    }
  }
  EXPECT_GT(zeroed, 400 * 0.4);
  EXPECT_LT(zeroed, 400 * 0.6);
  EXPECT_GT(zeroed_copies, 0);
  EXPECT_LT(zeroed_copies, zeroed);

  // The same seed drops the same examples.
  absl::StatusOr<Dataset> again = AugmentDataset(d, o, FeatureKind::kSignature);
  ASSERT_TRUE(again.ok()) << again.status();
  for (size_t i = 0; i < again->examples.size(); ++i) {
    EXPECT_TRUE(again->examples[i].series.frames() == dropped->examples[i].series.frames()) << i;
  }
}

TEST(PressureDropoutTest, OnlySignatureFeaturesAndProbabilitiesInRange) {
  AugmentOptions o;
  o.pressure_dropout = 0.3;
  Dataset frames{"frames", {"a"}, {}};
  Example e;
  e.series = Series(5, 13);
  e.source = "utterance 1";
  frames.examples.push_back(e);
  EXPECT_EQ(AugmentDataset(frames, o, FeatureKind::kFrames).status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status dims = AugmentDataset(frames, o, FeatureKind::kSignature).status();
  EXPECT_EQ(dims.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(dims.message()), ::testing::HasSubstr("utterance 1"));
  for (double p : {-0.1, 1.5}) {
    o.pressure_dropout = p;
    EXPECT_EQ(AugmentDataset(PressureData(2), o, FeatureKind::kSignature).status().code(),
              absl::StatusCode::kInvalidArgument)
        << p;
  }
  // Nothing to change: copies 0 and no dropout.
  EXPECT_FALSE(AugmentsData(AugmentOptions()));
  o.pressure_dropout = 0.1;
  EXPECT_TRUE(AugmentsData(o));
}

}  // namespace
}  // namespace srn
