#ifndef SRN_MODEL_EVAL_CLASS_SPLIT_H_
#define SRN_MODEL_EVAL_CLASS_SPLIT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace srn {

// Which classes train, validate and test under the class-disjoint protocols (out-of-domain,
// one-shot): chosen by name by the user (--test_classes, --split=FILE), or drawn by a seed.
// MakeSplit (model/eval/protocols.h) applies the parts; srn-train and srn-eval both reach it
// through srn::tools::LoadAndSplit, so the same flags give the same split. Plain functions on
// values; thread-compatible.

enum class SplitPart { kTrain, kValidation, kTest };

// "train", "validation" or "test".
std::string SplitPartName(SplitPart part);

// Classes assigned to parts by name, before they are matched against a dataset's label names.
struct ClassChoice {
  std::vector<std::pair<std::string, SplitPart>> classes;  // in the order given
  // Where the choice came from, for messages and the split's description ("--test_classes",
  // "--split=<file>").
  std::string origin;
  // A split file names every class; --test_classes names the test classes and the rest train.
  bool names_every_class = false;

  bool empty() const { return classes.empty(); }
};

// --test_classes: a comma list of class names (spaces around names trimmed). InvalidArgument for
// an empty name or a name given twice.
absl::StatusOr<ClassChoice> ParseTestClasses(absl::string_view list);

// A split file's text: one `<class>,<part>` line per class, part train, validation or test (the
// last comma separates them; spaces around both trimmed). Blank lines and lines whose first
// non-blank character is '#' are skipped; the first other line may be the header `class,part`.
// `file` names the source in errors ("<file>:<line>: ..."). InvalidArgument for a line without
// a comma, an empty class, an unknown part, or a class listed twice.
absl::StatusOr<ClassChoice> ParseSplitFile(absl::string_view text, const std::string& file);

// ParseSplitFile of the file at `path` (NotFound when it does not exist).
absl::StatusOr<ClassChoice> ReadSplitFile(const std::string& path);

// The part of each label (indexed by label id) that `choice` gives the classes `label_names`.
// InvalidArgument, saying what to do, for a name that is not a class of the dataset, for a split
// file that leaves a class out, and when no class would train or none would test.
absl::StatusOr<std::vector<SplitPart>> AssignClasses(const ClassChoice& choice,
                                                     const std::vector<std::string>& label_names);

// A class-disjoint split of `num_labels` classes drawn by `seed`: round(70%) of them train, the
// rest test (at least one each when num_labels >= 2). The same seed gives the same parts on every
// platform (no std::shuffle, whose draws the standard leaves open).
std::vector<SplitPart> SeededClassParts(int num_labels, uint64_t seed);

}  // namespace srn

#endif  // SRN_MODEL_EVAL_CLASS_SPLIT_H_
