#include "model/signature/soft_dtw.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/eval/dtw.h"

namespace srn {
namespace {

using Mat = RowMatrixT<double>;

Mat RandomFrames(int rows, int dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Mat m(rows, dims);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

SoftDtwOptions Options(double gamma, DtwOptions band = DtwOptions::NoBand()) {
  SoftDtwOptions o;
  o.gamma = gamma;
  o.dtw = band;
  return o;
}

// The recursion as the paper writes it, over the full matrix with +infinity outside the band and
// the soft minimum taken literally (no log-sum-exp shift): an independent reference.
double NaiveSoftDtw(const Mat& a, const Mat& b, double gamma, int radius, bool euclidean = false) {
  const int n = static_cast<int>(a.rows());
  const int m = static_cast<int>(b.rows());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> r(n + 1, std::vector<double>(m + 1, inf));
  r[0][0] = 0;
  for (int i = 1; i <= n; ++i) {
    for (int j = 1; j <= m; ++j) {
      if (std::abs(i - j) > radius) continue;
      const double squared = (a.row(i - 1) - b.row(j - 1)).squaredNorm();
      const double cost = euclidean ? std::sqrt(squared + kSoftDtwCostEpsilon) : squared;
      const double s = std::exp(-r[i - 1][j - 1] / gamma) + std::exp(-r[i - 1][j] / gamma) +
                       std::exp(-r[i][j - 1] / gamma);
      r[i][j] = cost - gamma * std::log(s);
    }
  }
  return r[n][m];
}

Series ToSeries(const Mat& m) { return Series(RowMatrix(m.cast<float>())); }

TEST(SoftDtwTest, MatchesTheNaiveRecursionWithAndWithoutBand) {
  const Mat a = RandomFrames(9, 3, 1) * 0.3;
  const Mat b = RandomFrames(6, 3, 2) * 0.3;
  for (bool euclidean : {false, true}) {
    for (double gamma : {0.1, 1.0, 5.0}) {
      for (int radius : {-1, 3, 5}) {
        DtwOptions band = radius < 0 ? DtwOptions::NoBand() : DtwOptions::Frames(radius);
        if (euclidean) band = band.WithCost(DtwLocalCost::kEuclidean);
        const absl::StatusOr<double> value = SoftDtw(a, b, Options(gamma, band));
        ASSERT_TRUE(value.ok()) << value.status();
        const double expected = NaiveSoftDtw(a, b, gamma, DtwBandRadius(band, 9, 6), euclidean);
        EXPECT_NEAR(*value, expected, 1e-9 * (1 + std::abs(expected)))
            << "gamma " << gamma << " radius " << radius << " euclidean " << euclidean;
      }
    }
  }
}

// As gamma -> 0 the soft minimum becomes the minimum: plain DTW with the same frame cost, from
// below, within gamma log(3) per step of the longest path (plus, for the smoothed Euclidean
// cost, sqrt(epsilon) per cell).
TEST(SoftDtwTest, ApproachesDtwAsGammaVanishes) {
  const Mat a = RandomFrames(40, 4, 3);
  const Mat b = RandomFrames(31, 4, 4);
  for (const DtwOptions& band :
       {DtwOptions::NoBand(), DtwOptions::Fraction(0.3), DtwOptions::Frames(2),
        DtwOptions::NoBand().WithCost(DtwLocalCost::kEuclidean),
        DtwOptions::Fraction(0.3).WithCost(DtwLocalCost::kEuclidean)}) {
    const double smoothing = band.local_cost == DtwLocalCost::kEuclidean
                                 ? (40 + 31 - 1) * std::sqrt(kSoftDtwCostEpsilon)
                                 : 0.0;
    // DTW over float frames: compare soft-DTW over the same (rounded) values.
    const Series sa = ToSeries(a), sb = ToSeries(b);
    const Mat fa = sa.frames().cast<double>(), fb = sb.frames().cast<double>();
    const double dtw = DtwDistance(sa, sb, band);
    ASSERT_TRUE(std::isfinite(dtw));
    double previous_gap = std::numeric_limits<double>::infinity();
    for (double gamma : {1.0, 0.1, 1e-3}) {
      const absl::StatusOr<double> soft = SoftDtw(fa, fb, Options(gamma, band));
      ASSERT_TRUE(soft.ok()) << soft.status();
      const double gap = dtw - *soft;
      EXPECT_GE(gap, -1e-6 * dtw - smoothing) << "soft-DTW is never above DTW; gamma " << gamma;
      EXPECT_LE(gap, gamma * std::log(3.0) * (40 + 31 - 1) + 1e-6 * dtw) << "gamma " << gamma;
      EXPECT_LT(gap, previous_gap) << "the gap shrinks with gamma";
      previous_gap = gap;
    }
    EXPECT_LT(std::abs(previous_gap), 1e-3 * dtw);
  }
}

TEST(SoftDtwTest, GradientMatchesFiniteDifferences) {
  for (const auto& [n, m, radius, gamma, euclidean] :
       {std::tuple<int, int, int, double, bool>{7, 5, -1, 0.5, false},
        {7, 5, 2, 0.5, false},
        {6, 6, 1, 2.0, false},
        {4, 9, 0, 0.2, false},
        {1, 4, -1, 1.0, false},
        {7, 5, -1, 0.5, true},
        {6, 8, 2, 0.1, true}}) {
    const Mat a = RandomFrames(n, 3, 10 + n) * 0.5;
    const Mat b = RandomFrames(m, 3, 20 + m) * 0.5;
    DtwOptions band = radius < 0 ? DtwOptions::NoBand() : DtwOptions::Frames(radius);
    if (euclidean) band = band.WithCost(DtwLocalCost::kEuclidean);
    const SoftDtwOptions options = Options(gamma, band);
    Mat grad_a, grad_b;
    const absl::StatusOr<double> value = SoftDtwWithGradient(a, b, options, &grad_a, &grad_b);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_NEAR(*value, *SoftDtw(a, b, options), 1e-12 * (1 + std::abs(*value)));
    ASSERT_EQ(grad_a.rows(), n);
    ASSERT_EQ(grad_b.rows(), m);
    ASSERT_GT(grad_a.norm(), 1e-3) << "the check needs a non-trivial gradient";
    const double eps = 1e-6;
    // C++17 lambdas cannot capture structured bindings: name the case outside.
    const std::string where = absl::StrCat("n ", n, " m ", m, " radius ", radius, " gamma ",
                                           gamma, " euclidean ", euclidean);
    auto check = [&](const Mat& x, const Mat& grad, bool first) {
      for (Eigen::Index k = 0; k < x.size(); ++k) {
        Mat plus = x, minus = x;
        plus.data()[k] += eps;
        minus.data()[k] -= eps;
        const double numeric =
            first ? (*SoftDtw(plus, b, options) - *SoftDtw(minus, b, options)) / (2 * eps)
                  : (*SoftDtw(a, plus, options) - *SoftDtw(a, minus, options)) / (2 * eps);
        EXPECT_NEAR(grad.data()[k], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
            << (first ? "a" : "b") << " value " << k << " " << where;
      }
    };
    check(a, grad_a, true);
    check(b, grad_b, false);
  }
}

TEST(SoftDtwTest, IsSymmetric) {
  const Mat a = RandomFrames(23, 5, 5);
  const Mat b = RandomFrames(17, 5, 6);
  for (const DtwOptions& band : {DtwOptions::NoBand(), DtwOptions::Fraction(0.3)}) {
    const SoftDtwOptions options = Options(0.7, band);
    Mat ga, gb, gb2, ga2;
    const double ab = *SoftDtwWithGradient(a, b, options, &ga, &gb);
    const double ba = *SoftDtwWithGradient(b, a, options, &gb2, &ga2);
    EXPECT_NEAR(ab, ba, 1e-10 * std::abs(ab));
    EXPECT_LT((ga - ga2).cwiseAbs().maxCoeff(), 1e-10);
    EXPECT_LT((gb - gb2).cwiseAbs().maxCoeff(), 1e-10);
  }
}

TEST(SoftDtwTest, BandCellsOutsideAreNeverVisited) {
  // Radius 0 and equal lengths leave one path, the diagonal: its cost, whatever gamma, and the
  // gradient of a sum of |a_i - b_i|^2.
  const Mat a = RandomFrames(12, 3, 7);
  const Mat b = RandomFrames(12, 3, 8);
  for (double gamma : {0.01, 1.0, 100.0}) {
    Mat ga, gb;
    const absl::StatusOr<double> value =
        SoftDtwWithGradient(a, b, Options(gamma, DtwOptions::Frames(0)), &ga, &gb);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_NEAR(*value, (a - b).squaredNorm(), 1e-10 * (a - b).squaredNorm()) << gamma;
    EXPECT_LT((ga - 2 * (a - b)).cwiseAbs().maxCoeff(), 1e-10) << gamma;
    EXPECT_LT((gb - 2 * (b - a)).cwiseAbs().maxCoeff(), 1e-10) << gamma;
  }
  // A band narrower than the length difference is widened to it (as DtwBandRadius does), so the
  // end is always reachable; a wider band lets more paths in and lowers the value.
  const Mat c = RandomFrames(8, 3, 9);
  const absl::StatusOr<double> narrow = SoftDtw(a, c, Options(1.0, DtwOptions::Frames(0)));
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  EXPECT_TRUE(std::isfinite(*narrow));
  EXPECT_NEAR(*narrow, NaiveSoftDtw(a, c, 1.0, 4), 1e-9 * std::abs(*narrow));
  EXPECT_LT(*SoftDtw(a, c, Options(1.0, DtwOptions::Frames(6))), *narrow);
}

// A workspace that held a larger pair (with another band) gives exactly what a fresh one gives.
TEST(SoftDtwTest, WorkspaceReuseDoesNotLeakState) {
  SoftDtwWorkspace<double> ws;
  Mat ga, gb, fresh_a, fresh_b;
  const Mat big_a = RandomFrames(50, 4, 11), big_b = RandomFrames(60, 4, 12);
  ASSERT_TRUE(SoftDtwWithGradient(big_a, big_b, Options(0.3), &ga, &gb, &ws).ok());
  const Mat a = RandomFrames(20, 4, 13), b = RandomFrames(26, 4, 14);
  const SoftDtwOptions options = Options(0.5, DtwOptions::Fraction(0.3));
  const double reused = *SoftDtwWithGradient(a, b, options, &ga, &gb, &ws);
  const double fresh = *SoftDtwWithGradient(a, b, options, &fresh_a, &fresh_b);
  EXPECT_EQ(reused, fresh);
  EXPECT_EQ(ga, fresh_a);
  EXPECT_EQ(gb, fresh_b);
}

// Values first, gradients later (what a hinge loss does): the same gradient as in one call.
TEST(SoftDtwTest, BackwardAfterTheValueGivesTheSameGradient) {
  const Mat a = RandomFrames(15, 3, 21), b = RandomFrames(11, 3, 22);
  const SoftDtwOptions options = Options(0.4, DtwOptions::Fraction(0.3));
  Mat ga, gb, ga2, gb2;
  ASSERT_TRUE(SoftDtwWithGradient(a, b, options, &ga, &gb).ok());
  SoftDtwWorkspace<double> ws;
  EXPECT_EQ(SoftDtwBackward(a, b, &ws, &ga2, &gb2).code(), absl::StatusCode::kFailedPrecondition)
      << "no forward pass yet";
  ASSERT_TRUE(SoftDtw(a, b, options, &ws).ok());
  EXPECT_EQ(SoftDtwBackward(b, a, &ws, &ga2, &gb2).code(), absl::StatusCode::kFailedPrecondition)
      << "another pair's lengths";
  EXPECT_EQ(SoftDtwBackward<double>(a, b, &ws, &ga2, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(SoftDtwBackward(a, b, &ws, &ga2, &gb2).ok());
  EXPECT_EQ(ga, ga2);
  EXPECT_EQ(gb, gb2);
}

TEST(SoftDtwTest, FloatAgreesWithDouble) {
  const Mat a = RandomFrames(200, 32, 15) * 0.5, b = RandomFrames(240, 32, 16) * 0.5;
  const SoftDtwOptions options = Options(1.0, DtwOptions::Fraction(0.3));
  Mat ga, gb;
  const double d = *SoftDtwWithGradient(a, b, options, &ga, &gb);
  RowMatrix fa, fb;
  const absl::StatusOr<float> f =
      SoftDtwWithGradient<float>(a.cast<float>(), b.cast<float>(), options, &fa, &fb);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NEAR(*f, d, 1e-4 * std::abs(d));
  EXPECT_LT((fa.cast<double>() - ga).norm(), 1e-3 * ga.norm());
  EXPECT_LT((fb.cast<double>() - gb).norm(), 1e-3 * gb.norm());
}

TEST(SoftDtwTest, RejectsBadInputWithClearMessages) {
  const Mat a = RandomFrames(5, 3, 1);
  const Mat b = RandomFrames(4, 3, 2);
  auto expect_invalid = [](const absl::StatusOr<double>& r, const std::string& words) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_NE(r.status().message().find(words), absl::string_view::npos) << r.status();
  };
  expect_invalid(SoftDtw(Mat(0, 3), b, Options(1.0)), "non-empty");
  expect_invalid(SoftDtw(a, Mat(0, 3), Options(1.0)), "got 5 and 0 frames");
  expect_invalid(SoftDtw(a, RandomFrames(4, 2, 3), Options(1.0)), "got 3 and 2");
  expect_invalid(SoftDtw(Mat(5, 0), Mat(4, 0), Options(1.0)), "values per frame");
  expect_invalid(SoftDtw(a, b, Options(0.0)), "gamma");
  expect_invalid(SoftDtw(a, b, Options(-1.0)), "gamma");
  expect_invalid(SoftDtw(a, b, Options(std::nan(""))), "gamma");
  expect_invalid(SoftDtw(a, b, Options(std::numeric_limits<double>::infinity())), "gamma");
  expect_invalid(SoftDtw(a, b, Options(1.0, DtwOptions::Fraction(std::nan("")))), "band_fraction");
  Mat bad = b;
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  expect_invalid(SoftDtw(a, bad, Options(1.0)), "second sequence has a non-finite");
  Mat ga = Mat::Constant(1, 1, 7.0), gb;
  expect_invalid(SoftDtwWithGradient(a, bad, Options(1.0), &ga, &gb), "non-finite");
  EXPECT_EQ(ga, Mat::Constant(1, 1, 7.0)) << "outputs untouched on error";
  expect_invalid(SoftDtwWithGradient<double>(a, b, Options(1.0), &ga, nullptr), "both gradient");
}

}  // namespace
}  // namespace srn
