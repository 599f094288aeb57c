#include "model/train/augment.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/data/signature_features.h"

namespace srn {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kMinSpeed = 1e-9;  // as ComputeSignatureFeatures

// Feature columns (see signature_features.h).
enum Column { kX = 0, kY, kVx, kVy, kSpeed, kCos, kSin, kAx, kAy, kP, kDp, kStart };

absl::Status CheckOptions(const AugmentOptions& o) {
  if (!(o.max_rotation >= 0 && o.max_scale >= 0 && o.max_scale < 1 && o.max_shear >= 0 &&
        o.time_warp >= 0 && o.time_warp < 1 && o.max_length_change >= 0 &&
        o.max_length_change < 1 && o.noise >= 0 && o.pressure_dropout >= 0 &&
        o.pressure_dropout <= 1) ||
      o.copies < 0) {
    return absl::InvalidArgumentError(
        "augmentation needs copies >= 0, non-negative amplitudes and noise, max_scale < 1, "
        "time_warp < 1, max_length_change < 1 and pressure_dropout in [0, 1]");
  }
  return absl::OkStatus();
}

// A random time warp of `in` (see augment.h): the warped frames by linear interpolation; in
// `position` each new frame's position in the original (in frames), and in `rate` its local rate
// (how many original frames one new frame advances).
RowMatrix TimeWarp(const RowMatrix& in, const AugmentOptions& options, std::mt19937_64* rng,
                   std::vector<double>* position, std::vector<double>* rate) {
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double warp = options.time_warp * unit(*rng);
  const double cycles = std::uniform_int_distribution<int>(1, 2)(*rng);
  const double length_change = options.max_length_change * unit(*rng);
  const int t = static_cast<int>(in.rows());
  const int t2 = std::max(2, static_cast<int>(std::lround(t * (1.0 + length_change))));
  RowMatrix out(t2, in.cols());
  position->resize(t2);
  rate->resize(t2);
  for (int k = 0; k < t2; ++k) {
    const double s = static_cast<double>(k) / (t2 - 1);
    const double g = s + warp * std::sin(2 * kPi * cycles * s) / (2 * kPi * cycles);
    const double dg = 1 + warp * std::cos(2 * kPi * cycles * s);
    (*rate)[k] = dg * (t - 1) / (t2 - 1);
    const double u = std::clamp(g, 0.0, 1.0) * (t - 1);
    (*position)[k] = u;
    const int i0 = std::min(t - 2, static_cast<int>(std::floor(u)));
    const double f = u - i0;
    out.row(k) = static_cast<float>(1 - f) * in.row(i0) + static_cast<float>(f) * in.row(i0 + 1);
  }
  return out;
}

}  // namespace

absl::StatusOr<Series> AugmentSignature(const Series& features, const AugmentOptions& options,
                                        std::mt19937_64* rng) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  if (features.dims() != kSignatureFeatureDims || features.length() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "augmentation needs at least 2 frames of ", kSignatureFeatureDims,
        " signature features, got ", features.length(), " x ", features.dims()));
  }
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double angle = options.max_rotation * unit(*rng);
  const double sx = options.max_scale * unit(*rng);
  const double sy = options.max_scale * unit(*rng);
  const double shear = options.max_shear * unit(*rng);

  const RowMatrix& in = features.frames();
  const int t = features.length();
  std::vector<double> position, rate;
  RowMatrix out = TimeWarp(in, options, rng, &position, &rate);
  const int t2 = static_cast<int>(out.rows());
  // The stroke-start flag is taken from the nearest original frame, not interpolated.
  for (int k = 0; k < t2; ++k) {
    const int i0 = std::min(t - 2, static_cast<int>(std::floor(position[k])));
    out(k, kStart) = in(position[k] - i0 < 0.5 ? i0 : i0 + 1, kStart);
  }
  out(0, kStart) = 1.0f;
  // Affine map of positions and derivatives, then the same normalization as the features.
  const double c = std::cos(angle), sn = std::sin(angle);
  const double m00 = c * (1 + sx), m01 = c * shear - sn * (1 + sy);
  const double m10 = sn * (1 + sx), m11 = sn * shear + c * (1 + sy);
  std::vector<double> x(t2), y(t2);
  double mx = 0, my = 0;
  for (int k = 0; k < t2; ++k) {
    const double px = out(k, kX), py = out(k, kY);
    x[k] = m00 * px + m01 * py;
    y[k] = m10 * px + m11 * py;
    mx += x[k];
    my += y[k];
  }
  mx /= t2;
  my /= t2;
  double sq = 0;
  for (int k = 0; k < t2; ++k) sq += (x[k] - mx) * (x[k] - mx) + (y[k] - my) * (y[k] - my);
  const double radius = std::sqrt(sq / t2);
  const double inv = radius > 0 ? 1.0 / radius : 1.0;
  for (int k = 0; k < t2; ++k) {
    const double r = rate[k];
    const double vx = out(k, kVx) * r, vy = out(k, kVy) * r;
    const double ax = out(k, kAx) * r * r, ay = out(k, kAy) * r * r;
    out(k, kX) = static_cast<float>((x[k] - mx) * inv);
    out(k, kY) = static_cast<float>((y[k] - my) * inv);
    const double nvx = (m00 * vx + m01 * vy) * inv, nvy = (m10 * vx + m11 * vy) * inv;
    out(k, kVx) = static_cast<float>(nvx);
    out(k, kVy) = static_cast<float>(nvy);
    out(k, kAx) = static_cast<float>((m00 * ax + m01 * ay) * inv);
    out(k, kAy) = static_cast<float>((m10 * ax + m11 * ay) * inv);
    const double speed = std::hypot(nvx, nvy);
    out(k, kSpeed) = static_cast<float>(speed);
    out(k, kCos) = speed >= kMinSpeed ? static_cast<float>(nvx / speed) : 1.0f;
    out(k, kSin) = speed >= kMinSpeed ? static_cast<float>(nvy / speed) : 0.0f;
    out(k, kDp) = static_cast<float>(out(k, kDp) * r);
  }
  Series result(t2, kSignatureFeatureDims);
  result.mutable_frames() = std::move(out);
  return result;
}

