#include "model/data/sigcomp2009.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "model/data/integer_fields.h"

namespace srn {
namespace {

// Far above any real file (the longest SigComp2009 file has 17,358 rows), low enough to refuse
// absurd headers.
constexpr int64_t kMaxRows = 1000000;
constexpr int kColumns = 5;      // X Y P Azimuth Altitude
constexpr int64_t kHover = -1;   // P = 0 is hovering too
constexpr int64_t kMarker = -4;  // the `0 0 -4 0 0` rows

// Parses line 1, `<tag> <N>`, into N.
absl::StatusOr<int64_t> ParseHeader(absl::string_view line, absl::string_view name) {
  const std::vector<absl::string_view> tokens =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  int64_t n = 0;
  if (tokens.size() != 2 || !absl::SimpleAtoi(tokens[1], &n) || n < 1 || n > kMaxRows) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: expected the header '<tag> <number of samples>' with 1 to ",
                     kMaxRows, " samples, found '", line, "'"));
  }
  return n;
}

// The ids in a file name.
struct FileIds {
  int writer = 0;  // www
  int author = 0;  // aaa
  int sample = 0;  // ss or sss
};

// Parses `digits` (all decimal digits) into *value.
bool ParseDigits(absl::string_view digits, int* value) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(digits, value);
}

// NFI-<www><ss><aaa>.hwr or NISDCC-<www>_<aaa>_<sss>.hwr.
bool ParseFileName(absl::string_view name, SigComp2009Subset subset, FileIds* ids) {
  if (!absl::ConsumeSuffix(&name, ".hwr")) return false;
  if (subset == SigComp2009Subset::kNfi) {
    if (!absl::ConsumePrefix(&name, "NFI-") || name.size() != 8) return false;
    return ParseDigits(name.substr(0, 3), &ids->writer) &&
           ParseDigits(name.substr(3, 2), &ids->sample) &&
           ParseDigits(name.substr(5, 3), &ids->author);
  }
  if (!absl::ConsumePrefix(&name, "NISDCC-") || name.size() != 11 || name[3] != '_' ||
      name[7] != '_') {
    return false;
  }
  return ParseDigits(name.substr(0, 3), &ids->writer) &&
         ParseDigits(name.substr(4, 3), &ids->author) &&
         ParseDigits(name.substr(8, 3), &ids->sample);
}

std::string SubsetFolder(SigComp2009Subset subset) {
  return subset == SigComp2009Subset::kNfi ? "NFI" : "NISDCC";
}

std::string NamePattern(SigComp2009Subset subset) {
  return subset == SigComp2009Subset::kNfi ? "NFI-<www><ss><aaa>.hwr"
                                           : "NISDCC-<www>_<aaa>_<sss>.hwr";
}

std::string AuthorName(SigComp2009Subset subset, int author) {
  return absl::StrFormat("%s-%03d", SubsetFolder(subset), author);
}

struct FileEntry {
  FileIds ids;
  bool forgery = false;
  std::string path;
};

// Lists the .hwr files of `folder`, checking their names and that forgeries (writer != author)
// are exactly the files of forgery/.
absl::Status ListFolder(const std::filesystem::path& folder, SigComp2009Subset subset,
                        bool forgery_folder, std::vector<FileEntry>* out) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    return absl::NotFoundError(absl::StrCat(folder.string(), ": no such folder (expected the ",
                                            SubsetFolder(subset), " part of SigComp2009)"));
  }
  const auto cannot_list = [&folder](const std::error_code& error) {
    return absl::NotFoundError(absl::StrCat(folder.string(), ": cannot list: ", error.message()));
  };
  std::filesystem::directory_iterator it(folder, ec);
  if (ec) return cannot_list(ec);
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return cannot_list(ec);
    const std::string name = it->path().filename().string();
    if (it->path().extension() != ".hwr") continue;
    FileEntry entry;
    entry.path = it->path().string();
    if (!ParseFileName(name, subset, &entry.ids)) {
      return absl::InvalidArgumentError(
          absl::StrCat(entry.path, ": the file name does not follow ", NamePattern(subset)));
    }
    entry.forgery = entry.ids.writer != entry.ids.author;
    if (entry.forgery != forgery_folder) {
      return absl::InvalidArgumentError(absl::StrCat(
          entry.path, ": writer ", entry.ids.writer, (entry.forgery ? " != " : " == "), "author ",
          entry.ids.author, " makes it ", entry.forgery ? "a forgery" : "genuine",
          ", but it is in ", forgery_folder ? "forgery/" : "genuine/"));
    }
    out->push_back(std::move(entry));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SigComp2009SubsetName(SigComp2009Subset subset) {
  return subset == SigComp2009Subset::kNfi ? "nfi" : "nisdcc";
}

