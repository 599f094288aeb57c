#include "model/signature/signature_dtw.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <utility>

#include "Eigen/QR"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/nn/parallel.h"
#include "model/data/signature_features.h"
#include "base/status_macros.h"

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
  return SelectAndNormalize(CapFrames(features, kMaxDtwFrames), options.features,
                            options.per_series);
}

double SignatureDtwDistance(const Series& a, const Series& b, const SignatureDtwOptions& options,
                            const Cancellation* cancel) {
  return NormalizedDtwDistance(a, b, options.dtw, cancel);
}

double MeanMutualDtwDistance(absl::Span<const Series> references,
                             const SignatureDtwOptions& options) {
  return *MeanMutualDistance(static_cast<int>(references.size()), [&](int i, int j) {
    return SignatureDtwDistance(references[i], references[j], options);
  });
}

namespace {

// The index of the mean pressure among the shape descriptors.
constexpr int kPressureDescriptor = 1;

// A signature's mean pressure, or the model's mean for one without pressure (exactly 0).
double PressureOrMean(double pressure, const DtwSpreadModel& model) {
  return pressure == 0 && model.mean_pressure > 0 ? model.mean_pressure : pressure;
}

}  // namespace

absl::StatusOr<std::array<double, kSpreadDescriptors>> SignatureShapeDescriptors(
    const Series& features) {
  if (features.length() < 2 || features.dims() < kSignatureFeatureDims) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shape descriptors need at least 2 frames of %d signature features (got %d x %d)",
        kSignatureFeatureDims, features.length(), features.dims()));
  }
  const auto x = features.frames().col(0).cast<double>();
  const auto y = features.frames().col(1).cast<double>();
  // The coordinates are in units of the signature's RMS radius, so these floors only keep a
  // degenerate (straight-line) signature finite.
  constexpr double kFloor = 1e-3;
  const double width = std::max(kFloor, x.maxCoeff() - x.minCoeff());
  const double height = std::max(kFloor, y.maxCoeff() - y.minCoeff());
  double path = 0;
  for (int t = 1; t < features.length(); ++t) path += std::hypot(x(t) - x(t - 1), y(t) - y(t - 1));
  return std::array<double, kSpreadDescriptors>{std::log(width / height),
                                                features.frames().col(9).cast<double>().mean(),
                                                std::log(std::max(kFloor, path))};
}

absl::StatusOr<SpreadSample> MakeSpreadSample(const Series& features,
                                              absl::Span<const double> distances) {
  SpreadSample sample;
  SRN_ASSIGN_OR_RETURN(sample.descriptors, SignatureShapeDescriptors(features));
  double sum = 0;
  for (double d : distances) sum += d;
  const double mean = distances.empty() ? 0 : sum / static_cast<double>(distances.size());
  if (!(mean > 0) || !std::isfinite(mean)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a mean DTW distance of ", mean,
                     " to the signer's other genuine signatures (duplicates?)"));
  }
  sample.log_spread = std::log(mean);
  return sample;
}

std::vector<std::vector<int>> GenuineGroups(const Dataset& data) {
  std::map<int, std::vector<int>> genuine;
  for (int i = 0; i < static_cast<int>(data.examples.size()); ++i) {
    if (!data.examples[i].forgery) genuine[data.examples[i].label].push_back(i);
  }
  std::vector<std::vector<int>> groups;
  for (auto& [label, members] : genuine) {
    if (members.size() >= 2) groups.push_back(std::move(members));
  }
  return groups;
}

absl::StatusOr<std::vector<SpreadSample>> DtwSpreadSamples(const Dataset& data,
                                                           const SignatureDtwOptions& options,
                                                           int threads) {
  const std::vector<std::vector<int>> groups = GenuineGroups(data);
  std::vector<std::vector<SpreadSample>> per_group(groups.size());
  std::vector<absl::Status> errors(groups.size());
  ParallelFor(
      static_cast<int>(groups.size()), threads > 0 ? threads : DefaultThreads(),
      [&](int begin, int end, int) {
        for (int g = begin; g < end; ++g) {
          errors[g] = [&]() -> absl::Status {
            const std::vector<int>& members = groups[g];
            const size_t k = members.size();
            std::vector<Series> prepared;
            for (int i : members) {
              SRN_ASSIGN_OR_RETURN(Series p,
                                   PrepareForSignatureDtw(data.examples[i].series, options));
              prepared.push_back(std::move(p));
            }
            std::vector<std::vector<double>> distances(k);
            for (size_t a = 0; a < k; ++a) {
              for (size_t b = a + 1; b < k; ++b) {
                const double d = SignatureDtwDistance(prepared[a], prepared[b], options);
                distances[a].push_back(d);
                distances[b].push_back(d);
              }
            }
            for (size_t a = 0; a < k; ++a) {
              const Example& e = data.examples[members[a]];
              absl::StatusOr<SpreadSample> sample = MakeSpreadSample(e.series, distances[a]);
              if (!sample.ok()) {
                return absl::Status(sample.status().code(),
                                    absl::StrCat(e.source, ": ", sample.status().message()));
              }
              per_group[g].push_back(*sample);
            }
            return absl::OkStatus();
          }();
        }
      });
  std::vector<SpreadSample> samples;
  for (size_t g = 0; g < groups.size(); ++g) {
    SRN_RETURN_IF_ERROR(errors[g]);
    samples.insert(samples.end(), per_group[g].begin(), per_group[g].end());
  }
  return samples;
}

