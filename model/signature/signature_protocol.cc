#include "model/signature/signature_protocol.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/nn/network.h"
#include "model/nn/pair_loss.h"
#include "model/nn/parallel.h"
#include "model/data/preprocess.h"
#include "model/signature/frame_states.h"
#include "model/signature/frame_triplet_trainer.h"
#include "base/status_macros.h"
#include "model/train/trainer.h"

namespace srn {

absl::StatusOr<std::vector<std::vector<int>>> SignatureCvFolds(int num_signers, int folds,
                                                               uint64_t seed) {
  if (folds < 2 || folds > num_signers) {
    return absl::InvalidArgumentError(absl::StrCat("cannot deal ", num_signers, " signers into ",
                                                   folds, " folds (need 2 <= folds <= signers)"));
  }
  std::vector<int> signers(num_signers);
  std::iota(signers.begin(), signers.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(signers.begin(), signers.end(), rng);
  std::vector<std::vector<int>> out(folds);
  for (int k = 0; k < num_signers; ++k) out[k % folds].push_back(signers[k]);
  for (auto& f : out) std::sort(f.begin(), f.end());
  return out;
}

absl::StatusOr<Split> MakeSignatureCvSplit(const Dataset& data, int folds, int fold,
                                           uint64_t seed) {
  SRN_ASSIGN_OR_RETURN(const std::vector<std::vector<int>> parts,
                       SignatureCvFolds(data.num_labels(), folds, seed));
  if (fold < 0 || fold >= folds) {
    return absl::InvalidArgumentError(
        absl::StrCat("fold ", fold, " is outside 0..", folds - 1));
  }
  const std::set<int> test(parts[fold].begin(), parts[fold].end());
  std::vector<int> rest;
  for (int l = 0; l < data.num_labels(); ++l) {
    if (!test.count(l)) rest.push_back(l);
  }
  const int held = std::max<int>(2, static_cast<int>(std::lround(0.1 * rest.size())));
  if (static_cast<int>(rest.size()) < held + 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("fold ", fold, " leaves ", rest.size(),
                     " training signers: too few to hold out validation"));
  }
  std::mt19937_64 rng(seed ^ (0xA5A5A5A5ull + static_cast<uint64_t>(fold)));
  std::shuffle(rest.begin(), rest.end(), rng);
  const std::set<int> validation(rest.begin(), rest.begin() + held);
  Split split;
  split.test = data.Filter([&](const Example& e) { return test.count(e.label) > 0; });
  split.validation = data.Filter([&](const Example& e) { return validation.count(e.label) > 0; });
  split.train = data.Filter(
      [&](const Example& e) { return !test.count(e.label) && !validation.count(e.label); });
  std::string names;
  for (int l : parts[fold]) {
    absl::StrAppend(&names, names.empty() ? "" : ",",
                    l < data.num_labels() ? data.label_names[l] : absl::StrCat(l));
  }
  split.description =
      absl::StrFormat("svc2004-cv fold %d of %d (seed %d): test signers %s; %d training signers, "
                      "%d held out for validation",
                      fold, folds, seed, names, static_cast<int>(rest.size()) - held, held);
  return split;
}

absl::StatusOr<Split> MakeSignatureSignersSplit(const Dataset& data, uint64_t seed,
                                                int min_validation_genuine) {
  std::vector<int> genuine(data.num_labels(), 0), forgeries(data.num_labels(), 0);
  for (const Example& e : data.examples) {
    if (e.label < 0 || e.label >= data.num_labels()) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", e.label, " of ", e.source, " has no name"));
    }
    ++(e.forgery ? forgeries : genuine)[e.label];
  }
  std::vector<int> eligible;
  int signers = 0;
  for (int l = 0; l < data.num_labels(); ++l) {
    if (genuine[l] + forgeries[l] > 0) ++signers;
    if (forgeries[l] > 0 && genuine[l] >= min_validation_genuine) eligible.push_back(l);
  }
  if (eligible.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        data.name, " has ", eligible.size(), " signers with skilled forgeries and at least ",
        min_validation_genuine, " genuine signatures; validation needs 2"));
  }
  const int held = std::max<int>(2, static_cast<int>(std::lround(0.1 * eligible.size())));
  if (signers - held < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(data.name, " has ", signers, " signers: too few to train and validate"));
  }
  std::mt19937_64 rng(seed ^ 0x5167A5A5ull);
  std::shuffle(eligible.begin(), eligible.end(), rng);
  std::vector<int> chosen(eligible.begin(), eligible.begin() + held);
  std::sort(chosen.begin(), chosen.end());
  const std::set<int> validation(chosen.begin(), chosen.end());
  Split split;
  split.validation = data.Filter([&](const Example& e) { return validation.count(e.label) > 0; });
  split.train = data.Filter([&](const Example& e) { return validation.count(e.label) == 0; });
  split.test = data.Filter([](const Example&) { return false; });
  std::string names;
  for (int l : chosen) absl::StrAppend(&names, names.empty() ? "" : ",", data.label_names[l]);
  split.description = absl::StrFormat(
      "signers (seed %d): validation signers %s (%d of the %d with skilled forgeries and at "
      "least %d genuine); %d training signers",
      seed, names, held, static_cast<int>(eligible.size()), min_validation_genuine,
      signers - held);
  return split;
}

