#include "client/series_files.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/data/csv_dataset.h"
#include "model/data/series.h"
#include "model/data/signature_features.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "model/data/sigcomp2009.h"
#include "model/data/svc2004.h"

namespace srn {
namespace {

bool IsInteger(absl::string_view token) {
  int64_t unused;
  return absl::SimpleAtoi(token, &unused);
}

// The whitespace-separated tokens of the first `n` non-blank lines.
std::vector<std::vector<absl::string_view>> FirstLines(absl::string_view content, size_t n) {
  std::vector<std::vector<absl::string_view>> lines;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    if (lines.size() == n) break;
    std::vector<absl::string_view> tokens =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r\f\v"), absl::SkipEmpty());
    if (!tokens.empty()) lines.push_back(std::move(tokens));
  }
  return lines;
}

absl::StatusOr<v1::SeriesInput> ReadCsv(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(const Series series, ReadCsvSeries(path));
  v1::SeriesInput input;
  v1::Series* frames = input.mutable_frames();
  frames->set_num_features(series.dims());
  frames->mutable_values()->Add(series.data(), series.data() + series.frames().size());
  return input;
}

// The pen trajectory of `samples`; pressure only when the file recorded it.
v1::SeriesInput PenInput(const std::vector<PenSample>& samples, bool has_pressure) {
  v1::SeriesInput input;
  v1::PenTrajectory* pen = input.mutable_pen();
  for (const PenSample& s : samples) {
    pen->add_x(s.x);
    pen->add_y(s.y);
    pen->add_t_ms(s.t_ms);
    // Training used pressure exactly when the file had the column; keep that distinction.
    if (has_pressure) pen->add_pressure(s.pressure);
    pen->add_stroke_start(s.stroke_start);
  }
  return input;
}

absl::StatusOr<v1::SeriesInput> ReadSvc(const std::string& path) {
  bool has_pressure = false;
  SRN_ASSIGN_OR_RETURN(const std::vector<PenSample> samples, ReadSvc2004File(path, &has_pressure));
  return PenInput(samples, has_pressure);
}

absl::StatusOr<v1::SeriesInput> ReadHwr(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(const std::vector<PenSample> samples, ReadSigComp2009File(path));
  return PenInput(samples, /*has_pressure=*/true);
}

}  // namespace

absl::StatusOr<SeriesFormat> ParseSeriesFormat(absl::string_view name) {
  if (name == "auto") return SeriesFormat::kAuto;
  if (name == "csv") return SeriesFormat::kCsv;
  if (name == "svc") return SeriesFormat::kSvc;
  if (name == "hwr") return SeriesFormat::kHwr;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown input format '", name, "': use csv, svc, hwr or auto"));
}

absl::string_view SeriesFormatName(SeriesFormat format) {
  switch (format) {
    case SeriesFormat::kAuto:
      return "auto";
    case SeriesFormat::kCsv:
      return "csv";
    case SeriesFormat::kSvc:
      return "svc";
    case SeriesFormat::kHwr:
      return "hwr";
  }
  return "?";
}

SeriesFormat DetectSeriesFormat(absl::string_view content) {
  const std::vector<std::vector<absl::string_view>> lines = FirstLines(content, 2);
  if (lines.size() < 2) return SeriesFormat::kCsv;
  const auto& count = lines[0];
  const auto& sample = lines[1];
  const auto all_integers = [](const std::vector<absl::string_view>& tokens) {
    for (absl::string_view token : tokens) {
      if (!IsInteger(token)) return false;
    }
    return true;
  };
  if (count.size() == 2 && !IsInteger(count[0]) && IsInteger(count[1]) && sample.size() == 5 &&
      all_integers(sample)) {
    return SeriesFormat::kHwr;
  }
  if (count.size() != 1 || !IsInteger(count[0])) return SeriesFormat::kCsv;
  if (sample.size() != 4 && sample.size() != 7) return SeriesFormat::kCsv;
  for (absl::string_view token : sample) {
    if (!IsInteger(token)) return SeriesFormat::kCsv;
  }
  return SeriesFormat::kSvc;
}

absl::StatusOr<v1::SeriesInput> ReadSeriesInput(const std::string& path, SeriesFormat format) {
  if (format == SeriesFormat::kAuto) {
    SRN_ASSIGN_OR_RETURN(const std::string content, ReadFileToString(path));
    format = DetectSeriesFormat(content);
  }
  switch (format) {
    case SeriesFormat::kSvc:
      return ReadSvc(path);
    case SeriesFormat::kHwr:
      return ReadHwr(path);
    default:
      return ReadCsv(path);
  }
}

}  // namespace srn
