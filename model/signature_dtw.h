#ifndef SRN_MODEL_SIGNATURE_DTW_H_
#define SRN_MODEL_SIGNATURE_DTW_H_

#include <vector>

#include "absl/status/statusor.h"
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
// signature, and a 30% Sakoe-Chiba band. All functions are pure and thread-safe.
struct SignatureDtwOptions {
  DtwOptions dtw = DtwOptions::Fraction(0.3);
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

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_DTW_H_
