#ifndef SRN_MODEL_TRAIN_HEAD_FIT_H_
#define SRN_MODEL_TRAIN_HEAD_FIT_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/nn/similarity_model.h"

namespace srn {

// Fitting the similarity head sigmoid(v . (h1 * h2) + c) of a trained encoder, the encoder
// frozen. An objective that trains only the encoder's per-frame states (the frame-triplet
// trainer) leaves v and c at their random initialization, yet Identify and Similarity score by
// them; this fits them afterwards without changing a single encoder weight, so the per-frame
// states (and every evaluation of them) stay what training gave.
//
// The fit: every example is embedded once (SimilarityModel::EmbedPreprocessed); balanced pairs
// are drawn from the training set as the pair trainer draws them (PairSampler: two genuine
// examples of one class are similar; a genuine example and another class's genuine example or,
// with probability forgery_fraction, a skilled forgery of its own class are dissimilar); the
// features h1 * h2 are standardized and v, c found by L2-regularized logistic regression
// (Newton steps with a backtracking line search, in double), then mapped back to the raw
// features. Validation pairs of `validation` measure the head before and after (AUC).

struct HeadFitOptions {
  int pairs = 4000;             // balanced training pairs
  int validation_pairs = 4000;  // balanced validation pairs, as the pair trainer's validation
  double forgery_fraction = 0.5;
  // L2 penalty (l2 / 2) |w|^2 on the standardized weights (not the bias), added to the mean
  // cross-entropy. On an SVC2004 fold (27 training signers) 1e-2 to 1e-1 generalized best to
  // unseen signers; 1e-4 fits the training pairs a little better and the others worse.
  double l2 = 1e-2;
  int max_iterations = 50;  // Newton steps; it converges in about ten
  // Pairs come from their own streams of this seed (not a trainer's generator), so fitting the
  // head never changes what the encoder's training draws.
  uint64_t seed = 1;
  int threads = 0;  // embedding threads; 0: DefaultThreads()
};

struct HeadFit {
  // The input model's architecture, preprocessing and encoder weights (bit for bit), with the
  // fitted v and c, and its metadata plus hyperparameter "head" (how the head was fitted) and
  // metrics "val_auc" (the fitted head's) and "val_auc_before_head_fit" (the input head's).
  std::shared_ptr<const SimilarityModel> model;
  int pairs = 0;
  int iterations = 0;       // Newton steps taken
  double train_loss = 0;    // mean cross-entropy on the training pairs at the end
  double train_auc = 0;     // the fitted head on the training pairs
  double val_auc = 0;       // the fitted head on the validation pairs
  double val_auc_before = 0;  // the input model's head on the same pairs
};

// Checks the ranges of the options; InvalidArgument names the first bad one.
absl::Status ValidateHeadFitOptions(const HeadFitOptions& options);

// Fits the head of `model` on pairs of `train` and measures it on pairs of `validation` (both
// preprocessed for `model`, as the trainers hold them). InvalidArgument on bad options or series
// the encoder does not take; FailedPrecondition when a set cannot give similar and dissimilar
// pairs (see PairSampler::Create).
absl::StatusOr<HeadFit> FitSimilarityHead(const SimilarityModel& model, const Dataset& train,
                                          const Dataset& validation,
                                          const HeadFitOptions& options);

}  // namespace srn

#endif  // SRN_MODEL_TRAIN_HEAD_FIT_H_
