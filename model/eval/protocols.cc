#include "model/eval/protocols.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/nn/parallel.h"
#include "base/status_macros.h"
#include "model/nn/pair_loss.h"
#include "model/data/preprocess.h"
#include "model/train/trainer.h"

namespace srn {

absl::StatusOr<Protocol> ParseProtocol(const std::string& name) {
  if (name == "within-domain") return Protocol::kWithinDomain;
  if (name == "out-of-domain") return Protocol::kOutOfDomain;
  if (name == "one-shot") return Protocol::kOneShot;
  if (name == "all") return Protocol::kAll;
  if (name == "test") return Protocol::kTest;
  return absl::InvalidArgumentError(absl::StrCat("unknown protocol '", name,
                                                 "' (expected within-domain, out-of-domain, "
                                                 "one-shot, all or test)"));
}

std::string ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kWithinDomain: return "within-domain";
    case Protocol::kOutOfDomain: return "out-of-domain";
    case Protocol::kOneShot: return "one-shot";
    case Protocol::kAll: return "all";
    case Protocol::kTest: return "test";
  }
  return "unknown";
}

namespace {

// The fixed class-disjoint split of a public data set: the first label of its test classes, or
// -1 for a dataset without one (a CSV manifest).
int FixedFirstTestLabel(const std::string& name, int num_labels) {
  if (name == "arabic-digit") return 7;   // digits 1-7 train, 8-10 test (the paper's)
  if (name == "arabic-voice") return 60;  // speakers 1-60 train, 61-88 test (the paper's)
  if (name == "svc2004" || name == "svc2004-task1") return 30;  // signers 1-30 train, 31-40 test
  if (name == "sigcomp2009-nfi" || name == "sigcomp2009-nisdcc") {
    return static_cast<int>(std::lround(0.7 * num_labels));  // the first 70% of authors by id
  }
  return -1;
}

// The labels of `data`'s examples, in label order.
std::set<int> LabelsOf(const Dataset& data) {
  std::set<int> labels;
  for (const Example& e : data.examples) labels.insert(e.label);
  return labels;
}

// "train classes (3): a, b, c" for every class of `labels`, named as in `data`.
std::string ClassList(const std::string& part, const std::set<int>& labels,
                      const Dataset& data) {
  std::string out = absl::StrCat(part, " classes (", labels.size(), "):");
  bool first = true;
  for (int l : labels) {
    absl::StrAppend(&out, first ? " " : ", ",
                    l < data.num_labels() ? data.label_names[l] : absl::StrCat(l));
    first = false;
  }
  return out;
}

// Moves a validation set out of `train`: whole classes when there are enough of them (like the
// out-of-domain test), else a share of every class's examples.
void HoldOutValidation(ValidationSplit how, std::mt19937_64* rng, Split* split) {
  std::map<int, std::vector<int>> by_label;
  for (int i = 0; i < static_cast<int>(split->train.examples.size()); ++i) {
    by_label[split->train.examples[i].label].push_back(i);
  }
  std::vector<bool> to_validation(split->train.examples.size(), false);
  const bool by_class = how == ValidationSplit::kClasses ||
                        (how == ValidationSplit::kAuto && by_label.size() >= 20);
  if (by_class && by_label.size() >= 3) {
    std::vector<int> labels;
    for (const auto& [label, unused] : by_label) labels.push_back(label);
    std::shuffle(labels.begin(), labels.end(), *rng);
    const int held = std::max<int>(2, static_cast<int>(std::lround(0.1 * labels.size())));
    for (int k = 0; k < held; ++k) {
      for (int i : by_label[labels[k]]) to_validation[i] = true;
    }
  } else {
    for (auto& [label, members] : by_label) {
      std::shuffle(members.begin(), members.end(), *rng);
      const int held = static_cast<int>(std::lround(0.1 * members.size()));
      for (int k = 0; k < held; ++k) to_validation[members[k]] = true;
    }
  }
  Dataset train{split->train.name, split->train.label_names, {}};
  split->validation = Dataset{split->train.name, split->train.label_names, {}};
  for (size_t i = 0; i < to_validation.size(); ++i) {
    (to_validation[i] ? split->validation : train)
        .examples.push_back(std::move(split->train.examples[i]));
  }
  split->train = std::move(train);
}

// Moves the examples of the validation classes (`parts`) out of `split->train`.
void MoveValidationClasses(const std::vector<SplitPart>& parts, Split* split) {
  Dataset train{split->train.name, split->train.label_names, {}};
  split->validation = Dataset{split->train.name, split->train.label_names, {}};
  for (Example& e : split->train.examples) {
    (parts[e.label] == SplitPart::kValidation ? split->validation : train)
        .examples.push_back(std::move(e));
  }
  split->train = std::move(train);
}

}  // namespace

