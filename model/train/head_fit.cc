#include "model/train/head_fit.h"

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Cholesky"
#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/metrics/metrics.h"
#include "model/train/pair_sampler.h"

namespace srn {
namespace {

using MatrixXd = Eigen::MatrixXd;
using VectorXd = Eigen::VectorXd;

// Stream constants (fractional parts of sqrt(3) and sqrt(5), as SHA-512 uses them): the head's
// pairs never share a generator with anything else seeded by the same seed.
constexpr uint64_t kTrainPairsStream = 0xbb67ae8584caa73bull;
constexpr uint64_t kValidationPairsStream = 0x3c6ef372fe94f82bull;

absl::Status CheckSeries(const Dataset& data, int input_dims, absl::string_view what) {
  for (const Example& e : data.examples) {
    if (e.series.empty() || e.series.dims() != input_dims) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " example ", e.source, " has ", e.series.length(), " frames of ", e.series.dims(),
          " features; the encoder takes ", input_dims));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Pair>> DrawPairs(const Dataset& data, int n, double forgery_fraction,
                                            uint64_t seed, absl::string_view what) {
  PairSampler::Options options;
  options.forgery_fraction = forgery_fraction;
  absl::StatusOr<PairSampler> sampler = PairSampler::Create(data, options);
  if (!sampler.ok()) {
    return absl::Status(sampler.status().code(),
                        absl::StrCat("fitting the head: ", what, ": ", sampler.status().message()));
  }
  std::mt19937_64 rng(seed);
  return sampler->SampleBalanced(n, &rng);
}

// Row k: the features h_a * h_b of pairs[k] (the products in float, as the head takes them).
MatrixXd Features(const RowMatrix& embeddings, const std::vector<Pair>& pairs) {
  MatrixXd x(pairs.size(), embeddings.cols());
  for (size_t k = 0; k < pairs.size(); ++k) {
    x.row(k) = embeddings.row(pairs[k].a).cwiseProduct(embeddings.row(pairs[k].b)).cast<double>();
  }
  return x;
}

double Softplus(double s) { return s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s)); }

// Mean cross-entropy of logits z = X w + b against labels y, plus (l2 / 2) |w|^2.
double Loss(const MatrixXd& x, const VectorXd& y, const VectorXd& w, double b, double l2) {
  const VectorXd z = (x * w).array() + b;
  double sum = 0;
  for (Eigen::Index k = 0; k < z.size(); ++k) sum += Softplus(z[k]) - y[k] * z[k];
  return sum / static_cast<double>(z.size()) + 0.5 * l2 * w.squaredNorm();
}

absl::StatusOr<double> LogitAuc(const MatrixXd& x, const std::vector<Pair>& pairs,
                                const VectorXd& v, double c) {
  const VectorXd z = (x * v).array() + c;
  std::vector<double> scores(z.data(), z.data() + z.size());
  std::vector<int> labels;
  labels.reserve(pairs.size());
  for (const Pair& p : pairs) labels.push_back(p.label);
  return Auc(scores, labels);
}

}  // namespace

