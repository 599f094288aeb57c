#include "model/baselines/hmm.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/synthetic_data.h"

namespace srn {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;

GaussianHmm RandomHmm(int K, int D, uint64_t seed) {
  return testing::RandomHmm(K, D, seed, /*mean_scale=*/2.0, /*min_variance=*/0.3);
}

// Samples a series of length T from `h`.
Series Sample(const GaussianHmm& h, int T, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 1);
  auto draw = [&](const Eigen::VectorXd& p) {
    std::discrete_distribution<int> d(p.data(), p.data() + p.size());
    return d(rng);
  };
  Series s(T, h.dims());
  int state = draw(h.initial);
  for (int t = 0; t < T; ++t) {
    if (t > 0) state = draw(h.transition.row(state).transpose());
    for (int d = 0; d < h.dims(); ++d) {
      s.mutable_frames()(t, d) =
          static_cast<float>(h.means(state, d) + std::sqrt(h.variances(state, d)) * normal(rng));
    }
  }
  return s;
}

double LogDensity(const GaussianHmm& h, int k, const Series& s, int t) {
  double v = 0;
  for (int d = 0; d < h.dims(); ++d) {
    const double x = s.frames()(t, d);
    v += -0.5 * (kLog2Pi + std::log(h.variances(k, d))) -
         0.5 * (x - h.means(k, d)) * (x - h.means(k, d)) / h.variances(k, d);
  }
  return v;
}

// Brute force over all K^T state paths: p(x), P(state k at t | x) and expected transitions.
struct Brute {
  double log_likelihood;
  Eigen::MatrixXd gamma;
  Eigen::MatrixXd xi_sum;
};
Brute BruteForce(const GaussianHmm& h, const Series& s) {
  const int K = h.states();
  const int T = s.length();
  int paths = 1;
  for (int t = 0; t < T; ++t) paths *= K;
  double total = 0;
  Eigen::MatrixXd gamma = Eigen::MatrixXd::Zero(T, K);
  Eigen::MatrixXd xi = Eigen::MatrixXd::Zero(K, K);
  std::vector<int> path(T);
  for (int p = 0; p < paths; ++p) {
    int code = p;
    for (int t = 0; t < T; ++t) {
      path[t] = code % K;
      code /= K;
    }
    double log_p = std::log(h.initial[path[0]]) + LogDensity(h, path[0], s, 0);
    for (int t = 1; t < T; ++t) {
      log_p += std::log(h.transition(path[t - 1], path[t])) + LogDensity(h, path[t], s, t);
    }
    const double prob = std::exp(log_p);
    total += prob;
    for (int t = 0; t < T; ++t) gamma(t, path[t]) += prob;
    for (int t = 0; t + 1 < T; ++t) xi(path[t], path[t + 1]) += prob;
  }
  return {std::log(total), gamma / total, xi / total};
}

TEST(HmmTest, OneStateOneFrameIsTheGaussianDensity) {
  GaussianHmm h;
  h.initial = Eigen::VectorXd::Ones(1);
  h.transition = Eigen::MatrixXd::Ones(1, 1);
  h.means = Eigen::MatrixXd::Constant(1, 1, 1.0);
  h.variances = Eigen::MatrixXd::Constant(1, 1, 4.0);
  Series s(1, 1);
  s.mutable_frames()(0, 0) = 3;
  // log N(3; 1, 4) = -0.5 log(2 pi 4) - (2^2) / (2 * 4)
  EXPECT_NEAR(*HmmLogLikelihood(h, s), -0.5 * std::log(2 * M_PI * 4) - 0.5, 1e-12);
}

TEST(HmmTest, ForwardBackwardMatchesBruteForceOverAllPaths) {
  for (uint64_t seed : {1, 2, 3}) {
    const GaussianHmm h = RandomHmm(3, 2, seed);
    std::mt19937_64 rng(seed + 100);
    for (int T : {1, 2, 5}) {
      const Series s = Sample(h, T, rng);
      const Brute brute = BruteForce(h, s);
      absl::StatusOr<ForwardBackwardResult> fb = ForwardBackward(h, s);
      ASSERT_TRUE(fb.ok()) << fb.status();
      EXPECT_NEAR(fb->log_likelihood, brute.log_likelihood, 1e-9 * std::abs(brute.log_likelihood));
      EXPECT_NEAR(*HmmLogLikelihood(h, s), brute.log_likelihood,
                  1e-9 * std::abs(brute.log_likelihood));
      ASSERT_EQ(fb->gamma.rows(), T);
      EXPECT_LT((fb->gamma - brute.gamma).cwiseAbs().maxCoeff(), 1e-9) << "T=" << T;
      EXPECT_LT((fb->xi_sum - brute.xi_sum).cwiseAbs().maxCoeff(), 1e-9) << "T=" << T;
    }
  }
}