std::vector<double> SimilarityMatrix(const Dataset& test, const TrialScorer& score, int threads) {
  const int n = static_cast<int>(test.examples.size());
  std::vector<double> sim(static_cast<size_t>(n) * n, std::numeric_limits<double>::quiet_NaN());
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (!test.examples[i].forgery || !test.examples[j].forgery) pairs.push_back({i, j});
    }
  }
  // Interleaved so that every worker gets long and short series alike.
  const int workers = std::max(1, threads > 0 ? threads : DefaultThreads());
  const int chunks = workers * 16;
  ParallelFor(chunks, workers, [&](int begin, int end, int) {
    for (int c = begin; c < end; ++c) {
      for (size_t p = c; p < pairs.size(); p += chunks) {
        const auto [i, j] = pairs[p];
        const double s = score(i, j);
        sim[static_cast<size_t>(i) * n + j] = s;
        sim[static_cast<size_t>(j) * n + i] = s;
      }
    }
  });
  return sim;
}

namespace {

// Checks that every signer of `test` has more than `refs` genuine examples, then calls
// visit(query, chosen references, label, skilled, signer, draw) for every trial of every draw, in
// the order MakeSignatureTrials lists them. Draw d of signer s enrolls references drawn by a
// generator seeded by (seed, s, d), so every system sees the same references.
absl::Status ForEachTrial(
    const Dataset& test, int refs, const SignatureCvOptions& options,
    const std::function<void(int query, absl::Span<const int> chosen, int label, bool skilled,
                             int signer, int draw)>& visit) {
  if (refs < 1) return absl::InvalidArgumentError("need at least 1 reference");
  const int n = static_cast<int>(test.examples.size());
  std::map<int, std::vector<int>> genuine, forged;
  for (int i = 0; i < n; ++i) {
    (test.examples[i].forgery ? forged : genuine)[test.examples[i].label].push_back(i);
  }
  for (const auto& [signer, members] : genuine) {
    if (static_cast<int>(members.size()) <= refs) {
      return absl::InvalidArgumentError(absl::StrCat("signer ", signer, " has ", members.size(),
                                                     " genuine signatures: not more than ", refs,
                                                     " references"));
    }
  }
  for (int d = 0; d < options.draws; ++d) {
    for (const auto& [signer, members] : genuine) {
      std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ull +
                          static_cast<uint64_t>(signer) * 1000003ull + static_cast<uint64_t>(d));
      std::vector<int> order = members;
      std::shuffle(order.begin(), order.end(), rng);
      const absl::Span<const int> chosen(order.data(), refs);
      for (size_t q = refs; q < order.size(); ++q) visit(order[q], chosen, 1, false, signer, d);
      if (auto it = forged.find(signer); it != forged.end()) {
        for (int q : it->second) visit(q, chosen, 0, true, signer, d);
      }
      for (const auto& [other, other_members] : genuine) {
        if (other == signer) continue;
        for (int q : other_members) visit(q, chosen, 0, false, signer, d);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMatrix(const Dataset& test, absl::Span<const double> similarity) {
  const size_t n = test.examples.size();
  if (similarity.size() != n * n) {
    return absl::InvalidArgumentError(absl::StrCat("the similarity matrix has ", similarity.size(),
                                                   " cells for ", n, " examples"));
  }
  return absl::OkStatus();
}

void AddTrial(SignatureTrials* t, int query, double score, int label, bool skilled, int signer,
              int draw) {
  t->query.push_back(query);
  t->score.push_back(score);
  t->label.push_back(label);
  t->skilled.push_back(skilled);
  t->signer.push_back(signer);
  t->draw.push_back(draw);
}

absl::Status CheckFinite(const SignatureTrials& t) {
  for (double s : t.score) {
    if (!std::isfinite(s)) return absl::InvalidArgumentError("a trial score is not finite");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SignatureTrials> MakeSignatureTrials(
    const Dataset& test, absl::Span<const double> similarity, int refs,
    const SignatureCvOptions& options, absl::Span<const double> single_reference_spread) {
  const int n = static_cast<int>(test.examples.size());
  SRN_RETURN_IF_ERROR(CheckMatrix(test, similarity));
  if (!single_reference_spread.empty() &&
      single_reference_spread.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError(absl::StrCat("there are ", single_reference_spread.size(),
                                                   " single-reference spreads for ", n,
                                                   " examples"));
  }
  const bool divide_by_spread = refs == 1 && !single_reference_spread.empty() &&
                                options.normalization == ScoreNormalization::kRatio;
  auto sim = [&](int i, int j) { return similarity[static_cast<size_t>(i) * n + j]; };
  SignatureTrials t;
  t.refs = refs;
  std::vector<double> to_refs(refs);
  std::vector<double> mutual;
  SRN_RETURN_IF_ERROR(ForEachTrial(
      test, refs, options,
      [&](int query, absl::Span<const int> chosen, int label, bool skilled, int signer, int d) {
        mutual.clear();
        for (int a = 0; a < refs; ++a) {
          for (int b = a + 1; b < refs; ++b) mutual.push_back(sim(chosen[a], chosen[b]));
        }
        for (int r = 0; r < refs; ++r) to_refs[r] = sim(query, chosen[r]);
        const double fused = FuseReferenceScores(to_refs, options.fusion, options.top_k);
        AddTrial(&t, query,
                 divide_by_spread ? fused / single_reference_spread[chosen[0]]
                                  : NormalizeScore(fused, mutual, options.normalization),
                 label, skilled, signer, d);
      }));
  SRN_RETURN_IF_ERROR(CheckFinite(t));
  return t;
}

absl::StatusOr<SignatureTrials> ServedTrials(const FoldMatrix& srn, const FoldMatrix* dtw,
                                             int refs, const SignatureCvOptions& options,
                                             const VerificationPolicy& policy,
                                             absl::Span<const double> single_reference_spread,
                                             std::vector<std::vector<int>>* references) {
  const Dataset& test = srn.test;
  const int n = static_cast<int>(test.examples.size());
  SRN_RETURN_IF_ERROR(CheckMatrix(test, srn.similarity));
  if (dtw != nullptr) {
    SRN_RETURN_IF_ERROR(CheckMatrix(test, dtw->similarity));
    if (dtw->test.examples.size() != test.examples.size()) {
      return absl::InvalidArgumentError("the SRN and DTW matrices are of different test sets");
    }
  }
  if (!single_reference_spread.empty() &&
      single_reference_spread.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError("one single-reference spread per test example is needed");
  }
  auto at = [n](const std::vector<double>& m, int i, int j) {
    return m[static_cast<size_t>(i) * n + j];
  };
  SignatureTrials t;
  t.refs = refs;
  std::vector<double> similarities(refs), distances, mutual;
  SRN_RETURN_IF_ERROR(ForEachTrial(
      test, refs, options,
      [&](int query, absl::Span<const int> chosen, int label, bool skilled, int signer, int d) {
        VerificationEvidence evidence;
        mutual.clear();
        for (int a = 0; a < refs; ++a) {
          similarities[a] = at(srn.similarity, query, chosen[a]);
          for (int b = a + 1; b < refs; ++b)
            mutual.push_back(at(srn.similarity, chosen[a], chosen[b]));
        }
        evidence.similarities = similarities;
        evidence.mutual_similarity = MeanMutualScore(mutual);
        if (refs == 1 && policy.learned == LearnedScore::kStatesDtw) {
          // The states' matrix holds -distance: minus the reference's predicted spread.
          evidence.mutual_similarity = srn.single_reference_spread.empty()
                                           ? -1.0
                                           : -srn.single_reference_spread[chosen[0]];
        }
        if (dtw != nullptr) {
          // The DTW matrix holds -distance.
          distances.assign(refs, 0);
          mutual.clear();
          for (int a = 0; a < refs; ++a) {
            distances[a] = -at(dtw->similarity, query, chosen[a]);
            for (int b = a + 1; b < refs; ++b) {
              mutual.push_back(-at(dtw->similarity, chosen[a], chosen[b]));
            }
          }
          evidence.dtw_distances = distances;
          evidence.dtw_spread = refs >= 2 ? MeanMutualScore(mutual)
                                : !single_reference_spread.empty()
                                    ? single_reference_spread[chosen[0]]
                                    : 1.0;
        }
        AddTrial(&t, query, ScoreVerification(evidence, policy).score, label, skilled, signer, d);
        if (references != nullptr) references->emplace_back(chosen.begin(), chosen.end());
      }));
  SRN_RETURN_IF_ERROR(CheckFinite(t));
  return t;
}

namespace {

// EER of the genuine trials against one kind of forgery, restricted by `keep`.
template <typename Keep>
absl::StatusOr<double> KindEer(const SignatureTrials& t, bool skilled, Keep keep) {
  std::vector<double> scores;
  std::vector<int> labels;
  for (size_t k = 0; k < t.score.size(); ++k) {
    if (!keep(k)) continue;
    if (t.label[k] == 0 && t.skilled[k] != skilled) continue;
    scores.push_back(t.score[k]);
    labels.push_back(t.label[k]);
  }
  SRN_ASSIGN_OR_RETURN(const EerResult eer, Eer(scores, labels));
  return eer.eer;
}

}  // namespace

SignatureTrials ConcatenateTrials(const std::vector<SignatureTrials>& folds) {
  SignatureTrials all;
  for (const SignatureTrials& t : folds) {
    all.refs = t.refs;
    all.score.insert(all.score.end(), t.score.begin(), t.score.end());
    all.label.insert(all.label.end(), t.label.begin(), t.label.end());
    all.skilled.insert(all.skilled.end(), t.skilled.begin(), t.skilled.end());
    all.signer.insert(all.signer.end(), t.signer.begin(), t.signer.end());
    all.draw.insert(all.draw.end(), t.draw.begin(), t.draw.end());
    all.query.insert(all.query.end(), t.query.begin(), t.query.end());
  }
  return all;
}

ErrorRates ErrorRatesAt(const SignatureTrials& t, double threshold) {
  ErrorRates r;
  int64_t rejected = 0, skilled_in = 0, random_in = 0;
  for (size_t i = 0; i < t.score.size(); ++i) {
    const bool accepted = static_cast<float>(t.score[i]) >= threshold;
    if (t.label[i] == 1) {
      ++r.genuine;
      rejected += !accepted;
    } else if (t.skilled[i]) {
      ++r.skilled;
      skilled_in += accepted;
    } else {
      ++r.random;
      random_in += accepted;
    }
  }
  const auto rate = [](int64_t k, int64_t n) { return n > 0 ? static_cast<double>(k) / n : 0.0; };
  r.frr = rate(rejected, r.genuine);
  r.far_skilled = rate(skilled_in, r.skilled);
  r.far_random = rate(random_in, r.random);
  return r;
}

absl::StatusOr<VerificationErrors> ComputeVerificationErrors(const SignatureTrials& trials,
                                                             int draw) {
  const auto in_draw = [&](size_t k) { return draw < 0 || trials.draw[k] == draw; };
  VerificationErrors e;
  SRN_ASSIGN_OR_RETURN(e.eer_skilled, KindEer(trials, true, in_draw));
  SRN_ASSIGN_OR_RETURN(e.eer_random, KindEer(trials, false, in_draw));
  // Per signer: every signer has random forgeries; only some data sets give every signer skilled
  // ones (SigComp2009 NFI: 19 of 79), so the skilled mean is over those that have them.
  std::set<int> signers(trials.signer.begin(), trials.signer.end());
  std::set<int> forged;
  for (size_t k = 0; k < trials.score.size(); ++k) {
    if (in_draw(k) && trials.label[k] == 0 && trials.skilled[k]) forged.insert(trials.signer[k]);
  }
  double sum_skilled = 0, sum_random = 0;
  for (int s : signers) {
    const auto mine = [&](size_t k) { return in_draw(k) && trials.signer[k] == s; };
    if (forged.count(s) > 0) {
      SRN_ASSIGN_OR_RETURN(const double sk, KindEer(trials, true, mine));
      sum_skilled += sk;
    }
    SRN_ASSIGN_OR_RETURN(const double rd, KindEer(trials, false, mine));
    sum_random += rd;
  }
  e.eer_skilled_per_signer = sum_skilled / static_cast<double>(forged.size());
  e.eer_random_per_signer = sum_random / static_cast<double>(signers.size());
  return e;
}

namespace {

MeanSpread Summarize(const std::vector<double>& v) {
  MeanSpread m;
  if (v.empty()) return m;
  m.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(sq / static_cast<double>(v.size()));
  return m;
}

int NumDraws(const SignatureTrials& t) {
  return t.draw.empty() ? 0 : *std::max_element(t.draw.begin(), t.draw.end()) + 1;
}

absl::StatusOr<std::vector<OperatingPoint>> PooledDet(const std::vector<SignatureTrials>& folds,
                                                      bool skilled, int curve_points) {
  std::vector<double> scores;
  std::vector<int> labels;
  for (const SignatureTrials& t : folds) {
    for (size_t k = 0; k < t.score.size(); ++k) {
      if (t.label[k] == 0 && t.skilled[k] != skilled) continue;
      scores.push_back(t.score[k]);
      labels.push_back(t.label[k]);
    }
  }
  SRN_ASSIGN_OR_RETURN(const std::vector<OperatingPoint> curve, OperatingPoints(scores, labels));
  return ThinCurve(curve, curve_points);
}

}  // namespace

absl::StatusOr<SignatureCvRow> SummarizeSignatureCv(const std::vector<SignatureTrials>& folds,
                                                    int curve_points) {
  if (folds.empty()) return absl::InvalidArgumentError("no folds to summarize");
  SignatureCvRow row;
  row.refs = folds.front().refs;
  std::vector<double> sk, rd, skp, rdp, fold_means;
  for (const SignatureTrials& t : folds) {
    double fold_sum = 0;
    const int draws = NumDraws(t);
    for (int d = 0; d < draws; ++d) {
      SRN_ASSIGN_OR_RETURN(const VerificationErrors e, ComputeVerificationErrors(t, d));
      sk.push_back(e.eer_skilled);
      rd.push_back(e.eer_random);
      skp.push_back(e.eer_skilled_per_signer);
      rdp.push_back(e.eer_random_per_signer);
      fold_sum += e.eer_skilled;
    }
    fold_means.push_back(fold_sum / std::max(1, draws));
  }
  row.eer_skilled = Summarize(sk);
  row.eer_random = Summarize(rd);
  row.eer_skilled_per_signer = Summarize(skp);
  row.eer_random_per_signer = Summarize(rdp);
  row.fold_stddev_skilled = Summarize(fold_means).stddev;
  SRN_ASSIGN_OR_RETURN(row.det_skilled, PooledDet(folds, true, curve_points));
  SRN_ASSIGN_OR_RETURN(row.det_random, PooledDet(folds, false, curve_points));
  return row;
}

namespace {

absl::StatusOr<SignatureTrials> Combine(const SignatureTrials& a, const SignatureTrials& b,
                                        double w) {
  if (a.score.size() != b.score.size() || a.refs != b.refs || a.label != b.label ||
      a.signer != b.signer || a.draw != b.draw) {
    return absl::InvalidArgumentError("the two systems' trials differ");
  }
  SignatureTrials out = a;
  for (size_t k = 0; k < out.score.size(); ++k) out.score[k] = a.score[k] + w * b.score[k];
  return out;
}

absl::StatusOr<double> MeanSkilledEer(const SignatureTrials& t) {
  double sum = 0;
  const int draws = NumDraws(t);
  for (int d = 0; d < draws; ++d) {
    SRN_ASSIGN_OR_RETURN(const VerificationErrors e, ComputeVerificationErrors(t, d));
    sum += e.eer_skilled;
  }
  return sum / std::max(1, draws);
}

}  // namespace

absl::StatusOr<std::vector<SignatureTrials>> FuseSystems(const std::vector<SignatureTrials>& a,
                                                         const std::vector<SignatureTrials>& b,
                                                         absl::Span<const double> weights,
                                                         std::vector<double>* chosen,
                                                         double* all_folds_weight) {
  if (a.size() != b.size() || a.empty() || weights.empty()) {
    return absl::InvalidArgumentError("fusion needs the same folds for both systems and a weight");
  }
  const int folds = static_cast<int>(a.size());
  // eer[w][f]: mean skilled EER of fold f fused with weight w.
  std::vector<std::vector<double>> eer(weights.size(), std::vector<double>(folds));
  for (size_t w = 0; w < weights.size(); ++w) {
    for (int f = 0; f < folds; ++f) {
      SRN_ASSIGN_OR_RETURN(const SignatureTrials fused, Combine(a[f], b[f], weights[w]));
      SRN_ASSIGN_OR_RETURN(eer[w][f], MeanSkilledEer(fused));
    }
  }
  if (all_folds_weight != nullptr) {
    size_t best = 0;
    for (size_t w = 1; w < weights.size(); ++w) {
      if (std::accumulate(eer[w].begin(), eer[w].end(), 0.0) <
          std::accumulate(eer[best].begin(), eer[best].end(), 0.0)) {
        best = w;
      }
    }
    *all_folds_weight = weights[best];
  }
  std::vector<SignatureTrials> out;
  if (chosen != nullptr) chosen->clear();
  for (int f = 0; f < folds; ++f) {
    size_t best = 0;
    double best_eer = std::numeric_limits<double>::infinity();
    for (size_t w = 0; w < weights.size(); ++w) {
      double other = 0;
      for (int g = 0; g < folds; ++g) {
        if (g != f || folds == 1) other += eer[w][g];
      }
      if (other < best_eer) {
        best_eer = other;
        best = w;
      }
    }
    SRN_ASSIGN_OR_RETURN(SignatureTrials fused, Combine(a[f], b[f], weights[best]));
    out.push_back(std::move(fused));
    if (chosen != nullptr) chosen->push_back(weights[best]);
  }
  return out;
}

namespace {

std::vector<double> Impostors(const SignatureTrials& t, bool skilled) {
  std::vector<double> out;
  for (size_t k = 0; k < t.score.size(); ++k) {
    if (t.label[k] == 0 && t.skilled[k] == skilled) out.push_back(t.score[k]);
  }
  return out;
}

}  // namespace

absl::StatusOr<double> EqualErrorThreshold(const std::vector<SignatureTrials>& folds) {
  std::vector<double> scores;
  std::vector<int> labels;
  for (const SignatureTrials& t : folds) {
    for (size_t k = 0; k < t.score.size(); ++k) {
      if (t.label[k] == 1 || t.skilled[k]) {
        scores.push_back(t.score[k]);
        labels.push_back(t.label[k]);
      }
    }
  }
  SRN_ASSIGN_OR_RETURN(const EerResult eer, Eer(scores, labels));
  return eer.threshold;
}

absl::StatusOr<FarCalibration> CalibrateFar(const std::vector<SignatureTrials>& folds,
                                            double target_far) {
  if (folds.size() < 2) return absl::InvalidArgumentError("calibration needs at least 2 folds");
  FarCalibration c;
  c.target_far = target_far;
  std::vector<double> all;
  for (size_t f = 0; f < folds.size(); ++f) {
    std::vector<double> others;
    for (size_t g = 0; g < folds.size(); ++g) {
      if (g == f) continue;
      const std::vector<double> imp = Impostors(folds[g], true);
      others.insert(others.end(), imp.begin(), imp.end());
    }
    SRN_ASSIGN_OR_RETURN(const double t, ThresholdForFar(others, target_far));
    const SignatureTrials& mine = folds[f];
    double acc_sk = 0, n_sk = 0, acc_rd = 0, n_rd = 0, rej = 0, n_gen = 0;
    for (size_t k = 0; k < mine.score.size(); ++k) {
      const bool accept = mine.score[k] >= t;
      if (mine.label[k] == 1) {
        rej += accept ? 0 : 1;
        ++n_gen;
      } else if (mine.skilled[k]) {
        acc_sk += accept ? 1 : 0;
        ++n_sk;
      } else {
        acc_rd += accept ? 1 : 0;
        ++n_rd;
      }
    }
    c.far_skilled += acc_sk / std::max(1.0, n_sk);
    c.far_random += acc_rd / std::max(1.0, n_rd);
    c.frr += rej / std::max(1.0, n_gen);
    const std::vector<double> imp = Impostors(mine, true);
    all.insert(all.end(), imp.begin(), imp.end());
  }
  const double n = static_cast<double>(folds.size());
  c.far_skilled /= n;
  c.far_random /= n;
  c.frr /= n;
  SRN_ASSIGN_OR_RETURN(c.threshold, ThresholdForFar(all, target_far));
  return c;
}

std::string SignatureResultLine(const std::string& model, const SignatureCvRow& row) {
  return absl::StrFormat(
      "RESULT protocol=svc2004-cv dataset=svc2004 model=%s refs=%d eer_skilled=%.4f "
      "eer_random=%.4f eer_skilled_ps=%.4f eer_random_ps=%.4f",
      model, row.refs, row.eer_skilled.mean, row.eer_random.mean,
      row.eer_skilled_per_signer.mean, row.eer_random_per_signer.mean);
}

absl::Status WriteDetCsv(const std::vector<SignatureCvRow>& rows, const std::string& path) {
  std::ofstream f(path);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  f << "model,kind,refs,threshold,far,frr\n";
  for (const SignatureCvRow& row : rows) {
    for (const bool skilled : {true, false}) {
      for (const OperatingPoint& p : skilled ? row.det_skilled : row.det_random) {
        f << row.model << "," << (skilled ? "skilled" : "random") << "," << row.refs << ","
          << (std::isinf(p.threshold) ? std::string("inf") : absl::StrFormat("%.9g", p.threshold))
          << "," << absl::StrFormat("%.9g,%.9g", p.far, p.frr) << "\n";
      }
    }
  }
  if (!f.good()) return absl::DataLossError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

FoldScorerFactory DtwFoldScorer(const SignatureDtwOptions& options) {
  return [options](int, const Split& split) -> absl::StatusOr<TrialScorer> {
    Dataset processed = split.test;
    if (!options.per_series) {
      SRN_ASSIGN_OR_RETURN(
          const Preprocessor standardize,
          Preprocessor::Fit(split.train.SeriesPointers(), 1, FeatureKind::kFrames));
      SRN_ASSIGN_OR_RETURN(processed, PreprocessDataset(standardize, split.test));
    }
    for (Example& e : processed.examples) {
      SRN_ASSIGN_OR_RETURN(e.series,
                           SelectAndNormalize(e.series, options.features, options.per_series));
    }
    auto shared = std::make_shared<const Dataset>(std::move(processed));
    const DtwOptions dtw = options.dtw;
    return TrialScorer([shared, dtw](int i, int j) {
      return -NormalizedDtwDistance(shared->examples[i].series, shared->examples[j].series, dtw);
    });
  };
}

absl::StatusOr<SrnScore> ParseSrnScore(const std::string& name) {
  if (name == "probability") return SrnScore::kProbability;
  if (name == "logit") return SrnScore::kLogit;
  if (name == "distance") return SrnScore::kDistance;
  if (name == "states-dtw") return SrnScore::kStatesDtw;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown SRN score '", name, "' (expected probability, logit, distance or states-dtw)"));
}

FoldScorerFactory SrnFoldScorer(
    std::function<absl::StatusOr<std::shared_ptr<const SimilarityModel>>(int fold)> model_for_fold,
    SrnScore score, const DtwOptions& dtw, bool states_cost_from_model) {
  return [model_for_fold, score, dtw, states_cost_from_model](
             int fold, const Split& split) -> absl::StatusOr<TrialScorer> {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, model_for_fold(fold));
    if (model->preprocessor().raw_dims != split.test.dims()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the model for fold %d takes %d features per frame but the data has %d",
                          fold, model->preprocessor().raw_dims, split.test.dims()));
    }
    SRN_ASSIGN_OR_RETURN(const Dataset processed,
                         PreprocessDataset(model->preprocessor(), split.test));
    if (score == SrnScore::kStatesDtw) {
      SRN_RETURN_IF_ERROR(FrameNormalizationOf(*model).status());
      DtwOptions states_dtw = dtw;
      if (states_cost_from_model) {
        SRN_ASSIGN_OR_RETURN(states_dtw.local_cost, FrameCostOf(*model));
      }
      auto states = std::make_shared<std::vector<Series>>(processed.examples.size());
      ParallelFor(static_cast<int>(states->size()), DefaultThreads(), [&](int begin, int end, int) {
        for (int i = begin; i < end; ++i)
          (*states)[i] = HiddenStates(*model, processed.examples[i].series);
      });
      return TrialScorer([states, states_dtw](int i, int j) {
        return -StatesDistance((*states)[i], (*states)[j], states_dtw);
      });
    }
    auto emb =
        std::make_shared<const RowMatrix>(model->EmbedPreprocessed(processed.SeriesPointers()));
    return TrialScorer([model, emb, score](int i, int j) {
      const int e = static_cast<int>(emb->cols());
      const float* a = emb->row(i).data();
      const float* b = emb->row(j).data();
      if (score == SrnScore::kDistance) {
        const float* v = model->params().data() + model->layout().v_offset();
        double sum = 0;
        for (int k = 0; k < e; ++k) sum += std::abs(v[k]) * (a[k] - b[k]) * (a[k] - b[k]);
        return -std::sqrt(sum);
      }
      if (score == SrnScore::kProbability) {
        double s;
        model->Score(a, b, 1, &s);
        return s;
      }
      return static_cast<double>(
          HeadLogit<float>(model->params().data(), model->layout(), a, b, e));
    });
  };
}

void AppendServedTrialsCsv(int fold, const Dataset& test, const SignatureTrials& t,
                           const std::vector<std::vector<int>>& references, std::ostream& out) {
  for (size_t i = 0; i < t.score.size(); ++i) {
    std::string refs_text;
    for (int r : references[i]) {
      absl::StrAppend(&refs_text, refs_text.empty() ? "" : ";", test.examples[r].source);
    }
    out << absl::StrFormat("%d,%d,%d,%d,%d,%s,%s,%s,%.9g\n", fold, t.refs, t.draw[i], t.signer[i],
                           t.label[i],
                           t.label[i] == 1 ? "genuine" : t.skilled[i] ? "skilled" : "random",
                           test.examples[t.query[i]].source, refs_text,
                           static_cast<float>(t.score[i]));
  }
}

absl::StatusOr<std::vector<FoldMatrix>> ScoreSignatureFolds(const Dataset& data,
                                                            const FoldScorerFactory& factory,
                                                            const SignatureCvOptions& options) {
  std::vector<FoldMatrix> out;
  for (int fold = 0; fold < options.folds; ++fold) {
    SRN_ASSIGN_OR_RETURN(const Split split,
                         MakeSignatureCvSplit(data, options.folds, fold, options.fold_seed));
    SRN_ASSIGN_OR_RETURN(const TrialScorer scorer, factory(fold, split));
    FoldMatrix m;
    m.similarity = SimilarityMatrix(split.test, scorer, options.threads);
    m.test = split.test;
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// The spread samples of one fold's signers, from the within-signer distances of its DTW matrix.
absl::StatusOr<std::vector<SpreadSample>> MatrixSpreadSamples(const FoldMatrix& m) {
  const size_t n = m.test.examples.size();
  std::vector<SpreadSample> out;
  std::vector<double> distances;
  for (const std::vector<int>& members : GenuineGroups(m.test)) {
    for (int i : members) {
      distances.clear();
      for (int j : members) {
        if (j != i) distances.push_back(-m.similarity[i * n + j]);
      }
      const Example& e = m.test.examples[i];
      absl::StatusOr<SpreadSample> sample = MakeSpreadSample(e.series, distances);
      if (!sample.ok()) {
        return absl::Status(sample.status().code(),
                            absl::StrCat(e.source, ": ", sample.status().message()));
      }
      out.push_back(*sample);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<DtwSpreadModel> FitMatrixSpreadModel(const FoldMatrix& matrix) {
  SRN_ASSIGN_OR_RETURN(const std::vector<SpreadSample> samples, MatrixSpreadSamples(matrix));
  return FitDtwSpreadModel(samples);
}

absl::Status SetSingleReferenceSpreads(const DtwSpreadModel& model, FoldMatrix* matrix) {
  matrix->single_reference_spread.clear();
  for (const Example& e : matrix->test.examples) {
    absl::StatusOr<double> spread = PredictDtwSpread(model, e.series);
    if (!spread.ok()) {
      return absl::Status(spread.status().code(),
                          absl::StrCat(e.source, ": ", spread.status().message()));
    }
    matrix->single_reference_spread.push_back(*spread);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DtwSpreadModel>> PredictFoldSpreads(std::vector<FoldMatrix>* folds,
                                                               DtwSpreadModel* all_signers) {
  std::vector<std::vector<SpreadSample>> samples;
  for (const FoldMatrix& m : *folds) {
    SRN_ASSIGN_OR_RETURN(std::vector<SpreadSample> s, MatrixSpreadSamples(m));
    samples.push_back(std::move(s));
  }
  std::vector<DtwSpreadModel> models;
  for (size_t f = 0; f < folds->size(); ++f) {
    std::vector<SpreadSample> others;
    for (size_t g = 0; g < samples.size(); ++g) {
      if (g != f) others.insert(others.end(), samples[g].begin(), samples[g].end());
    }
    SRN_ASSIGN_OR_RETURN(const DtwSpreadModel model, FitDtwSpreadModel(others));
    SRN_RETURN_IF_ERROR(SetSingleReferenceSpreads(model, &(*folds)[f]));
    models.push_back(model);
  }
  if (all_signers != nullptr) {
    std::vector<SpreadSample> all;
    for (const auto& s : samples) all.insert(all.end(), s.begin(), s.end());
    SRN_ASSIGN_OR_RETURN(*all_signers, FitDtwSpreadModel(all));
  }
  return models;
}

absl::StatusOr<std::vector<SignatureTrials>> FoldTrials(const std::vector<FoldMatrix>& folds,
                                                        int refs,
                                                        const SignatureCvOptions& options) {
  std::vector<SignatureTrials> out;
  for (const FoldMatrix& m : folds) {
    SRN_ASSIGN_OR_RETURN(SignatureTrials t, MakeSignatureTrials(m.test, m.similarity, refs, options,
                                                                m.single_reference_spread));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace srn
