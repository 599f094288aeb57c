#include "model/baselines/fisher.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/nn/parallel.h"
#include "model/data/preprocess.h"
#include "base/status_macros.h"
#include "model/train/trainer.h"

namespace srn {
namespace {

absl::Status CheckBlocks(const FisherScoreOptions& options) {
  if (!options.initial && !options.transition && !options.means && !options.variances) {
    return absl::InvalidArgumentError("Fisher score: no parameter block selected");
  }
  return absl::OkStatus();
}

// Fisher score from a forward-backward result; series and model already checked.
void ScoreFromPosteriors(const GaussianHmm& hmm, const Series& series,
                         const ForwardBackwardResult& fb, const FisherScoreOptions& options,
                         Eigen::VectorXd* out) {
  const int K = hmm.states();
  const int D = hmm.dims();
  out->resize(FisherScoreSize(hmm, options));
  int at = 0;
  if (options.initial) {
    out->segment(at, K) = fb.gamma.row(0).transpose() - hmm.initial;
    at += K;
  }
  if (options.transition) {
    for (int i = 0; i < K; ++i) {
      const double leaving = fb.xi_sum.row(i).sum();
      for (int j = 0; j < K; ++j) (*out)[at++] = fb.xi_sum(i, j) - hmm.transition(i, j) * leaving;
    }
  }
  if (options.means || options.variances) {
    const Eigen::MatrixXd x = series.frames().cast<double>();
    const Eigen::VectorXd occupancy = fb.gamma.colwise().sum().transpose();
    const Eigen::MatrixXd sum_x = fb.gamma.transpose() * x;                 // K x D
    const Eigen::MatrixXd sum_xx = fb.gamma.transpose() * x.cwiseProduct(x);  // K x D
    if (options.means) {
      for (int k = 0; k < K; ++k) {
        for (int d = 0; d < D; ++d) {
          (*out)[at++] = (sum_x(k, d) - occupancy[k] * hmm.means(k, d)) / hmm.variances(k, d);
        }
      }
    }
    if (options.variances) {
      for (int k = 0; k < K; ++k) {
        for (int d = 0; d < D; ++d) {
          const double mu = hmm.means(k, d);
          // sum_t gamma (x - mu)^2, expanded so the frames are visited once.
          const double sq = sum_xx(k, d) - 2 * mu * sum_x(k, d) + occupancy[k] * mu * mu;
          (*out)[at++] = 0.5 * (sq / hmm.variances(k, d) - occupancy[k]);
        }
      }
    }
  }
  if (options.per_frame) *out /= static_cast<double>(series.length());
}

}  // namespace

int FisherScoreSize(const GaussianHmm& hmm, const FisherScoreOptions& options) {
  const int K = hmm.states();
  const int D = hmm.dims();
  return (options.initial ? K : 0) + (options.transition ? K * K : 0) +
         (options.means ? K * D : 0) + (options.variances ? K * D : 0);
}

absl::StatusOr<Eigen::VectorXd> FisherScore(const GaussianHmm& hmm, const Series& series,
                                            const FisherScoreOptions& options) {
  SRN_RETURN_IF_ERROR(CheckBlocks(options));
  SRN_ASSIGN_OR_RETURN(const ForwardBackwardResult fb, ForwardBackward(hmm, series));
  Eigen::VectorXd out;
  ScoreFromPosteriors(hmm, series, fb, options, &out);
  return out;
}

absl::StatusOr<Eigen::MatrixXd> FisherScores(const GaussianHmm& hmm,
                                             const std::vector<const Series*>& series,
                                             const FisherScoreOptions& options, int threads) {
  SRN_RETURN_IF_ERROR(CheckBlocks(options));
  SRN_RETURN_IF_ERROR(ValidateHmm(hmm));
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i] == nullptr || series[i]->empty() || series[i]->dims() != hmm.dims()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "Fisher score: series %d is empty or does not have the model's %d features", i,
          hmm.dims()));
    }
  }
  if (threads <= 0) threads = DefaultThreads();
  const int n = static_cast<int>(series.size());
  Eigen::MatrixXd out(n, FisherScoreSize(hmm, options));
  ParallelFor(n, std::max(1, std::min(threads, n)), [&](int begin, int end, int) {
    Eigen::VectorXd row;
    for (int i = begin; i < end; ++i) {
      // Checked above, so the pass cannot fail.
      absl::StatusOr<ForwardBackwardResult> fb = ForwardBackward(hmm, *series[i]);
      ScoreFromPosteriors(hmm, *series[i], *fb, options, &row);
      out.row(i) = row.transpose();
    }
  });
  return out;
}

double FisherKernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b, bool normalized) {
  const double dot = a.dot(b);
  if (!normalized) return dot;
  const double norms = a.norm() * b.norm();
  return norms > 0 ? dot / norms : 0.0;
}

