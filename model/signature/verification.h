#ifndef SRN_MODEL_SIGNATURE_VERIFICATION_H_
#define SRN_MODEL_SIGNATURE_VERIFICATION_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/data/series.h"
#include "model/nn/similarity_model.h"
#include "model/signature/signature_dtw.h"

namespace srn {

// Verification: how a query's scores against a subject's references become one decision. The
// one place srn computes a verification score: srn-server's Verify and Identify and srn-eval's
// protocols all call these functions, so what is measured is what is served.
// All functions are pure and thread-safe.

// How a query's similarities to the references become one score (higher = more similar).
enum class ReferenceFusion {
  kMax,       // the closest reference
  kMean,      // the mean over references
  kTopKMean,  // the mean of the top_k most similar references (top_k >= number: kMean)
};

// How a fused score is normalized by the references' mutual similarities m (mean over the
// r(r-1)/2 reference pairs). With one reference there are no mutual scores and the score is
// used as is.
enum class ScoreNormalization {
  kNone,
  kRatio,  // s / |m|: for distance-like scores (DTW: s = -distance, so -d / mean mutual d)
  kShift,  // s - m: for logit-like scores (the SRN head)
};

absl::StatusOr<ReferenceFusion> ParseReferenceFusion(const std::string& name);
std::string ReferenceFusionName(ReferenceFusion fusion);
absl::StatusOr<ScoreNormalization> ParseScoreNormalization(const std::string& name);
std::string ScoreNormalizationName(ScoreNormalization normalization);

// Fuses one query's similarities to the references; 0 for none (a subject always has one).
double FuseReferenceScores(absl::Span<const double> scores, ReferenceFusion fusion, int top_k);

// The mean of the references' mutual similarities (0 when fewer than 2 scores are given).
double MeanMutualScore(absl::Span<const double> mutual_scores);

// Applies the normalization to a fused score given the references' mutual similarities
// (any order, r(r-1)/2 of them; empty for one reference: the score is returned unchanged).
double NormalizeScore(double fused, absl::Span<const double> mutual_scores,
                      ScoreNormalization normalization);

// Per-subject thresholds. A global threshold t on the normalized score, chosen for a target FAR
// on cross-validated impostor scores (ThresholdForFar), becomes a threshold on one subject's raw
// fused score from that subject's references alone: accept a raw fused score s iff
// s >= SubjectThreshold(mutual, t, normalization), which is exactly NormalizeScore(s) >= t.
// A service computes the mutual scores once at enrollment and stores the result.
double SubjectThreshold(absl::Span<const double> mutual_scores, double normalized_threshold,
                        ScoreNormalization normalization);

// The lowest threshold on `impostor_scores` whose false-accept rate is at most `target_far`
// (accept iff score >= threshold); +infinity when even the highest score would exceed it.
// InvalidArgument on no scores, a non-finite score, or target_far outside [0, 1].
absl::StatusOr<double> ThresholdForFar(absl::Span<const double> impostor_scores, double target_far);

// The model's similarities among `references` (r x embedding_dims, one row each), the
// r(r-1)/2 pairs in order (0,1), (0,2), ..., (1,2), ...: what the mutual terms above take.
std::vector<double> MutualSimilarities(const SimilarityModel& model, const RowMatrix& references);

// How a service fuses an SRN's verification score with the DTW verifier, as measured by
// `srn-eval --protocol=svc2004-cv --fuse_dtw=...` ("to deploy" lines): the fused score
//   f = s - m - w * d / D        (s: mean similarity of the query to the references, m: the
//                                  references' mean mutual similarity, d: the query's mean DTW
//                                  distance to them, D: MeanMutualDtwDistance, or with one
//                                  reference PredictDtwSpread; m = 0 with one reference)
// is the cross-validated fusion (SRN shift-normalized, DTW ratio-normalized), and the served score
// is sigmoid(f - offset), in (0, 1) and 0.5 at the cross-validated equal-error point. The weight w
// and the offset are measured separately for one reference and for several (with 5). Not a
// probability.
struct DtwFusionCalibration {
  double weight_one = 0;   // w with one reference
  double offset_one = 0;   // equal-error threshold of f with one reference
  double weight_many = 0;  // w with several references
  double offset_many = 0;  // equal-error threshold of f with several