absl::StatusOr<Split> MakeSplit(const Dataset& data, const std::string& name, Protocol protocol,
                                uint64_t seed, ValidationSplit validation,
                                const ClassChoice& classes) {
  if (data.num_labels() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("dataset ", name, " has fewer than 2 classes"));
  }
  const bool class_disjoint = protocol == Protocol::kOutOfDomain || protocol == Protocol::kOneShot;
  if (!classes.empty() && !class_disjoint) {
    return absl::InvalidArgumentError(absl::StrCat(
        classes.origin, " chooses the classes of --protocol=out-of-domain or one-shot; ",
        ProtocolName(protocol), " ",
        protocol == Protocol::kTest ? "tests every class" : "does not split by class",
        ": drop ", classes.origin));
  }
  std::mt19937_64 rng(seed);
  Split split;
  split.train = Dataset{data.name, data.label_names, {}};
  split.test = Dataset{data.name, data.label_names, {}};
  std::string how;  // how the split was chosen, the description's start
  bool validation_chosen = false;
  switch (protocol) {
    case Protocol::kOutOfDomain:
    case Protocol::kOneShot: {
      std::vector<SplitPart> parts;
      const int fixed = FixedFirstTestLabel(name, data.num_labels());
      if (!classes.empty()) {
        SRN_ASSIGN_OR_RETURN(parts, AssignClasses(classes, data.label_names));
        how = absl::StrCat("split of ", classes.origin);
      } else if (fixed >= 0) {
        if (fixed <= 0 || fixed >= data.num_labels()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "dataset ", name, " has ", data.num_labels(), " classes: too few to split by class"));
        }
        parts.assign(data.num_labels(), SplitPart::kTrain);
        for (int l = fixed; l < data.num_labels(); ++l) parts[l] = SplitPart::kTest;
        how = absl::StrCat("fixed split of ", name);
      } else {
        // A separate generator, so that `rng`'s draws (validation) stay what they were.
        parts = SeededClassParts(data.num_labels(), seed);
        how = absl::StrCat("split drawn by seed ", seed,
                           " (choose one with --test_classes or --split)");
      }
      for (const Example& e : data.examples) {
        (parts[e.label] == SplitPart::kTest ? split.test : split.train).examples.push_back(e);
      }
      if (std::count(parts.begin(), parts.end(), SplitPart::kValidation) > 0) {
        MoveValidationClasses(parts, &split);
        validation_chosen = true;
      }
      break;
    }
    case Protocol::kWithinDomain: {
      std::map<int, std::vector<int>> by_label;
      for (int i = 0; i < static_cast<int>(data.examples.size()); ++i) {
        by_label[data.examples[i].label].push_back(i);
      }
      for (auto& [label, members] : by_label) {
        std::shuffle(members.begin(), members.end(), rng);
        const size_t train_count = static_cast<size_t>(std::lround(0.7 * members.size()));
        for (size_t k = 0; k < members.size(); ++k) {
          (k < train_count ? split.train : split.test)
              .examples.push_back(data.examples[members[k]]);
        }
      }
      how = "every class; 70% of each class's examples train, 30% test";
      break;
    }
    case Protocol::kAll:
      split.train.examples = data.examples;
      how = "no class is held out for testing";
      break;
    case Protocol::kTest:
      split.test.examples = data.examples;
      split.validation = Dataset{data.name, data.label_names, {}};
      split.description =
          absl::StrCat("every class tests; ", ClassList("test", LabelsOf(split.test), data));
      return split;
  }
  if (!validation_chosen) HoldOutValidation(validation, &rng, &split);
  if (split.train.examples.empty() || split.validation.examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset ", name, " is too small to hold out a validation set (",
        split.train.examples.size() + split.validation.examples.size(),
        " training examples); add examples or classes, or choose validation classes with "
        "--split"));
  }
  // Every class of every part, by name.
  const std::set<int> train = LabelsOf(split.train), held = LabelsOf(split.validation);
  const bool held_by_class = std::none_of(held.begin(), held.end(),
                                          [&](int l) { return train.count(l) > 0; });
  if (protocol == Protocol::kWithinDomain) {
    split.description = how;
  } else {
    split.description = absl::StrCat(how, "; ", ClassList("train", train, data));
  }
  if (held_by_class) {
    absl::StrAppend(&split.description, "; ", ClassList("validation", held, data));
  } else {
    absl::StrAppend(&split.description, "; validation: 10% of each training class's examples");
  }
  if (class_disjoint) {
    absl::StrAppend(&split.description, "; ", ClassList("test", LabelsOf(split.test), data));
  }
  return split;
}