absl::StatusOr<Series> AugmentFrames(const Series& frames, const AugmentOptions& options,
                                     std::mt19937_64* rng) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  if (frames.length() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("augmentation needs at least 2 frames, got ", frames.length()));
  }
  std::vector<double> position, rate;
  RowMatrix out = TimeWarp(frames.frames(), options, rng, &position, &rate);
  if (options.noise > 0) {
    std::normal_distribution<double> normal;
    const RowMatrix& in = frames.frames();
    for (Eigen::Index c = 0; c < out.cols(); ++c) {
      const double mean = in.col(c).cast<double>().mean();
      const double sd = std::sqrt((in.col(c).cast<double>().array() - mean).square().mean());
      for (Eigen::Index k = 0; k < out.rows(); ++k) {
        out(k, c) += static_cast<float>(options.noise * sd * normal(*rng));
      }
    }
  }
  Series result(static_cast<int>(out.rows()), static_cast<int>(out.cols()));
  result.mutable_frames() = std::move(out);
  return result;
}

absl::StatusOr<Dataset> AugmentDataset(const Dataset& data, const AugmentOptions& options,
                                       FeatureKind kind) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  if (options.pressure_dropout > 0) {
    if (kind != FeatureKind::kSignature) {
      return absl::InvalidArgumentError(
          "pressure dropout needs signature features (pen samples), not frames");
    }
    for (const Example& e : data.examples) {
      if (e.series.dims() != kSignatureFeatureDims) {
        return absl::InvalidArgumentError(
            absl::StrCat(e.source, ": pressure dropout needs ", kSignatureFeatureDims,
                         " signature features, got ", e.series.dims()));
      }
    }
  }
  Dataset out = data;
  std::mt19937_64 rng(options.seed);
  for (int copy = 1; copy <= options.copies; ++copy) {
    for (const Example& e : data.examples) {
      absl::StatusOr<Series> s = kind == FeatureKind::kSignature
                                     ? AugmentSignature(e.series, options, &rng)
                                     : AugmentFrames(e.series, options, &rng);
      if (!s.ok()) {
        return absl::Status(s.status().code(), absl::StrCat(e.source, ": ", s.status().message()));
      }
      Example a = e;
      a.series = *std::move(s);
      a.source = absl::StrCat(e.source, "#aug", copy);
      out.examples.push_back(std::move(a));
    }
  }
  if (options.pressure_dropout > 0) {
    // Its own stream, so that the copies above do not depend on whether dropout is on.
    std::mt19937_64 drop_rng(options.seed ^ 0x9E3779B97F4A7C15ull);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (Example& e : out.examples) {
      if (unit(drop_rng) < options.pressure_dropout) {
        SRN_RETURN_IF_ERROR(DropPressure(&e.series));  // dims checked above
      }
    }
  }
  return out;
}

std::string DescribeAugment(const AugmentOptions& options) {
  std::string out =
      absl::StrFormat("rotation %g scale %g shear %g time_warp %g length %g noise %g seed %d",
                      options.max_rotation, options.max_scale, options.max_shear,
                      options.time_warp, options.max_length_change, options.noise, options.seed);
  if (options.pressure_dropout > 0) {
    absl::StrAppendFormat(&out, " pressure_dropout %g", options.pressure_dropout);
  }
  return out;
}

}  // namespace srn