absl::StatusOr<FisherVectorClassifier> FisherVectorClassifier::Create(
    Eigen::MatrixXd vectors, std::vector<LabeledPair> pairs) {
  if (!vectors.allFinite()) {
    return absl::InvalidArgumentError("Fisher vectors: a training vector has a non-finite value");
  }
  bool similar = false, dissimilar = false;
  for (size_t p = 0; p < pairs.size(); ++p) {
    const LabeledPair& q = pairs[p];
    if (q.first < 0 || q.second < 0 || q.first >= vectors.rows() || q.second >= vectors.rows()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "Fisher vectors: pair %d = (%d, %d) indexes outside the %d training vectors", p, q.first,
          q.second, vectors.rows()));
    }
    (q.similar ? similar : dissimilar) = true;
  }
  if (!similar || !dissimilar) {
    return absl::InvalidArgumentError(
        "Fisher vectors: the training pairs need both similar and dissimilar examples");
  }
  FisherVectorClassifier c;
  c.vectors_ = std::move(vectors);
  c.pairs_ = std::move(pairs);
  return c;
}

absl::StatusOr<double> FisherVectorClassifier::Score(const Eigen::VectorXd& a,
                                                     const Eigen::VectorXd& b) const {
  if (a.size() != vectors_.cols() || b.size() != vectors_.cols()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Fisher vectors: pair vectors have %d and %d entries, the training vectors %d", a.size(),
        b.size(), vectors_.cols()));
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double best_similar = kInf, best_dissimilar = kInf;
  for (const LabeledPair& p : pairs_) {
    const auto u = vectors_.row(p.first).transpose();
    const auto v = vectors_.row(p.second).transpose();
    const double d = std::min((a - u).squaredNorm() + (b - v).squaredNorm(),
                              (a - v).squaredNorm() + (b - u).squaredNorm());
    double& best = p.similar ? best_similar : best_dissimilar;
    best = std::min(best, d);
  }
  return best_dissimilar - best_similar;
}

absl::StatusOr<FisherVectorClassifier::Bound> FisherVectorClassifier::Bind(
    const Eigen::MatrixXd& queries) const {
  if (queries.cols() != vectors_.cols()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Fisher vectors: queries have %d entries, the training vectors %d", queries.cols(),
        vectors_.cols()));
  }
  if (!queries.allFinite())
    return absl::InvalidArgumentError("Fisher vectors: a query is not finite");
  Bound bound;
  bound.dots_ = (queries * vectors_.transpose()).cast<float>();
  bound.pairs_ = pairs_;
  bound.pair_norms_.resize(static_cast<int>(pairs_.size()));
  for (size_t p = 0; p < pairs_.size(); ++p) {
    bound.pair_norms_[p] =
        vectors_.row(pairs_[p].first).squaredNorm() + vectors_.row(pairs_[p].second).squaredNorm();
  }
  return bound;
}

double FisherVectorClassifier::Bound::Score(int i, int j) const {
  // |a - u|^2 + |b - v|^2 = |a|^2 + |b|^2 + (|u|^2 + |v|^2) - 2 (a.u + b.v); the first two terms
  // are common to every training pair and cancel in the difference returned.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double best_similar = kInf, best_dissimilar = kInf;
  const float* a = dots_.row(i).data();
  const float* b = dots_.row(j).data();
  for (size_t p = 0; p < pairs_.size(); ++p) {
    const int u = pairs_[p].first;
    const int v = pairs_[p].second;
    const double cross =
        std::max(static_cast<double>(a[u]) + b[v], static_cast<double>(a[v]) + b[u]);
    const double d = pair_norms_[static_cast<int>(p)] - 2 * cross;
    double& best = pairs_[p].similar ? best_similar : best_dissimilar;
    if (d < best) best = d;
  }
  return best_dissimilar - best_similar;
}

