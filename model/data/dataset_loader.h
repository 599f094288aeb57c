#ifndef SRN_MODEL_DATA_DATASET_LOADER_H_
#define SRN_MODEL_DATA_DATASET_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/arabic_digit.h"
#include "model/data/dataset.h"
#include "model/data/preprocess.h"

namespace srn {

// Which reader a dataset needs, and the one place that maps each format to its reader. The
// tools name datasets (NamedDatasetSource); srn-server's training jobs describe them
// (v1::DatasetRef); both load through LoadDataset. Thread-compatible: the functions touch only
// the files they read.

enum class DatasetFormat {
  kArabicDigit,  // a folder holding Train_Arabic_Digit.txt and Test_Arabic_Digit.txt
  kSvc2004,            // a folder of SVC2004 Task 2 files U<u>S<s>.TXT
  kSvc2004Task1,       // a folder of SVC2004 Task 1 files (no pressure)
  kSigComp2009Nfi,     // the SigComp2009 folder (holding NFI/ and NISDCC/): its NFI set
  kSigComp2009Nisdcc,  // ... its NISDCC set
  kCsv,                // a CSV manifest (docs/DATA_FORMATS.md)
};

struct DatasetSource {
  DatasetFormat format = DatasetFormat::kCsv;
  std::string path;  // the folder (Arabic digits, SVC2004) or the manifest file (CSV)
  ArabicLabel arabic_label = ArabicLabel::kDigit;  // Arabic digits: by digit or by speaker
  std::vector<int> svc2004_users;                  // SVC2004: signers 1..40 to load; empty: all
};

// What the examples of a format hold: pen-sample features (the signature sets) or frames.
FeatureKind DatasetKind(DatasetFormat format);

// Reads a dataset with its format's reader (LoadArabicDigit, LoadSvc2004Users, LoadSvc2004Task1,
// LoadSigComp2009, LoadCsvDataset), passing on the reader's errors.
absl::StatusOr<Dataset> LoadDataset(const DatasetSource& source);

// A dataset as srn-train and srn-eval name it: "arabic-digit" (label = digit), "arabic-voice"
// (label = speaker), the signature sets (label = signer, with skilled forgeries of that signer)
// "svc2004" (SVC2004 Task 2), "svc2004-task1" (SVC2004 Task 1: 40 other signers, no pressure),
// "sigcomp2009-nfi" and "sigcomp2009-nisdcc" (SigComp2009's online NFI and NISDCC sets), read
// from their folders under `data_dir`, or the path of a CSV manifest. InvalidArgument for any
// other name.
absl::StatusOr<DatasetSource> NamedDatasetSource(const std::string& name,
                                                 const std::string& data_dir);

// LoadDataset of NamedDatasetSource.
absl::StatusOr<Dataset> LoadNamedDataset(const std::string& name, const std::string& data_dir);

// Several signature sets loaded by LoadNamedDataset and merged into one (MergeDatasets: each
// set's signers get their own label range, named "<set>/<signer>"). InvalidArgument when `names`
// is empty or repeats a name, or names anything but a signature set (IsSignatureDataset).
absl::StatusOr<Dataset> LoadSignatureDatasets(const std::vector<std::string>& names,
                                              const std::string& data_dir);

// Whether `name` is one of NamedDatasetSource's signature sets: their series are pen features,
// so a model trained on one takes pen samples (FeatureKind::kSignature), and their results report
// the equal error rate.
bool IsSignatureDataset(const std::string& name);

}  // namespace srn

#endif  // SRN_MODEL_DATA_DATASET_LOADER_H_
