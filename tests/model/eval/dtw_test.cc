#include "model/eval/dtw.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A series from frames given as rows.
Series Make(const std::vector<std::vector<float>>& frames) {
  Series s(static_cast<int>(frames.size()), static_cast<int>(frames[0].size()));
  for (size_t t = 0; t < frames.size(); ++t) {
    for (size_t d = 0; d < frames[t].size(); ++d) s.mutable_frames()(t, d) = frames[t][d];
  }
  return s;
}

Series Make1D(const std::vector<float>& values) {
  std::vector<std::vector<float>> frames;
  for (float v : values) frames.push_back({v});
  return Make(frames);
}

// A random walk: neighbouring frames are correlated, like real features, so bounds are informative.
Series RandomWalk(std::mt19937& rng, int length, int dims) {
  std::normal_distribution<float> step(0, 1);
  Series s(length, dims);
  for (int d = 0; d < dims; ++d) {
    float x = 3 * step(rng);
    for (int t = 0; t < length; ++t) {
      x += step(rng);
      s.mutable_frames()(t, d) = x;
    }
  }
  return s;
}

TEST(DtwBandRadiusTest, FramesFractionAndWidening) {
  EXPECT_EQ(DtwBandRadius(DtwOptions::NoBand(), 7, 3), 7);
  EXPECT_EQ(DtwBandRadius(DtwOptions::Frames(2), 10, 10), 2);
  EXPECT_EQ(DtwBandRadius(DtwOptions::Frames(0), 10, 10), 0);
  EXPECT_EQ(DtwBandRadius(DtwOptions::Frames(2), 10, 5), 5);       // widened to |Ta - Tb|
  EXPECT_EQ(DtwBandRadius(DtwOptions::Frames(500), 10, 5), 10);    // capped: same as no band
  EXPECT_EQ(DtwBandRadius(DtwOptions::Fraction(0.1), 30, 30), 3);  // 0.1 * 30 is 3.0000000000000004
  EXPECT_EQ(DtwBandRadius(DtwOptions::Fraction(0.1), 41, 38), 5);  // ceil(4.1)
  EXPECT_EQ(DtwBandRadius(DtwOptions::Fraction(0.1), 30, 36), 6);  // widened past ceil(3.6)
  EXPECT_EQ(DtwBandRadius(DtwOptions::Fraction(0.0), 12, 12), 0);
  EXPECT_EQ(DtwBandRadius(DtwOptions::Fraction(2.0), 12, 9), 12);
  DtwOptions both;  // frames take precedence
  both.band_frames = 1;
  both.band_fraction = 0.5;
  EXPECT_EQ(DtwBandRadius(both, 20, 20), 1);
}

// The budget's count bounds the cells inside the band (|i - j| <= radius) from above, and equals it
// when the band is clipped by neither end.
TEST(DtwCellsTest, BoundsTheCellsInsideTheBand) {
  EXPECT_EQ(DtwCells(DtwOptions::NoBand(), 7, 3), 21);
  EXPECT_EQ(DtwCells(DtwOptions::Frames(2), 10, 10), 50);
  EXPECT_EQ(DtwCells(DtwOptions::Fraction(0.3), 5000, 5000), int64_t{5000} * 3001);
  for (const DtwOptions options :
       {DtwOptions::NoBand(), DtwOptions::Frames(0), DtwOptions::Frames(3),
        DtwOptions::Fraction(0.1), DtwOptions::Fraction(0.3)}) {
    for (const auto& [ta, tb] : {std::pair{1, 1}, {10, 10}, {40, 33}, {17, 60}, {200, 180}}) {
      const int r = DtwBandRadius(options, ta, tb);
      int64_t inside = 0;
      for (int i = 0; i < ta; ++i) {
        for (int j = 0; j < tb; ++j) inside += std::abs(i - j) <= r ? 1 : 0;
      }
      EXPECT_GE(DtwCells(options, ta, tb), inside) << ta << "x" << tb << " radius " << r;
      EXPECT_LE(DtwCells(options, ta, tb), int64_t{ta} * tb);
    }
  }
}

TEST(DtwTest, IdenticalSeriesCostZero) {
  std::mt19937 rng(1);
  const Series a = RandomWalk(rng, 25, 3);
  EXPECT_EQ(DtwDistance(a, a), 0.0);
  EXPECT_EQ(DtwDistance(a, a, DtwOptions::Frames(0)), 0.0);
  absl::StatusOr<DtwResult> result = Dtw(a, a, DtwOptions::Fraction(0.1));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cost, 0.0);
  EXPECT_EQ(result->normalized, 0.0);
}

