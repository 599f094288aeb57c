#include "model/data/csv_dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/file.h"
#include "base/status_macros.h"

namespace srn {
namespace {

// Calls fn(line_number, line) for each line of `text` (1-based; "\r\n" endings accepted). Stops
// at and returns the first error fn returns.
template <typename Fn>
absl::Status ForEachLine(absl::string_view text, Fn fn) {
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_number;
    SRN_RETURN_IF_ERROR(fn(line_number, line));
    pos = end + 1;
  }
  return absl::OkStatus();
}

// Blank lines and '#' comments carry no data in either the series or the manifest format.
bool IsSkipped(absl::string_view line) {
  absl::string_view content = absl::StripLeadingAsciiWhitespace(line);
  return content.empty() || content.front() == '#';
}

// Splits a line at commas and trims spaces and tabs around each field into `fields`.
void SplitFields(absl::string_view line, std::vector<absl::string_view>* fields) {
  fields->clear();
  size_t pos = 0;
  while (true) {
    size_t comma = line.find(',', pos);
    const size_t end = comma == absl::string_view::npos ? line.size() : comma;
    fields->push_back(absl::StripAsciiWhitespace(line.substr(pos, end - pos)));
    if (comma == absl::string_view::npos) break;
    pos = comma + 1;
  }
}

// A decimal number as the format allows: an optional sign, digits with an optional decimal point
// (at least one digit), an optional exponent (e or E, an optional sign, digits). No hex, no
// "inf" or "nan", no leading or trailing junk.
bool IsDecimalNumber(absl::string_view f) {
  size_t i = 0;
  const auto digits = [&]() {
    const size_t start = i;
    while (i < f.size() && absl::ascii_isdigit(static_cast<unsigned char>(f[i]))) ++i;
    return i - start;
  };
  if (i < f.size() && (f[i] == '+' || f[i] == '-')) ++i;
  size_t mantissa = digits();
  if (i < f.size() && f[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < f.size() && (f[i] == 'e' || f[i] == 'E')) {
    ++i;
    if (i < f.size() && (f[i] == '+' || f[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == f.size();
}

bool ParsesAsNumber(absl::string_view field) {
  float value;
  return IsDecimalNumber(field) && absl::SimpleAtof(field, &value);
}

std::string Where(absl::string_view file, int line) { return absl::StrCat(file, ":", line, ": "); }

// Prefixes a status message with the manifest line that led to it, keeping the code.
absl::Status WithContext(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

absl::StatusOr<Series> ReadCsvSeries(const std::string& path, const SeriesLimits& limits) {
  SRN_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseCsvSeries(text, path, limits);
}

absl::StatusOr<Series> ParseCsvSeries(absl::string_view text, absl::string_view name,
                                      const SeriesLimits& limits) {
  std::vector<float> values;
  std::vector<absl::string_view> fields;
  int dims = 0;
  int dims_line = 0;
  int header_columns = 0;  // 0 without a header
  int header_line = 0;
  bool seen_content = false;
  int64_t frames = 0;
  absl::Status status = ForEachLine(text, [&](int line_number, absl::string_view line) {
    if (IsSkipped(line)) return absl::OkStatus();
    SplitFields(line, &fields);
    if (!seen_content) {
      seen_content = true;
      bool any_number = false;
      for (absl::string_view f : fields) any_number = any_number || ParsesAsNumber(f);
      if (!any_number) {  // a header line
        header_columns = static_cast<int>(fields.size());
        header_line = line_number;
        return absl::OkStatus();
      }
    }
    const int count = static_cast<int>(fields.size());
    if (dims == 0) {
      // Later lines must match this one, so checking the first against the header is enough.
      if (header_columns > 0 && count != header_columns) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(name, line_number), count, " values, but the header on line ", header_line,
            " names ", header_columns, " columns: give every line one value per named column"));
      }
      if (count > limits.max_dims) {
        return absl::InvalidArgumentError(absl::StrCat(Where(name, line_number), count,
                                                       " values per frame; the limit is ",
                                                       limits.max_dims));
      }
      dims = count;
      dims_line = line_number;
    } else if (count != dims) {
      return absl::InvalidArgumentError(absl::StrCat(Where(name, line_number), "expected ", dims,
                                                     " values (as on line ", dims_line,
                                                     "), found ", count));
    }
    if (++frames > limits.max_length) {
      return absl::InvalidArgumentError(absl::StrCat(Where(name, line_number), "more than ",
                                                     limits.max_length, " frames (the limit)"));
    }
    for (int c = 0; c < count; ++c) {
      float value;
      if (fields[c].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(name, line_number), "value ", c + 1, " is empty"));
      }
      if (!IsDecimalNumber(fields[c]) || !absl::SimpleAtof(fields[c], &value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(name, line_number), "value ", c + 1, " ('", fields[c],
            "') is not a decimal number (write numbers like -1.5, 2e-3 or +4)"));
      }
      if (!std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat(Where(name, line_number), "value ", c + 1,
                                                       " ('", fields[c],
                                                       "') is not finite or out of range"));
      }
      values.push_back(value);
    }
    return absl::OkStatus();
  });
  SRN_RETURN_IF_ERROR(status);
  if (frames == 0) return absl::InvalidArgumentError(absl::StrCat(name, ": no frames"));
  return Series::FromValues(values, dims, limits);
}

