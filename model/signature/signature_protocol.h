#ifndef SRN_MODEL_SIGNATURE_SIGNATURE_PROTOCOL_H_
#define SRN_MODEL_SIGNATURE_SIGNATURE_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/eval/dtw.h"
#include "model/metrics/metrics.h"
#include "model/eval/protocols.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/verification.h"
#include "model/nn/similarity_model.h"

namespace srn {

// Signature verification on SVC2004 by signer-disjoint cross-validation ("svc2004-cv").
//
// The signers are shuffled by the seed and dealt into `folds` folds; each fold's signers are the
// test signers of one run, the others train it. For each test signer and each draw, `refs` of its
// genuine signatures are enrolled as references; the trials are
//   genuine   every other genuine signature of the signer            (label 1)
//   skilled   every skilled forgery of the signer                     (label 0, "skilled")
//   random    every genuine signature of the fold's other test signers (label 0, "random")
// A trial's score fuses the query's similarities to the references (ReferenceFusion) and then
// normalizes it by the references' mutual similarities (ScoreNormalization), the classic trick of
// DTW signature verifiers. EERs use one threshold pooled over all test signers of a fold and
// draw ("global", what a deployed service uses) and, labelled as such, the mean over signers of
// each signer's own a-posteriori EER ("per-signer"). Means and spreads are over folds x draws.
// All functions are pure and thread-safe apart from the scorers the caller passes.

// The signers (labels) of each fold: a partition of 0..num_signers-1, shuffled by `seed`, fold
// sizes differing by at most one. InvalidArgument unless 2 <= folds <= num_signers.
absl::StatusOr<std::vector<std::vector<int>>> SignatureCvFolds(int num_signers, int folds,
                                                               uint64_t seed);

// The split of `data` for fold `fold`: test = the fold's signers (genuine and forgeries),
// validation = 3 (10%, at least 2) of the other signers chosen by the seed, train = the rest.
// InvalidArgument on a bad fold or when the data has too few signers.
absl::StatusOr<Split> MakeSignatureCvSplit(const Dataset& data, int folds, int fold,
                                           uint64_t seed);

// The "signers" split of `data` for training on every signer (e.g. several signature datasets
// merged by MergeDatasets): validation = 10% (at least 2) of the eligible signers, those with
// skilled forgeries and more than `min_validation_genuine` - 1 genuine signatures (validation
// scores their skilled forgeries with up to 5 references), chosen by the seed; train = every
// other signer; test is empty. The description names the validation signers. InvalidArgument
// when fewer than 2 signers are eligible or no signer would be left to train.
absl::StatusOr<Split> MakeSignatureSignersSplit(const Dataset& data, uint64_t seed,
                                                int min_validation_genuine = 6);

// The similarity of test examples i and j (indices into the test set); higher = more similar.
// Called from several threads at once.
using TrialScorer = std::function<double(int i, int j)>;

// Similarities between every example of `test` and every genuine example (the possible
// references), as a dense n x n matrix (other cells NaN). The scorer is assumed symmetric and
// called once per unordered pair.
std::vector<double> SimilarityMatrix(const Dataset& test, const TrialScorer& score, int threads);

struct SignatureCvOptions {
  int folds = 4;
  std::vector<int> refs = {1, 5};
  int draws = 5;
  uint64_t seed = 1;       // reference draws
  // Deals signers into folds. srn-train --protocol=svc2004-cv always uses 1, so fold models are
  // only valid with 1 (a different value would test on their training signers).
  uint64_t fold_seed = 1;
  ReferenceFusion fusion = ReferenceFusion::kMean;
  int top_k = 3;
  ScoreNormalization normalization = ScoreNormalization::kNone;
  int threads = 0;       // 0: DefaultThreads()
  int curve_points = 200;
};

// Every trial of one fold for one reference count, over all draws.
struct SignatureTrials {
  int refs = 0;
  std::vector<double> score;  // normalized scores
  std::vector<int> label;     // 1 genuine, 0 forgery
  std::vector<bool> skilled;  // for label 0: skilled (true) or random (false) forgery
  std::vector<int> signer;    // the claimed identity
  std::vector<int> draw;
  std::vector<int> query;     // the query, an index into the fold's test set
};

// Builds the trials of one fold from its similarity matrix (see SimilarityMatrix; `test` holds
// only the fold's signers). Draw d of signer s uses a generator seeded by (seed, s, d), so the
// same references are enrolled whatever the scorer. With one reference and ratio normalization,
// a non-empty `single_reference_spread` (one per test example, see PredictDtwSpread) divides the
// score in place of the mutual scores there are none of. InvalidArgument when a signer has no
// more than `refs` genuine examples, refs < 1, or the matrix or the spreads have the wrong size.
absl::StatusOr<SignatureTrials> MakeSignatureTrials(
    const Dataset& test, absl::Span<const double> similarity, int refs,
    const SignatureCvOptions& options, absl::Span<const double> single_reference_spread = {});

// Error rates of one set of trials (one fold, one draw).
struct VerificationErrors {
  double eer_skilled = 0;             // global threshold, genuine vs skilled forgeries
  double eer_random = 0;              // global threshold, genuine vs random forgeries
  // Mean of each signer's a-posteriori EER (skilled: over the signers with skilled forgeries).
  double eer_skilled_per_signer = 0;
  double eer_random_per_signer = 0;
};

// The trials of several folds as one set (one global threshold over all of them).
SignatureTrials ConcatenateTrials(const std::vector<SignatureTrials>& folds);

// Error rates at a threshold, over every draw: a trial is accepted iff its score, as the float a
// server returns, is >= threshold. Rates are 0 for a kind without trials.
struct ErrorRates {
  double frr = 0, far_skilled = 0, far_random = 0;
  int64_t genuine = 0, skilled = 0, random = 0;  // trials of each kind
};
ErrorRates ErrorRatesAt(const SignatureTrials& trials, double threshold);

// EERs of the trials of one draw (all draws when draw < 0). InvalidArgument when a needed class
// of trials is missing.
absl::StatusOr<VerificationErrors> ComputeVerificationErrors(const SignatureTrials& trials,
                                                             int draw);

struct MeanSpread {
  double mean = 0;
  double stddev = 0;  // population standard deviation over folds x draws
};

struct SignatureCvRow {
  std::string model;  // set by the caller, for WriteDetCsv
  int refs = 0;
  MeanSpread eer_skilled, eer_random, eer_skilled_per_signer, eer_random_per_signer;
  double fold_stddev_skilled = 0;  // spread of the per-fold means (draws averaged)
  std::vector<OperatingPoint>
      det_skilled;  // pooled over folds and draws, thinned (fusions: at the deployed weight)
  std::vector<OperatingPoint> det_random;
};

// Summarizes trials of every fold (all for the same refs).
absl::StatusOr<SignatureCvRow> SummarizeSignatureCv(const std::vector<SignatureTrials>& folds,
                                                    int curve_points);

// Fusion of two systems' trials (same folds, refs, draws and trial order): score = a + w * b,
// where w is chosen for each fold among `weights` by the lowest mean skilled EER on the other
// folds (no test data of a fold decides its own weight). `chosen`, if given, receives them;
// `all_folds_weight`, if given, the weight with the lowest mean over all folds (the one to
// deploy). With one fold, that fold chooses its own weight.
absl::StatusOr<std::vector<SignatureTrials>> FuseSystems(const std::vector<SignatureTrials>& a,
                                                         const std::vector<SignatureTrials>& b,
                                                         absl::Span<const double> weights,
                                                         std::vector<double>* chosen = nullptr,
                                                         double* all_folds_weight = nullptr);

// The equal-error threshold (srn::Eer) of genuine against skilled-forgery trials pooled over
// all folds (accept iff score >= threshold). InvalidArgument without genuine or skilled trials.
absl::StatusOr<double> EqualErrorThreshold(const std::vector<SignatureTrials>& folds);

// Calibration of per-subject thresholds: for each fold, the normalized threshold for
// `target_far` is chosen on the other folds' skilled-forgery scores and applied to this fold.
struct FarCalibration {
  double target_far = 0;
  double far_skilled = 0;  // mean achieved over folds
  double far_random = 0;
  double frr = 0;
  double threshold = 0;    // chosen on all folds pooled (the one to ship)
};
absl::StatusOr<FarCalibration> CalibrateFar(const std::vector<SignatureTrials>& folds,
                                            double target_far);

// "RESULT protocol=svc2004-cv dataset=svc2004 model=<m> refs=<n> eer_skilled=<x> eer_random=<y>"
// plus the per-signer EERs (eer_skilled_ps=, eer_random_ps=).
std::string SignatureResultLine(const std::string& model, const SignatureCvRow& row);

// Writes "model,kind,refs,threshold,far,frr" rows (kind skilled or random) for every row's DET
// curves.
absl::Status WriteDetCsv(const std::vector<SignatureCvRow>& rows, const std::string& path);

// Scorer factories for one fold. Each gets the fold's split and returns a scorer over the
// indices of split.test (which it may keep borrowed: the split outlives the scorer).
using FoldScorerFactory = std::function<absl::StatusOr<TrialScorer>(int fold, const Split& split)>;

// The DTW scorer: similarity = -normalized DTW distance of the prepared series. Without
// per-series normalization, the series are first standardized with statistics of split.train
// (as the SRN's inputs are).
FoldScorerFactory DtwFoldScorer(const SignatureDtwOptions& options);

// How the SRN scores a pair of embeddings a, b.
enum class SrnScore {
  kProbability,  // the model's similarity sigmoid(v . (a * b) + c) in [0, 1] (what srn-server
                 // fuses)
  kLogit,        // v . (a * b) + c
  // -sqrt(sum_k |v_k| (a_k - b_k)^2): a distance between embeddings weighted by the head. The
  // head's form is bilinear, so its score is not largest for identical embeddings; this is.
  kDistance,
  // -normalized DTW distance between the top layer's per-frame hidden states of the two series
  // (the encoder as a learned frame-feature extractor, aligned by DTW instead of pooled).
  kStatesDtw,
};
absl::StatusOr<SrnScore> ParseSrnScore(const std::string& name);

// The SRN scorer: `model_for_fold(fold)` gives the weights trained on that fold's train signers.
// `dtw` is the band and frame cost of SrnScore::kStatesDtw; with `states_cost_from_model` the
// frame cost is instead the one the model records (FrameCostOf).
FoldScorerFactory SrnFoldScorer(
    std::function<absl::StatusOr<std::shared_ptr<const SimilarityModel>>(int fold)> model_for_fold,
    SrnScore score = SrnScore::kProbability, const DtwOptions& dtw = DtwOptions::Fraction(0.1),
    bool states_cost_from_model = false);


// One fold's test signers and their similarity matrix (see SimilarityMatrix).
struct FoldMatrix {
  Dataset test;
  std::vector<double> similarity;
  // Optional: each test example's spread as a single reference (see MakeSignatureTrials).
  std::vector<double> single_reference_spread;
};

// The trials of one fold scored as srn-server's Verify scores them (ScoreVerification with
// `policy`): `srn` holds the model's similarities (SrnScore::kProbability), `dtw` (null: no
// DTW) the same test set's DtwFoldScorer matrix, and `single_reference_spread` (empty: none) each
// example's predicted spread as a single reference. Same trials, in the same order, as
// MakeSignatureTrials; `references`, if given, receives each trial's enrolled references
// (indices into the test set), in enrollment order. With policy.learned = kStatesDtw, `srn`
// holds minus the states' distances and, with one reference, its single_reference_spread (empty:
// 1) is the reference's predicted spread of them.
absl::StatusOr<SignatureTrials> ServedTrials(const FoldMatrix& srn, const FoldMatrix* dtw,
                                             int refs, const SignatureCvOptions& options,
                                             const VerificationPolicy& policy,
                                             absl::Span<const double> single_reference_spread = {},
                                             std::vector<std::vector<int>>* references = nullptr);

// The served trials' CSV (srn-eval --served_trials): a header line, then one row per trial
// "fold,refs,draw,signer,label,kind,query,references,score" with the query's and references'
// source files (references ';'-separated, in enrollment order) and the score as a float (%.9g,
// which reads back to the same float). `references` is ServedTrials' output for `trials`.
inline constexpr char kServedTrialsCsvHeader[] =
    "fold,refs,draw,signer,label,kind,query,references,score\n";
void AppendServedTrialsCsv(int fold, const Dataset& test, const SignatureTrials& trials,
                           const std::vector<std::vector<int>>& references, std::ostream& out);

// Scores every fold with one scorer (the expensive part; trials are cheap afterwards).
absl::StatusOr<std::vector<FoldMatrix>> ScoreSignatureFolds(const Dataset& data,
                                                            const FoldScorerFactory& factory,
                                                            const SignatureCvOptions& options);

// Sets each fold's single_reference_spread: a DtwSpreadModel fitted on the other folds' signers
// (never the fold's own) predicts each test example's spread. The models are fitted on the
// within-signer distances the matrices already hold, so `folds` must come from
// ScoreSignatureFolds with a distance scorer (similarity = -distance > 0: DtwFoldScorer's, or
// SrnFoldScorer's with SrnScore::kStatesDtw), whose folds together hold every signer. Returns
// the fold models; `all_signers`, if given, receives the model fitted on every fold's signers
// (the one to deploy).
absl::StatusOr<std::vector<DtwSpreadModel>> PredictFoldSpreads(std::vector<FoldMatrix>* folds,
                                                               DtwSpreadModel* all_signers);

// The spread model (FitDtwSpreadModel) of one matrix's within-signer distances: a distance
// scorer's matrix, as for PredictFoldSpreads, whose signers all give samples.
absl::StatusOr<DtwSpreadModel> FitMatrixSpreadModel(const FoldMatrix& matrix);

// Sets matrix->single_reference_spread to `model`'s prediction for each test example; errors name
// the example.
absl::Status SetSingleReferenceSpreads(const DtwSpreadModel& model, FoldMatrix* matrix);

// The trials of every fold for one reference count: trials[fold].
absl::StatusOr<std::vector<SignatureTrials>> FoldTrials(const std::vector<FoldMatrix>& folds,
                                                        int refs,
                                                        const SignatureCvOptions& options);

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_SIGNATURE_PROTOCOL_H_