absl::Status ValidateHeadFitOptions(const HeadFitOptions& o) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("fitting the head: ", what));
  };
  if (o.pairs < 2 || o.validation_pairs < 2) return bad("pairs and validation_pairs must be >= 2");
  if (!(o.forgery_fraction >= 0 && o.forgery_fraction <= 1)) {
    return bad("forgery_fraction must be in [0, 1]");
  }
  if (!(o.l2 >= 0) || !std::isfinite(o.l2)) return bad("l2 must be >= 0");
  if (o.max_iterations < 1) return bad("max_iterations must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<HeadFit> FitSimilarityHead(const SimilarityModel& model, const Dataset& train,
                                          const Dataset& validation,
                                          const HeadFitOptions& options) {
  SRN_RETURN_IF_ERROR(ValidateHeadFitOptions(options));
  const int input_dims = model.architecture().input_dims;
  SRN_RETURN_IF_ERROR(CheckSeries(train, input_dims, "training"));
  SRN_RETURN_IF_ERROR(CheckSeries(validation, input_dims, "validation"));
  SRN_ASSIGN_OR_RETURN(const std::vector<Pair> train_pairs,
                       DrawPairs(train, options.pairs, options.forgery_fraction,
                                 options.seed ^ kTrainPairsStream, "training set"));
  SRN_ASSIGN_OR_RETURN(const std::vector<Pair> val_pairs,
                       DrawPairs(validation, options.validation_pairs, options.forgery_fraction,
                                 options.seed ^ kValidationPairsStream, "validation set"));
  const MatrixXd x_raw =
      Features(model.EmbedPreprocessed(train.SeriesPointers(), options.threads), train_pairs);
  const MatrixXd x_val = Features(
      model.EmbedPreprocessed(validation.SeriesPointers(), options.threads), val_pairs);
  const int n = static_cast<int>(x_raw.rows());
  const int e = static_cast<int>(x_raw.cols());
  VectorXd y(n);
  for (int k = 0; k < n; ++k) y[k] = train_pairs[k].label;

  // Standardized features: Newton's steps do not need it, but the L2 penalty then weighs every
  // feature alike whatever its scale. A constant feature keeps scale 1 (it centres to zero).
  const VectorXd mean = x_raw.colwise().mean().transpose();
  VectorXd scale(e);
  for (int j = 0; j < e; ++j) {
    const double sd = std::sqrt((x_raw.col(j).array() - mean[j]).square().mean());
    scale[j] = sd > 1e-12 ? sd : 1.0;
  }
  const MatrixXd x =
      (x_raw.rowwise() - mean.transpose()).array().rowwise() / scale.transpose().array();

  // theta = (w, b). Newton's direction solves H d = g with
  //   g = X'(p - y) / n + l2 (w, 0),  H = X' diag(p (1 - p)) X / n + l2 diag(1, .., 1, 0),
  // over the features with a column of ones appended; a step is halved until the loss falls
  // enough (Armijo), which keeps it convergent when the pairs are almost separable.
  MatrixXd z(n, e + 1);
  z << x, MatrixXd::Ones(n, 1);
  VectorXd theta = VectorXd::Zero(e + 1);
  VectorXd penalty = VectorXd::Constant(e + 1, options.l2);
  penalty[e] = 0;  // the bias is not penalized
  auto loss_at = [&](const VectorXd& t) { return Loss(x, y, t.head(e), t[e], options.l2); };
  double loss = loss_at(theta);
  HeadFit fit;
  for (int it = 0; it < options.max_iterations; ++it) {
    const VectorXd logits = z * theta;
    VectorXd p(n), weight(n);
    for (int k = 0; k < n; ++k) {
      p[k] = 1.0 / (1.0 + std::exp(-logits[k]));
      weight[k] = p[k] * (1.0 - p[k]);
    }
    const VectorXd grad = z.transpose() * (p - y) / n + penalty.cwiseProduct(theta);
    if (grad.lpNorm<Eigen::Infinity>() < 1e-9) break;
    MatrixXd hessian = z.transpose() * weight.asDiagonal() * z / n;
    hessian.diagonal() += penalty + VectorXd::Constant(e + 1, 1e-10);
    const VectorXd direction = hessian.ldlt().solve(grad);
    const double slope = grad.dot(direction);
    if (!(slope > 0)) break;  // no descent direction left (numerically converged)
    double step = 1;
    VectorXd next = theta - direction;
    double next_loss = loss_at(next);
    for (int halvings = 0; halvings < 40 && !(next_loss <= loss - 1e-4 * step * slope);
         ++halvings) {
      step *= 0.5;
      next = theta - step * direction;
      next_loss = loss_at(next);
    }
    if (!(next_loss < loss)) break;
    const double gain = loss - next_loss;
    theta = std::move(next);
    loss = next_loss;
    ++fit.iterations;
    if (gain < 1e-12) break;
  }

  // Back to the raw features: w . (x - mean) / scale + b = v . x + c.
  const VectorXd v = theta.head(e).cwiseQuotient(scale);
  const double c = theta[e] - v.dot(mean);
  Vector params = model.params();
  const int64_t v_offset = model.layout().v_offset();
  const int64_t c_offset = model.layout().c_offset();
  for (int j = 0; j < e; ++j) params[v_offset + j] = static_cast<float>(v[j]);
  params[c_offset] = static_cast<float>(c);

  SRN_ASSIGN_OR_RETURN(fit.val_auc_before,
                       LogitAuc(x_val, val_pairs,
                                model.params().segment(v_offset, e).cast<double>(),
                                model.params()[c_offset]));
  SRN_ASSIGN_OR_RETURN(fit.val_auc, LogitAuc(x_val, val_pairs,
                                             params.segment(v_offset, e).cast<double>(),
                                             params[c_offset]));
  SRN_ASSIGN_OR_RETURN(fit.train_auc, LogitAuc(x, train_pairs, theta.head(e), theta[e]));
  fit.pairs = n;
  fit.train_loss = Loss(x, y, theta.head(e), theta[e], 0.0);

  ModelMetadata meta = model.metadata();
  meta.hyperparameters["head"] = absl::StrFormat(
      "logistic regression on %d balanced training pairs (h1 * h2 standardized, L2 %g, "
      "forgery_fraction %g; %d Newton steps), encoder frozen",
      n, options.l2, options.forgery_fraction, fit.iterations);
  meta.metrics["val_auc"] = fit.val_auc;
  meta.metrics["val_auc_before_head_fit"] = fit.val_auc_before;
  SRN_ASSIGN_OR_RETURN(fit.model,
                       SimilarityModel::Create(model.architecture(), model.preprocessor(),
                                               std::move(params), std::move(meta)));
  return fit;
}

}  // namespace srn