namespace {

// A deterministic uniform number in [0, 1) for pair (i, j), for sampling pairs without a shared
// generator across threads.
double PairUniform(uint64_t seed, int i, int j) {
  uint64_t x = seed ^ (static_cast<uint64_t>(i) << 32 | static_cast<uint32_t>(j));
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

}  // namespace

absl::StatusOr<EvalResult> EvaluatePairs(const Dataset& test, const PairScorer& score,
                                         const ReferenceScorer* oneshot_scorer,
                                         const EvalOptions& options) {
  const int n = static_cast<int>(test.examples.size());
  const int threads = options.threads > 0 ? options.threads : DefaultThreads();
  EvalResult result;
  if (options.want_auc) {
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        if (!(test.examples[i].forgery && test.examples[j].forgery)) ++total;
      }
    }
    const double keep = options.max_pairs > 0 && total > options.max_pairs
                            ? static_cast<double>(options.max_pairs) / static_cast<double>(total)
                            : 1.0;
    // Rows are dealt out round-robin to many chunks so that the triangle's work is balanced.
    const int chunks = std::max(1, std::min(n, threads * 16));
    std::vector<std::vector<double>> chunk_scores(chunks);
    std::vector<std::vector<int>> chunk_labels(chunks);
    ParallelFor(chunks, threads, [&](int begin, int end, int) {
      for (int c = begin; c < end; ++c) {
        for (int i = c; i < n; i += chunks) {
          const Example& a = test.examples[i];
          for (int j = i + 1; j < n; ++j) {
            const Example& b = test.examples[j];
            if (a.forgery && b.forgery) continue;
            if (keep < 1.0 && PairUniform(options.seed, i, j) >= keep) continue;
            chunk_scores[c].push_back(score(i, j));
            chunk_labels[c].push_back(a.label == b.label && !a.forgery && !b.forgery ? 1 : 0);
          }
        }
      }
    });
    std::vector<double> scores;
    std::vector<int> labels;
    for (int c = 0; c < chunks; ++c) {
      scores.insert(scores.end(), chunk_scores[c].begin(), chunk_scores[c].end());
      labels.insert(labels.end(), chunk_labels[c].begin(), chunk_labels[c].end());
    }
    result.pairs = static_cast<int64_t>(scores.size());
    SRN_ASSIGN_OR_RETURN(result.auc, Auc(scores, labels));
    SRN_ASSIGN_OR_RETURN(result.eer, Eer(scores, labels));
    SRN_ASSIGN_OR_RETURN(std::vector<OperatingPoint> curve, OperatingPoints(scores, labels));
    result.curve = ThinCurve(curve, options.curve_points);
    result.has_auc = true;
    if (options.keep_scores) {
      result.scores = std::move(scores);
      result.labels = std::move(labels);
    }
  }
  if (options.want_oneshot) {
    std::vector<int> genuine;
    std::vector<int> labels;
    for (int i = 0; i < n; ++i) {
      if (!test.examples[i].forgery) {
        genuine.push_back(i);
        labels.push_back(test.examples[i].label);
      }
    }
    if (oneshot_scorer != nullptr) {
      const ReferenceScorer mapped = [&](int query, absl::Span<const int> refs, double* out) {
        thread_local std::vector<int> original;
        original.resize(refs.size());
        for (size_t k = 0; k < refs.size(); ++k) original[k] = genuine[refs[k]];
        (*oneshot_scorer)(genuine[query], original, out);
      };
      SRN_ASSIGN_OR_RETURN(result.oneshot, OneShotAccuracyBatch(labels, options.oneshot_draws,
                                                                options.seed, mapped, threads));
    } else {
      const PairScore mapped = [&](int q, int r) { return score(genuine[q], genuine[r]); };
      SRN_ASSIGN_OR_RETURN(result.oneshot, OneShotAccuracy(labels, options.oneshot_draws,
                                                           options.seed, mapped, threads));
    }
    result.has_oneshot = true;
  }
  return result;
}

