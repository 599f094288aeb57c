#include "model/data/signature_features.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

// Used when no timestamp difference is positive: SVC2004's nominal 100 Hz.
constexpr double kDefaultStepMs = 10.0;
// Below this speed (normalized units per second) the tangent direction is noise.
constexpr double kMinSpeed = 1e-9;
// Relative to the largest coordinate: a radius this small is rounding error, not a shape.
constexpr double kMinRelativeRadius = 1e-10;

// Slack, in steps, for a grid time that lands on a stroke's last time up to rounding.
constexpr double kGridSlack = 1e-9;

// Central differences of f over a constant step dt, one-sided at both ends (n >= 2).
void Derive(const std::vector<double>& f, double dt, std::vector<double>* out) {
  const size_t n = f.size();
  out->resize(n);
  (*out)[0] = (f[1] - f[0]) / dt;
  (*out)[n - 1] = (f[n - 1] - f[n - 2]) / dt;
  for (size_t i = 1; i + 1 < n; ++i) (*out)[i] = (f[i + 1] - f[i - 1]) / (2.0 * dt);
}

// The median of the positive timestamp differences, in seconds.
double RobustStepSeconds(absl::Span<const PenSample> samples) {
  std::vector<double> steps;
  steps.reserve(samples.size());
  for (size_t i = 1; i < samples.size(); ++i) {
    const double step = samples[i].t_ms - samples[i - 1].t_ms;
    if (step > 0) steps.push_back(step);
  }
  if (steps.empty()) return kDefaultStepMs / 1000.0;
  const size_t mid = steps.size() / 2;
  std::nth_element(steps.begin(), steps.begin() + mid, steps.end());
  double median = steps[mid];
  if (steps.size() % 2 == 0) {
    median = 0.5 * (median + *std::max_element(steps.begin(), steps.begin() + mid));
  }
  return median / 1000.0;
}

}  // namespace

absl::StatusOr<Series> ComputeSignatureFeatures(absl::Span<const PenSample> samples,
                                                bool has_pressure) {
  const size_t n = samples.size();
  if (n < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("a signature needs at least 2 pen samples, got ", n));
  }
  double max_abs = 0;
  double max_pressure = 0;
  for (size_t i = 0; i < n; ++i) {
    const PenSample& s = samples[i];
    if (!std::isfinite(s.x) || !std::isfinite(s.y) || !std::isfinite(s.t_ms) ||
        (has_pressure && !std::isfinite(s.pressure))) {
      return absl::InvalidArgumentError(absl::StrCat("pen sample ", i, " has a non-finite value"));
    }
    if (has_pressure && s.pressure < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("pen sample ", i, " has negative pressure ", s.pressure));
    }
    max_abs = std::max({max_abs, std::abs(s.x), std::abs(s.y)});
    max_pressure = std::max(max_pressure, s.pressure);
  }

  double mx = 0, my = 0;
  for (const PenSample& s : samples) {
    mx += s.x;
    my += s.y;
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sq = 0;
  for (const PenSample& s : samples) sq += (s.x - mx) * (s.x - mx) + (s.y - my) * (s.y - my);
  const double radius = std::sqrt(sq / static_cast<double>(n));
  if (!(radius > kMinRelativeRadius * max_abs) || radius == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "all ", n, " pen samples are at the same point; a signature needs some extent"));
  }

  std::vector<double> x(n), y(n), p(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    x[i] = (samples[i].x - mx) / radius;
    y[i] = (samples[i].y - my) / radius;
    if (has_pressure && max_pressure > 0) p[i] = samples[i].pressure / max_pressure;
  }
  const double dt = RobustStepSeconds(samples);
  std::vector<double> vx, vy, ax, ay, dp;
  Derive(x, dt, &vx);
  Derive(y, dt, &vy);
  Derive(vx, dt, &ax);
  Derive(vy, dt, &ay);
  Derive(p, dt, &dp);

  Series out(static_cast<int>(n), kSignatureFeatureDims);
  RowMatrix& f = out.mutable_frames();
  for (size_t i = 0; i < n; ++i) {
    const Eigen::Index r = static_cast<Eigen::Index>(i);
    const double speed = std::hypot(vx[i], vy[i]);
    const bool moving = speed >= kMinSpeed;
    f(r, 0) = static_cast<float>(x[i]);
    f(r, 1) = static_cast<float>(y[i]);
    f(r, 2) = static_cast<float>(vx[i]);
    f(r, 3) = static_cast<float>(vy[i]);
    f(r, 4) = static_cast<float>(speed);
    f(r, 5) = moving ? static_cast<float>(vx[i] / speed) : 1.0f;
    f(r, 6) = moving ? static_cast<float>(vy[i] / speed) : 0.0f;
    f(r, 7) = static_cast<float>(ax[i]);
    f(r, 8) = static_cast<float>(ay[i]);
    f(r, 9) = static_cast<float>(p[i]);
    f(r, 10) = static_cast<float>(dp[i]);
    f(r, 11) = (i == 0 || samples[i].stroke_start) ? 1.0f : 0.0f;
  }
  // Huge coordinate ranges can overflow float in the derivatives; callers get finite series only.
  if (!f.allFinite()) {
    return absl::InvalidArgumentError("signature features overflow (coordinates out of range)");
  }
  return out;
}

