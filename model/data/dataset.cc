#include "model/data/dataset.h"

#include <cstdlib>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace srn {

std::vector<std::string> Dataset::ClassNames() const {
  std::set<std::string> names;
  for (const Example& e : examples) names.insert(label_names[e.label]);
  return {names.begin(), names.end()};
}

std::vector<std::string> TrainedClassNames(const Dataset& train, const Dataset& validation) {
  std::set<std::string> names;
  for (const Dataset* d : {&train, &validation}) {
    for (std::string& name : d->ClassNames()) names.insert(std::move(name));
  }
  return {names.begin(), names.end()};
}

std::vector<const Series*> Dataset::SeriesPointers() const {
  std::vector<const Series*> out;
  out.reserve(examples.size());
  for (const Example& e : examples) out.push_back(&e.series);
  return out;
}

absl::StatusOr<Dataset> MergeDatasets(const std::vector<Dataset>& parts) {
  if (parts.empty()) return absl::InvalidArgumentError("no datasets to merge");
  Dataset out;
  for (const Dataset& part : parts) {
    if (part.examples.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot merge dataset '", part.name, "': it has no examples"));
    }
    if (part.dims() != parts.front().dims()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot merge datasets with different feature dims: '", parts.front().name, "' has ",
          parts.front().dims(), ", '", part.name, "' has ", part.dims()));
    }
    const int offset = out.num_labels();
    for (const Example& e : part.examples) {
      if (e.label < 0 || e.label >= part.num_labels()) {
        return absl::InvalidArgumentError(absl::StrCat("cannot merge dataset '", part.name,
                                                       "': label ", e.label, " of ", e.source,
                                                       " has no name"));
      }
    }
    absl::StrAppend(&out.name, out.name.empty() ? "" : "+", part.name);
    for (const std::string& label : part.label_names) {
      out.label_names.push_back(absl::StrCat(part.name, "/", label));
    }
    for (const Example& e : part.examples) {
      out.examples.push_back(e);
      out.examples.back().label = e.label + offset;
    }
  }
  return out;
}

std::string DataDir() {
  const char* env = std::getenv("SRN_DATA_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return SRN_DEFAULT_DATA_DIR;
}

}  // namespace srn
