#ifndef SRN_MODEL_DATA_DATASET_H_
#define SRN_MODEL_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/series.h"

namespace srn {

// One labelled series. `label` is the class (digit, speaker, signer, or a user's class);
// `forgery` marks a skilled forgery of signer `label` (dissimilar to that signer's genuine ones).
struct Example {
  Series series;
  int label = 0;
  bool forgery = false;
  int group = -1;  // secondary id where the source has one (speaker of a digit, digit of a speaker)
  std::string source;  // where it came from, e.g. "Train_Arabic_Digit.txt:block 17" or a file path
};

// A labelled collection of series with the same number of features. A value type.
struct Dataset {
  std::string name;                      // e.g. "arabic-digit", "svc2004", or the manifest path
  std::vector<std::string> label_names;  // label -> readable name
  std::vector<Example> examples;

  int dims() const { return examples.empty() ? 0 : examples.front().series.dims(); }
  int num_labels() const { return static_cast<int>(label_names.size()); }

  // Examples whose label satisfies `keep` (labels keep their numbers).
  template <typename Pred>
  Dataset Filter(Pred keep) const {
    Dataset out{name, label_names, {}};
    for (const Example& e : examples) {
      if (keep(e)) out.examples.push_back(e);
    }
    return out;
  }
  std::vector<const Series*> SeriesPointers() const;
  // The names of the classes that have examples here, sorted.
  std::vector<std::string> ClassNames() const;
};

// One dataset holding every example of `parts`, in order, with labels that never collide: part
// k's labels are shifted past those of parts 0..k-1 (its label range starts at the sum of their
// num_labels()), so a skilled forgery stays attached to its own part's signer. Label names are
// prefixed with the part's name ("svc2004/U1"); the name joins the parts' names with '+'; groups
// and sources are kept. InvalidArgument when `parts` is empty, a part has no examples, or two
// parts' feature dims differ.
absl::StatusOr<Dataset> MergeDatasets(const std::vector<Dataset>& parts);

// The classes of `train` and `validation` together by name, sorted (what a model trained on them
// has seen: ModelMetadata::trained_classes).
std::vector<std::string> TrainedClassNames(const Dataset& train, const Dataset& validation);

// The data directory: $SRN_DATA_DIR if set, else the build's default (../shared/data).
std::string DataDir();

}  // namespace srn

#endif  // SRN_MODEL_DATA_DATASET_H_
