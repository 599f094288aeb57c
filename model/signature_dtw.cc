#include "model/signature_dtw.h"

#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/status_macros.h"

namespace srn {

absl::StatusOr<Series> SelectAndNormalize(const Series& series, absl::Span<const int> features,
                                          bool per_series) {
  if (series.empty()) return absl::InvalidArgumentError("the series is empty");
  std::vector<int> columns(features.begin(), features.end());
  if (columns.empty()) {
    columns.resize(series.dims());
    std::iota(columns.begin(), columns.end(), 0);
  }
  for (int c : columns) {
    if (c < 0 || c >= series.dims()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "feature %d does not exist (the series has %d features per frame)", c, series.dims()));
    }
  }
  RowMatrix out(series.length(), static_cast<Eigen::Index>(columns.size()));
  for (size_t k = 0; k < columns.size(); ++k) {
    out.col(static_cast<Eigen::Index>(k)) = series.frames().col(columns[k]);
  }
  if (per_series) {
    for (Eigen::Index k = 0; k < out.cols(); ++k) {
      const double mean = out.col(k).cast<double>().mean();
      const double sd = std::sqrt((out.col(k).cast<double>().array() - mean).square().mean());
      if (!(sd >= 1e-6)) {
        out.col(k).setZero();
      } else {
        out.col(k) = ((out.col(k).cast<double>().array() - mean) / sd).cast<float>().matrix();
      }
    }
  }
  return Series(std::move(out));
}

absl::StatusOr<Series> PrepareForSignatureDtw(const Series& features,
                                              const SignatureDtwOptions& options) {
  return SelectAndNormalize(features, options.features, options.per_series);
}

double SignatureDtwDistance(const Series& a, const Series& b, const SignatureDtwOptions& options) {
  return NormalizedDtwDistance(a, b, options.dtw);
}

double MeanMutualDtwDistance(absl::Span<const Series> references,
                             const SignatureDtwOptions& options) {
  const size_t n = references.size();
  if (n < 2) return 1.0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j)
      sum += SignatureDtwDistance(references[i], references[j], options);
  }
  return sum / static_cast<double>(n * (n - 1) / 2);
}

absl::StatusOr<DtwFusionCalibration> ParseDtwFusionCalibration(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTW fusion '", text, "' ", why,
                     " (expected W1:O1,WN:ON: weight and offset with one "
                     "reference, then with several)"));
  };
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() != 2) return bad("does not have two parts");
  double values[4];
  for (int k = 0; k < 2; ++k) {
    const std::vector<absl::string_view> pair = absl::StrSplit(parts[k], ':');
    if (pair.size() != 2 || !absl::SimpleAtod(pair[0], &values[2 * k]) ||
        !absl::SimpleAtod(pair[1], &values[2 * k + 1])) {
      return bad(absl::StrCat("has a malformed part '", parts[k], "'"));
    }
    if (!(values[2 * k] >= 0) || !std::isfinite(values[2 * k]) ||
        !std::isfinite(values[2 * k + 1])) {
      return bad("needs finite offsets and finite weights of at least 0");
    }
  }
  return DtwFusionCalibration{values[0], values[1], values[2], values[3]};
}

double FusedVerificationScore(double srn_mean, double srn_mutual, double dtw_ratio, int references,
                              const DtwFusionCalibration& calibration) {
  const bool several = references >= 2;
  const double weight = several ? calibration.weight_many : calibration.weight_one;
  const double fused = (several ? srn_mean - srn_mutual : srn_mean) - weight * dtw_ratio;
  const double offset = several ? calibration.offset_many : calibration.offset_one;
  return 1.0 / (1.0 + std::exp(-(fused - offset)));
}

}  // namespace srn