absl::StatusOr<DtwSpreadModel> FitDtwSpreadModel(absl::Span<const SpreadSample> samples) {
  constexpr size_t kMinSamples = 10;
  if (samples.size() < kMinSamples) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the spread model needs at least ", kMinSamples,
        " genuine signatures of signers with at least 2 of them; got ", samples.size()));
  }
  DtwSpreadModel model;
  double pressure_sum = 0;
  int with_pressure = 0;
  for (const SpreadSample& s : samples) {
    if (s.descriptors[kPressureDescriptor] > 0) {
      pressure_sum += s.descriptors[kPressureDescriptor];
      ++with_pressure;
    }
  }
  if (with_pressure > 0) model.mean_pressure = pressure_sum / with_pressure;
  const Eigen::Index n = static_cast<Eigen::Index>(samples.size());
  Eigen::MatrixXd design(n, kSpreadDescriptors + 1);
  Eigen::VectorXd target(n);
  for (Eigen::Index r = 0; r < n; ++r) {
    design(r, 0) = 1;
    for (int d = 0; d < kSpreadDescriptors; ++d) design(r, d + 1) = samples[r].descriptors[d];
    design(r, kPressureDescriptor + 1) =
        PressureOrMean(samples[r].descriptors[kPressureDescriptor], model);
    target(r) = samples[r].log_spread;
  }
  const Eigen::VectorXd c = design.colPivHouseholderQr().solve(target);
  for (int d = 0; d <= kSpreadDescriptors; ++d) model.coefficients[d] = c(d);
  model.log_min = target.minCoeff();
  model.log_max = target.maxCoeff();
  return model;
}

absl::StatusOr<double> PredictDtwSpread(const DtwSpreadModel& model, const Series& features) {
  SRN_ASSIGN_OR_RETURN(const auto descriptors, SignatureShapeDescriptors(features));
  double log_spread = model.coefficients[0];
  for (int d = 0; d < kSpreadDescriptors; ++d) {
    const double value =
        d == kPressureDescriptor ? PressureOrMean(descriptors[d], model) : descriptors[d];
    log_spread += model.coefficients[d + 1] * value;
  }
  return std::exp(std::clamp(log_spread, model.log_min, model.log_max));
}

std::string FormatDtwSpreadModel(const DtwSpreadModel& model) {
  std::string out;
  for (double c : model.coefficients) absl::StrAppend(&out, absl::StrFormat("%.6g,", c));
  absl::StrAppend(&out, absl::StrFormat("%.6g,%.6g", model.log_min, model.log_max));
  if (model.mean_pressure > 0) absl::StrAppend(&out, absl::StrFormat(",%.6g", model.mean_pressure));
  return out;
}

absl::StatusOr<DtwSpreadModel> ParseDtwSpreadModel(absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  double values[kSpreadDescriptors + 4];
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTW spread model '", text, "' ", why,
                     " (expected c0,c1,c2,c3,log_min,log_max[,mean_pressure] as srn-eval prints "
                     "it)"));
  };
  if (parts.size() != std::size(values) && parts.size() != std::size(values) - 1) {
    return bad("does not have six or seven numbers");
  }
  for (size_t k = 0; k < parts.size(); ++k) {
    if (!absl::SimpleAtod(parts[k], &values[k]) || !std::isfinite(values[k])) {
      return bad(absl::StrCat("has a malformed number '", parts[k], "'"));
    }
  }
  DtwSpreadModel model;
  for (int d = 0; d <= kSpreadDescriptors; ++d) model.coefficients[d] = values[d];
  model.log_min = values[kSpreadDescriptors + 1];
  model.log_max = values[kSpreadDescriptors + 2];
  if (model.log_min > model.log_max) return bad("has log_min above log_max");
  if (parts.size() == std::size(values)) {
    model.mean_pressure = values[kSpreadDescriptors + 3];
    if (!(model.mean_pressure > 0)) return bad("has a mean pressure that is not positive");
  }
  return model;
}

}  // namespace srn
