#include "model/data/svc2004.h"

#include <cstdint>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model/data/integer_fields.h"
#include "base/file.h"
#include "base/status_macros.h"

namespace srn {
namespace {

// Far above any real signature (SVC2004 has at most 713), low enough to refuse absurd headers.
constexpr int64_t kMaxSamples = 1000000;

}  // namespace

absl::StatusOr<std::vector<PenSample>> ReadSvc2004File(const std::string& path,
                                                       bool* has_pressure) {
  SRN_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseSvc2004File(text, path, has_pressure);
}

absl::StatusOr<std::vector<PenSample>> ParseSvc2004File(absl::string_view text,
                                                        absl::string_view name,
                                                        bool* has_pressure) {
  std::vector<PenSample> samples;
  int64_t expected = -1;  // N, once the first line is read
  int columns = 0;        // 4 or 7, fixed by the first sample line
  int first_sample_line = 0;
  double t0 = 0;
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == absl::string_view::npos) eol = text.size();
    const absl::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    if (IsBlankLine(line)) continue;
    const std::string where = absl::StrCat(name, ":", line_number, ": ");
    int64_t v[7];
    int count = 0;
    absl::string_view bad;
    if (!ParseIntegerFields(line, v, 7, &count, &bad)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "'", bad, "' is not an integer"));
    }
    if (expected < 0) {
      if (count != 1 || v[0] <= 0 || v[0] > kMaxSamples) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "expected the number of samples (1 to ", kMaxSamples, "), found '", line, "'"));
      }
      expected = v[0];
      samples.reserve(static_cast<size_t>(expected));
      continue;
    }
    if (columns == 0) {
      if (count != 4 && count != 7) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "expected 7 integers (X Y TimeStamp ButtonStatus Azimuth Altitude "
                                "Pressure) or 4 (X Y TimeStamp ButtonStatus), found ",
                         count));
      }
      columns = count;
      first_sample_line = line_number;
      t0 = static_cast<double>(v[2]);
    } else if (count != columns) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected ", columns,
                                                     " integers (as on line ", first_sample_line,
                                                     "), found ", count));
    }
    if (static_cast<int64_t>(samples.size()) == expected) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "more sample lines than the ", expected, " announced on line 1"));
    }
    PenSample s;
    s.x = static_cast<double>(v[0]);
    s.y = static_cast<double>(v[1]);
    s.t_ms = static_cast<double>(v[2]) - t0;
    s.stroke_start = (v[3] & 1) == 0;
    s.pressure = columns == 7 ? static_cast<double>(v[6]) : 0.0;
    samples.push_back(s);
  }
  if (expected < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: empty file, expected the number of samples"));
  }
  if (static_cast<int64_t>(samples.size()) != expected) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", line_number, ": line 1 announces ",
                                                   expected, " samples but the file has ",
                                                   samples.size()));
  }
  if (has_pressure != nullptr) *has_pressure = columns == 7;
  return samples;
}

namespace {

enum class Svc2004Task { kTask1, kTask2 };

absl::StatusOr<Dataset> LoadUsers(const std::string& dir, absl::Span<const int> users,
                                  Svc2004Task task) {
  Dataset dataset;
  dataset.name = task == Svc2004Task::kTask1 ? "svc2004-task1" : "svc2004";
  for (int u = 1; u <= kSvc2004Users; ++u) dataset.label_names.push_back(absl::StrCat("U", u));
  dataset.examples.reserve(users.size() * kSvc2004SignaturesPerUser);
  for (int user : users) {
    if (user < 1 || user > kSvc2004Users) {
      return absl::InvalidArgumentError(
          absl::StrCat("SVC2004 users are 1 to ", kSvc2004Users, ", got ", user));
    }
    for (int s = 1; s <= kSvc2004SignaturesPerUser; ++s) {
      const std::string path =
          (std::filesystem::path(dir) / absl::StrCat("U", user, "S", s, ".TXT")).string();
      bool has_pressure = false;
      SRN_ASSIGN_OR_RETURN(std::vector<PenSample> samples, ReadSvc2004File(path, &has_pressure));
      if (task == Svc2004Task::kTask1 && has_pressure) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": has Task 2's layout (7 integers per sample line); Task 1 files have 4 "
                  "(X Y TimeStamp ButtonStatus)"));
      }
      absl::StatusOr<Series> features =
          ComputeTabletSignatureFeatures(samples, has_pressure, kSvc2004RateHz);
      if (!features.ok()) {
        return absl::Status(features.status().code(),
                            absl::StrCat(path, ": ", features.status().message()));
      }
      Example example;
      example.series = *std::move(features);
      example.label = user - 1;
      example.forgery = s > kSvc2004GenuinePerUser;
      example.group = s;
      example.source = path;
      dataset.examples.push_back(std::move(example));
    }
  }
  return dataset;
}

std::vector<int> AllUsers() {
  std::vector<int> users(kSvc2004Users);
  for (int u = 0; u < kSvc2004Users; ++u) users[u] = u + 1;
  return users;
}

}  // namespace

absl::StatusOr<Dataset> LoadSvc2004Users(const std::string& task2_dir,
                                         absl::Span<const int> users) {
  return LoadUsers(task2_dir, users, Svc2004Task::kTask2);
}

absl::StatusOr<Dataset> LoadSvc2004(const std::string& task2_dir) {
  return LoadUsers(task2_dir, AllUsers(), Svc2004Task::kTask2);
}

absl::StatusOr<Dataset> LoadSvc2004Task1(const std::string& task1_dir) {
  return LoadUsers(task1_dir, AllUsers(), Svc2004Task::kTask1);
}

}  // namespace srn
