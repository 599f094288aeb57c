#ifndef SRN_MODEL_EVAL_PROTOCOLS_H_
#define SRN_MODEL_EVAL_PROTOCOLS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/eval/class_split.h"
#include "model/eval/dtw.h"
#include "model/metrics/metrics.h"
#include "model/nn/similarity_model.h"
#include "model/train/train_config.h"

namespace srn {

// The paper's evaluation protocols (section 4.3).
enum class Protocol {
  kWithinDomain,  // train and test share classes; each class's examples are split 70/30
  kOutOfDomain,   // train and test classes are disjoint (AUC and one-shot on the test classes)
  kOneShot,       // the out-of-domain split, reporting one-shot 1-NN accuracy only
  kAll,           // every class trains (for shipped models); nothing is held out for testing
  kTest,          // every class tests (a model trained elsewhere): the out-of-domain evaluation
};

absl::StatusOr<Protocol> ParseProtocol(const std::string& name);
std::string ProtocolName(Protocol protocol);

struct Split {
  Dataset train;
  Dataset validation;  // held out of the training classes, for learning-rate decay and stopping
  Dataset test;
  // How the split was chosen and every class of each part by name, e.g. "the paper's fixed
  // split of arabic-digit: train classes (6): 1, 2, ...; validation classes (1): 4; test ..."
  std::string description;
};

// Splits `data` (loaded by LoadNamedDataset of model/data/dataset_loader.h under `name`) for a
// protocol.
//
// Out of domain and one-shot (class-disjoint): the classes `classes` assigns (--test_classes,
// --split; see model/eval/class_split.h), else the fixed splits of the public data sets:
// arabic-digit trains on digits 1-7 and tests on 8-10; arabic-voice trains on speakers 1-60 and
// tests on 61-88 (both the paper's); svc2004 and svc2004-task1 train on signers 1-30 and test on
// 31-40; the SigComp2009 sets train on the first 70% of their authors by id. Any other dataset
// (a CSV manifest) gets a split drawn by `seed` (SeededClassParts): 70% of the classes train.
// Validation: the classes `classes` marks as validation, else as `validation` says. A choice in
// `classes` for another protocol is InvalidArgument.
//
// Test: every example tests; train and validation are empty.
//
// The seed drives every random choice; the test part does not depend on `validation`.
absl::StatusOr<Split> MakeSplit(const Dataset& data, const std::string& name, Protocol protocol,
                                uint64_t seed, ValidationSplit validation = ValidationSplit::kAuto,
                                const ClassChoice& classes = {});

// Similarity of test examples i and j (higher = more similar); must be thread-safe.
using PairScorer = std::function<double(int i, int j)>;

struct EvalOptions {
  int oneshot_draws = 10;
  uint64_t seed = 1;
  int threads = 0;          // 0: DefaultThreads()
  int64_t max_pairs = 0;    // 0: every trial pair; else a uniform sample of about this many
  bool want_oneshot = true;
  bool want_auc = true;
  int curve_points = 200;   // operating points kept for ROC/DET export
  bool keep_scores = false; // keep every pair's score and label in the result (for histograms)
};

struct EvalResult {
  int64_t pairs = 0;        // trial pairs scored for AUC/EER
  double auc = 0;
  EerResult eer{0, 0};
  bool has_auc = false;
  OneShotResult oneshot{0, 0, 0, 0};
  bool has_oneshot = false;
  std::vector<OperatingPoint>
      curve;  // thinned operating points (ROC = (far, 1-frr), DET = (far, frr))
  // With EvalOptions::keep_scores: every scored pair (labels 1 similar, 0 not).
  std::vector<double> scores;
  std::vector<int> labels;
};

// Scores trial pairs of `test`: every unordered pair of distinct examples except two forgeries,
// similar when both are genuine examples of the same class. AUC and EER over those pairs; one-shot
// 1-NN accuracy over the genuine examples (references drawn per class). `oneshot_scorer`, when
// given, replaces `score` for the one-shot search (DTW uses it to prune).
absl::StatusOr<EvalResult> EvaluatePairs(const Dataset& test, const PairScorer& score,
                                         const ReferenceScorer* oneshot_scorer,
                                         const EvalOptions& options);

// Evaluates a trained model on raw `test` data (the model's preprocessing is applied), ranking
// pairs by the head's logit; the thresholds (and kept scores) are reported as the similarity
// srn-server returns, sigmoid(logit) in [0, 1]. When `embeddings` is not null it receives the
// test embeddings.
absl::StatusOr<EvalResult> EvaluateModel(const SimilarityModel& model, const Dataset& test,
                                         const EvalOptions& options,
                                         RowMatrix* embeddings = nullptr);

// Evaluates the DTW baseline on raw `test` data, standardized with statistics from `train` (as
// the SRN's inputs are); similarity = -normalized DTW distance, with lower-bound pruning in the
// one-shot search.
// With `center_series`, each series is centred on its own mean first (as the SRN option).
absl::StatusOr<EvalResult> EvaluateDtw(const Dataset& train, const Dataset& test,
                                       const DtwOptions& dtw, const EvalOptions& options,
                                       bool center_series = false);

// The machine-readable summary line, e.g.
// "RESULT protocol=out-of-domain dataset=arabic-voice model=srn-a auc=0.912 oneshot=0.451";
// eer is printed only when `with_eer` (signature data).
std::string ResultLine(Protocol protocol, const std::string& dataset, const std::string& model,
                       const EvalResult& result, bool with_eer);

}  // namespace srn

#endif  // SRN_MODEL_EVAL_PROTOCOLS_H_