absl::StatusOr<std::vector<PenSample>> ResamplePenSamples(absl::Span<const PenSample> samples,
                                                          double step_ms, int64_t max_samples) {
  if (!(step_ms > 0) || !std::isfinite(step_ms)) {
    return absl::InvalidArgumentError(
        absl::StrCat("resampling step must be positive, got ", step_ms));
  }
  max_samples = std::min(max_samples, kMaxResampledPenSamples);
  const size_t n = samples.size();
  // Strokes as [begin, end) ranges, checked, with the output size counted before any work.
  std::vector<size_t> stroke_begins;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const PenSample& s = samples[i];
    if (!std::isfinite(s.x) || !std::isfinite(s.y) || !std::isfinite(s.t_ms) ||
        !std::isfinite(s.pressure)) {
      return absl::InvalidArgumentError(absl::StrCat("pen sample ", i, " has a non-finite value"));
    }
    if (i == 0 || s.stroke_start) {
      stroke_begins.push_back(i);
    } else if (s.t_ms < samples[i - 1].t_ms) {
      return absl::InvalidArgumentError(
          absl::StrCat("pen sample ", i, " goes back in time within a stroke (", s.t_ms,
                       " ms after ", samples[i - 1].t_ms, " ms)"));
    }
  }
  stroke_begins.push_back(n);
  std::vector<int64_t> counts(stroke_begins.size() - 1);
  for (size_t k = 0; k + 1 < stroke_begins.size(); ++k) {
    const double span = samples[stroke_begins[k + 1] - 1].t_ms - samples[stroke_begins[k]].t_ms;
    const double steps = std::floor(span / step_ms + kGridSlack);
    // Compared as doubles first: `steps` may be far beyond int64_t.
    if (steps >= static_cast<double>(max_samples)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("resampling a stroke of ", span, " ms every ", step_ms,
                       " ms makes too many samples (more than the limit of ", max_samples, ")"));
    }
    counts[k] = static_cast<int64_t>(steps) + 1;
    total += counts[k];
    if (total > max_samples) {
      return absl::ResourceExhaustedError(absl::StrCat("resampling to one sample every ", step_ms,
                                                       " ms makes more than ", max_samples,
                                                       " samples (the limit)"));
    }
  }

  std::vector<PenSample> out;
  out.reserve(static_cast<size_t>(total));
  for (size_t k = 0; k + 1 < stroke_begins.size(); ++k) {
    const size_t begin = stroke_begins[k];
    const size_t last = stroke_begins[k + 1] - 1;
    const double t0 = samples[begin].t_ms;
    size_t j = begin;  // the latest input sample at or before the grid time
    for (int64_t m = 0; m < counts[k]; ++m) {
      // Clamped: the slack may put the last grid time a hair past the stroke's end.
      const double t = std::min(t0 + static_cast<double>(m) * step_ms, samples[last].t_ms);
      while (j < last && samples[j + 1].t_ms <= t) ++j;
      PenSample s = samples[j];
      if (j < last) {
        const PenSample& a = samples[j];
        const PenSample& b = samples[j + 1];
        const double w = (t - a.t_ms) / (b.t_ms - a.t_ms);  // b.t_ms > t >= a.t_ms
        s.x = a.x + w * (b.x - a.x);
        s.y = a.y + w * (b.y - a.y);
        s.pressure = a.pressure + w * (b.pressure - a.pressure);
      }
      s.t_ms = t;
      s.stroke_start = m == 0;
      out.push_back(s);
    }
  }
  return out;
}

absl::StatusOr<Series> ComputeTabletSignatureFeatures(absl::Span<const PenSample> samples,
                                                      bool has_pressure, double rate_hz) {
  if (!(rate_hz > 0) || !std::isfinite(rate_hz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tablet rate must be positive, got ", rate_hz, " Hz"));
  }
  if (rate_hz == kSignatureRateHz) return ComputeSignatureFeatures(samples, has_pressure);
  absl::StatusOr<std::vector<PenSample>> resampled = ResamplePenSamples(samples, kSignatureStepMs);
  if (!resampled.ok()) return resampled.status();
  return ComputeSignatureFeatures(*resampled, has_pressure);
}

absl::StatusOr<Series> ComputePenSignatureFeatures(absl::Span<const PenSample> samples,
                                                   bool has_pressure, int64_t max_frames) {
  const double step_ms = 1000.0 * RobustStepSeconds(samples);
  if (step_ms >= 0.75 * kSignatureStepMs && step_ms <= 1.5 * kSignatureStepMs) {
    if (static_cast<int64_t>(samples.size()) > max_frames) {
      return absl::ResourceExhaustedError(absl::StrCat(
          samples.size(), " pen samples make more than ", max_frames, " frames (the limit)"));
    }
    return ComputeSignatureFeatures(samples, has_pressure);
  }
  absl::StatusOr<std::vector<PenSample>> resampled =
      ResamplePenSamples(samples, kSignatureStepMs, max_frames);
  if (!resampled.ok()) return resampled.status();
  return ComputeSignatureFeatures(*resampled, has_pressure);
}

absl::Status DropPressure(Series* features) {
  if (features->dims() != kSignatureFeatureDims) {
    return absl::InvalidArgumentError(absl::StrCat("dropping pressure needs ",
                                                   kSignatureFeatureDims,
                                                   " signature features per frame, not ",
                                                   features->dims()));
  }
  features->mutable_frames().col(9).setZero();
  features->mutable_frames().col(10).setZero();
  return absl::OkStatus();
}

}  // namespace srn
