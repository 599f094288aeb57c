#include "model/data/dataset_loader.h"

#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/data/csv_dataset.h"
#include "model/data/sigcomp2009.h"
#include "model/data/svc2004.h"

namespace srn {

FeatureKind DatasetKind(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kSvc2004:
    case DatasetFormat::kSvc2004Task1:
    case DatasetFormat::kSigComp2009Nfi:
    case DatasetFormat::kSigComp2009Nisdcc:
      return FeatureKind::kSignature;
    case DatasetFormat::kArabicDigit:
    case DatasetFormat::kCsv:
      break;
  }
  return FeatureKind::kFrames;
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
    case DatasetFormat::kSvc2004Task1:
      return LoadSvc2004Task1(source.path);
    case DatasetFormat::kSigComp2009Nfi:
      return LoadSigComp2009(source.path, SigComp2009Subset::kNfi);
    case DatasetFormat::kSigComp2009Nisdcc:
      return LoadSigComp2009(source.path, SigComp2009Subset::kNisdcc);
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
  if (name == "svc2004-task1") {
    source.format = DatasetFormat::kSvc2004Task1;
    source.path = (dir / "svc2004" / "Task1").string();
    return source;
  }
  if (name == "sigcomp2009-nfi" || name == "sigcomp2009-nisdcc") {
    source.format = name == "sigcomp2009-nfi" ? DatasetFormat::kSigComp2009Nfi
                                              : DatasetFormat::kSigComp2009Nisdcc;
    source.path = (dir / "sigcomp2009").string();
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
      "': expected arabic-digit, arabic-voice, svc2004, svc2004-task1, sigcomp2009-nfi, "
      "sigcomp2009-nisdcc, or the path of a CSV manifest"));
}

absl::StatusOr<Dataset> LoadNamedDataset(const std::string& name, const std::string& data_dir) {
  SRN_ASSIGN_OR_RETURN(const DatasetSource source, NamedDatasetSource(name, data_dir));
  return LoadDataset(source);
}

absl::StatusOr<Dataset> LoadSignatureDatasets(const std::vector<std::string>& names,
                                              const std::string& data_dir) {
  if (names.empty()) return absl::InvalidArgumentError("no signature datasets named");
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (!IsSignatureDataset(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", name, "' is not a signature dataset: a list of datasets (",
          absl::StrJoin(names, ","),
          ") may only name svc2004, svc2004-task1, sigcomp2009-nfi and sigcomp2009-nisdcc"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset '", name, "' is named twice in ", absl::StrJoin(names, ",")));
    }
  }
  std::vector<Dataset> parts;
  for (const std::string& name : names) {
    SRN_ASSIGN_OR_RETURN(Dataset part, LoadNamedDataset(name, data_dir));
    part.name = name;
    parts.push_back(std::move(part));
  }
  return MergeDatasets(parts);
}

bool IsSignatureDataset(const std::string& name) {
  return name == "svc2004" || name == "svc2004-task1" || name == "sigcomp2009-nfi" ||
         name == "sigcomp2009-nisdcc";
}

}  // namespace srn
