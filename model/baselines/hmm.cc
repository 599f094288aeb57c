#include "model/baselines/hmm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/nn/parallel.h"
#include "base/status_macros.h"

namespace srn {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
// Log densities further than this below a frame's best state are raised to it (see hmm.h).
constexpr double kMaxLogGap = 690;

absl::Status CheckSeries(const GaussianHmm& hmm, const Series& series) {
  if (series.empty()) return absl::InvalidArgumentError("HMM: empty series");
  if (series.dims() != hmm.dims()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "HMM: series has %d features per frame but the model has %d", series.dims(), hmm.dims()));
  }
  return absl::OkStatus();
}

// Emission densities scaled per frame: b(t, k) = exp(log N(x_t; state k) - shift[t]), where
// shift[t] is the best state's log density, so max_k b(t, k) = 1.
void ScaledEmissions(const GaussianHmm& hmm, const Series& series, Eigen::MatrixXd* b,
                     Eigen::VectorXd* shift) {
  const int T = series.length();
  const int K = hmm.states();
  const int D = hmm.dims();
  // Constant part of each state's log density: -0.5 * sum_d log(2 pi var).
  Eigen::VectorXd constant(K);
  Eigen::MatrixXd inv_var = hmm.variances.cwiseInverse();
  for (int k = 0; k < K; ++k) {
    constant[k] = -0.5 * (D * kLog2Pi + hmm.variances.row(k).array().log().sum());
  }
  b->resize(T, K);
  shift->resize(T);
  const RowMatrix& x = series.frames();
  for (int t = 0; t < T; ++t) {
    const Eigen::RowVectorXd frame = x.row(t).cast<double>();
    double best = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < K; ++k) {
      const double q =
          ((frame - hmm.means.row(k)).array().square() * inv_var.row(k).array()).sum();
      const double log_density = constant[k] - 0.5 * q;
      (*b)(t, k) = log_density;
      best = std::max(best, log_density);
    }
    (*shift)[t] = best;
    for (int k = 0; k < K; ++k) {
      (*b)(t, k) = std::exp(std::max((*b)(t, k) - best, -kMaxLogGap));
    }
  }
}

// The scaled forward pass: alpha(t, .) = P(state at t | x_1..t); returns log p(x).
double Forward(const GaussianHmm& hmm, const Eigen::MatrixXd& b, const Eigen::VectorXd& shift,
               Eigen::MatrixXd* alpha, Eigen::VectorXd* scale) {
  const int T = static_cast<int>(b.rows());
  const int K = hmm.states();
  alpha->resize(T, K);
  scale->resize(T);
  double log_likelihood = 0;
  for (int t = 0; t < T; ++t) {
    if (t == 0) {
      alpha->row(0) = hmm.initial.transpose().cwiseProduct(b.row(0));
    } else {
      alpha->row(t) = (alpha->row(t - 1) * hmm.transition).cwiseProduct(b.row(t));
    }
    // The predicted distribution sums to 1 and every scaled density is >= e^-690, so c > 0.
    const double c = alpha->row(t).sum();
    alpha->row(t) /= c;
    (*scale)[t] = c;
    log_likelihood += std::log(c) + shift[t];
  }
  return log_likelihood;
}

absl::Status CheckFloor(const GaussianHmm& hmm, const Eigen::VectorXd& floor) {
  if (floor.size() != hmm.dims()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "HMM: variance floor has %d entries for %d features", floor.size(), hmm.dims()));
  }
  for (int d = 0; d < floor.size(); ++d) {
    if (!(floor[d] > 0) || !std::isfinite(floor[d])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("HMM: variance floor[%d] = %g is not a positive number", d, floor[d]));
    }
  }
  return absl::OkStatus();
}

// Sufficient statistics of one E step.
struct Accumulator {
  Eigen::VectorXd first;  // sum of gamma(0, k)
  Eigen::MatrixXd xi;     // expected transitions
  Eigen::VectorXd occupancy;
  Eigen::MatrixXd sum_x;   // K x D
  Eigen::MatrixXd sum_xx;  // K x D
  double log_likelihood = 0;

  Accumulator(int K, int D)
      : first(Eigen::VectorXd::Zero(K)),
        xi(Eigen::MatrixXd::Zero(K, K)),
        occupancy(Eigen::VectorXd::Zero(K)),
        sum_x(Eigen::MatrixXd::Zero(K, D)),
        sum_xx(Eigen::MatrixXd::Zero(K, D)) {}
};

