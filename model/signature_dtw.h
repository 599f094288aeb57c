#ifndef SRN_MODEL_SIGNATURE_DTW_H_
#define SRN_MODEL_SIGNATURE_DTW_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/dtw.h"
#include "model/series.h"

namespace srn {

// The classic DTW signature verifier that srn fuses with the SRN score: DTW distance between a
// query and each enrolled reference, normalized by the references' distances to each other.
//
// Its defaults are the configuration measured best on SVC2004 (docs/RESULTS.md, "Signature
// verification"): of the 12 features of ComputeSignatureFeatures, the normalized coordinates,
// velocities, path-tangent cosine and sine and pressure, each z-normalized within its own
// signature, a 30% Sakoe-Chiba band, and the Euclidean (not squared) distance between frames.
// All functions are pure and thread-safe.
struct SignatureDtwOptions {
  DtwOptions dtw = DtwOptions::Fraction(0.3).WithCost(DtwLocalCost::kEuclidean);
  std::vector<int> features = {0, 1, 2, 3, 5, 6, 9};  // column indices, in order; empty: all
  // z-normalize each series on its own; false leaves the columns as given (e.g. standardized
  // with training statistics by the caller).
  bool per_series = true;
};

// Keeps `features` (empty: all) of a series, in that order, then, if `per_series`, z-normalizes
// each kept column by its own mean and standard deviation (a column with spread below 1e-6
// becomes 0). InvalidArgument on an empty series or a column index outside it.
absl::StatusOr<Series> SelectAndNormalize(const Series& series, absl::Span<const int> features,
                                          bool per_series);

// SelectAndNormalize with the options' features and normalization.
absl::StatusOr<Series> PrepareForSignatureDtw(const Series& features,
                                              const SignatureDtwOptions& options);

// The length-normalized DTW distance of two prepared series (NormalizedDtwDistance).
double SignatureDtwDistance(const Series& a, const Series& b, const SignatureDtwOptions& options);

// The mean distance between the r prepared references over their r(r-1)/2 pairs: the spread
// that a query's distance is divided by. 1 for fewer than 2 references (no normalization).
double MeanMutualDtwDistance(absl::Span<const Series> references,
                             const SignatureDtwOptions& options);

// How a service fuses an SRN's verification score with the DTW verifier, as measured by
// `srn-eval --protocol=svc2004-cv --fuse_dtw=...` ("to deploy" lines): the fused score
//   f = s - m - w * d / D        (s: mean similarity of the query to the references, m: the
//                                  references' mean mutual similarity, d: the query's mean DTW
//                                  distance to them, D: MeanMutualDtwDistance; m = 0 and D = 1
//                                  with one reference)
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

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_DTW_H_
