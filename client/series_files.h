#ifndef SRN_CLIENT_SERIES_FILES_H_
#define SRN_CLIENT_SERIES_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "srn/v1/similarity.pb.h"

namespace srn {

// The input files srnctl sends to the server. All functions are thread-compatible: they touch
// only their own files and results.

enum class SeriesFormat {
  kAuto,  // decided by content (DetectSeriesFormat)
  kCsv,   // one frame per line, comma-separated (ReadCsvSeries, docs/DATA_FORMATS.md)
  kSvc,   // an SVC2004 signature file: a count line, then one pen sample per line
  kHwr,   // a SigComp2009 .hwr signature file: a `<tag> <count>` line, then X Y P Az Alt rows
};

// "auto", "csv", "svc" or "hwr"; InvalidArgument names the accepted values otherwise.
absl::StatusOr<SeriesFormat> ParseSeriesFormat(absl::string_view name);
absl::string_view SeriesFormatName(SeriesFormat format);

// Decides the format by content, never by file name: SVC2004 files start with a line holding one
// integer (the sample count, after optional blank lines) followed by a line of 4 or 7
// whitespace-separated integers and no commas; SigComp2009 .hwr files with a line of a tag and an
// integer (the count) followed by a line of 5 integers. Everything else is CSV (whose reader then
// reports any problem with file and line).
SeriesFormat DetectSeriesFormat(absl::string_view content);

// Reads one input file as the server takes it: CSV as Series frames (num_features = values per
// line), SVC2004 as a PenTrajectory with t_ms, stroke_start, and pressure when the file has the
// pressure column; .hwr as a PenTrajectory of its pen-down rows at 200 Hz (t_ms = 5 ms a row,
// which the server resamples to the features' 100 Hz) with pressure. Errors keep the readers' codes
// and name the file: NotFound for a missing file, InvalidArgument "<file>:<line>: ..." for bad
// content.
absl::StatusOr<v1::SeriesInput> ReadSeriesInput(const std::string& path,
                                                SeriesFormat format = SeriesFormat::kAuto);

}  // namespace srn

#endif  // SRN_CLIENT_SERIES_FILES_H_