absl::StatusOr<std::vector<CsvManifestRow>> ReadCsvManifest(const std::string& manifest_path) {
  SRN_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(manifest_path));
  return ParseCsvManifest(text, manifest_path);
}

absl::StatusOr<std::vector<CsvManifestRow>> ParseCsvManifest(absl::string_view text,
                                                             const std::string& manifest_path) {
  const std::filesystem::path folder = std::filesystem::path(manifest_path).parent_path();
  std::vector<CsvManifestRow> rows;
  std::vector<absl::string_view> fields;
  int columns = 0;  // 0 until the header is read
  absl::Status status = ForEachLine(text, [&](int line_number, absl::string_view line) {
    if (IsSkipped(line)) return absl::OkStatus();
    SplitFields(line, &fields);
    const std::string where = Where(manifest_path, line_number);
    if (columns == 0) {
      const bool header = (fields.size() == 2 || fields.size() == 3) &&
                          absl::EqualsIgnoreCase(fields[0], "path") &&
                          absl::EqualsIgnoreCase(fields[1], "label") &&
                          (fields.size() == 2 || absl::EqualsIgnoreCase(fields[2], "forgery"));
      if (!header) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "expected the header 'path,label' or 'path,label,forgery', found '", line, "'"));
      }
      columns = static_cast<int>(fields.size());
      return absl::OkStatus();
    }
    if (static_cast<int>(fields.size()) != columns) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected ", columns,
                                                     " comma-separated fields, found ",
                                                     fields.size()));
    }
    if (fields[0].empty()) return absl::InvalidArgumentError(absl::StrCat(where, "path is empty"));
    if (fields[1].empty()) return absl::InvalidArgumentError(absl::StrCat(where, "label is empty"));
    CsvManifestRow row;
    if (columns == 3) {
      if (fields[2] == "0") {
        row.forgery = false;
      } else if (fields[2] == "1") {
        row.forgery = true;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "forgery must be 0 or 1, found '", fields[2], "'"));
      }
    }
    std::filesystem::path series_path{std::string(fields[0])};
    if (series_path.is_relative()) series_path = folder / series_path;
    row.path = series_path.string();
    row.label = std::string(fields[1]);
    row.line = line_number;
    rows.push_back(std::move(row));
    return absl::OkStatus();
  });
  SRN_RETURN_IF_ERROR(status);
  if (columns == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": empty manifest (expected a header line 'path,label')"));
  }
  if (rows.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": the manifest lists no series"));
  }
  return rows;
}

absl::StatusOr<Dataset> LoadCsvDataset(const std::string& manifest_path) {
  SRN_ASSIGN_OR_RETURN(const std::vector<CsvManifestRow> rows, ReadCsvManifest(manifest_path));
  Dataset dataset;
  dataset.name = manifest_path;
  std::map<std::string, int> label_ids;
  for (const CsvManifestRow& row : rows) {
    const std::string where = Where(manifest_path, row.line);
    absl::StatusOr<Series> series = ReadCsvSeries(row.path);
    if (!series.ok()) return WithContext(series.status(), where);
    if (!dataset.examples.empty() && series->dims() != dataset.dims()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, row.path, " has ", series->dims(), " values per frame but ", rows[0].path,
          " (line ", rows[0].line, ") has ", dataset.dims()));
    }
    Example example;
    example.series = *std::move(series);
    example.forgery = row.forgery;
    example.source = row.path;
    auto [it, inserted] = label_ids.emplace(row.label, dataset.num_labels());
    if (inserted) dataset.label_names.push_back(row.label);
    example.label = it->second;
    dataset.examples.push_back(std::move(example));
  }
  return dataset;
}

}  // namespace srn
