#include "model/eval/class_split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status_macros.h"

namespace srn {

std::string SplitPartName(SplitPart part) {
  switch (part) {
    case SplitPart::kTrain: return "train";
    case SplitPart::kValidation: return "validation";
    case SplitPart::kTest: return "test";
  }
  return "unknown";
}

namespace {

// "a, b, c" for at most `max` names, then "... (N more)".
std::string SomeNames(const std::vector<std::string>& names, size_t max = 10) {
  if (names.size() <= max) return absl::StrJoin(names, ", ");
  const std::vector<std::string> head(names.begin(), names.begin() + max);
  return absl::StrCat(absl::StrJoin(head, ", "), ", ... (", names.size() - max, " more)");
}

}  // namespace

absl::StatusOr<ClassChoice> ParseTestClasses(absl::string_view list) {
  ClassChoice choice;
  choice.origin = "--test_classes";
  std::map<std::string, int> seen;
  for (absl::string_view raw : absl::StrSplit(list, ',')) {
    const std::string name(absl::StripAsciiWhitespace(raw));
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--test_classes has an empty class name in '", list,
          "': list the test classes' names as in the manifest, separated by single commas"));
    }
    if (!seen.emplace(name, 1).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--test_classes names class '", name, "' twice: list each class once"));
    }
    choice.classes.emplace_back(name, SplitPart::kTest);
  }
  return choice;
}

absl::StatusOr<ClassChoice> ParseSplitFile(absl::string_view text, const std::string& file) {
  ClassChoice choice;
  choice.origin = absl::StrCat("--split=", file);
  choice.names_every_class = true;
  std::map<std::string, int> line_of;  // class -> the line that assigned it
  bool first = true;
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(file, ":", line_number, ": ");
    const size_t comma = line.rfind(',');
    if (comma == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "expected '<class>,<train|validation|test>', found '", line, "'"));
    }
    const std::string name(absl::StripAsciiWhitespace(line.substr(0, comma)));
    const std::string part_name(absl::StripAsciiWhitespace(line.substr(comma + 1)));
    const bool was_first = first;
    first = false;
    if (was_first && absl::EqualsIgnoreCase(name, "class") &&
        absl::EqualsIgnoreCase(part_name, "part")) {
      continue;  // the optional header
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the class name is empty (expected '<class>,<part>')"));
    }
    SplitPart part;
    if (part_name == "train") {
      part = SplitPart::kTrain;
    } else if (part_name == "validation") {
      part = SplitPart::kValidation;
    } else if (part_name == "test") {
      part = SplitPart::kTest;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "unknown part '", part_name, "' for class '", name,
          "' (expected train, validation or test)"));
    }
    const auto [it, inserted] = line_of.emplace(name, line_number);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "class '", name, "' is already assigned on line ", it->second,
          ": give each class one line, in one part"));
    }
    choice.classes.emplace_back(name, part);
  }
  if (choice.classes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": no classes (expected one line '<class>,<train|validation|test>' per class)"));
  }
  return choice;
}

absl::StatusOr<ClassChoice> ReadSplitFile(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseSplitFile(text, path);
}

absl::StatusOr<std::vector<SplitPart>> AssignClasses(const ClassChoice& choice,
                                                     const std::vector<std::string>& label_names) {
  std::map<std::string, int> label_of;
  for (int l = 0; l < static_cast<int>(label_names.size()); ++l) {
    label_of.emplace(label_names[l], l);
  }
  std::vector<SplitPart> parts(label_names.size(), SplitPart::kTrain);
  std::vector<bool> listed(label_names.size(), false);
  std::vector<std::string> unknown;
  for (const auto& [name, part] : choice.classes) {
    const auto it = label_of.find(name);
    if (it == label_of.end()) {
      unknown.push_back(absl::StrCat("'", name, "'"));
      continue;
    }
    if (listed[it->second]) {
      return absl::InvalidArgumentError(absl::StrCat(
          choice.origin, ": class '", name, "' is listed twice: give each class one part"));
    }
    listed[it->second] = true;
    parts[it->second] = part;
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        choice.origin, ": ", unknown.size() == 1 ? "class " : "classes ", SomeNames(unknown),
        unknown.size() == 1 ? " is" : " are", " not in the dataset; use the names of its label "
        "column (", label_names.size(), " classes: ", SomeNames(label_names), ")"));
  }
  if (choice.names_every_class) {
    std::vector<std::string> missing;
    for (size_t l = 0; l < label_names.size(); ++l) {
      if (!listed[l]) missing.push_back(label_names[l]);
    }
    if (!missing.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          choice.origin, ": ", missing.size(), " of the dataset's classes ",
          missing.size() == 1 ? "has" : "have", " no line: ", SomeNames(missing),
          "; add a line '<class>,<train|validation|test>' for each"));
    }
  }
  const auto count = [&](SplitPart p) { return std::count(parts.begin(), parts.end(), p); };
  if (count(SplitPart::kTest) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        choice.origin, ": no test class; give at least one class the part 'test'"));
  }
  if (count(SplitPart::kTrain) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        choice.origin, ": no training class (all ", label_names.size(),
        " classes are test or validation classes); leave at least one class to train, or "
        "evaluate a model trained elsewhere on every class with srn-eval --protocol=test"));
  }
  return parts;
}

std::vector<SplitPart> SeededClassParts(int num_labels, uint64_t seed) {
  // Each label gets a 64-bit key from the seed's generator; the labels with the smallest keys
  // test. mt19937_64's output is fixed by the standard, so is the split.
  std::mt19937_64 rng(seed);
  std::vector<std::pair<uint64_t, int>> keyed(num_labels);
  for (int l = 0; l < num_labels; ++l) keyed[l] = {rng(), l};
  std::sort(keyed.begin(), keyed.end());
  int train = static_cast<int>(std::lround(0.7 * num_labels));
  train = std::clamp(train, std::min(1, num_labels), std::max(0, num_labels - 1));
  const int test = num_labels - train;
  std::vector<SplitPart> parts(num_labels, SplitPart::kTrain);
  for (int k = 0; k < test; ++k) parts[keyed[k].second] = SplitPart::kTest;
  return parts;
}

}  // namespace srn
