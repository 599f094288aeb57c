#include "model/data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

// Features whose training standard deviation is below this are left unscaled: dividing by a
// near-zero spread would turn rounding noise into huge inputs.
constexpr double kMinStddev = 1e-8;

absl::Status CheckWindow(int window) {
  if (window < 1 || window > kMaxPreprocessWindow) {
    return absl::InvalidArgumentError(absl::StrCat("window must be in [1, ", kMaxPreprocessWindow,
                                                   "], got ", window));
  }
  return absl::OkStatus();
}

// out[d] = (x[d] - mean[d]) * scale[d] for d < dims.
inline void StandardizeFrame(const float* x, const float* mean, const float* scale, int dims,
                             float* out) {
  for (int d = 0; d < dims; ++d) out[d] = (x[d] - mean[d]) * scale[d];
}

}  // namespace

absl::StatusOr<Preprocessor> Preprocessor::Fit(const std::vector<const Series*>& series,
                                               int window, FeatureKind kind, bool center_series) {
  absl::Status window_ok = CheckWindow(window);
  if (!window_ok.ok()) return window_ok;
  if (series.empty()) return absl::InvalidArgumentError("cannot fit a preprocessor on no series");
  int dims = -1;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("series ", i, " is null"));
    }
    if (series[i]->empty()) continue;
    if (dims < 0) {
      dims = series[i]->dims();
    } else if (series[i]->dims() != dims) {
      return absl::InvalidArgumentError(absl::StrCat("series ", i, " has ", series[i]->dims(),
                                                     " features; earlier series have ", dims));
    }
  }
  if (dims <= 0)
    return absl::InvalidArgumentError("cannot fit a preprocessor: all series are empty");

  // Two passes in double: one for the mean, one for the squared deviations, so that features
  // with a large offset (e.g. absolute timestamps) keep their small spread exactly.
  // With centring, each series is first moved to its own mean; the centred frames then have
  // mean zero, and their spread is the within-series spread.
  auto series_mean = [&](const Series* s) -> Eigen::RowVectorXd {
    if (!center_series) return Eigen::RowVectorXd::Zero(dims);
    return s->frames().cast<double>().colwise().mean();
  };
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(dims);
  int64_t frames = 0;
  for (const Series* s : series) {
    if (s->empty()) continue;
    sum += (s->frames().cast<double>().rowwise() - series_mean(s)).colwise().sum().transpose();
    frames += s->length();
  }
  const Eigen::VectorXd mean = sum / static_cast<double>(frames);
  Eigen::VectorXd sq = Eigen::VectorXd::Zero(dims);
  for (const Series* s : series) {
    if (s->empty()) continue;
    sq += ((s->frames().cast<double>().rowwise() - series_mean(s)).rowwise() - mean.transpose())
              .array()
              .square()
              .colwise()
              .sum()
              .transpose()
              .matrix();
  }

  Preprocessor p;
  p.kind = kind;
  p.raw_dims = dims;
  p.window = window;
  p.center_series = center_series;
  p.mean = mean.cast<float>();
  p.scale.resize(dims);
  for (int d = 0; d < dims; ++d) {
    const double stddev = std::sqrt(sq[d] / static_cast<double>(frames));
    p.scale[d] =
        (stddev < kMinStddev || !std::isfinite(stddev)) ? 1.0f : static_cast<float>(1.0 / stddev);
  }
  absl::Status valid = p.Validate();
  if (!valid.ok()) {
    // Only non-finite training values get here (e.g. a float overflow in the sums).
    return absl::InvalidArgumentError(
        absl::StrCat("fitted statistics are invalid: ", valid.message()));
  }
  return p;
}

