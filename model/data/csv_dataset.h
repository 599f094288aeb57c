#ifndef SRN_MODEL_DATA_CSV_DATASET_H_
#define SRN_MODEL_DATA_CSV_DATASET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/data/dataset.h"
#include "model/data/series.h"

namespace srn {

// The generic data format users produce themselves (full description with an example in
// docs/DATA_FORMATS.md). Every error names the file and, for content errors, the 1-based line.
// All functions are thread-compatible: they touch only their own files and results.

// Reads one series: one frame per line, values separated by commas (spaces and tabs around a
// value are ignored), every line with the same number of values. Blank lines and lines whose
// first non-blank character is '#' are skipped. The first remaining line is a header, and is
// skipped, when none of its values is a number; otherwise every value of every line must be a
// finite decimal number. NotFound for a missing file, InvalidArgument "<file>:<line>: ..." for
// bad content, and when the series has no frames or exceeds `limits`.
absl::StatusOr<Series> ReadCsvSeries(const std::string& path, const SeriesLimits& limits = {});

// Like ReadCsvSeries, from the file's content held in memory; messages name `name_for_errors`.
absl::StatusOr<Series> ParseCsvSeries(absl::string_view text, absl::string_view name_for_errors,
                                      const SeriesLimits& limits = {});

// One row of a manifest: a series file and its class.
struct CsvManifestRow {
  std::string path;      // the series file, resolved against the manifest's folder when relative
  std::string label;     // any non-empty string
  bool forgery = false;  // a skilled forgery of class `label`
  int line = 0;          // 1-based line of the row in the manifest, for errors about the file
};

// Reads a manifest without reading the series it names: a header line `path,label` or
// `path,label,forgery` (in any letter case), then one row per series with as many fields (blank
// and '#' lines skipped; spaces and tabs around a field ignored). `path` is relative to the
// manifest's folder unless absolute; `forgery` is 0 or 1. NotFound for a missing manifest,
// InvalidArgument "<manifest>:<line>: ..." for a bad header or row, and when no series is listed.
// The one reader of the format: LoadCsvDataset and srnctl's uploads both use it.
absl::StatusOr<std::vector<CsvManifestRow>> ReadCsvManifest(const std::string& manifest_path);

// Like ReadCsvManifest, from the manifest's content held in memory: relative paths are resolved
// against the folder of `manifest_path`, which messages name; the file itself is not read.
absl::StatusOr<std::vector<CsvManifestRow>> ParseCsvManifest(absl::string_view text,
                                                             const std::string& manifest_path);

// Loads the dataset a manifest (see ReadCsvManifest) lists, reading every series with
// ReadCsvSeries. Labels get ids in order of first appearance and label_names keeps the strings.
// All series must have the same number of values per frame. The dataset's name is
// `manifest_path`, each example's source its series file and group -1. Errors about a series file
// are prefixed by "<manifest>:<line>: " and keep the series file's status code.
absl::StatusOr<Dataset> LoadCsvDataset(const std::string& manifest_path);

}  // namespace srn

#endif  // SRN_MODEL_DATA_CSV_DATASET_H_