  // The fusion is off when both weights are 0.
  bool enabled() const { return weight_one > 0 || weight_many > 0; }
};

// Parses "W1:O1,WN:ON" (weight and offset with one reference, then with several), as srn-eval
// prints them. InvalidArgument on anything else, a negative or non-finite weight or a non-finite
// offset.
absl::StatusOr<DtwFusionCalibration> ParseDtwFusionCalibration(absl::string_view text);

// The served score above. `dtw_ratio` is d / D.
double FusedVerificationScore(double srn_mean, double srn_mutual, double dtw_ratio, int references,
                              const DtwFusionCalibration& calibration);

// The served score of a states-DTW model: f = -d_s / D_s - w * d / D (the learned ratio
// `states_ratio` = d_s / D_s, and as above), sigmoid(f - offset), with the weight and offset for
// one or several references. With w = 0 it is the learned score alone, calibrated.
double StatesVerificationScore(double states_ratio, double dtw_ratio, int references,
                               const DtwFusionCalibration& calibration);

// "W1:O1,WN:ON", as ParseDtwFusionCalibration reads it.
std::string FormatDtwFusionCalibration(const DtwFusionCalibration& calibration);

// Which learned score Verify compares a query with the references by.
enum class LearnedScore {
  // The head's similarity of the pooled embeddings (SimilarityModel::Score), shift-normalized
  // by the references' mutual similarities: every model trained on pairs.
  kEmbedding,
  // The DTW distance between the encoder's per-frame states (StatesDistance,
  // model/signature/frame_states.h), ratio-normalized: d / D, where D is the references' mean
  // mutual distance, or with one reference the spread `states_spread` predicts (1 without one).
  // The served score is then always calibrated (see VerifiedScore): models trained by the
  // frame-triplet objective.
  kStatesDtw,
};
std::string LearnedScoreName(LearnedScore score);  // "embedding" or "states-dtw"
absl::StatusOr<LearnedScore> ParseLearnedScore(absl::string_view name);

// How one model verifies, as measured for it: its learned score, the DTW fusion and the
// one-reference spread models. It travels in the model's weights file
// (ModelMetadata::verification), so that a model and its calibration cannot drift apart.
struct VerificationCalibration {
  LearnedScore learned = LearnedScore::kEmbedding;
  // kStatesDtw: the DTW that aligns the states (band and frame cost), and the spread of one
  // reference's states (unset: not divided).
  DtwOptions states_dtw = DtwOptions::Fraction(0.3).WithCost(DtwLocalCost::kEuclidean);
  std::optional<DtwSpreadModel> states_spread;
  // The fusion with the hand-made-feature DTW verifier and the served score's offsets. With
  // kStatesDtw the weights may be 0 (the learned score alone), the offsets still apply.
  DtwFusionCalibration dtw_fusion;           // with kEmbedding: off when not enabled()
  std::optional<DtwSpreadModel> dtw_spread;  // with one reference; unset: not divided
};

// "[learned=states-dtw states_band=F states_cost=euclidean|squared states_spread=...]
// dtw_fusion=W1:O1,WN:ON dtw_spread=c0,c1,c2,c3,log_min,log_max" (every part may be absent; ""
// is no calibration: the embedding score, not fused), as ModelMetadata::verification holds it.
std::string FormatVerificationCalibration(const VerificationCalibration& calibration);
// InvalidArgument naming the bad part.
absl::StatusOr<VerificationCalibration> ParseVerificationCalibration(absl::string_view text);
// The calibration a model's weights file records (none when it records none).
absl::StatusOr<VerificationCalibration> ModelVerificationCalibration(const SimilarityModel& model);

// How a service combines the scores of one query: the reference fusion, and the DTW fusion when
// the model's calibration enables it (signature models only).
struct VerificationPolicy {
  LearnedScore learned = LearnedScore::kEmbedding;
  ReferenceFusion fusion = ReferenceFusion::kMean;  // of the embedding score (kStatesDtw: mean)
  int top_k = 3;  // for kTopKMean
  DtwFusionCalibration dtw_fusion;
};

// What one query brings against one subject.
struct VerificationEvidence {
  // kEmbedding: the model's similarity to each reference, and MeanMutualScore of
  // MutualSimilarities(references). kStatesDtw: minus the states' distance to each reference,
  // and minus their spread D (see LearnedScore).
  absl::Span<const double> similarities;
  double mutual_similarity = 0;
  absl::Span<const double> dtw_distances; // DTW distance to each reference; empty: no DTW
  double dtw_spread = 1;                  // MeanMutualDtwDistance, or PredictDtwSpread of one
};

struct VerificationScore {
  double srn = 0;                   // the fused similarity (FuseReferenceScores)
  std::optional<double> states_ratio;  // kStatesDtw: d / D, the learned score's ratio
  std::optional<double> dtw_ratio;  // mean DTW distance over the spread, when fused
  double score = 0;                 // what is compared with the threshold
};

// The verification score of one query. kEmbedding: the fused similarity, or with DTW fusion
// (enabled and distances given) FusedVerificationScore of it. kStatesDtw: always
// StatesVerificationScore (srn = the mean of `similarities`), the DTW part when its weight for
// this number of references is positive and distances are given.
VerificationScore ScoreVerification(const VerificationEvidence& evidence,
                                    const VerificationPolicy& policy);

// The threshold a subject derives from its references (EnrollRequest.threshold_shift), clamped
// to [0, 1]: the references' mean mutual similarity plus `shift` (SubjectThreshold, shift
// form), or 0.5 plus it when the score is DTW-fused (already normalized by the references).
// InvalidArgument with fewer than 2 references.
absl::StatusOr<double> DerivedThreshold(int references, double mutual_similarity, double shift,
                                        bool fused);

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_VERIFICATION_H_
