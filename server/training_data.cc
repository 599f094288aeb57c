#include "server/training_data.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "server/request_enums.h"
#include "model/data/svc2004.h"

namespace srn {
namespace {

bool IsInside(const std::filesystem::path& base, const std::filesystem::path& p) {
  auto b = base.begin();
  auto q = p.begin();
  for (; b != base.end(); ++b, ++q) {
    if (b->empty()) continue;  // a trailing separator
    if (q == p.end() || *q != *b) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir, const std::string& path) {
  namespace fs = std::filesystem;
  if (data_dir.empty()) {
    return absl::FailedPreconditionError(
        "the server has no data directory (--data_dir); upload the series instead "
        "(UploadAndTrain)");
  }
  if (path.empty()) return absl::InvalidArgumentError("dataset path is empty");
  if (path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError("dataset path contains a NUL byte");
  std::error_code ec;
  const fs::path base = fs::canonical(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("the data directory ", data_dir, " is not usable: ", ec.message()));
  }
  fs::path p(path);
  if (p.is_relative()) p = base / p;
  p = p.lexically_normal();
  if (!IsInside(base, p)) {
    return absl::PermissionDeniedError(
        absl::StrCat("dataset path '", path, "' leaves the data directory"));
  }
  if (!fs::exists(p, ec)) {
    return absl::NotFoundError(
        absl::StrCat("dataset path '", path, "' does not exist in the data directory"));
  }
  const fs::path real = fs::canonical(p, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("dataset path '", path, "': ", ec.message()));
  if (!IsInside(base, real)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "dataset path '", path, "' leads outside the data directory through a symbolic link"));
  }
  return real.string();
}

absl::StatusOr<DataDirDataset> ResolveDatasetRef(const std::string& data_dir,
                                                 const v1::DatasetRef& ref) {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(ref));
  DataDirDataset dataset;
  switch (ref.format()) {
    case v1::DATASET_FORMAT_ARABIC_DIGIT:
      dataset.source.format = DatasetFormat::kArabicDigit;
      dataset.description =
          ref.arabic_label_speaker() ? "arabic digits by speaker" : "arabic digits";
      break;
    case v1::DATASET_FORMAT_SVC2004:
      dataset.source.format = DatasetFormat::kSvc2004;
      dataset.description = "svc2004";
      break;
    case v1::DATASET_FORMAT_CSV:
      dataset.source.format = DatasetFormat::kCsv;
      dataset.description = "csv manifest";
      break;
    default:
      return absl::InvalidArgumentError("dataset.format must be ARABIC_DIGIT, SVC2004 or CSV");
  }
  for (int user : ref.svc2004_users()) {
    if (user < 1 || user > kSvc2004Users) {
      return absl::InvalidArgumentError(absl::StrCat("svc2004_users must be in 1..40, got ", user));
    }
  }
  if (ref.format() != v1::DATASET_FORMAT_SVC2004 && ref.svc2004_users_size() > 0) {
    return absl::InvalidArgumentError("svc2004_users is only for the SVC2004 format");
  }
  SRN_ASSIGN_OR_RETURN(dataset.source.path, ResolveDataPath(data_dir, ref.path()));
  const bool csv = dataset.source.format == DatasetFormat::kCsv;
  if (csv == std::filesystem::is_directory(dataset.source.path)) {
    return absl::InvalidArgumentError(absl::StrCat("dataset path '", ref.path(), "' must be ",
                                                   csv ? "a CSV manifest file" : "a folder",
                                                   " for this format"));
  }
  dataset.source.arabic_label =
      ref.arabic_label_speaker() ? ArabicLabel::kSpeaker : ArabicLabel::kDigit;
  dataset.source.svc2004_users.assign(ref.svc2004_users().begin(), ref.svc2004_users().end());
  dataset.requested_path = ref.path();
  absl::StrAppend(&dataset.description, " ", ref.path());
  if (ref.svc2004_users_size() > 0) {
    absl::StrAppend(&dataset.description, " (users ", absl::StrJoin(ref.svc2004_users(), ","), ")");
  }
  return dataset;
}

absl::StatusOr<Dataset> LoadDataDirDataset(const std::string& data_dir,
                                           const DataDirDataset& dataset) {
  SRN_ASSIGN_OR_RETURN(Dataset data, LoadDataset(dataset.source));
  if (dataset.source.format == DatasetFormat::kCsv) {
    for (const Example& e : data.examples) {
      absl::StatusOr<std::string> inside = ResolveDataPath(data_dir, e.source);
      if (!inside.ok()) {
        return absl::PermissionDeniedError(absl::StrCat(dataset.requested_path, ": series file ",
                                                        e.source, ": ", inside.status().message()));
      }
    }
  }
  return data;
}

absl::Status UploadedDataset::Add(const v1::LabelledSeries& in) {
  const int index = size();
  const std::string what = absl::StrCat("series[", index, "]");
  if (index >= max_series_) {
    return absl::ResourceExhaustedError(absl::StrCat("more than ", max_series_,
                                                     " series uploaded (--max_upload_series)"));
  }
  if (in.label().empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": label is empty"));
  if (in.label().size() > 256)
    return absl::InvalidArgumentError(absl::StrCat(what, ": label is longer than 256 bytes"));
  const FeatureKind kind = in.series().kind_case() == v1::SeriesInput::kPen
                               ? FeatureKind::kSignature
                               : FeatureKind::kFrames;
  if (index > 0 && kind != kind_) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": mixes pen samples and frames; all uploaded series must be of one kind"));
  }
  SRN_ASSIGN_OR_RETURN(Series series, ToTrainingSeries(in.series(), limits_, what));
  if (index > 0 && series.dims() != data_.dims()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": has ", series.dims(), " features per frame; series[0] has ", data_.dims()));
  }
  kind_ = kind;
  auto [it, inserted] = labels_.emplace(in.label(), static_cast<int>(labels_.size()));
  if (inserted) data_.label_names.push_back(in.label());
  Example e;
  e.series = std::move(series);
  e.label = it->second;
  e.forgery = in.forgery();
  e.source = what;
  data_.examples.push_back(std::move(e));
  return absl::OkStatus();
}

absl::StatusOr<Dataset> TakeJobData(const std::string& data_dir, JobData* data, FeatureKind* kind) {
  if (data->upload.has_value()) {
    *kind = data->upload_kind;
    Dataset upload = std::move(*data->upload);
    data->upload.reset();
    return upload;
  }
  if (!data->dataset.has_value()) return absl::InvalidArgumentError("the job has no data");
  *kind = DatasetKind(data->dataset->source.format);
  return LoadDataDirDataset(data_dir, *data->dataset);
}

}  // namespace srn