TEST(DtwTest, UnequalLengthsByHand) {
  // a = [0, 1, 2], b = [0, 2]; costs (a_i - b_j)^2 = [[0, 4], [1, 1], [4, 0]].
  // D = [[0, 4], [1, 1], [5, 1]]: best path (0,0) (1,0) (2,1) or (0,0) (1,1) (2,1), cost 1.
  const Series a = Make1D({0, 1, 2});
  const Series b = Make1D({0, 2});
  absl::StatusOr<DtwResult> result = Dtw(a, b);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cost, 1.0);
  EXPECT_DOUBLE_EQ(result->normalized, 1.0 / 5);
  // A zero band is widened to 1 = |3 - 2|; cell (2, 0) leaves, the best path stays.
  EXPECT_EQ(DtwDistance(a, b, DtwOptions::Frames(0)), 1.0);
  EXPECT_DOUBLE_EQ(NormalizedDtwDistance(a, b, DtwOptions::Frames(0)), 0.2);
}

TEST(DtwTest, BandChangesTheAnswerByHand) {
  // a = [0, 0, 1], b = [0, 1, 1]: free warping matches 0-0, 0-0, 1-1, 1-1 at cost 0;
  // the diagonal alone (band 0) pays (0 - 1)^2 at (1, 1): cost 1.
  const Series a = Make1D({0, 0, 1});
  const Series b = Make1D({0, 1, 1});
  EXPECT_EQ(DtwDistance(a, b), 0.0);
  EXPECT_EQ(DtwDistance(a, b, DtwOptions::Frames(1)), 0.0);
  EXPECT_EQ(DtwDistance(a, b, DtwOptions::Frames(0)), 1.0);
  EXPECT_DOUBLE_EQ(Dtw(a, b, DtwOptions::Frames(0))->normalized, 1.0 / 6);
}

TEST(DtwTest, MultiDimensionalByHand) {
  // Frame costs a0 vs b: 0, 1, 2; a1 vs b: 2, 1, 0. D row 1: 2, 1, 1 -> cost 1.
  const Series a = Make({{0, 0}, {1, 1}});
  const Series b = Make({{0, 0}, {0, 1}, {1, 1}});
  EXPECT_EQ(DtwDistance(a, b), 1.0);
  EXPECT_EQ(DtwDistance(b, a), 1.0);
}

TEST(DtwTest, EuclideanLocalCostByHand) {
  // a = [0, 4], b = [0, 2, 4]. Squared costs [[0, 4, 16], [16, 4, 0]] give D row 1 = 16, 4, 4;
  // Euclidean costs [[0, 2, 4], [4, 2, 0]] give 4, 2, 2, along the same path.
  const Series a = Make1D({0, 4});
  const Series b = Make1D({0, 2, 4});
  const DtwOptions euclidean = DtwOptions::NoBand().WithCost(DtwLocalCost::kEuclidean);
  EXPECT_EQ(DtwDistance(a, b), 4.0);
  EXPECT_EQ(DtwDistance(a, b, euclidean), 2.0);
  EXPECT_EQ(DtwDistance(b, a, euclidean), 2.0);
  EXPECT_DOUBLE_EQ(NormalizedDtwDistance(a, b, euclidean), 2.0 / 5);
  // Across dimensions the frame cost is the Euclidean norm: (0, 0) to (3, 4) costs 5, not 25.
  EXPECT_EQ(DtwDistance(Make({{0, 0}}), Make({{3, 4}}), euclidean), 5.0);
  EXPECT_EQ(Dtw(Make({{0, 0}}), Make({{3, 4}}), euclidean)->cost, 5.0);
  EXPECT_EQ(DtwDistance(Make({{0, 0}}), Make({{3, 4}})), 25.0);
}

