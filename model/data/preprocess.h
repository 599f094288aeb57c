#ifndef SRN_MODEL_DATA_PREPROCESS_H_
#define SRN_MODEL_DATA_PREPROCESS_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/series.h"

namespace srn {

// The widest sliding window a Preprocessor accepts (frames concatenated per output frame).
inline constexpr int kMaxPreprocessWindow = 64;

// The furthest a served input value may lie from the model's training data, in training standard
// deviations of its feature (after the preprocessor's standardization): real inputs lie within a
// few dozen; a million leaves every network's arithmetic far from float overflow, where values
// near the float limit (3.4e38) overflow already in the standardization and turn into NaN.
inline constexpr double kMaxStandardizedValue = 1e6;
// The largest magnitude of a served raw value whatever the statistics: float sums over a whole
// series (the per-series mean of center_series) stay finite below it.
inline constexpr double kMaxRawValue = 1e30;

// What a model's raw inputs are.
enum class FeatureKind {
  kFrames,     // frames of raw_dims numbers (e.g. MFCCs), as given
  kSignature,  // pen samples turned into features by ComputeSignatureFeatures
};

// The preprocessing a model applies to every raw series before its encoder: per-feature
// standardization with statistics learned on the training data, then the paper's sliding window
// (stride 1, concatenating `window` consecutive frames). Stored in the weights file so that
// serving applies exactly what training did. A value type; const methods are thread-safe.
struct Preprocessor {
  FeatureKind kind = FeatureKind::kFrames;
  int raw_dims = 0;
  Vector mean;   // raw_dims
  Vector scale;  // raw_dims; 1 / stddev (1 where a feature is constant on the training data)
  int window = 1;
  // Subtract each series' own mean per feature first (cepstral mean normalization for speech):
  // removes constant offsets such as a speaker's or a channel's, at the price of the information
  // they carry. `mean` and `scale` are then statistics of centred training frames.
  bool center_series = false;

  int output_dims() const { return raw_dims * window; }

  // Learns mean and standard deviation per feature over all frames of `series` (all must have
  // raw_dims features). InvalidArgument on no series, mismatched dims or window < 1.
  static absl::StatusOr<Preprocessor> Fit(const std::vector<const Series*>& series, int window,
                                          FeatureKind kind = FeatureKind::kFrames,
                                          bool center_series = false);

  // Standardizes then windows one raw series: output has max(1, T - window + 1) frames of
  // output_dims() features; a series shorter than the window is padded by repeating its last
  // frame. InvalidArgument when `raw` has the wrong number of features or is empty. Values are
  // not checked for finiteness here: entry points run ValidateSeries on outside input first.
  // Allocates only the result and one T x raw_dims scratch matrix.
  absl::StatusOr<Series> Apply(const Series& raw) const;

  // One value of a raw series that a served model must not take: not finite, beyond
  // kMaxRawValue in magnitude, or standardizing (with this preprocessor's statistics, after
  // centring when center_series) to more than kMaxStandardizedValue in magnitude.
  struct OutOfRange {
    int frame = 0;
    int feature = 0;
    float value = 0;           // as given
    double standardized = 0;   // what standardization makes of it (may be infinite)
    double low = 0, high = 0;  // the values this feature may take in this series
  };
  // The first such value of `raw` (which must have raw_dims features), or nullopt. Computed in
  // double, so it reports what float arithmetic would overflow on. O(length x raw_dims).
  std::optional<OutOfRange> FirstOutOfRange(const Series& raw) const;

  // InvalidArgument unless raw_dims > 0, mean and scale have raw_dims finite entries and
  // window is in [1, kMaxPreprocessWindow].
  absl::Status Validate() const;
};

}  // namespace srn

#endif  // SRN_MODEL_DATA_PREPROCESS_H_
