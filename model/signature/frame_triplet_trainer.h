#ifndef SRN_MODEL_SIGNATURE_FRAME_TRIPLET_TRAINER_H_
#define SRN_MODEL_SIGNATURE_FRAME_TRIPLET_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/data/preprocess.h"
#include "model/nn/architecture.h"
#include "model/nn/network.h"
#include "model/nn/similarity_model.h"
#include "model/signature/soft_dtw.h"
#include "model/train/augment.h"
#include "model/train/head_fit.h"

namespace srn {

// The frame-triplet objective ("learned verifier", issue 18): the encoder's per-frame hidden
// states (the top layer's, as HiddenStates returns them) become local features that DTW aligns,
// and training sees that alignment. For a triplet (anchor, positive, negative) of signatures,
//   loss = max(0, margin + D(anchor, positive) - D(anchor, negative)),
//   D(a, b) = SoftDtw(states(a), states(b)) / (Ta + Tb)
// (soft-DTW of model/signature/soft_dtw.h: smoothing gamma, a Sakoe-Chiba band, the squared or
// the plain Euclidean distance as frame cost), with each state first divided by its Euclidean
// norm when the frames are L2-normalized (kL2: the squared frame cost is then 2 - 2 cos). The
// gradient flows through the soft alignment into the states (SoftDtwBackward) and through time
// into the encoder (Network::BackwardFrames). At evaluation, srn-eval --srn_score=states-dtw
// aligns the same states by plain DTW, normalized and compared the same way (the model records
// both: FrameNormalizationOf, FrameCostOf).
//
// The result is an ordinary weights file of the architecture (a GRU, an LSTM, or a ReLU network
// of two or more layers: one float ReLU layer trains series by series and keeps no per-frame
// states for BackwardFrames), so Embed still works. The objective never trains the pooled
// embedding nor the head (v, c) that Identify and Similarity score it by: after training, the
// head is fitted on the frozen encoder by logistic regression on training pairs
// (FitSimilarityHead, model/train/head_fit.h; FrameTripletOptions::fit_head), which leaves every
// encoder weight, and so every per-frame state, bit for bit what training gave. The metadata's
// hyperparameters record the objective ("objective" = "frame-triplet"), its settings and how the
// head came to be ("head").

// How each per-frame state is normalized before the frame cost.
enum class FrameNormalization {
  kNone,
  kL2,  // divided by its Euclidean norm (plus 1e-6)
};
absl::string_view FrameNormalizationName(FrameNormalization normalization);
// "none" or "l2"; InvalidArgument otherwise.
absl::StatusOr<FrameNormalization> ParseFrameNormalization(absl::string_view name);
// The normalization a model's metadata records (hyperparameter "frame_normalization"; kNone
// when absent, as for every model trained on pairs). InvalidArgument for an unknown value.
absl::StatusOr<FrameNormalization> FrameNormalizationOf(const SimilarityModel& model);
// The frame cost a model's states were trained with (hyperparameter "frame_cost": "squared" or
// "euclidean"; kSquaredEuclidean when absent). InvalidArgument for an unknown value.
absl::StatusOr<DtwLocalCost> FrameCostOf(const SimilarityModel& model);
// "squared" or "euclidean".
absl::string_view FrameCostName(DtwLocalCost cost);
// Applies `normalization` to every row of `states` in place.
void NormalizeFrames(FrameNormalization normalization, RowMatrix* states);

// One training triplet: indices into a dataset (or a batch of series).
struct Triplet {
  int anchor = 0;
  int positive = 0;  // a genuine signature of the anchor's signer, another than the anchor
  int negative = 0;  // a skilled forgery of that signer, or a genuine signature of another
};

// Candidates for one triplet (hard-example mining): the loss takes the positive farthest from
// the anchor and the negative closest to it. One of each is a plain triplet.
struct TripletGroup {
  int anchor = 0;
  std::vector<int> positives;  // not empty
  std::vector<int> negatives;  // not empty
};

// Draws triplets from a dataset of signatures. Anchors and positives are two genuine examples of
// one signer with different origins (an augmented copy's origin is the example it was made from:
// a signature is never its own positive); negatives are, with probability forgery_fraction when
// the anchor's signer has skilled forgeries, one of them, else a genuine example of another
// signer. Immutable after Create; Sample is const and takes the caller's generator.
class TripletSampler final {
 public:
  // `origin[i]` is the original example of data.examples[i] (empty: every example is its own).
  // FailedPrecondition when no signer has genuine examples of two origins, or when there is no
  // negative to draw (one signer without forgeries, or forgery_fraction = 1 and none);
  // InvalidArgument on a forgery_fraction outside [0, 1] or an origin vector of the wrong size.
  static absl::StatusOr<TripletSampler> Create(const Dataset& data, double forgery_fraction,
                                               std::vector<int> origin = {});