absl::StatusOr<Series> Preprocessor::Apply(const Series& raw) const {
  // Cheap shape checks only (O(1)); Validate() is for when a preprocessor is built or loaded.
  if (raw_dims <= 0 || mean.size() != raw_dims || scale.size() != raw_dims || window < 1 ||
      window > kMaxPreprocessWindow) {
    return absl::FailedPreconditionError(
        "preprocessor is not initialized (run Fit or load it from a weights file)");
  }
  if (raw.empty()) return absl::InvalidArgumentError("series is empty");
  if (raw.dims() != raw_dims) {
    return absl::InvalidArgumentError(absl::StrCat("series has ", raw.dims(),
                                                   " features; the model expects ", raw_dims));
  }
  const int length = raw.length();
  const int dims = raw_dims;
  const int out_length = std::max(1, length - window + 1);
  const int out_dims = dims * window;
  Series out(out_length, out_dims);
  float* o = out.mutable_frames().data();
  const float* x = raw.data();
  const float* m = mean.data();
  const float* s = scale.data();
  // Centring folds the series' own mean into the subtracted mean.
  Vector centred_mean;
  if (center_series) {
    centred_mean = mean + raw.frames().colwise().mean().transpose();
    m = centred_mean.data();
  }

  // Row 0 holds frames 0..window-1 (the last frame repeated past the end of short series).
  for (int k = 0; k < window; ++k) {
    const int src = std::min(k, length - 1);
    StandardizeFrame(x + static_cast<size_t>(src) * dims, m, s, dims,
                     o + static_cast<size_t>(k) * dims);
  }
  // Row t is row t-1 shifted left by one frame plus frame t+window-1: each raw frame is
  // standardized once and the rest is a contiguous copy.
  const size_t shared = static_cast<size_t>(window - 1) * dims;
  for (int t = 1; t < out_length; ++t) {
    float* row = o + static_cast<size_t>(t) * out_dims;
    const float* prev = row - out_dims;
    if (shared > 0) std::memcpy(row, prev + dims, shared * sizeof(float));
    StandardizeFrame(x + static_cast<size_t>(t + window - 1) * dims, m, s, dims, row + shared);
  }
  return out;
}

std::optional<Preprocessor::OutOfRange> Preprocessor::FirstOutOfRange(const Series& raw) const {
  const int dims = raw.dims();
  std::vector<double> offset(dims, 0.0);  // the series' own mean when centring
  if (center_series) {
    for (int t = 0; t < raw.length(); ++t) {
      for (int d = 0; d < dims; ++d) offset[d] += raw.frames()(t, d);
    }
    for (int d = 0; d < dims; ++d) offset[d] /= std::max(1, raw.length());
  }
  for (int t = 0; t < raw.length(); ++t) {
    for (int d = 0; d < dims && d < raw_dims; ++d) {
      const float x = raw.frames()(t, d);
      const double z = (static_cast<double>(x) - offset[d] - mean[d]) * scale[d];
      if (std::isfinite(z) && std::abs(z) <= kMaxStandardizedValue &&
          std::abs(x) <= kMaxRawValue) {
        continue;
      }
      OutOfRange out;
      out.frame = t;
      out.feature = d;
      out.value = x;
      out.standardized = std::isfinite(x) ? z : static_cast<double>(x);
      out.low = std::max(-kMaxRawValue, offset[d] + mean[d] - kMaxStandardizedValue / scale[d]);
      out.high = std::min(kMaxRawValue, offset[d] + mean[d] + kMaxStandardizedValue / scale[d]);
      return out;
    }
  }
  return std::nullopt;
}

absl::Status Preprocessor::Validate() const {
  if (raw_dims <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("raw_dims must be positive, got ", raw_dims));
  }
  if (mean.size() != raw_dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("mean has ", mean.size(), " entries; raw_dims is ", raw_dims));
  }
  if (scale.size() != raw_dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("scale has ", scale.size(), " entries; raw_dims is ", raw_dims));
  }
  for (int d = 0; d < raw_dims; ++d) {
    if (!std::isfinite(mean[d])) {
      return absl::InvalidArgumentError(absl::StrCat("mean of feature ", d, " is not finite"));
    }
    if (!std::isfinite(scale[d]) || scale[d] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("scale of feature ", d, " must be positive and finite, got ", scale[d]));
    }
  }
  return CheckWindow(window);
}

}  // namespace srn
