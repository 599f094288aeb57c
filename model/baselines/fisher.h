#ifndef SRN_MODEL_BASELINES_FISHER_H_
#define SRN_MODEL_BASELINES_FISHER_H_

#include <cstdint>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/baselines/hmm.h"
#include "model/eval/protocols.h"
#include "model/data/series.h"

namespace srn {

// The paper's Fisher baselines (section 4.2), on a Gaussian HMM (hmm.h) trained on the training
// classes: the Fisher kernel (inner product of Fisher scores, with the identity in place of the
// Fisher information matrix, U = I as in the paper) and Fisher vectors (a pair is the two series'
// Fisher scores side by side, classified by 1-NN over labelled training pairs).

// Which gradients make up a Fisher score, and how it is normalised. The parameterisation keeps
// every coordinate unconstrained and scale-free: the initial and transition probabilities through
// their softmax logits (initial = softmax(u), transition row i = softmax(w_i)), the means
// directly and the variances through their logarithms. For a series of T frames with posteriors
// gamma and expected transitions xi (sum over t < T):
//   d/du_k        = gamma(0, k) - initial[k]
//   d/dw_ij       = xi_sum(i, j) - transition(i, j) * sum_{t<T-1} gamma(t, i)
//   d/dmean_kd    = sum_t gamma(t, k) (x_td - mean_kd) / var_kd
//   d/dlog var_kd = 0.5 * sum_t gamma(t, k) ((x_td - mean_kd)^2 / var_kd - 1)
// Layout: [initial K | transition K*K row-major | means K*D | log-variances K*D], skipping the
// blocks switched off.
struct FisherScoreOptions {
  bool initial = true;
  bool transition = true;
  bool means = true;
  bool variances = true;
  // Divide by the series length, so that long and short series are comparable (the gradient of
  // the mean per-frame log-likelihood).
  bool per_frame = true;
};

// The number of entries of a Fisher score; 0 when every block is off.
int FisherScoreSize(const GaussianHmm& hmm, const FisherScoreOptions& options);

// The Fisher score of one series: the gradient of log p(series | hmm) (per frame when asked)
// with respect to the parameters above. InvalidArgument on an invalid model, a series that is
// empty or of the wrong dims, or no block selected. Thread-safe.
absl::StatusOr<Eigen::VectorXd> FisherScore(const GaussianHmm& hmm, const Series& series,
                                            const FisherScoreOptions& options = {});

// Fisher scores of many series as the rows of an n x FisherScoreSize matrix, computed on
// `threads` workers (<= 0: DefaultThreads()). Errors as FisherScore, naming the series.
absl::StatusOr<Eigen::MatrixXd> FisherScores(const GaussianHmm& hmm,
                                             const std::vector<const Series*>& series,
                                             const FisherScoreOptions& options = {},
                                             int threads = 1);

// The Fisher kernel with U = I: a.b; when `normalized`, a.b / (|a| |b|) (0 if either is zero).
// The caller guarantees equal sizes.
double FisherKernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b, bool normalized);

// A labelled pair of rows of the training vectors.
struct LabeledPair {
  int first = 0;
  int second = 0;
  bool similar = false;
};

// The Fisher-vector pair classifier: a pair (a, b) is the concatenation [a, b] of the two Fisher
// scores; its nearest labelled training pair (Euclidean, with both orders of the training pair
// tried, so the classifier is symmetric in a and b) decides similar / dissimilar. As a score
// for ROC analysis it returns d_dissimilar - d_similar, the squared distance to the nearest
// dissimilar training pair minus that to the nearest similar one: positive exactly when 1-NN
// says "similar", and larger the more clearly so. Immutable after Create; thread-safe.
class FisherVectorClassifier final {
 public:
  // `vectors`: one training Fisher score per row; `pairs` index its rows. InvalidArgument when
  // there are no similar or no dissimilar pairs, a pair indexes outside the rows, or a value is
  // not finite.
  static absl::StatusOr<FisherVectorClassifier> Create(Eigen::MatrixXd vectors,
                                                       std::vector<LabeledPair> pairs);

  // Score of the pair (a, b), O(pairs x size). InvalidArgument on a size mismatch.
  absl::StatusOr<double> Score(const Eigen::VectorXd& a, const Eigen::VectorXd& b) const;

  // The classifier bound to a set of query vectors (rows of `queries`): dot products with the
  // training vectors are computed once, so that Score(i, j) costs O(pairs). Holds a copy of what it
  // needs (queries x training rows, in float); independent of this object afterwards.
  class Bound {
   public:
    double Score(int i, int j) const;

   private:
    friend class FisherVectorClassifier;
    RowMatrix dots_;                  // queries x training rows
    Eigen::VectorXd pair_norms_;      // |u|^2 + |v|^2 per training pair
    std::vector<LabeledPair> pairs_;
  };
  absl::StatusOr<Bound> Bind(const Eigen::MatrixXd& queries) const;

  int pairs() const { return static_cast<int>(pairs_.size()); }

 private:
  Eigen::MatrixXd vectors_;
  std::vector<LabeledPair> pairs_;
};

// Draws `count` training pairs of `data`'s examples, half similar (two genuine examples of one
// class) and half dissimilar (different classes, or a genuine example and a forgery of its
// class), without repeats where the data allow. InvalidArgument when count < 2 or the data have
// no similar or no dissimilar pair.
absl::StatusOr<std::vector<LabeledPair>> DrawLabeledPairs(const Dataset& data, int count,
                                                          uint64_t seed);

// The baselines on one of the paper's protocols.
enum class FisherMethod { kKernel, kVector };

struct FisherBaselineOptions {
  std::vector<int> candidate_states = {2, 4, 8, 16, 32};  // chosen on the validation split
  HmmTrainOptions hmm;                                // `states` is ignored (chosen)
  FisherScoreOptions score;
  bool kernel_normalized = false;  // the paper's plain inner product by default
  int vector_pairs = 2000;         // labelled training pairs for the Fisher-vector 1-NN
};

// What the run chose, for the log.
struct FisherReport {
  HmmSelection selection;
  int score_size = 0;
};

// Standardizes every split with statistics of split.train (as the DTW baseline does), selects and
// trains the HMM on split.train with split.validation choosing the state count, computes the
// Fisher scores and evaluates `method` on split.test with EvaluatePairs (AUC over every trial
// pair, one-shot 1-NN). `report`, when not null, receives the choices. Errors from each stage.
absl::StatusOr<EvalResult> EvaluateFisher(FisherMethod method, const Split& split,
                                          const FisherBaselineOptions& options,
                                          const EvalOptions& eval, FisherReport* report = nullptr);

}  // namespace srn

#endif  // SRN_MODEL_BASELINES_FISHER_H_
