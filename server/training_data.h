#ifndef SRN_SERVER_TRAINING_DATA_H_
#define SRN_SERVER_TRAINING_DATA_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/data/dataset_loader.h"
#include "model/data/preprocess.h"
#include "server/series_input.h"
#include "srn/v1/training.pb.h"

namespace srn {

// What training jobs train on: datasets under the server's data directory (--data_dir), which
// jobs may only read inside it, and series uploaded with the request. Reading goes through the
// one dataset-loader dispatch (model/data/dataset_loader.h).

// Resolves a dataset path against the data directory: relative paths are taken from it, and the
// result (after resolving symbolic links) must lie inside it. FailedPrecondition without a data
// directory, InvalidArgument for an empty path, PermissionDenied for a path that leaves the
// directory (by ".." or through a link), NotFound for one that does not exist. Thread-safe.
absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir, const std::string& path);

// A dataset under the data directory, as a job's request named it.
struct DataDirDataset {
  DatasetSource source;        // its reader, with the path resolved inside the data directory
  std::string requested_path;  // the path as the request gave it, for errors
  std::string description;     // what the job says it trains on, e.g. "svc2004 svc2004/Task2"
};

// Checks a request's dataset reference and resolves its path (ResolveDataPath and its errors).
// InvalidArgument for a missing or unknown format, SVC2004 users outside 1..40 or given for
// another format, and a folder where a CSV manifest is expected or the reverse. Thread-safe.
absl::StatusOr<DataDirDataset> ResolveDatasetRef(const std::string& data_dir,
                                                 const v1::DatasetRef& ref);

// Reads the dataset (LoadDataset). A CSV manifest's rows may name any file: each series file must
// lie inside the data directory too, or PermissionDenied names it. Thread-safe.
absl::StatusOr<Dataset> LoadDataDirDataset(const std::string& data_dir,
                                           const DataDirDataset& dataset);

// Collects uploaded labelled series into a dataset, checking each as it arrives (all frames
// with one feature count, or all pen samples; at most `max_series`). Not thread-safe.
class UploadedDataset final {
 public:
  UploadedDataset(int max_series, const RequestLimits& limits)
      : max_series_(max_series), limits_(limits) {}
  absl::Status Add(const v1::LabelledSeries& series);
  int size() const { return static_cast<int>(data_.examples.size()); }
  FeatureKind kind() const { return kind_; }
  Dataset Take() { return std::move(data_); }

 private:
  const int max_series_;
  const RequestLimits limits_;
  Dataset data_{"upload", {}, {}};
  std::map<std::string, int> labels_;
  FeatureKind kind_ = FeatureKind::kFrames;
};

// What one job trains on: a dataset under the data directory, or uploaded series held until the
// job reads them. Not thread-safe: it belongs to one job.
struct JobData {
  std::optional<DataDirDataset> dataset;
  std::optional<Dataset> upload;
  FeatureKind upload_kind = FeatureKind::kFrames;
};

// Reads a job's data, once: uploaded series are moved out of `data`, a data-directory dataset is
// read by LoadDataDirDataset. `*kind` receives what the examples hold.
absl::StatusOr<Dataset> TakeJobData(const std::string& data_dir, JobData* data, FeatureKind* kind);

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_DATA_H_
