#include "model/data/series.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace srn {

absl::StatusOr<Series> Series::FromValues(absl::Span<const float> values, int dims,
                                          const SeriesLimits& limits) {
  if (dims <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("feature count must be positive, got ", dims));
  }
  if (values.empty()) return absl::InvalidArgumentError("series is empty");
  if (values.size() % static_cast<size_t>(dims) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value count ", values.size(), " is not a multiple of the feature count ", dims));
  }
  const size_t length = values.size() / static_cast<size_t>(dims);
  if (dims > limits.max_dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("series has ", dims, " features; the limit is ", limits.max_dims));
  }
  if (length > static_cast<size_t>(limits.max_length)) {
    return absl::InvalidArgumentError(
        absl::StrCat("series has ", length, " frames; the limit is ", limits.max_length));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat("value ", i, " (frame ", i / dims,
                                                     ", feature ", i % dims, ") is not finite"));
    }
  }
  Series series(static_cast<int>(length), dims);
  std::copy(values.begin(), values.end(), series.mutable_frames().data());
  return series;
}

absl::Status ValidateSeries(const Series& series, const SeriesLimits& limits) {
  if (series.empty()) return absl::InvalidArgumentError("series is empty");
  if (series.dims() > limits.max_dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("series has ", series.dims(), " features; the limit is ", limits.max_dims));
  }
  if (series.length() > limits.max_length) {
    return absl::InvalidArgumentError(absl::StrCat("series has ", series.length(),
                                                   " frames; the limit is ", limits.max_length));
  }
  const float* p = series.data();
  const Eigen::Index n = series.frames().size();
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) {
      return absl::InvalidArgumentError(absl::StrCat("frame ", i / series.dims(), ", feature ",
                                                     i % series.dims(), " is not finite"));
    }
  }
  return absl::OkStatus();
}

Series CapFrames(const Series& series, int max_frames) {
  const int n = series.length();
  if (n <= max_frames) return series;
  Series out(max_frames, series.dims());
  const double step = static_cast<double>(n - 1) / (max_frames - 1);
  for (int t = 0; t < max_frames; ++t) {
    const double at = t * step;
    const int lo = std::min(static_cast<int>(at), n - 2);
    const float w = static_cast<float>(at - lo);
    out.mutable_frames().row(t) =
        (1.0f - w) * series.frames().row(lo) + w * series.frames().row(lo + 1);
  }
  return out;
}

}  // namespace srn