absl::Status CheckData(const std::vector<const Series*>& data, int dims) {
  if (data.empty()) return absl::InvalidArgumentError("HMM: no training series");
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == nullptr || data[i]->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("HMM: series ", i, " is empty"));
    }
    if (dims > 0 && data[i]->dims() != dims) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "HMM: series %d has %d features per frame, expected %d", i, data[i]->dims(), dims));
    }
  }
  return absl::OkStatus();
}

double TotalLogLikelihood(const GaussianHmm& hmm, const std::vector<const Series*>& data,
                          int threads) {
  std::vector<double> per(data.size(), 0);
  ParallelFor(static_cast<int>(data.size()), threads, [&](int begin, int end, int) {
    Eigen::MatrixXd b, alpha;
    Eigen::VectorXd shift, scale;
    for (int i = begin; i < end; ++i) {
      ScaledEmissions(hmm, *data[i], &b, &shift);
      per[i] = Forward(hmm, b, shift, &alpha, &scale);
    }
  });
  double total = 0;
  for (double v : per) total += v;
  return total;
}

}  // namespace

absl::Status ValidateHmm(const GaussianHmm& hmm) {
  const int K = hmm.states();
  const int D = hmm.dims();
  if (K < 1) return absl::InvalidArgumentError("HMM: no states");
  if (D < 1) return absl::InvalidArgumentError("HMM: no features");
  if (hmm.transition.rows() != K || hmm.transition.cols() != K) {
    return absl::InvalidArgumentError(
        absl::StrFormat("HMM: transition matrix is %dx%d for %d states", hmm.transition.rows(),
                        hmm.transition.cols(), K));
  }
  if (hmm.means.rows() != K || hmm.variances.rows() != K || hmm.variances.cols() != D) {
    return absl::InvalidArgumentError(
        absl::StrFormat("HMM: means are %dx%d and variances %dx%d for %d states", hmm.means.rows(),
                        hmm.means.cols(), hmm.variances.rows(), hmm.variances.cols(), K));
  }
  auto check_distribution = [](const Eigen::RowVectorXd& p, const std::string& what) {
    for (int k = 0; k < p.size(); ++k) {
      if (!std::isfinite(p[k]) || p[k] < 0 || p[k] > 1) {
        return absl::InvalidArgumentError(
            absl::StrFormat("HMM: %s[%d] = %g is not a probability", what, k, p[k]));
      }
    }
    if (std::abs(p.sum() - 1) > 1e-6) {
      return absl::InvalidArgumentError(
          absl::StrFormat("HMM: %s sums to %.9g, not 1", what, p.sum()));
    }
    return absl::OkStatus();
  };
  SRN_RETURN_IF_ERROR(check_distribution(hmm.initial.transpose(), "initial"));
  for (int i = 0; i < K; ++i) {
    SRN_RETURN_IF_ERROR(
        check_distribution(hmm.transition.row(i), absl::StrCat("transition row ", i)));
  }
  for (int k = 0; k < K; ++k) {
    for (int d = 0; d < D; ++d) {
      if (!std::isfinite(hmm.means(k, d))) {
        return absl::InvalidArgumentError(absl::StrFormat("HMM: mean(%d, %d) is not finite", k, d));
      }
      if (!std::isfinite(hmm.variances(k, d)) || !(hmm.variances(k, d) > 0)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "HMM: variance(%d, %d) = %g is not a positive number", k, d, hmm.variances(k, d)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> HmmLogLikelihood(const GaussianHmm& hmm, const Series& series) {
  SRN_RETURN_IF_ERROR(ValidateHmm(hmm));
  SRN_RETURN_IF_ERROR(CheckSeries(hmm, series));
  Eigen::MatrixXd b, alpha;
  Eigen::VectorXd shift, scale;
  ScaledEmissions(hmm, series, &b, &shift);
  return Forward(hmm, b, shift, &alpha, &scale);
}

namespace {

// The forward-backward pass on a series already checked.
void ForwardBackwardUnchecked(const GaussianHmm& hmm, const Series& series,
                              ForwardBackwardResult* out) {
  const int T = series.length();
  const int K = hmm.states();
  Eigen::MatrixXd b, alpha;
  Eigen::VectorXd shift, scale;
  ScaledEmissions(hmm, series, &b, &shift);
  out->log_likelihood = Forward(hmm, b, shift, &alpha, &scale);
  // beta(t, .) scaled so that gamma(t, .) = alpha(t, .) * beta(t, .).
  Eigen::MatrixXd beta(T, K);
  beta.row(T - 1).setOnes();
  out->xi_sum = Eigen::MatrixXd::Zero(K, K);
  Eigen::RowVectorXd next(K);
  for (int t = T - 2; t >= 0; --t) {
    next = b.row(t + 1).cwiseProduct(beta.row(t + 1)) / scale[t + 1];
    beta.row(t) = (hmm.transition * next.transpose()).transpose();
    for (int i = 0; i < K; ++i) {
      // A state the forward pass cannot be in contributes nothing (and its beta may be huge).
      if (alpha(t, i) == 0) {
        beta(t, i) = 0;
        continue;
      }
      beta(t, i) = std::min(beta(t, i), 1e300);
      out->xi_sum.row(i) += alpha(t, i) * hmm.transition.row(i).cwiseProduct(next);
    }
  }
  out->gamma = alpha.cwiseProduct(beta);
  for (int t = 0; t < T; ++t) {
    const double s = out->gamma.row(t).sum();
    if (s > 0) out->gamma.row(t) /= s;
  }
}

}  // namespace

absl::StatusOr<ForwardBackwardResult> ForwardBackward(const GaussianHmm& hmm,
                                                      const Series& series) {
  SRN_RETURN_IF_ERROR(ValidateHmm(hmm));
  SRN_RETURN_IF_ERROR(CheckSeries(hmm, series));
  ForwardBackwardResult out;
  ForwardBackwardUnchecked(hmm, series, &out);
  return out;
}

absl::StatusOr<double> BaumWelchStep(const std::vector<const Series*>& data,
                                     const Eigen::VectorXd& variance_floor, int threads,
                                     GaussianHmm* hmm) {
  if (hmm == nullptr) return absl::InvalidArgumentError("HMM: no model to update");
  SRN_RETURN_IF_ERROR(ValidateHmm(*hmm));
  SRN_RETURN_IF_ERROR(CheckFloor(*hmm, variance_floor));
  SRN_RETURN_IF_ERROR(CheckData(data, hmm->dims()));
  if (threads < 1) threads = 1;
  const int K = hmm->states();
  const int D = hmm->dims();
  const int n = static_cast<int>(data.size());
  const int chunks = std::min(threads, n);
  std::vector<Accumulator> acc(chunks, Accumulator(K, D));
  ParallelFor(n, chunks, [&](int begin, int end, int worker) {
    Accumulator& a = acc[worker];
    ForwardBackwardResult fb;
    for (int i = begin; i < end; ++i) {
      ForwardBackwardUnchecked(*hmm, *data[i], &fb);
      a.log_likelihood += fb.log_likelihood;
      a.first += fb.gamma.row(0).transpose();
      a.xi += fb.xi_sum;
      const Eigen::MatrixXd x = data[i]->frames().cast<double>();
      a.occupancy += fb.gamma.colwise().sum().transpose();
      a.sum_x += fb.gamma.transpose() * x;
      a.sum_xx += fb.gamma.transpose() * x.cwiseProduct(x);
    }
  });
  Accumulator total = acc[0];
  for (int w = 1; w < chunks; ++w) {
    total.log_likelihood += acc[w].log_likelihood;
    total.first += acc[w].first;
    total.xi += acc[w].xi;
    total.occupancy += acc[w].occupancy;
    total.sum_x += acc[w].sum_x;
    total.sum_xx += acc[w].sum_xx;
  }
  // M step.
  hmm->initial = total.first / total.first.sum();
  for (int i = 0; i < K; ++i) {
    const double row = total.xi.row(i).sum();
    if (row > 0) hmm->transition.row(i) = total.xi.row(i) / row;
  }
  for (int k = 0; k < K; ++k) {
    const double g = total.occupancy[k];
    if (!(g > 1e-10)) continue;  // unvisited: its parameters do not affect the likelihood
    hmm->means.row(k) = total.sum_x.row(k) / g;
    for (int d = 0; d < D; ++d) {
      const double mu = hmm->means(k, d);
      const double var = total.sum_xx(k, d) / g - mu * mu;
      hmm->variances(k, d) = std::max(var, variance_floor[d]);
    }
  }
  return total.log_likelihood;
}

absl::StatusOr<HmmTrainResult> TrainHmm(const std::vector<const Series*>& data,
                                        const HmmTrainOptions& options) {
  if (options.states < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("HMM: states must be >= 1, got ", options.states));
  }
  if (options.max_iterations < 1 || options.restarts < 1) {
    return absl::InvalidArgumentError("HMM: max_iterations and restarts must be >= 1");
  }
  if (!(options.variance_floor > 0) || !(options.tolerance >= 0)) {
    return absl::InvalidArgumentError("HMM: variance_floor must be > 0 and tolerance >= 0");
  }
  SRN_RETURN_IF_ERROR(CheckData(data, 0));
  const int D = data[0]->dims();
  SRN_RETURN_IF_ERROR(CheckData(data, D));
  const int K = options.states;
  const int threads = options.threads > 0 ? options.threads : DefaultThreads();
  // Frame statistics for the initialisation and the floor.
  int64_t frames = 0;
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(D), sq = Eigen::VectorXd::Zero(D);
  for (const Series* s : data) {
    frames += s->length();
    const Eigen::MatrixXd x = s->frames().cast<double>();
    mean += x.colwise().sum().transpose();
    sq += x.cwiseProduct(x).colwise().sum().transpose();
  }
  if (frames < K) {
    return absl::InvalidArgumentError(
        absl::StrFormat("HMM: %d training frames cannot fit %d states", frames, K));
  }
  mean /= static_cast<double>(frames);
  Eigen::VectorXd var =
      (sq / static_cast<double>(frames) - mean.cwiseProduct(mean)).cwiseMax(1e-12);
  const Eigen::VectorXd floor = var * options.variance_floor;
  // Frame index -> (series, t), for drawing initial means.
  std::vector<std::pair<int, int>> index;
  index.reserve(frames);
  for (size_t i = 0; i < data.size(); ++i) {
    for (int t = 0; t < data[i]->length(); ++t) index.emplace_back(static_cast<int>(i), t);
  }

  HmmTrainResult best;
  bool have_best = false;
  for (int r = 0; r < options.restarts; ++r) {
    std::mt19937_64 rng(options.seed * 1000003ULL + static_cast<uint64_t>(r));
    GaussianHmm hmm;
    hmm.initial = Eigen::VectorXd::Constant(K, 1.0 / K);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    hmm.transition.resize(K, K);
    for (int i = 0; i < K; ++i) {
      for (int j = 0; j < K; ++j) hmm.transition(i, j) = 0.5 / K + 0.5 * unit(rng);
      hmm.transition.row(i) /= hmm.transition.row(i).sum();
    }
    hmm.means.resize(K, D);
    hmm.variances.resize(K, D);
    std::vector<int> chosen;
    std::uniform_int_distribution<int64_t> pick(0, frames - 1);
    for (int k = 0; k < K; ++k) {
      int64_t f = pick(rng);
      for (int tries = 0; tries < 100 && std::find(chosen.begin(), chosen.end(), f) != chosen.end();
           ++tries) {
        f = pick(rng);
      }
      chosen.push_back(static_cast<int>(f));
      const auto [si, t] = index[f];
      hmm.means.row(k) = data[si]->frames().row(t).cast<double>();
      hmm.variances.row(k) = var.transpose();
    }
    std::vector<double> history;
    int it = 0;
    for (; it < options.max_iterations; ++it) {
      SRN_ASSIGN_OR_RETURN(const double ll, BaumWelchStep(data, floor, threads, &hmm));
      history.push_back(ll);
      if (history.size() >= 2 && history.back() - history[history.size() - 2] <
                                     options.tolerance * static_cast<double>(frames)) {
        ++it;
        break;
      }
    }
    const double ll = TotalLogLikelihood(hmm, data, threads);
    if (!have_best || ll > best.log_likelihood) {
      best.hmm = std::move(hmm);
      best.log_likelihood = ll;
      best.restart = r;
      best.iterations = it;
      best.history = std::move(history);
      have_best = true;
    }
  }
  return best;
}

absl::StatusOr<HmmSelection> SelectHmm(const std::vector<const Series*>& train,
                                       const std::vector<const Series*>& validation,
                                       const std::vector<int>& candidate_states,
                                       const HmmTrainOptions& options) {
  if (candidate_states.empty()) return absl::InvalidArgumentError("HMM: no candidate state counts");
  SRN_RETURN_IF_ERROR(CheckData(train, 0));
  const int D = train[0]->dims();
  if (validation.empty()) return absl::InvalidArgumentError("HMM: no validation series");
  SRN_RETURN_IF_ERROR(CheckData(validation, D));
  int64_t frames = 0;
  for (const Series* s : validation) frames += s->length();
  HmmSelection out;
  bool have = false;
  double best_score = 0;
  for (int states : candidate_states) {
    if (states < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("HMM: candidate state count ", states, " < 1"));
    }
    HmmTrainOptions o = options;
    o.states = states;
    SRN_ASSIGN_OR_RETURN(HmmTrainResult trained, TrainHmm(train, o));
    const double score =
        TotalLogLikelihood(trained.hmm, validation,
                           options.threads > 0 ? options.threads : DefaultThreads()) /
        static_cast<double>(frames);
    out.validation.emplace_back(states, score);
    if (!have || score > best_score) {
      best_score = score;
      out.best = std::move(trained);
      out.states = states;
      have = true;
    }
  }
  return out;
}

}  // namespace srn
