#ifndef SRN_MODEL_SIGNATURE_SIGNATURE_DTW_H_
#define SRN_MODEL_SIGNATURE_SIGNATURE_DTW_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/eval/dtw.h"
#include "model/data/series.h"

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

// SelectAndNormalize with the options' features and normalization, of the features capped at
// kMaxDtwFrames.
absl::StatusOr<Series> PrepareForSignatureDtw(const Series& features,
                                              const SignatureDtwOptions& options);

// The length-normalized DTW distance of two prepared series (NormalizedDtwDistance).
// With `cancel`, stops early once it says stop (see DtwDistance): check it before using the
// result.
double SignatureDtwDistance(const Series& a, const Series& b, const SignatureDtwOptions& options,
                            const Cancellation* cancel = nullptr);

// The mean distance between the r prepared references over their r(r-1)/2 pairs: the spread
// that a query's distance is divided by. 1 for fewer than 2 references (no normalization).
double MeanMutualDtwDistance(absl::Span<const Series> references,
                             const SignatureDtwOptions& options);

// With one reference there are no mutual distances to divide a query's distance by, yet how much a
// signer's own signatures differ (the spread) varies by tens of percent between signers, and it is
// what makes one global threshold worse than each signer's own. The verifier then divides by a
// spread predicted from the reference's shape (docs/RESULTS.md, "One reference"):
//   log D = c0 + c1 log(width / height) + c2 mean pressure + c3 log(path length),
// width, height and path length of the translation- and scale-normalized trajectory (features 0
// and 1 of ComputeSignatureFeatures), mean pressure of feature 9 (pressure over the signature's
// maximum). The prediction is clamped to the range of the spreads it was fitted on.
inline constexpr int kSpreadDescriptors = 3;

struct DtwSpreadModel {
  std::array<double, kSpreadDescriptors + 1> coefficients = {};  // c0 (intercept), c1..c3
  double log_min = 0, log_max = 0;                               // the clamp on log D
  // The mean pressure descriptor of the fitting signatures that have pressure, which stands in
  // for a signature without pressure (a mean pressure of exactly 0: a tablet or a pad that
  // reports none); <= 0: unknown (such a signature's 0 is used as it is).
  double mean_pressure = 0;
};

// The three descriptors above of one signature's features (12 per frame, as
// ComputeSignatureFeatures makes them). InvalidArgument on fewer than 2 frames or 12 features.
absl::StatusOr<std::array<double, kSpreadDescriptors>> SignatureShapeDescriptors(
    const Series& features);

// What the model is fitted on, one genuine signature each: its descriptors, and the log of its
// mean DTW distance to its signer's other genuine signatures (the spread it should predict).
struct SpreadSample {
  std::array<double, kSpreadDescriptors> descriptors = {};
  double log_spread = 0;
};

// The sample of one signature from its features and its DTW distances to its signer's other
// genuine signatures. InvalidArgument on unusable features, no distances, or a mean distance
// that is not positive and finite (duplicate signatures).
absl::StatusOr<SpreadSample> MakeSpreadSample(const Series& features,
                                              absl::Span<const double> distances);

// The genuine examples (forgery == false) of each label that has at least 2 of them, as indices
// into data.examples: the signatures a spread can be measured on.
std::vector<std::vector<int>> GenuineGroups(const Dataset& data);

// The samples of every signature of GenuineGroups(data), its distances computed here (with
// `threads` threads; 0: all cores). Errors name the signature.
absl::StatusOr<std::vector<SpreadSample>> DtwSpreadSamples(const Dataset& data,
                                                           const SignatureDtwOptions& options,
                                                           int threads);

// Fits the model by least squares; the clamp is the samples' range of log_spread. Samples without
// pressure take the mean pressure of those with it (see DtwSpreadModel::mean_pressure).
// InvalidArgument on fewer than 10 samples.
absl::StatusOr<DtwSpreadModel> FitDtwSpreadModel(absl::Span<const SpreadSample> samples);

// The predicted spread D of one reference (see above), from its features; a signature without
// pressure is given the model's mean_pressure.
absl::StatusOr<double> PredictDtwSpread(const DtwSpreadModel& model, const Series& features);

// "c0,c1,c2,c3,log_min,log_max[,mean_pressure]", as srn-eval prints it and srn-server
// --dtw_spread reads it (mean_pressure only when known).
std::string FormatDtwSpreadModel(const DtwSpreadModel& model);
// InvalidArgument on anything but six or seven finite numbers with log_min <= log_max.
absl::StatusOr<DtwSpreadModel> ParseDtwSpreadModel(absl::string_view text);


}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_SIGNATURE_DTW_H_
