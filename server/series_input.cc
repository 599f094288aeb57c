#include "server/series_input.h"

#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/data/preprocess.h"
#include "model/data/signature_features.h"

namespace srn {
namespace {

absl::Status Prefixed(const std::string& what, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// `model` null: any feature count (training uploads).
absl::StatusOr<Series> FromFrames(const v1::Series& frames, const SimilarityModel* model,
                                  const RequestLimits& limits, const std::string& what) {
  if (frames.values_size() == 0)
    return absl::InvalidArgumentError(absl::StrCat(what, ": series is empty"));
  if (frames.num_features() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": num_features must be positive, got ", frames.num_features()));
  }
  if (model != nullptr && frames.num_features() != model->preprocessor().raw_dims) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the model takes ",
                                                   model->preprocessor().raw_dims,
                                                   " features per frame, got num_features=",
                                                   frames.num_features()));
  }
  if (frames.values_size() % frames.num_features() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", frames.values_size(),
                                                   " values is not a multiple of num_features=",
                                                   frames.num_features()));
  }
  const int64_t length = frames.values_size() / frames.num_features();
  if (length > limits.max_series_length) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", length,
                                                     " frames exceeds the limit of ",
                                                     limits.max_series_length));
  }
  SeriesLimits series_limits;
  series_limits.max_length = limits.max_series_length;
  absl::StatusOr<Series> series =
      Series::FromValues(frames.values(), frames.num_features(), series_limits);
  if (!series.ok()) return Prefixed(what, series.status());
  return series;
}

absl::StatusOr<Series> FromPen(const v1::PenTrajectory& pen, const SimilarityModel* model,
                               const RequestLimits& limits, const std::string& what) {
  if (model != nullptr && model->preprocessor().kind != FeatureKind::kSignature) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": pen samples are only accepted by signature models; this model takes frames of ",
        model->preprocessor().raw_dims, " features"));
  }
  const int n = pen.x_size();
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(what, ": pen trajectory is empty"));
  if (n > limits.max_series_length) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": ", n, " pen samples exceeds the limit of ", limits.max_series_length));
  }
  if (pen.y_size() != n || pen.t_ms_size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": x, y and t_ms must have one value per sample (", n, ", ",
                     pen.y_size(), ", ", pen.t_ms_size(), ")"));
  }
  const bool has_pressure = pen.pressure_size() > 0;
  if (has_pressure && pen.pressure_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": pressure has ", pen.pressure_size(),
                                                   " values for ", n, " samples"));
  }
  if (pen.stroke_start_size() > 0 && pen.stroke_start_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": stroke_start has ", pen.stroke_start_size(), " flags for ", n, " samples"));
  }
  std::vector<PenSample> samples(n);
  for (int i = 0; i < n; ++i) {
    PenSample& s = samples[i];
    s.x = pen.x(i);
    s.y = pen.y(i);
    s.t_ms = pen.t_ms(i);
    s.pressure = has_pressure ? pen.pressure(i) : 0.0;
    s.stroke_start = pen.stroke_start_size() > 0 ? pen.stroke_start(i) : i == 0;
    if (!std::isfinite(s.x) || !std::isfinite(s.y) || !std::isfinite(s.t_ms) ||
        !std::isfinite(s.pressure)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": pen sample ", i, " is not finite"));
    }
  }
  // Resampling a few samples far apart in time would make many frames: bounded by the limit.
  absl::StatusOr<Series> features =
      ComputePenSignatureFeatures(samples, has_pressure, limits.max_series_length);
  if (!features.ok()) return Prefixed(what, features.status());
  return features;
}

// InvalidArgument naming the first value of `raw` (from frames, or from a pen trajectory when
// `pen`) that `model` cannot compute with, and what to do about it.
absl::Status CheckRange(const Series& raw, const SimilarityModel& model, bool pen,
                        const std::string& what) {
  const std::optional<Preprocessor::OutOfRange> bad = model.preprocessor().FirstOutOfRange(raw);
  if (!bad.has_value()) return absl::OkStatus();
  const std::string range = absl::StrCat(
      "[", bad->low, ", ", bad->high, "] (at most ",
      kMaxStandardizedValue,
      " training standard deviations from the model's training mean, and ",
      kMaxRawValue, " in magnitude)");
  if (pen) {
    const std::string name = bad->feature < kSignatureFeatureDims
                                 ? kSignatureFeatureNames[bad->feature]
                                 : absl::StrCat(bad->feature);
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": pen sample ", bad->frame, " gives signature feature '", name, "' = ",
        bad->value, ", outside ", range,
        "; the trajectory's derivatives overflow: give t_ms in milliseconds, strictly "
        "increasing at a plausible sampling rate, and x, y, pressure of a plausible scale"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": frame ", bad->frame, " value ", bad->value, " (feature ",
      bad->feature, ") is too large for this model: feature ", bad->feature, " takes values in ",
      range, "; scale the series so its values fit"));
}

}  // namespace

absl::StatusOr<Series> ToRawSeries(const v1::SeriesInput& input, const SimilarityModel& model,
                                   const RequestLimits& limits, const std::string& what) {
  absl::StatusOr<Series> series;
  switch (input.kind_case()) {
    case v1::SeriesInput::kFrames:
      series = FromFrames(input.frames(), &model, limits, what);
      break;
    case v1::SeriesInput::kPen:
      series = FromPen(input.pen(), &model, limits, what);
      break;
    case v1::SeriesInput::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": no series given (set frames or pen)"));
  }
  if (series.ok() && limits.check_value_range) {
    const absl::Status range =
        CheckRange(*series, model, input.kind_case() == v1::SeriesInput::kPen, what);
    if (!range.ok()) return range;
  }
  return series;
}

absl::StatusOr<Series> ToTrainingSeries(const v1::SeriesInput& input, const RequestLimits& limits,
                                        const std::string& what) {
  switch (input.kind_case()) {
    case v1::SeriesInput::kFrames:
      return FromFrames(input.frames(), nullptr, limits, what);
    case v1::SeriesInput::kPen:
      return FromPen(input.pen(), nullptr, limits, what);
    case v1::SeriesInput::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": no series given (set frames or pen)"));
}

absl::Status ValidateSubjectId(const std::string& id, const RequestLimits& limits) {
  if (id.empty()) return absl::InvalidArgumentError("subject_id is empty");
  if (static_cast<int>(id.size()) > limits.max_subject_id_length) {
    return absl::InvalidArgumentError(absl::StrCat("subject_id has ", id.size(),
                                                   " characters; the limit is ",
                                                   limits.max_subject_id_length));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          "subject_id may only contain letters, digits and . _ : @ -");
    }
  }
  return absl::OkStatus();
}

}  // namespace srn
