#ifndef SRN_MODEL_BASELINES_HMM_H_
#define SRN_MODEL_BASELINES_HMM_H_

#include <cstdint>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/data/series.h"

namespace srn {

// A hidden Markov model with one diagonal-covariance Gaussian per state: the generative model
// behind the paper's Fisher-kernel and Fisher-vector baselines (section 4.2).
//
// All arithmetic is in double precision; series are float (T x D, see series.h) and are widened
// frame by frame. A value type; const use is thread-safe.
struct GaussianHmm {
  Eigen::VectorXd initial;     // K; initial state probabilities, summing to 1
  Eigen::MatrixXd
      transition;  // K x K; transition(i, j) = P(state j at t+1 | state i at t), rows sum to 1
  Eigen::MatrixXd means;       // K x D
  Eigen::MatrixXd variances;   // K x D; all > 0

  int states() const { return static_cast<int>(initial.size()); }
  int dims() const { return static_cast<int>(means.cols()); }
};

// InvalidArgument, saying which entry is wrong, unless the shapes agree, K >= 1, D >= 1, every
// value is finite, probabilities are in [0, 1] with rows summing to 1 (within 1e-6) and every
// variance is > 0.
absl::Status ValidateHmm(const GaussianHmm& hmm);

// What one scaled forward-backward pass (Rabiner 1989, with per-frame scaling) yields for a series.
struct ForwardBackwardResult {
  double log_likelihood = 0;  // log p(x_1..T | hmm)
  Eigen::MatrixXd gamma;      // T x K; gamma(t, k) = P(state k at t | x)
  Eigen::MatrixXd xi_sum;     // K x K; sum over t < T of P(state i at t, state j at t+1 | x)
};

// The log-likelihood of a series (the forward pass only). InvalidArgument when the series is
// empty or its dims differ from the model's, or the model is invalid.
//
// Numerics: emission densities are scaled per frame by the best state's, so no underflow occurs
// however long the series; a state whose log density is more than 690 nats below the best
// state's in that frame is treated as exactly 690 below (e^-690 ~ 1e-300: a frame that state
// cannot have produced). That only matters for frames no reachable state explains, where the
// exact likelihood would underflow to zero; it keeps the result finite.
absl::StatusOr<double> HmmLogLikelihood(const GaussianHmm& hmm, const Series& series);

// The forward and backward passes: log-likelihood, state posteriors and expected transition
// counts. Errors as HmmLogLikelihood.
absl::StatusOr<ForwardBackwardResult> ForwardBackward(const GaussianHmm& hmm, const Series& series);

// Baum-Welch (EM) training.
struct HmmTrainOptions {
  int states = 4;
  int max_iterations = 50;
  // Stop when an iteration raises the log-likelihood by less than this per training frame.
  double tolerance = 1e-4;
  int restarts = 3;  // independent random initialisations; the best training likelihood wins
  // Each state's variance is kept at or above this fraction of the feature's variance over all
  // training frames, so that no state collapses onto a single frame (infinite likelihood).
  double variance_floor = 1e-3;
  uint64_t seed = 1;
  int threads = 1;  // E-step workers (<= 0: DefaultThreads()); results agree up to rounding
};

struct HmmTrainResult {
  GaussianHmm hmm;
  double log_likelihood = 0;         // total over the training series, under `hmm`
  int restart = 0;                   // which restart won
  int iterations = 0;                // EM iterations that restart ran
  std::vector<double> history;       // the winning restart's log-likelihood before each iteration
};

// One Baum-Welch iteration in place: the E step under the current parameters, then the M step
// (each variance clamped from below at `variance_floor[d]`; a state no frame visits keeps its
// parameters, a state never left keeps its transition row). Returns the total log-likelihood of
// `data` under the parameters *before* the update. EM never decreases the likelihood, floor
// included: for a fixed mean the expected log-density is unimodal in the variance, so the
// clamped value is the constrained maximiser. InvalidArgument on an invalid model, no series, a
// series of the wrong dims, or a floor of the wrong size or not > 0.
absl::StatusOr<double> BaumWelchStep(const std::vector<const Series*>& data,
                                     const Eigen::VectorXd& variance_floor, int threads,
                                     GaussianHmm* hmm);

// Trains an HMM with options.states states on `data` from options.restarts random
// initialisations (means at distinct random frames, variances the data's, transitions a random
// mix with uniform; seeded by options.seed) and keeps the one with the highest likelihood.
// InvalidArgument on no data, mismatched dims, fewer frames than states, or bad options.
absl::StatusOr<HmmTrainResult> TrainHmm(const std::vector<const Series*>& data,
                                        const HmmTrainOptions& options);

// The number of states chosen on validation data, as the paper tunes its baselines.
struct HmmSelection {
  HmmTrainResult best;
  int states = 0;
  // (states, mean log-likelihood per validation frame) for every candidate, in order.
  std::vector<std::pair<int, double>> validation;
};

// Trains one HMM per candidate state count on `train` (options otherwise as given) and returns
// the one with the highest log-likelihood per frame on `validation`. InvalidArgument on no
// candidates or a candidate < 1, and the errors of TrainHmm.
absl::StatusOr<HmmSelection> SelectHmm(const std::vector<const Series*>& train,
                                       const std::vector<const Series*>& validation,
                                       const std::vector<int>& candidate_states,
                                       const HmmTrainOptions& options);

}  // namespace srn

#endif  // SRN_MODEL_BASELINES_HMM_H_
