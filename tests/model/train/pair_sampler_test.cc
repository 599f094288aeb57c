#include "model/train/pair_sampler.h"

#include "gtest/gtest.h"
#include "tests/testing/synthetic_data.h"

namespace srn {
namespace {

using ::srn::testing::MakeSineDataset;

TEST(PairSamplerTest, SimilarPairsAreDistinctGenuineExamplesOfOneClass) {
  const Dataset data = MakeSineDataset(4, 5, 1, 5, 5, 1, /*forgeries=*/3);
  absl::StatusOr<PairSampler> sampler = PairSampler::Create(data, {});
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  std::mt19937_64 rng(2);
  for (int i = 0; i < 2000; ++i) {
    const Pair p = sampler->SampleSimilar(&rng);
    EXPECT_EQ(p.label, 1);
    EXPECT_NE(p.a, p.b);
    EXPECT_EQ(data.examples[p.a].label, data.examples[p.b].label);
    EXPECT_FALSE(data.examples[p.a].forgery);
    EXPECT_FALSE(data.examples[p.b].forgery);
  }
}

TEST(PairSamplerTest, DissimilarPairsMixForgeriesAndOtherClasses) {
  const Dataset data = MakeSineDataset(4, 5, 1, 5, 5, 1, /*forgeries=*/3);
  PairSampler::Options options;
  options.forgery_fraction = 0.25;
  absl::StatusOr<PairSampler> sampler = PairSampler::Create(data, options);
  ASSERT_TRUE(sampler.ok());
  std::mt19937_64 rng(3);
  int forged = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const Pair p = sampler->SampleDissimilar(&rng);
    EXPECT_EQ(p.label, 0);
    const Example& a = data.examples[p.a];
    const Example& b = data.examples[p.b];
    EXPECT_FALSE(a.forgery);  // the anchor is always genuine
    if (b.forgery) {
      EXPECT_EQ(a.label, b.label);  // a skilled forgery of the anchor's own class
      ++forged;
    } else {
      EXPECT_NE(a.label, b.label);
    }
  }
  EXPECT_NEAR(static_cast<double>(forged) / n, 0.25, 0.02);
}

TEST(PairSamplerTest, IgnoresForgeriesWhenFractionIsZero) {
  const Dataset data = MakeSineDataset(3, 4, 1, 5, 5, 1, /*forgeries=*/2);
  PairSampler::Options options;
  options.forgery_fraction = 0;
  absl::StatusOr<PairSampler> sampler = PairSampler::Create(data, options);
  ASSERT_TRUE(sampler.ok());
  std::mt19937_64 rng(4);
  for (int i = 0; i < 1000; ++i) {
    const Pair p = sampler->SampleDissimilar(&rng);
    EXPECT_FALSE(data.examples[p.b].forgery);
  }
}

TEST(PairSamplerTest, BalancedSamplesAreHalfSimilarAndDeterministic) {
  const Dataset data = MakeSineDataset(5, 4, 1, 5, 5, 1);
  absl::StatusOr<PairSampler> sampler = PairSampler::Create(data, {});
  ASSERT_TRUE(sampler.ok());
  std::mt19937_64 rng1(9), rng2(9);
  const std::vector<Pair> a = sampler->SampleBalanced(51, &rng1);
  const std::vector<Pair> b = sampler->SampleBalanced(51, &rng2);
  ASSERT_EQ(a.size(), 51u);
  int similar = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    similar += a[i].label;
    EXPECT_EQ(a[i].a, b[i].a);
    EXPECT_EQ(a[i].b, b[i].b);
  }
  EXPECT_EQ(similar, 25);
}

TEST(PairSamplerTest, RejectsDataWithoutPairs) {
  // One example per class: no similar pairs.
  EXPECT_EQ(PairSampler::Create(MakeSineDataset(3, 1, 1, 5, 5, 1), {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // One class and no forgeries: no dissimilar pairs.
  EXPECT_EQ(PairSampler::Create(MakeSineDataset(1, 4, 1, 5, 5, 1), {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // One class with forgeries is enough (signature mode).
  EXPECT_TRUE(PairSampler::Create(MakeSineDataset(1, 4, 1, 5, 5, 1, 2), {}).ok());
}

}  // namespace
}  // namespace srn