absl::StatusOr<std::vector<PenSample>> ReadSigComp2009File(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseSigComp2009File(text, path);
}

absl::StatusOr<std::vector<PenSample>> ParseSigComp2009File(absl::string_view text,
                                                            absl::string_view name) {
  std::vector<PenSample> samples;
  int64_t expected = -1;  // N, once the header is read
  int64_t rows = 0;       // sample rows so far, pen-down or not
  bool pen_was_down = false;
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == absl::string_view::npos) eol = text.size();
    const absl::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    if (IsBlankLine(line)) continue;
    if (expected < 0) {
      SRN_ASSIGN_OR_RETURN(expected, ParseHeader(line, name));
      samples.reserve(static_cast<size_t>(expected));
      continue;
    }
    const std::string where = absl::StrCat(name, ":", line_number, ": ");
    int64_t v[kColumns];
    int count = 0;
    absl::string_view bad;
    if (!ParseIntegerFields(line, v, kColumns, &count, &bad)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "'", bad, "' is not an integer"));
    }
    if (count != kColumns) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "expected 5 integers (X Y Pressure Azimuth Altitude), found ", count));
    }
    if (rows == expected) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "more sample rows than the ", expected, " announced on line 1"));
    }
    const int64_t p = v[2];
    if (p < kHover && p != kMarker) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "pen state ", p,
                       " is none of: a pressure > 0, 0 or -1 (hovering), -4 (marker row)"));
    }
    if (p > 0) {
      PenSample s;
      s.x = static_cast<double>(v[0]);
      s.y = static_cast<double>(v[1]);
      s.t_ms = static_cast<double>(rows) * kSigComp2009StepMs;
      s.pressure = static_cast<double>(p);
      s.stroke_start = !pen_was_down;
      samples.push_back(s);
    }
    pen_was_down = p > 0;
    ++rows;
  }
  if (expected < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: empty file, expected the header '<tag> <number of samples>'"));
  }
  if (rows != expected) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", line_number, ": line 1 announces ",
                                                   expected, " samples but the file has ", rows));
  }
  if (samples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no pen-down row (every one of the ", rows, " has pressure <= 0)"));
  }
  return samples;
}

absl::StatusOr<Dataset> LoadSigComp2009(const std::string& dir, SigComp2009Subset subset) {
  const std::filesystem::path root = std::filesystem::path(dir) / SubsetFolder(subset);
  std::vector<FileEntry> files;
  SRN_RETURN_IF_ERROR(ListFolder(root / "genuine", subset, /*forgery_folder=*/false, &files));
  SRN_RETURN_IF_ERROR(ListFolder(root / "forgery", subset, /*forgery_folder=*/true, &files));
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.string(), ": no .hwr files in genuine/ or forgery/"));
  }
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) {
    return std::tie(a.ids.author, a.forgery, a.ids.writer, a.ids.sample, a.path) <
           std::tie(b.ids.author, b.forgery, b.ids.writer, b.ids.sample, b.path);
  });

  Dataset dataset;
  dataset.name = absl::StrCat("sigcomp2009-", SigComp2009SubsetName(subset));
  std::map<int, int> label_of_author;
  for (const FileEntry& f : files) {
    if (label_of_author.emplace(f.ids.author, dataset.num_labels()).second) {
      dataset.label_names.push_back(AuthorName(subset, f.ids.author));
    }
  }
  dataset.examples.reserve(files.size());
  for (FileEntry& f : files) {
    SRN_ASSIGN_OR_RETURN(const std::vector<PenSample> samples, ReadSigComp2009File(f.path));
    absl::StatusOr<Series> features =
        ComputeTabletSignatureFeatures(samples, /*has_pressure=*/true, kSigComp2009RateHz);
    if (!features.ok()) {
      return absl::Status(features.status().code(),
                          absl::StrCat(f.path, ": ", features.status().message()));
    }
    Example example;
    example.series = *std::move(features);
    example.label = label_of_author.at(f.ids.author);
    example.forgery = f.forgery;
    example.group = f.ids.writer;
    example.source = std::move(f.path);
    dataset.examples.push_back(std::move(example));
  }
  return dataset;
}

}  // namespace srn
