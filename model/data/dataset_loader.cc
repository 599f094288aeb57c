#include "model/data/dataset_loader.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/data/csv_dataset.h"
#include "model/data/svc2004.h"

namespace srn {

FeatureKind DatasetKind(DatasetFormat format) {
  return format == DatasetFormat::kSvc2004 ? FeatureKind::kSignature : FeatureKind::kFrames;
}

absl::StatusOr<Dataset> LoadDataset(const DatasetSource& source) {
  switch (source.format) {
    case DatasetFormat::kArabicDigit:
      return LoadArabicDigit(source.path, source.arabic_label);
    case DatasetFormat::kSvc2004: {
      std::vector<int> users = source.svc2004_users;
      if (users.empty()) {
        for (int u = 1; u <= kSvc2004Users; ++u) users.push_back(u);
      }
      return LoadSvc2004Users(source.path, users);
    }
    case DatasetFormat::kCsv:
      return LoadCsvDataset(source.path);
  }
  return absl::InvalidArgumentError("unknown dataset format");
}

absl::StatusOr<DatasetSource> NamedDatasetSource(const std::string& name,
                                                 const std::string& data_dir) {
  const std::filesystem::path dir(data_dir);
  DatasetSource source;
  if (name == "arabic-digit" || name == "arabic-voice") {
    source.format = DatasetFormat::kArabicDigit;
    source.path = (dir / "spoken_arabic_digit").string();
    source.arabic_label = name == "arabic-voice" ? ArabicLabel::kSpeaker : ArabicLabel::kDigit;
    return source;
  }
  if (name == "svc2004") {
    source.format = DatasetFormat::kSvc2004;
    source.path = (dir / "svc2004" / "Task2").string();
    return source;
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(name, ec)) {
    source.format = DatasetFormat::kCsv;
    source.path = name;
    return source;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dataset '", name,
      "': expected arabic-digit, arabic-voice, svc2004, or the path of a CSV manifest"));
}

absl::StatusOr<Dataset> LoadNamedDataset(const std::string& name, const std::string& data_dir) {
  SRN_ASSIGN_OR_RETURN(const DatasetSource source, NamedDatasetSource(name, data_dir));
  return LoadDataset(source);
}

}  // namespace srn