TEST(DtwTest, SymmetricAndNoBandEqualsWideBand) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> length(1, 30);
  for (int trial = 0; trial < 200; ++trial) {
    const Series a = RandomWalk(rng, length(rng), 3);
    const Series b = RandomWalk(rng, length(rng), 3);
    const int longer = std::max(a.length(), b.length());
    for (const DtwOptions& options :
         {DtwOptions::NoBand(), DtwOptions::Frames(0), DtwOptions::Frames(3),
          DtwOptions::Fraction(0.1), DtwOptions::Fraction(0.25)}) {
      EXPECT_EQ(DtwDistance(a, b, options), DtwDistance(b, a, options));
    }
    const double free = DtwDistance(a, b);
    EXPECT_EQ(DtwDistance(a, b, DtwOptions::Frames(longer - 1)), free);
    EXPECT_EQ(DtwDistance(a, b, DtwOptions::Frames(longer + 100)), free);
    EXPECT_EQ(DtwDistance(a, b, DtwOptions::Fraction(1.0)), free);
    // Narrowing the band can only remove paths.
    EXPECT_GE(DtwDistance(a, b, DtwOptions::Frames(2)), free);
    EXPECT_GE(DtwDistance(a, b, DtwOptions::Frames(0)), DtwDistance(a, b, DtwOptions::Frames(2)));
  }
}

// The plain definition, cell by cell over the whole matrix, each frame cost summed one frame pair
// at a time as the kernel documents it (partial sums by dimension mod 4, (s0 + s1) + (s2 + s3)).
double PlainDtw(const Series& a, const Series& b, const DtwOptions& options) {
  const int ta = a.length(), tb = b.length(), dims = a.dims();
  const int radius = DtwBandRadius(options, ta, tb);
  std::vector<std::vector<double>> dp(ta + 1, std::vector<double>(tb + 1, kInf));
  dp[0][0] = 0;
  for (int i = 0; i < ta; ++i) {
    for (int j = std::max(0, i - radius); j <= std::min(tb - 1, i + radius); ++j) {
      double sum[4] = {0, 0, 0, 0};
      int d = 0;
      for (; d + 4 <= dims; d += 4) {
        for (int k = 0; k < 4; ++k) {
          const double diff = static_cast<double>(a.data()[i * dims + d + k]) -
                              static_cast<double>(b.data()[j * dims + d + k]);
          sum[k] = std::fma(diff, diff, sum[k]);
        }
      }
      for (; d < dims; ++d) {
        const double diff = static_cast<double>(a.data()[i * dims + d]) -
                            static_cast<double>(b.data()[j * dims + d]);
        sum[0] = std::fma(diff, diff, sum[0]);
      }
      double cost = (sum[0] + sum[1]) + (sum[2] + sum[3]);
      if (options.local_cost == DtwLocalCost::kEuclidean) cost = std::sqrt(cost);
      dp[i + 1][j + 1] = cost + std::min(dp[i][j + 1], std::min(dp[i + 1][j], dp[i][j]));
    }
  }
  return dp[ta][tb];
}

// The row kernel (four frame costs at a time) gives the plain definition's value bit for bit, for
// every number of dimensions around the vector widths, both frame costs, bands and lengths that
// leave partial vectors.
TEST(DtwTest, RowKernelEqualsThePlainDefinitionBitForBit) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> length(1, 41);
  for (const int dims : {1, 3, 4, 7, 8, 13, 32, 33}) {
    for (int trial = 0; trial < 30; ++trial) {
      const Series a = RandomWalk(rng, length(rng), dims);
      const Series b = RandomWalk(rng, length(rng), dims);
      for (const DtwLocalCost cost : {DtwLocalCost::kSquaredEuclidean, DtwLocalCost::kEuclidean}) {
        for (const DtwOptions& band :
             {DtwOptions::NoBand(), DtwOptions::Frames(0), DtwOptions::Fraction(0.3)}) {
          const DtwOptions options = band.WithCost(cost);
          EXPECT_EQ(DtwDistance(a, b, options), PlainDtw(a, b, options))
              << dims << " dims, lengths " << a.length() << " and " << b.length();
        }
      }
    }
  }
}