absl::StatusOr<EvalResult> EvaluateModel(const SimilarityModel& model, const Dataset& test,
                                         const EvalOptions& options, RowMatrix* embeddings) {
  SRN_ASSIGN_OR_RETURN(Dataset processed, PreprocessDataset(model.preprocessor(), test));
  const RowMatrix emb = model.EmbedPreprocessed(processed.SeriesPointers());
  const int e = model.embedding_dims();
  const float* params = model.params().data();
  const ParameterLayout& layout = model.layout();
  const PairScorer score = [&](int i, int j) {
    return static_cast<double>(
        HeadLogit<float>(params, layout, emb.row(i).data(), emb.row(j).data(), e));
  };
  SRN_ASSIGN_OR_RETURN(EvalResult result, EvaluatePairs(test, score, nullptr, options));
  // Ranked by the logit (no ties from a saturated sigmoid); thresholds and scores reported as the
  // similarity srn-server returns, sigmoid(logit), so that every threshold is in one unit.
  const auto similarity = [](double logit) {
    return std::isinf(logit) ? logit : 1.0 / (1.0 + std::exp(-logit));
  };
  result.eer.threshold = similarity(result.eer.threshold);
  for (OperatingPoint& p : result.curve) p.threshold = similarity(p.threshold);
  for (double& x : result.scores) x = similarity(x);
  if (embeddings != nullptr) *embeddings = emb;
  return result;
}

absl::StatusOr<EvalResult> EvaluateDtw(const Dataset& train, const Dataset& test,
                                       const DtwOptions& dtw, const EvalOptions& options,
                                       bool center_series) {
  SRN_ASSIGN_OR_RETURN(const Preprocessor standardize,
                       Preprocessor::Fit(train.SeriesPointers(), /*window=*/1, FeatureKind::kFrames,
                                         center_series));
  SRN_ASSIGN_OR_RETURN(const Dataset processed, PreprocessDataset(standardize, test));
  const std::vector<const Series*> series = processed.SeriesPointers();
  const PairScorer score = [&](int i, int j) {
    return -NormalizedDtwDistance(*series[i], *series[j], dtw);
  };
  SRN_ASSIGN_OR_RETURN(const ReferenceScorer oneshot, MakeDtwReferenceScorer(series, dtw));
  return EvaluatePairs(processed, score, &oneshot, options);
}

std::string ResultLine(Protocol protocol, const std::string& dataset, const std::string& model,
                       const EvalResult& result, bool with_eer) {
  std::string line = absl::StrCat("RESULT protocol=", ProtocolName(protocol), " dataset=", dataset,
                                  " model=", model);
  if (result.has_auc && protocol != Protocol::kOneShot) {
    absl::StrAppend(&line, absl::StrFormat(" auc=%.4f", result.auc));
  }
  if (result.has_oneshot)
    absl::StrAppend(&line, absl::StrFormat(" oneshot=%.4f", result.oneshot.accuracy));
  if (with_eer && result.has_auc)
    absl::StrAppend(&line, absl::StrFormat(" eer=%.4f", result.eer.eer));
  return line;
}

}  // namespace srn
