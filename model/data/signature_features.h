#ifndef SRN_MODEL_DATA_SIGNATURE_FEATURES_H_
#define SRN_MODEL_DATA_SIGNATURE_FEATURES_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/series.h"

namespace srn {

// One sample of an online signature as a tablet reports it. Only pen-down samples are
// expected (SVC2004 records no pen-up points); `stroke_start` marks the first sample after the
// pen touched the surface again.
struct PenSample {
  double x = 0, y = 0, t_ms = 0;
  double pressure = 0;
  bool stroke_start = false;
};

inline constexpr int kSignatureFeatureDims = 12;

// Turns raw pen samples into per-sample features, invariant to translation and scale (so tablets
// with different resolutions work with one model). Output: one frame per sample, features
//    0  x~      (x - mean x) / R, where R = sqrt(mean((x - mx)^2 + (y - my)^2)) (RMS radius)
//    1  y~      (y - mean y) / R
//    2  vx      d x~ / dt  (per second)
//    3  vy      d y~ / dt
//    4  speed   sqrt(vx^2 + vy^2)
//    5  cos     vx / speed, the cosine of the path-tangent angle (1 where speed ~ 0)
//    6  sin     vy / speed (0 where speed ~ 0)
//    7  ax      d vx / dt
//    8  ay      d vy / dt
//    9  p       pressure / max pressure of the signature (0 if !has_pressure or max is 0)
//   10  dp      d p / dt
//   11  start   1 on the first sample of each stroke (always on sample 0), else 0
// Derivatives are central differences (one-sided at both ends) over a robust time step dt: the
// median of the positive timestamp differences, or 10 ms if there is none. Timestamps are not
// used otherwise, because tablets report repeated (0 ms) and even backwards timestamps.
// InvalidArgument on fewer than 2 samples, non-finite values, negative pressure or all points
// identical (zero radius). Pure function; thread-safe.
absl::StatusOr<Series> ComputeSignatureFeatures(absl::Span<const PenSample> samples,
                                                bool has_pressure);

}  // namespace srn

#endif  // SRN_MODEL_DATA_SIGNATURE_FEATURES_H_