TEST(DtwTest, EarlyAbandonOnlyWhenAWholeRowExceeds) {
  // Band 0 on [0,0,1] vs [0,1,1]: row minima 0, 1, 1 (final cost 1).
  const Series a = Make1D({0, 0, 1});
  const Series b = Make1D({0, 1, 1});
  const DtwOptions diagonal = DtwOptions::Frames(0);
  EXPECT_EQ(DtwDistance(a, b, diagonal, 0.99), kInf);
  EXPECT_EQ(DtwDistance(a, b, diagonal, 1.0), 1.0);  // not strictly above: completes
  EXPECT_EQ(DtwDistance(a, b, diagonal, kInf), 1.0);
  // Abandoning never changes a completed result; the final row may hold cells below the final
  // cost, so a limit just under it need not abandon, but a low limit does.
  std::mt19937 rng(3);
  int abandoned_at_half = 0;
  for (int trial = 0; trial < 100; ++trial) {
    const Series x = RandomWalk(rng, 20, 2);
    const Series y = RandomWalk(rng, 17, 2);
    const DtwOptions band = DtwOptions::Fraction(0.2);
    const double full = DtwDistance(x, y, band);
    EXPECT_EQ(DtwDistance(x, y, band, full), full);
    for (double factor : {0.999, 0.5}) {
      const double limited = DtwDistance(x, y, band, full * factor);
      EXPECT_TRUE(limited == kInf || limited == full) << limited;
      if (factor == 0.5) abandoned_at_half += limited == kInf;
    }
    EXPECT_EQ(DtwDistance(x, y, band, -1.0), kInf);  // every cell is >= 0
  }
  EXPECT_GT(abandoned_at_half, 90);
}