TEST(HmmTest, ZeroTransitionsMatchBruteForce) {
  // A left-to-right model: impossible paths contribute nothing and must not produce NaN.
  GaussianHmm h = RandomHmm(3, 1, 7);
  h.initial << 1, 0, 0;
  h.transition << 0.6, 0.4, 0, 0, 0.7, 0.3, 0, 0, 1;
  std::mt19937_64 rng(8);
  const Series s = Sample(h, 6, rng);
  const Brute brute = BruteForce(h, s);
  absl::StatusOr<ForwardBackwardResult> fb = ForwardBackward(h, s);
  ASSERT_TRUE(fb.ok());
  EXPECT_NEAR(fb->log_likelihood, brute.log_likelihood, 1e-9 * std::abs(brute.log_likelihood));
  EXPECT_LT((fb->gamma - brute.gamma).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LT((fb->xi_sum - brute.xi_sum).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(HmmTest, LongSeriesDoNotUnderflow) {
  // A one-state HMM is i.i.d. Gaussian: the log-likelihood is the sum of the frames' log densities,
  // about -1.4 per frame, far below what exp() can represent after 20000 frames.
  GaussianHmm h = RandomHmm(1, 1, 3);
  h.variances(0, 0) = 1;
  h.means(0, 0) = 0;
  std::mt19937_64 rng(4);
  const Series s = Sample(h, 20000, rng);
  double expected = 0;
  for (int t = 0; t < s.length(); ++t) expected += LogDensity(h, 0, s, t);
  EXPECT_NEAR(*HmmLogLikelihood(h, s), expected, 1e-9 * std::abs(expected));
  // And a 3-state model stays finite with posteriors that sum to one.
  const GaussianHmm h3 = RandomHmm(3, 2, 5);
  const Series s3 = Sample(h3, 5000, rng);
  absl::StatusOr<ForwardBackwardResult> fb = ForwardBackward(h3, s3);
  ASSERT_TRUE(fb.ok());
  EXPECT_TRUE(std::isfinite(fb->log_likelihood));
  EXPECT_LT(fb->log_likelihood, -1000);
  EXPECT_LT((fb->gamma.rowwise().sum().array() - 1).abs().maxCoeff(), 1e-9);
  EXPECT_NEAR(fb->xi_sum.sum(), 4999, 1e-6);
}

std::vector<Series> SampleMany(const GaussianHmm& h, int n, int T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Series> out;
  for (int i = 0; i < n; ++i) out.push_back(Sample(h, T + static_cast<int>(i % 5), rng));
  return out;
}

std::vector<const Series*> Pointers(const std::vector<Series>& v) {
  std::vector<const Series*> p;
  for (const Series& s : v) p.push_back(&s);
  return p;
}

TEST(HmmTest, BaumWelchNeverDecreasesTheLikelihood) {
  const GaussianHmm truth = RandomHmm(3, 2, 11);
  const std::vector<Series> data = SampleMany(truth, 30, 20, 12);
  for (double floor : {1e-3, 0.8}) {  // 0.8: the floor binds for most states
    GaussianHmm h = RandomHmm(4, 2, 13);  // wrong state count, random start
    const Eigen::VectorXd variance_floor = Eigen::VectorXd::Constant(2, floor);
    std::vector<double> history;
    for (int it = 0; it < 25; ++it) {
      absl::StatusOr<double> ll = BaumWelchStep(Pointers(data), variance_floor, 2, &h);
      ASSERT_TRUE(ll.ok()) << ll.status();
      history.push_back(*ll);
      ASSERT_TRUE(ValidateHmm(h).ok()) << ValidateHmm(h);
      EXPECT_GE(h.variances.minCoeff(), floor);
    }
    for (size_t i = 1; i < history.size(); ++i) {
      EXPECT_GE(history[i], history[i - 1] - 1e-9 * std::abs(history[i - 1]))
          << "iteration " << i << " floor " << floor;
    }
    EXPECT_GT(history.back(), history.front() + 1);  // it did learn something
  }
}

TEST(HmmTest, BaumWelchStepIsIndependentOfThreads) {
  const GaussianHmm truth = RandomHmm(2, 2, 21);
  const std::vector<Series> data = SampleMany(truth, 17, 10, 22);
  GaussianHmm a = RandomHmm(2, 2, 23), b = a;
  const Eigen::VectorXd floor = Eigen::VectorXd::Constant(2, 1e-3);
  const double la = *BaumWelchStep(Pointers(data), floor, 1, &a);
  const double lb = *BaumWelchStep(Pointers(data), floor, 3, &b);
  EXPECT_NEAR(la, lb, 1e-9 * std::abs(la));
  EXPECT_LT((a.means - b.means).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(HmmTest, TrainRecoversWellSeparatedStates) {
  GaussianHmm truth;
  truth.initial = Eigen::VectorXd::Constant(2, 0.5);
  truth.transition.resize(2, 2);
  truth.transition << 0.9, 0.1, 0.2, 0.8;
  truth.means.resize(2, 1);
  truth.means << -5, 5;
  truth.variances = Eigen::MatrixXd::Ones(2, 1);
  const std::vector<Series> data = SampleMany(truth, 40, 30, 31);
  HmmTrainOptions options;
  options.states = 2;
  options.restarts = 2;
  options.seed = 5;
  absl::StatusOr<HmmTrainResult> trained = TrainHmm(Pointers(data), options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const GaussianHmm& h = trained->hmm;
  const int lo = h.means(0, 0) < h.means(1, 0) ? 0 : 1;
  const int hi = 1 - lo;
  EXPECT_NEAR(h.means(lo, 0), -5, 0.2);
  EXPECT_NEAR(h.means(hi, 0), 5, 0.2);
  EXPECT_NEAR(h.variances(lo, 0), 1, 0.2);
  EXPECT_NEAR(h.transition(lo, lo), 0.9, 0.05);
  EXPECT_NEAR(h.transition(hi, hi), 0.8, 0.05);
  EXPECT_GE(trained->iterations, 2);
  for (size_t i = 1; i < trained->history.size(); ++i) {
    EXPECT_GE(trained->history[i], trained->history[i - 1] - 1e-6);
  }
  // Deterministic for a seed.
  absl::StatusOr<HmmTrainResult> again = TrainHmm(Pointers(data), options);
  EXPECT_EQ(again->log_likelihood, trained->log_likelihood);
}

TEST(HmmTest, SelectionPrefersTheTrueStateCountOverTooFew) {
  GaussianHmm truth;
  truth.initial = Eigen::VectorXd::Constant(3, 1.0 / 3);
  truth.transition = Eigen::MatrixXd::Constant(3, 3, 0.1);
  truth.transition.diagonal().setConstant(0.8);
  truth.means.resize(3, 1);
  truth.means << -6, 0, 6;
  truth.variances = Eigen::MatrixXd::Ones(3, 1);
  const std::vector<Series> train = SampleMany(truth, 30, 20, 41);
  const std::vector<Series> validation = SampleMany(truth, 10, 20, 42);
  HmmTrainOptions options;
  options.restarts = 2;
  absl::StatusOr<HmmSelection> sel =
      SelectHmm(Pointers(train), Pointers(validation), {1, 3}, options);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(sel->states, 3);
  EXPECT_EQ(sel->best.hmm.states(), 3);
  ASSERT_EQ(sel->validation.size(), 2u);
  EXPECT_EQ(sel->validation[0].first, 1);
  EXPECT_GT(sel->validation[1].second, sel->validation[0].second + 0.5);
}

TEST(HmmTest, InvalidModelsAndInputsAreRejected) {
  const GaussianHmm good = RandomHmm(2, 2, 51);
  Series s(3, 2);
  s.mutable_frames().setZero();
  ASSERT_TRUE(HmmLogLikelihood(good, s).ok());

  GaussianHmm bad = good;
  bad.transition(0, 0) += 0.1;  // row no longer sums to 1
  EXPECT_EQ(ValidateHmm(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HmmLogLikelihood(bad, s).status().code(), absl::StatusCode::kInvalidArgument);
  bad = good;
  bad.variances(1, 0) = 0;
  EXPECT_EQ(ForwardBackward(bad, s).status().code(), absl::StatusCode::kInvalidArgument);
  bad = good;
  bad.means(0, 1) = NAN;
  EXPECT_EQ(ValidateHmm(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = good;
  bad.transition.resize(3, 3);
  bad.transition.setConstant(1.0 / 3);
  EXPECT_EQ(ValidateHmm(bad).code(), absl::StatusCode::kInvalidArgument);

  Series wrong_dims(3, 3);
  wrong_dims.mutable_frames().setZero();
  EXPECT_EQ(HmmLogLikelihood(good, wrong_dims).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ForwardBackward(good, Series()).status().code(), absl::StatusCode::kInvalidArgument);

  GaussianHmm h = good;
  const std::vector<const Series*> data = {&s};
  EXPECT_EQ(BaumWelchStep(data, Eigen::VectorXd::Constant(3, 1e-3), 1, &h).status().code(),
            absl::StatusCode::kInvalidArgument);  // floor of the wrong size
  EXPECT_EQ(BaumWelchStep(data, Eigen::VectorXd::Constant(2, 0.0), 1, &h).status().code(),
            absl::StatusCode::kInvalidArgument);  // floor not > 0
  EXPECT_EQ(BaumWelchStep({}, Eigen::VectorXd::Constant(2, 1e-3), 1, &h).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BaumWelchStep(data, Eigen::VectorXd::Constant(2, 1e-3), 1, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);

  HmmTrainOptions options;
  options.states = 0;
  EXPECT_EQ(TrainHmm(data, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.states = 4;  // 3 frames cannot fit 4 states
  EXPECT_EQ(TrainHmm(data, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.states = 1;
  EXPECT_EQ(TrainHmm({}, options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainHmm({&s, &wrong_dims}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectHmm(data, data, {}, options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectHmm(data, data, {0}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectHmm(data, {}, {1}, options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace srn