absl::StatusOr<std::vector<LabeledPair>> DrawLabeledPairs(const Dataset& data, int count,
                                                          uint64_t seed) {
  if (count < 2)
    return absl::InvalidArgumentError(absl::StrCat("Fisher vectors: need >= 2 pairs, got ", count));
  const int n = static_cast<int>(data.examples.size());
  std::vector<std::vector<int>> genuine(data.num_labels());
  for (int i = 0; i < n; ++i) {
    const Example& e = data.examples[i];
    if (e.label < 0 || e.label >= data.num_labels()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Fisher vectors: example %d has label %d", i, e.label));
    }
    if (!e.forgery) genuine[e.label].push_back(i);
  }
  std::vector<int> classes_with_two;
  for (int c = 0; c < data.num_labels(); ++c) {
    if (genuine[c].size() >= 2) classes_with_two.push_back(c);
  }
  int with_genuine = 0;
  for (const auto& g : genuine) with_genuine += g.empty() ? 0 : 1;
  bool has_forgery = false;
  for (const Example& e : data.examples) has_forgery |= e.forgery && !genuine[e.label].empty();
  if (classes_with_two.empty())
    return absl::InvalidArgumentError("Fisher vectors: no class has two genuine examples");
  if (with_genuine < 2 && !has_forgery)
    return absl::InvalidArgumentError("Fisher vectors: no dissimilar pair exists");

  std::mt19937_64 rng(seed * 7919ULL + 17);
  std::uniform_int_distribution<int> any(0, n - 1);
  std::set<std::pair<int, int>> seen;
  std::vector<LabeledPair> out;
  const int want_similar = count / 2;
  auto add = [&](int a, int b, bool similar) {
    if (a == b) return false;
    const std::pair<int, int> key(std::min(a, b), std::max(a, b));
    if (!seen.insert(key).second) return false;
    out.push_back({a, b, similar});
    return true;
  };
  // Bounded attempts: small data may have fewer distinct pairs than asked for.
  for (int tries = 0; static_cast<int>(out.size()) < want_similar && tries < 20 * count; ++tries) {
    const int c = classes_with_two[std::uniform_int_distribution<size_t>(
        0, classes_with_two.size() - 1)(rng)];
    const std::vector<int>& g = genuine[c];
    std::uniform_int_distribution<size_t> pick(0, g.size() - 1);
    add(g[pick(rng)], g[pick(rng)], true);
  }
  const int similar_count = static_cast<int>(out.size());
  for (int tries = 0;
       static_cast<int>(out.size()) - similar_count < count - want_similar && tries < 20 * count;
       ++tries) {
    const int a = any(rng), b = any(rng);
    const Example& x = data.examples[a];
    const Example& y = data.examples[b];
    if (x.forgery && y.forgery) continue;  // not a trial pair (as EvaluatePairs)
    const bool similar = x.label == y.label && !x.forgery && !y.forgery;
    if (similar) continue;
    add(a, b, false);
  }
  if (static_cast<int>(out.size()) == similar_count) {
    return absl::InvalidArgumentError("Fisher vectors: could not draw a dissimilar pair");
  }
  return out;
}

absl::StatusOr<EvalResult> EvaluateFisher(FisherMethod method, const Split& split,
                                          const FisherBaselineOptions& options,
                                          const EvalOptions& eval, FisherReport* report) {
  SRN_ASSIGN_OR_RETURN(const Preprocessor standardize,
                       Preprocessor::Fit(split.train.SeriesPointers(), /*window=*/1));
  SRN_ASSIGN_OR_RETURN(const Dataset train, PreprocessDataset(standardize, split.train));
  SRN_ASSIGN_OR_RETURN(const Dataset validation, PreprocessDataset(standardize, split.validation));
  SRN_ASSIGN_OR_RETURN(const Dataset test, PreprocessDataset(standardize, split.test));
  HmmTrainOptions hmm_options = options.hmm;
  if (hmm_options.threads == 0) hmm_options.threads = eval.threads;
  const int threads = eval.threads > 0 ? eval.threads : DefaultThreads();
  SRN_ASSIGN_OR_RETURN(HmmSelection selection,
                       SelectHmm(train.SeriesPointers(), validation.SeriesPointers(),
                                 options.candidate_states, hmm_options));
  const GaussianHmm& hmm = selection.best.hmm;
  SRN_ASSIGN_OR_RETURN(const Eigen::MatrixXd test_scores,
                       FisherScores(hmm, test.SeriesPointers(), options.score, threads));
  if (report != nullptr) {
    report->selection = selection;
    report->score_size = static_cast<int>(test_scores.cols());
  }
  if (method == FisherMethod::kKernel) {
    Eigen::MatrixXd rows = test_scores;
    if (options.kernel_normalized) {
      for (int i = 0; i < rows.rows(); ++i) {
        const double norm = rows.row(i).norm();
        if (norm > 0) rows.row(i) /= norm;
      }
    }
    const PairScorer score = [&rows](int i, int j) { return rows.row(i).dot(rows.row(j)); };
    return EvaluatePairs(test, score, nullptr, eval);
  }
  SRN_ASSIGN_OR_RETURN(std::vector<LabeledPair> pairs,
                       DrawLabeledPairs(train, options.vector_pairs, eval.seed));
  // Fisher scores only for the training series the pairs use, renumbered.
  std::vector<int> remap(train.examples.size(), -1);
  std::vector<const Series*> used;
  for (LabeledPair& p : pairs) {
    for (int* index : {&p.first, &p.second}) {
      if (remap[*index] < 0) {
        remap[*index] = static_cast<int>(used.size());
        used.push_back(&train.examples[*index].series);
      }
      *index = remap[*index];
    }
  }
  SRN_ASSIGN_OR_RETURN(Eigen::MatrixXd train_scores,
                       FisherScores(hmm, used, options.score, threads));
  SRN_ASSIGN_OR_RETURN(const FisherVectorClassifier classifier,
                       FisherVectorClassifier::Create(std::move(train_scores), std::move(pairs)));
  SRN_ASSIGN_OR_RETURN(const FisherVectorClassifier::Bound bound, classifier.Bind(test_scores));
  const PairScorer score = [&bound](int i, int j) { return bound.Score(i, j); };
  return EvaluatePairs(test, score, nullptr, eval);
}

}  // namespace srn