  Triplet Sample(std::mt19937_64* rng) const;
  // A triplet's anchor with `candidates` (>= 1) positives and as many negatives, each drawn as
  // Sample draws them (with replacement).
  TripletGroup SampleGroup(int candidates, std::mt19937_64* rng) const;

 private:
  TripletSampler() = default;
  int SamplePositive(int anchor, std::mt19937_64* rng) const;
  int SampleNegative(int anchor, std::mt19937_64* rng) const;

  double forgery_fraction_ = 0.5;
  std::vector<int> labels_;                  // example -> signer
  std::vector<int> origin_;                  // example -> original example
  std::vector<std::vector<int>> genuine_;    // signer -> genuine examples
  std::vector<std::vector<int>> forgeries_;  // signer -> skilled forgeries
  std::vector<int> anchor_signers_;          // signers with genuine examples of two origins
  std::vector<int> all_genuine_;
};

// What the loss needs to know.
struct FrameTripletLossOptions {
  double margin = 0.5;
  SoftDtwOptions soft_dtw;  // gamma and the training band
  FrameNormalization normalization = FrameNormalization::kNone;
};

// Scratch space of FrameTripletLoss, reused from call to call. Not thread-safe: one per thread.
template <typename T>
struct FrameTripletWorkspace {
  typename Network<T>::Workspace net;
  SoftDtwWorkspace<T> dtw;              // anchor and the chosen positive
  SoftDtwWorkspace<T> dtw_negative;     // anchor and the chosen negative
  SoftDtwWorkspace<T> dtw_candidate;    // another candidate, swapped in when it is chosen
  RowMatrixT<T> embeddings;             // unused output of Forward
  std::vector<const Series*> batch;     // the distinct series of the triplets
  std::vector<int> local;               // series index -> position in batch, -1 if unused
  std::vector<RowMatrixT<T>> raw;       // per batch series: top-layer states (Ti x hidden)
  std::vector<RowMatrixT<T>> states;    // ... after the frame normalization
  std::vector<RowMatrixT<T>> d_states;  // d(loss)/d(states), per batch series
  RowMatrixT<T> grad_a, grad_b, d_packed;
};

// What one call of FrameTripletLoss measured.
struct FrameTripletLossStats {
  double loss = 0;        // sum over the triplets of the hinge loss
  int active = 0;         // triplets with a positive loss (the only ones with a gradient)
  double d_positive = 0;  // sum of D(anchor, chosen positive)
  double d_negative = 0;  // sum of D(anchor, chosen negative)
};

// The frame-triplet loss of `groups` (indices into `series`: preprocessed series of the
// network's input_dims) under parameters `params` (training order, no dropout), and, when `grad`
// is not null, `scale` times its gradient added to `grad`. Each group is one triplet: its anchor,
// the positive with the largest D and the negative with the smallest (the first among equals).
// One Forward over the distinct series of the groups, a soft-DTW per candidate pair, a gradient
// for the chosen pairs of active triplets, one BackwardFrames. FailedPrecondition when the
// network has no per-frame states to train (see BackwardFrames); InvalidArgument when a group
// has no positive or negative, an index is out of range, or soft-DTW rejects its input (e.g.
// non-finite states).
template <typename T>
absl::StatusOr<FrameTripletLossStats> FrameTripletLoss(const Network<T>& network, const T* params,
                                                       absl::Span<const Series* const> series,
                                                       absl::Span<const TripletGroup> groups,
                                                       const FrameTripletLossOptions& options,
                                                       T scale, FrameTripletWorkspace<T>* ws,
                                                       T* grad);

// The group of one triplet.
inline TripletGroup GroupOf(const Triplet& t) { return {t.anchor, {t.positive}, {t.negative}}; }

// How to train (defaults: the settings measured in docs/RESULTS.md, "A learned verifier").
struct FrameTripletOptions {
  FrameTripletLossOptions loss;
  double learning_rate = 1e-3;  // Adam
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double clip_norm = 5.0;  // the gradient of each step is scaled down to at most this norm
  double init_scale = 0.1;
  int batch_triplets = 16;
  int triplets_per_epoch = 2000;
  int max_epochs = 20;
  double lr_decay = 0.7;          // learning rate x lr_decay after an epoch without a new best
  int patience = 4;               // stop after this many epochs in a row without a new best
  double forgery_fraction = 0.5;  // see TripletSampler
  // Hard-example mining: each triplet takes the hardest of this many positive and as many
  // negative candidates (TripletSampler::SampleGroup; the loss picks); 1: none.
  int mining_candidates = 1;
  // Validation: the svc2004-cv trials (MakeSignatureTrials: mean fusion, ratio normalization)
  // of the validation signers, scored by plain DTW over the states with this band (and the
  // training's frame cost), for 1 and
  // `validation_refs` references over `validation_draws` draws. The epoch with the lowest mean
  // of the two skilled-forgery EERs is kept.
  double validation_band = 0.3;
  int validation_refs = 5;
  int validation_draws = 5;
  // After training, fit the head (v, c) on the frozen encoder (FitSimilarityHead: head_pairs
  // balanced training pairs with this trainer's forgery_fraction, L2 head_l2, pairs from the
  // seed's own streams); false leaves it at its random initialization. The encoder is the same
  // either way.
  bool fit_head = true;
  int head_pairs = 4000;
  double head_l2 = 1e-2;
  uint64_t seed = 1;
  int threads = 0;  // 0: DefaultThreads()
  // Gradient shards per mini-batch, fixed independently of `threads` so that a seed gives the
  // same model on any machine.
  int shards = 4;
};

// Checks the ranges of every option; InvalidArgument names the first bad one.
absl::Status ValidateFrameTripletOptions(const FrameTripletOptions& options);

struct FrameTripletEpoch {
  int epoch = 0;
  double train_loss = 0;       // mean hinge loss over the epoch's triplets
  double active_fraction = 0;  // share of triplets with a positive loss
  double mean_d_positive = 0;  // mean D(anchor, positive) and D(anchor, negative)
  double mean_d_negative = 0;
  double val_eer_skilled = 0;  // skilled EER with validation_refs references
  double val_eer_skilled_1ref = 0;
  double val_eer_random = 0;  // random-forgery EER with validation_refs references
  double learning_rate = 0;
  bool improved = false;
  double seconds = 0;  // wall time of the epoch, validation included
};

struct FrameTripletCallbacks {
  std::function<void(const FrameTripletEpoch&)> on_epoch;
  std::function<void(int epoch, int step, int steps)> on_step;
  const std::atomic<bool>* cancel = nullptr;  // stop early when set
};

// Everything that defines one training run from raw (unpreprocessed) signature features.
struct FrameTripletConfig {
  Architecture arch;  // input_dims is filled in from the data and window
  int window = 1;
  bool center_series = false;  // see Preprocessor::center_series
  FeatureKind kind = FeatureKind::kSignature;
  AugmentOptions augment;  // copies of the training examples (positives and negatives alike)
  FrameTripletOptions options;
  std::string training_data;  // description stored in the weights file
  std::string command;        // command line stored in the weights file
};

struct FrameTripletResult {
  std::shared_ptr<const SimilarityModel> model;  // the best epoch's parameters
  double best_val_eer = 0;                       // the selection criterion at the best epoch
  int best_epoch = 0;
  std::vector<FrameTripletEpoch> history;
  bool cancelled = false;
  // The head's AUC on balanced pairs of the validation signers (as the pair trainer's val_auc):
  // fitted, and as initialized (the same pairs); -1 when fit_head is false.
  double head_val_auc = -1;
  double head_val_auc_before = -1;
  int head_pairs = 0;  // training pairs the head was fitted on
};

// Fits the preprocessing on `train` (original examples only), augments and preprocesses it,
// trains with Adam on mini-batches of triplets (gradient shards on worker threads, summed in a
// fixed order: a seed always gives the same model), validates on `validation` (signers disjoint
// from train's) after each epoch, fits the head of the best epoch's encoder (fit_head; on the
// original training examples, not the augmented copies) and packages the parameters with
// metadata.
// InvalidArgument on bad options or an architecture without trainable per-frame states (the
// logistic model; one float ReLU layer); FailedPrecondition when the data cannot give triplets
// or validation trials (each validation signer needs more than validation_refs genuine
// signatures, and skilled forgeries), or when the loss diverges.
absl::StatusOr<FrameTripletResult> TrainFrameTripletModel(
    const Dataset& train, const Dataset& validation, const FrameTripletConfig& config,
    const FrameTripletCallbacks& callbacks = {});

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_FRAME_TRIPLET_TRAINER_H_