TEST(DtwTest, CheckedEntryPointRejectsBadInput) {
  const Series a = Make1D({0, 1});
  const Series b = Make({{0, 1}});
  EXPECT_EQ(Dtw(a, b).status().code(), absl::StatusCode::kInvalidArgument);  // dims differ
  EXPECT_EQ(Dtw(a, Series()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dtw(Series(), a).status().code(), absl::StatusCode::kInvalidArgument);
  Series bad = Make1D({0, 1});
  bad.mutable_frames()(1, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(Dtw(a, bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dtw(a, a, DtwOptions::Fraction(std::nan(""))).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The unchecked path answers NaN rather than crashing.
  EXPECT_TRUE(std::isnan(DtwDistance(a, b)));
  EXPECT_TRUE(std::isnan(DtwDistance(a, Series())));
  EXPECT_TRUE(std::isnan(LbKim(a, b)));
  EXPECT_TRUE(std::isnan(LbKeogh(a, b)));
}

TEST(LowerBoundTest, ByHand) {
  // query [0, 2, 1], candidate [3, -1]; band 0 widens to 1.
  // DTW: costs [[9, 1], [1, 9], [4, 4]], D = [[9, 10], [10, 18], [-, 14]] -> 14.
  // LB_Kim = (0 - 3)^2 + (1 + 1)^2 = 13. LB_Keogh: envelopes j=0 over frames 0..1 = [0, 2],
  // j=1 over 0..2 = [0, 2]; 3 is 1 above, -1 is 1 below -> 2.
  const Series q = Make1D({0, 2, 1});
  const Series c = Make1D({3, -1});
  EXPECT_EQ(DtwDistance(q, c, DtwOptions::Frames(0)), 14.0);
  EXPECT_EQ(LbKim(q, c), 13.0);
  EXPECT_EQ(LbKeogh(q, c, DtwOptions::Frames(0)), 2.0);
  // Band 0 on equal lengths: the envelope is the query itself, so LB_Keogh = diagonal DTW.
  const Series d = Make1D({3, 3, 3});
  EXPECT_EQ(LbKeogh(q, d, DtwOptions::Frames(0)), 9.0 + 1.0 + 4.0);
  EXPECT_EQ(DtwDistance(q, d, DtwOptions::Frames(0)), 14.0);
  // One frame each: start and end are the same cell, counted once.
  EXPECT_EQ(LbKim(Make1D({1}), Make1D({3})), 4.0);
}

// LB_Keogh written out plainly: for each candidate frame, the squared distance to the min/max box
// of the query frames within the band.
double PlainKeogh(const Series& q, const Series& c, int radius) {
  double sum = 0;
  for (int j = 0; j < c.length(); ++j) {
    const int lo = std::max(0, j - radius);
    const int hi = std::min(q.length() - 1, j + radius);
    for (int d = 0; d < c.dims(); ++d) {
      const double upper = q.frames().col(d).segment(lo, hi - lo + 1).maxCoeff();
      const double lower = q.frames().col(d).segment(lo, hi - lo + 1).minCoeff();
      const double x = c.frames()(j, d);
      const double excess = x > upper ? x - upper : (x < lower ? lower - x : 0.0);
      sum += excess * excess;
    }
  }
  return sum;
}

TEST(LowerBoundTest, KeoghMatchesPlainDefinition) {
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> length(1, 60);
  for (int trial = 0; trial < 200; ++trial) {
    const Series q = RandomWalk(rng, length(rng), 1 + trial % 5);
    const Series c = RandomWalk(rng, length(rng), q.dims());
    for (const DtwOptions& options : {DtwOptions::NoBand(), DtwOptions::Frames(0),
                                      DtwOptions::Frames(3), DtwOptions::Fraction(0.1)}) {
      const double expected = PlainKeogh(q, c, DtwBandRadius(options, q.length(), c.length()));
      EXPECT_NEAR(LbKeogh(q, c, options), expected, 1e-12 * expected) << trial;
    }
  }
}

TEST(LowerBoundTest, KeoghOnAQueryTooLongForItsTable) {
  // 100000 frames x 4 dims needs 17 table levels (27 MB): the bound is computed by scanning.
  std::mt19937 rng(9);
  const Series q = RandomWalk(rng, 100000, 4);
  const Series c = RandomWalk(rng, 3, 4);
  const double keogh = LbKeogh(q, c);
  const double expected = PlainKeogh(q, c, DtwBandRadius({}, q.length(), c.length()));
  EXPECT_NEAR(keogh, expected, 1e-12 * expected);
  EXPECT_LE(keogh, DtwDistance(q, c));
}

TEST(LowerBoundTest, NeverExceedTheTrueDistance) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> length(1, 40);
  int informative_kim = 0, informative_keogh = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int dims = 1 + trial % 4;
    const Series q = RandomWalk(rng, length(rng), dims);
    const Series c = RandomWalk(rng, length(rng), dims);
    for (const DtwOptions& options :
         {DtwOptions::NoBand(), DtwOptions::Frames(0), DtwOptions::Frames(2), DtwOptions::Frames(7),
          DtwOptions::Fraction(0.1), DtwOptions::Fraction(0.3)}) {
      const double dtw = DtwDistance(q, c, options);
      const double tolerance = 1e-12 * dtw;  // different summation orders round differently
      const double kim = LbKim(q, c);
      const double keogh = LbKeogh(q, c, options);
      EXPECT_LE(kim, dtw + tolerance) << trial;
      EXPECT_LE(keogh, dtw + tolerance) << trial;
      EXPECT_GE(keogh, 0.0);
      informative_kim += kim > 0.1 * dtw;
      informative_keogh += keogh > 0.1 * dtw;
    }
  }
  // The bounds must also be useful, not trivially 0.
  EXPECT_GT(informative_kim, 200);
  EXPECT_GT(informative_keogh, 400);
}

std::vector<const Series*> Pointers(const std::vector<Series>& series) {
  std::vector<const Series*> pointers;
  for (const Series& s : series) pointers.push_back(&s);
  return pointers;
}

TEST(DtwNearestTest, MatchesBruteForceAndPrunes) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> length(15, 45);
  std::vector<Series> references;
  for (int k = 0; k < 40; ++k) references.push_back(RandomWalk(rng, length(rng), 4));
  const std::vector<const Series*> refs = Pointers(references);
  for (const DtwOptions& options :
       {DtwOptions::NoBand(), DtwOptions::Fraction(0.1), DtwOptions::Frames(5)}) {
    DtwSearchStats stats;
    for (int trial = 0; trial < 60; ++trial) {
      // Half the queries are noisy copies of a reference, so a clear nearest neighbour exists.
      Series query = RandomWalk(rng, length(rng), 4);
      if (trial % 2 == 0) {
        query = references[trial % references.size()];
        query.mutable_frames().array() += 0.3f;
      }
      absl::StatusOr<DtwNeighbor> fast = DtwNearest(query, refs, options, &stats);
      absl::StatusOr<DtwNeighbor> slow = DtwNearestBruteForce(query, refs, options);
      ASSERT_TRUE(fast.ok()) << fast.status();
      ASSERT_TRUE(slow.ok()) << slow.status();
      EXPECT_EQ(fast->index, slow->index) << trial;
      EXPECT_EQ(fast->distance, slow->distance) << trial;
    }
    EXPECT_EQ(stats.candidates, 60 * 40);
    EXPECT_EQ(stats.candidates,
              stats.pruned_by_kim + stats.pruned_by_keogh + stats.abandoned + stats.completed);
    EXPECT_GT(stats.pruned(), stats.candidates / 4)
        << "band " << options.band_frames << " " << options.band_fraction;
    EXPECT_GT(stats.pruned_by_keogh, 0);
  }
}

TEST(DtwNearestTest, TiesGoToTheLowestPosition) {
  std::mt19937 rng(6);
  const Series a = RandomWalk(rng, 10, 2);
  const Series b = RandomWalk(rng, 12, 2);
  const Series a_copy = a;
  const std::vector<const Series*> refs = {&b, &a_copy, &a, &a_copy};
  DtwSearchStats stats;
  absl::StatusOr<DtwNeighbor> nearest = DtwNearest(a, refs, {}, &stats);
  ASSERT_TRUE(nearest.ok());
  EXPECT_EQ(nearest->index, 1);
  EXPECT_EQ(nearest->distance, 0.0);
  EXPECT_EQ(DtwNearestBruteForce(a, refs)->index, 1);
}

TEST(DtwNearestTest, RejectsBadInput) {
  const Series a = Make1D({0, 1});
  const Series wide = Make({{0, 1}});
  const std::vector<const Series*> none;
  EXPECT_EQ(DtwNearest(a, none).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<const Series*> with_null = {&a, nullptr};
  EXPECT_EQ(DtwNearest(a, with_null).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<const Series*> with_wide = {&a, &wide};
  EXPECT_EQ(DtwNearest(a, with_wide).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DtwNearestBruteForce(a, with_wide).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<const Series*> ok = {&a};
  EXPECT_EQ(DtwNearest(Series(), ok).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DtwNearest(a, ok, DtwOptions::Fraction(std::nan(""))).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The lower bounds that prune the search hold for the squared cost only.
  const absl::Status euclidean =
      DtwNearest(a, ok, DtwOptions::NoBand().WithCost(DtwLocalCost::kEuclidean)).status();
  EXPECT_EQ(euclidean.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(euclidean.message()), ::testing::HasSubstr("squared Euclidean"));
}

TEST(DtwReferenceScorerTest, OneShotMatchesPairwiseDtwAndPrunes) {
  // 6 classes of noisy variants of a prototype walk, 12 examples each, lengths 20..30.
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0, 0.8f);
  std::uniform_int_distribution<int> length(20, 30);
  std::vector<Series> series;
  std::vector<int> labels;
  for (int c = 0; c < 6; ++c) {
    const Series prototype = RandomWalk(rng, 30, 3);
    for (int e = 0; e < 12; ++e) {
      const int t = length(rng);
      Series s(t, 3);
      for (int i = 0; i < t; ++i) {
        for (int d = 0; d < 3; ++d)
          s.mutable_frames()(i, d) = prototype.frames()(i, d) + noise(rng);
      }
      series.push_back(std::move(s));
      labels.push_back(c);
    }
  }
  const DtwOptions options = DtwOptions::Fraction(0.1);
  DtwSearchStats stats;
  absl::StatusOr<ReferenceScorer> scorer =
      MakeDtwReferenceScorer(Pointers(series), options, &stats);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const OneShotResult pruned = *OneShotAccuracyBatch(labels, 10, 1, *scorer, 2);
  const OneShotResult brute = *OneShotAccuracy(labels, 10, 1, [&](int q, int r) {
    return -NormalizedDtwDistance(series[q], series[r], options);
  });
  EXPECT_EQ(pruned.accuracy, brute.accuracy);
  EXPECT_EQ(pruned.stddev, brute.stddev);
  EXPECT_GT(brute.accuracy, 0.5);  // well above chance (1/6)
  EXPECT_EQ(stats.candidates, 10 * (72 - 6) * 6);
  EXPECT_GT(stats.pruned(), stats.candidates / 3);
}

TEST(DtwReferenceScorerTest, RejectsBadSeriesAndFlagsBadIndices) {
  const Series a = Make1D({0, 1});
  const Series wide = Make({{0, 1}});
  EXPECT_EQ(MakeDtwReferenceScorer({&a, &wide}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeDtwReferenceScorer({&a, nullptr}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeDtwReferenceScorer({&a}, DtwOptions::Fraction(std::nan(""))).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Labels that outnumber the series: indices out of range surface as InvalidArgument.
  absl::StatusOr<ReferenceScorer> scorer = MakeDtwReferenceScorer({&a, &a});
  ASSERT_TRUE(scorer.ok());
  EXPECT_EQ(OneShotAccuracyBatch({0, 0, 1, 1}, 2, 1, *scorer).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace srn
