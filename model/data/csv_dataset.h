#ifndef SRN_MODEL_DATA_CSV_DATASET_H_
#define SRN_MODEL_DATA_CSV_DATASET_H_

#include <string>

#include "absl/status/statusor.h"
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

// Reads a manifest: a header line `path,label` or `path,label,forgery`, then one row per series
// (blank and '#' lines skipped). `path` is relative to the manifest's folder unless absolute;
// `label` is any non-empty string (ids are given in order of first appearance and label_names
// keeps the strings); `forgery` is 0 or 1 (1: a forgery of class `label`). All series must have
// the same number of values per frame. The dataset's name is `manifest_path`, each example's
// source its series file and group -1. Errors about a series file are prefixed by
// "<manifest>:<line>: " and keep the series file's status code.
absl::StatusOr<Dataset> LoadCsvDataset(const std::string& manifest_path);

}  // namespace srn

#endif  // SRN_MODEL_DATA_CSV_DATASET_H_
