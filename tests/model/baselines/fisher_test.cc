#include "model/baselines/fisher.h"

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "model/eval/protocols.h"
#include "tests/testing/synthetic_data.h"

namespace srn {
namespace {

GaussianHmm RandomHmm(int K, int D, uint64_t seed) {
  return testing::RandomHmm(K, D, seed, /*mean_scale=*/1.0, /*min_variance=*/0.5);
}

Series RandomSeries(int T, int D, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1.5f);
  Series s(T, D);
  for (int t = 0; t < T; ++t) {
    for (int d = 0; d < D; ++d) s.mutable_frames()(t, d) = normal(rng);
  }
  return s;
}

// Applies `delta` to the softmax logits of a probability vector (logit = log p).
Eigen::VectorXd Shift(const Eigen::VectorXd& p, int index, double delta) {
  Eigen::VectorXd logits = p.array().log();
  logits[index] += delta;
  Eigen::VectorXd e = logits.array().exp();
  return e / e.sum();
}

// Central finite difference of the log-likelihood against every entry of the Fisher score.
TEST(FisherTest, ScoreMatchesFiniteDifferencesOfTheLogLikelihood) {
  const int K = 3, D = 2;
  const GaussianHmm h = RandomHmm(K, D, 1);
  const Series s = RandomSeries(7, D, 2);
  FisherScoreOptions raw;
  raw.per_frame = false;
  absl::StatusOr<Eigen::VectorXd> score = FisherScore(h, s, raw);
  ASSERT_TRUE(score.ok()) << score.status();
  ASSERT_EQ(score->size(), K + K * K + 2 * K * D);
  const double eps = 1e-5;
  auto ll = [&](const GaussianHmm& m) { return *HmmLogLikelihood(m, s); };
  int at = 0;
  auto check = [&](const GaussianHmm& plus, const GaussianHmm& minus, const std::string& what) {
    const double numeric = (ll(plus) - ll(minus)) / (2 * eps);
    EXPECT_NEAR((*score)[at], numeric, 1e-5 * std::max(1.0, std::abs(numeric))) << what;
    ++at;
  };
  for (int k = 0; k < K; ++k) {
    GaussianHmm p = h, m = h;
    p.initial = Shift(h.initial, k, eps);
    m.initial = Shift(h.initial, k, -eps);
    check(p, m, "initial " + std::to_string(k));
  }
  for (int i = 0; i < K; ++i) {
    for (int j = 0; j < K; ++j) {
      GaussianHmm p = h, m = h;
      p.transition.row(i) = Shift(h.transition.row(i).transpose(), j, eps).transpose();
      m.transition.row(i) = Shift(h.transition.row(i).transpose(), j, -eps).transpose();
      check(p, m, "transition " + std::to_string(i) + "," + std::to_string(j));
    }
  }
  for (int k = 0; k < K; ++k) {
    for (int d = 0; d < D; ++d) {
      GaussianHmm p = h, m = h;
      p.means(k, d) += eps;
      m.means(k, d) -= eps;
      check(p, m, "mean");
    }
  }
  for (int k = 0; k < K; ++k) {
    for (int d = 0; d < D; ++d) {
      GaussianHmm p = h, m = h;
      p.variances(k, d) *= std::exp(eps);
      m.variances(k, d) *= std::exp(-eps);
      check(p, m, "log variance");
    }
  }
  EXPECT_EQ(at, score->size());
}

TEST(FisherTest, BlocksAndPerFrameNormalisation) {
  const GaussianHmm h = RandomHmm(2, 3, 3);
  const Series s = RandomSeries(5, 3, 4);
  FisherScoreOptions all_raw;
  all_raw.per_frame = false;
  const Eigen::VectorXd full = *FisherScore(h, s, all_raw);
  const Eigen::VectorXd per_frame = *FisherScore(h, s, {});
  EXPECT_LT((per_frame * 5 - full).cwiseAbs().maxCoeff(), 1e-12);

  FisherScoreOptions means_only;
  means_only.initial = means_only.transition = means_only.variances = false;
  means_only.per_frame = false;
  EXPECT_EQ(FisherScoreSize(h, means_only), 6);
  const Eigen::VectorXd means = *FisherScore(h, s, means_only);
  // Layout: initial (2) | transition (4) | means (6) | log-variances (6).
  EXPECT_LT((means - full.segment(6, 6)).cwiseAbs().maxCoeff(), 1e-12);

  // The probability blocks of a score sum to zero (gradients of softmax logits).
  EXPECT_NEAR(full.segment(0, 2).sum(), 0, 1e-12);
  EXPECT_NEAR(full.segment(2, 2).sum(), 0, 1e-12);

  // The batch form agrees row by row.
  const Series s2 = RandomSeries(9, 3, 5);
  absl::StatusOr<Eigen::MatrixXd> rows = FisherScores(h, {&s, &s2}, {}, 2);
  ASSERT_TRUE(rows.ok());
  EXPECT_LT((rows->row(0).transpose() - per_frame).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((rows->row(1).transpose() - *FisherScore(h, s2, {})).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(FisherTest, ScoreErrors) {
  const GaussianHmm h = RandomHmm(2, 3, 3);
  FisherScoreOptions none;
  none.initial = none.transition = none.means = none.variances = false;
  EXPECT_EQ(FisherScoreSize(h, none), 0);
  EXPECT_EQ(FisherScore(h, RandomSeries(4, 3, 1), none).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FisherScore(h, RandomSeries(4, 2, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  const Series wrong = RandomSeries(4, 2, 1);
  EXPECT_EQ(FisherScores(h, {&wrong}).status().code(), absl::StatusCode::kInvalidArgument);
  GaussianHmm bad = h;
  bad.initial[0] = 2;
  EXPECT_EQ(FisherScore(bad, RandomSeries(4, 3, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FisherTest, KernelIsTheInnerProduct) {
  Eigen::VectorXd a(2), b(2);
  a << 1, 2;
  b << 3, 4;
  EXPECT_DOUBLE_EQ(FisherKernel(a, b, false), 11);
  EXPECT_DOUBLE_EQ(FisherKernel(a, b, true), 11 / (std::sqrt(5.0) * 5));
  EXPECT_DOUBLE_EQ(FisherKernel(a, Eigen::VectorXd::Zero(2), true), 0);
}

Eigen::VectorXd V(double x) { return Eigen::VectorXd::Constant(1, x); }

TEST(FisherTest, VectorClassifierIsOneNearestNeighbourOverPairs) {
  Eigen::MatrixXd train(3, 1);
  train << 0, 0.1, 10;
  absl::StatusOr<FisherVectorClassifier> c =
      FisherVectorClassifier::Create(train, {{0, 1, true}, {0, 2, false}});
  ASSERT_TRUE(c.ok()) << c.status();
  // Query (0, 0.05): nearest similar pair (0, 0.1) at 0.05^2; nearest dissimilar (0, 10) at
  // min(9.95^2, 10^2 + 0.05^2) = 99.0025. Score = 99.0025 - 0.0025.
  EXPECT_NEAR(*c->Score(V(0), V(0.05)), 99.0, 1e-12);
  EXPECT_NEAR(*c->Score(V(0.05), V(0)), 99.0, 1e-12);  // symmetric
  // Query (0, 9): the dissimilar pair is nearer (1) than the similar one (8.9^2 = 79.21).
  EXPECT_NEAR(*c->Score(V(0), V(9)), 1 - 79.21, 1e-9);

  Eigen::MatrixXd queries(3, 1);
  queries << 0, 0.05, 9;
  absl::StatusOr<FisherVectorClassifier::Bound> bound = c->Bind(queries);
  ASSERT_TRUE(bound.ok());
  EXPECT_NEAR(bound->Score(0, 1), 99.0, 1e-4);
  EXPECT_NEAR(bound->Score(1, 0), 99.0, 1e-4);
  EXPECT_NEAR(bound->Score(0, 2), 1 - 79.21, 1e-4);
}

TEST(FisherTest, BoundAgreesWithDirectScoringInManyDimensions) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0, 1);
  Eigen::MatrixXd train(20, 6), queries(5, 6);
  for (int i = 0; i < train.size(); ++i) train.data()[i] = normal(rng);
  for (int i = 0; i < queries.size(); ++i) queries.data()[i] = normal(rng);
  std::vector<LabeledPair> pairs;
  for (int p = 0; p < 30; ++p) pairs.push_back({p % 20, (p * 7 + 3) % 20, p % 3 == 0});
  const FisherVectorClassifier c = *FisherVectorClassifier::Create(train, pairs);
  const FisherVectorClassifier::Bound bound = *c.Bind(queries);
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      const double direct = *c.Score(queries.row(i).transpose(), queries.row(j).transpose());
      EXPECT_NEAR(bound.Score(i, j), direct, 1e-4 * std::max(1.0, std::abs(direct)));
    }
  }
}

TEST(FisherTest, VectorClassifierErrors) {
  Eigen::MatrixXd train(2, 1);
  train << 0, 1;
  EXPECT_EQ(FisherVectorClassifier::Create(train, {{0, 1, true}}).status().code(),
            absl::StatusCode::kInvalidArgument);  // no dissimilar pair
  EXPECT_EQ(FisherVectorClassifier::Create(train, {{0, 1, true}, {0, 2, false}}).status().code(),
            absl::StatusCode::kInvalidArgument);  // row 2 does not exist
  Eigen::MatrixXd nan = train;
  nan(1, 0) = NAN;
  EXPECT_EQ(FisherVectorClassifier::Create(nan, {{0, 1, true}, {1, 0, false}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const FisherVectorClassifier c =
      *FisherVectorClassifier::Create(train, {{0, 1, true}, {1, 0, false}});
  EXPECT_EQ(c.Score(Eigen::VectorXd::Zero(2), V(0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Bind(Eigen::MatrixXd::Zero(3, 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FisherTest, DrawLabeledPairsIsBalancedAndValid) {
  const Dataset data = testing::MakeSineDataset(4, 6, 2, 10, 12, 1, /*forgeries=*/2);
  absl::StatusOr<std::vector<LabeledPair>> pairs = DrawLabeledPairs(data, 40, 3);
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  ASSERT_EQ(pairs->size(), 40u);
  int similar = 0;
  std::set<std::pair<int, int>> seen;
  for (const LabeledPair& p : *pairs) {
    const Example& a = data.examples[p.first];
    const Example& b = data.examples[p.second];
    EXPECT_NE(p.first, p.second);
    EXPECT_FALSE(a.forgery && b.forgery);
    EXPECT_EQ(p.similar, a.label == b.label && !a.forgery && !b.forgery);
    similar += p.similar ? 1 : 0;
    EXPECT_TRUE(seen.insert({std::min(p.first, p.second), std::max(p.first, p.second)}).second);
  }
  EXPECT_EQ(similar, 20);
  EXPECT_EQ(DrawLabeledPairs(data, 1, 3).status().code(), absl::StatusCode::kInvalidArgument);
  const Dataset one_class = testing::MakeSineDataset(1, 5, 2, 10, 12, 1);
  EXPECT_EQ(DrawLabeledPairs(one_class, 10, 3).status().code(), absl::StatusCode::kInvalidArgument);
}

// End to end on the toy sine data: classes differ in frequency, which an HMM's transitions and
// the Fisher scores capture, so both baselines separate unseen classes well above chance.
TEST(FisherTest, BaselinesSeparateSyntheticClasses) {
  const Dataset data = testing::MakeSineDataset(8, 12, 2, 20, 30, 5);
  absl::StatusOr<Split> split = MakeSplit(data, "synthetic.csv", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  FisherBaselineOptions options;
  options.candidate_states = {2, 4};
  options.hmm.restarts = 1;
  options.hmm.max_iterations = 15;
  options.vector_pairs = 200;
  EvalOptions eval;
  eval.threads = 2;
  FisherReport report;
  absl::StatusOr<EvalResult> kernel =
      EvaluateFisher(FisherMethod::kKernel, *split, options, eval, &report);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_TRUE(report.selection.states == 2 || report.selection.states == 4);
  EXPECT_EQ(report.score_size, FisherScoreSize(report.selection.best.hmm, options.score));
  EXPECT_GT(kernel->auc, 0.6);
  EXPECT_TRUE(kernel->has_oneshot);
  absl::StatusOr<EvalResult> vector = EvaluateFisher(FisherMethod::kVector, *split, options, eval);
  ASSERT_TRUE(vector.ok()) << vector.status();
  EXPECT_GT(vector->auc, 0.6);
}

}  // namespace
}  // namespace srn
