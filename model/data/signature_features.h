#ifndef SRN_MODEL_DATA_SIGNATURE_FEATURES_H_
#define SRN_MODEL_DATA_SIGNATURE_FEATURES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/series.h"

namespace srn {

// One sample of an online signature as a tablet reports it. Only pen-down samples are
// expected (SVC2004 records no pen-up points; readers of tablets that record hovering, such as
// SigComp2009's, drop those); `stroke_start` marks the first sample after the pen touched the
// surface again.
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
//
// The features' short names, in this order (for messages).
inline constexpr const char* kSignatureFeatureNames[kSignatureFeatureDims] = {
    "x~", "y~", "vx", "vy", "speed", "cos", "sin", "ax", "ay", "p", "dp", "start"};
absl::StatusOr<Series> ComputeSignatureFeatures(absl::Span<const PenSample> samples,
                                                bool has_pressure);

// Sets the pressure features (9 and 10) of signature features to 0, as ComputeSignatureFeatures
// makes them for a tablet without pressure. InvalidArgument unless the series has
// kSignatureFeatureDims features.
absl::Status DropPressure(Series* features);

// The one sampling rate of signature features: SVC2004's 100 Hz. Velocities are per second
// whatever the rate, but the frames per second (what a recurrent network and DTW see), and the
// noise of the central differences (x2 for velocity, x4 for acceleration when the step halves),
// are not; so samples from tablets at other rates are resampled to this rate first.
inline constexpr double kSignatureRateHz = 100.0;
inline constexpr double kSignatureStepMs = 1000.0 / kSignatureRateHz;

// Resamples pen-down samples to one sample every `step_ms` by time, stroke by stroke (a stroke
// starts at sample 0 and at each stroke_start), so that nothing is interpolated across a pen-up
// gap: a stroke spanning [t0, t1] gives the samples at t0, t0 + step_ms, ... <= t1, x, y and
// pressure linearly interpolated between the two input samples around each time (the later one
// of samples with equal times), stroke_start on the first. Every stroke keeps at least its first
// sample. Times must not go backwards within a stroke (they may between strokes).
// InvalidArgument on step_ms <= 0 or not finite, a non-finite value, or time going backwards
// within a stroke; ResourceExhausted, before anything is allocated, when the result would have
// more than `max_samples` samples, or than kMaxResampledPenSamples whatever `max_samples` (a few
// samples far apart in time make many). Pure function; thread-safe.
inline constexpr int64_t kMaxResampledPenSamples = int64_t{1} << 24;
absl::StatusOr<std::vector<PenSample>> ResamplePenSamples(
    absl::Span<const PenSample> samples, double step_ms,
    int64_t max_samples = kMaxResampledPenSamples);

// The feature pipeline of every signature loader: samples from a tablet sampling at `rate_hz`
// are resampled to kSignatureRateHz (ResamplePenSamples), then ComputeSignatureFeatures. At
// kSignatureRateHz itself the samples are used as recorded (SVC2004's clock is irregular: 0 and
// 11 ms steps, a few backwards; ComputeSignatureFeatures' median step absorbs that), so the
// result is exactly ComputeSignatureFeatures(samples, has_pressure). InvalidArgument on
// rate_hz <= 0 or not finite, and as the two steps. Pure function; thread-safe.
absl::StatusOr<Series> ComputeTabletSignatureFeatures(absl::Span<const PenSample> samples,
                                                      bool has_pressure, double rate_hz);

// The feature pipeline of pen samples whose tablet rate is not known (a service's input): the
// rate is taken from the median positive time step, and samples whose median step is within
// [kSignatureStepMs * 0.75, kSignatureStepMs * 1.5] (SVC2004's irregular 100 Hz clock included)
// are used as recorded, the others resampled to kSignatureRateHz, as
// ComputeTabletSignatureFeatures does for a known rate. ResourceExhausted, before the work, when
// the result would have more than `max_frames` frames (a few samples far apart in time resample
// to many). Pure function; thread-safe.
absl::StatusOr<Series> ComputePenSignatureFeatures(absl::Span<const PenSample> samples,
                                                   bool has_pressure,
                                                   int64_t max_frames = kMaxResampledPenSamples);

}  // namespace srn

#endif  // SRN_MODEL_DATA_SIGNATURE_FEATURES_H_
