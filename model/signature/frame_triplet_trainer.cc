#include "model/signature/frame_triplet_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/status_macros.h"
#include "model/eval/dtw.h"
#include "model/nn/parallel.h"
#include "model/nn/parameters.h"
#include "model/signature/signature_protocol.h"
#include "model/train/trainer.h"

namespace srn {
namespace {

constexpr double kFrameNormEpsilon = 1e-6;

template <typename T>
void NormalizeRows(RowMatrixT<T>* m) {
  for (Eigen::Index i = 0; i < m->rows(); ++i) {
    m->row(i) /= m->row(i).norm() + static_cast<T>(kFrameNormEpsilon);
  }
}

// d(loss)/d(raw) from d(loss)/d(s), s = raw / (|raw| + eps), row by row:
// d_raw = d_s / k - raw (raw . d_s) / (|raw| k^2), k = |raw| + eps.
template <typename T>
void NormalizeRowsBackward(const RowMatrixT<T>& raw, RowMatrixT<T>* d) {
  for (Eigen::Index i = 0; i < raw.rows(); ++i) {
    const T norm = raw.row(i).norm();
    const T k = norm + static_cast<T>(kFrameNormEpsilon);
    const T dot = raw.row(i).dot(d->row(i));
    d->row(i) /= k;
    if (norm > T(0)) d->row(i) -= raw.row(i) * (dot / (norm * k * k));
  }
}

}  // namespace

absl::string_view FrameNormalizationName(FrameNormalization normalization) {
  return normalization == FrameNormalization::kL2 ? "l2" : "none";
}

absl::StatusOr<FrameNormalization> ParseFrameNormalization(absl::string_view name) {
  if (name == "none") return FrameNormalization::kNone;
  if (name == "l2") return FrameNormalization::kL2;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown frame normalization '", name, "' (expected none or l2)"));
}

absl::StatusOr<FrameNormalization> FrameNormalizationOf(const SimilarityModel& model) {
  const auto& h = model.metadata().hyperparameters;
  const auto it = h.find("frame_normalization");
  if (it == h.end()) return FrameNormalization::kNone;
  absl::StatusOr<FrameNormalization> parsed = ParseFrameNormalization(it->second);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model's metadata: ", parsed.status().message()));
  }
  return parsed;
}

absl::string_view FrameCostName(DtwLocalCost cost) {
  return cost == DtwLocalCost::kEuclidean ? "euclidean" : "squared";
}

absl::StatusOr<DtwLocalCost> FrameCostOf(const SimilarityModel& model) {
  const auto& h = model.metadata().hyperparameters;
  const auto it = h.find("frame_cost");
  if (it == h.end() || it->second == "squared") return DtwLocalCost::kSquaredEuclidean;
  if (it->second == "euclidean") return DtwLocalCost::kEuclidean;
  return absl::InvalidArgumentError(absl::StrCat("the model's metadata: unknown frame cost '",
                                                 it->second, "' (expected squared or euclidean)"));
}

void NormalizeFrames(FrameNormalization normalization, RowMatrix* states) {
  if (normalization == FrameNormalization::kL2) NormalizeRows(states);
}

// ---------------------------------------------------------------------------------------------
// TripletSampler

absl::StatusOr<TripletSampler> TripletSampler::Create(const Dataset& data, double forgery_fraction,
                                                      std::vector<int> origin) {
  if (!(forgery_fraction >= 0 && forgery_fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("forgery_fraction must be in [0, 1], got %g", forgery_fraction));
  }
  const int n = static_cast<int>(data.examples.size());
  if (origin.empty()) {
    origin.resize(n);
    for (int i = 0; i < n; ++i) origin[i] = i;
  }
  if (static_cast<int>(origin.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the origin vector has %d entries for %d examples", origin.size(), n));
  }
  TripletSampler s;
  s.forgery_fraction_ = forgery_fraction;
  s.origin_ = std::move(origin);
  int labels = data.num_labels();
  for (const Example& e : data.examples) labels = std::max(labels, e.label + 1);
  s.genuine_.resize(labels);
  s.forgeries_.resize(labels);
  for (int i = 0; i < n; ++i) {
    const Example& e = data.examples[i];
    s.labels_.push_back(e.label);
    (e.forgery ? s.forgeries_ : s.genuine_)[e.label].push_back(i);
    if (!e.forgery) s.all_genuine_.push_back(i);
  }
  bool any_forgery = false;
  int genuine_signers = 0;
  for (int l = 0; l < labels; ++l) {
    any_forgery = any_forgery || !s.forgeries_[l].empty();
    if (s.genuine_[l].empty()) continue;
    ++genuine_signers;
    const int first = s.origin_[s.genuine_[l][0]];
    for (int i : s.genuine_[l]) {
      if (s.origin_[i] != first) {
        s.anchor_signers_.push_back(l);
        break;
      }
    }
  }
  if (s.anchor_signers_.empty()) {
    return absl::FailedPreconditionError(
        "no signer has two genuine signatures to make an anchor and a positive");
  }
  const bool other_signers = genuine_signers >= 2 && forgery_fraction < 1;
  if (!other_signers && !(any_forgery && forgery_fraction > 0)) {
    return absl::FailedPreconditionError(
        "no negatives: the data needs a second signer or skilled forgeries (with "
        "forgery_fraction > 0)");
  }
  return s;
}

namespace {

int Pick(const std::vector<int>& v, std::mt19937_64* rng) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(*rng)];
}

}  // namespace

Triplet TripletSampler::Sample(std::mt19937_64* rng) const {
  // A signer whose anchor can be paired: redraw until the anchor has a positive of another
  // origin (every signer in anchor_signers_ has one for some anchor).
  Triplet t;
  for (;;) {
    t.anchor = Pick(genuine_[Pick(anchor_signers_, rng)], rng);
    t.positive = SamplePositive(t.anchor, rng);
    if (t.positive >= 0) break;
  }
  t.negative = SampleNegative(t.anchor, rng);
  return t;
}

TripletGroup TripletSampler::SampleGroup(int candidates, std::mt19937_64* rng) const {
  const Triplet first = Sample(rng);
  TripletGroup g{first.anchor, {first.positive}, {first.negative}};
  for (int k = 1; k < candidates; ++k) {
    g.positives.push_back(SamplePositive(g.anchor, rng));
    g.negatives.push_back(SampleNegative(g.anchor, rng));
  }
  return g;
}

// A genuine example of the anchor's signer of another origin, or -1 if there is none.
int TripletSampler::SamplePositive(int anchor, std::mt19937_64* rng) const {
  const std::vector<int>& genuine = genuine_[labels_[anchor]];
  int others = 0;
  for (int i : genuine) others += origin_[i] != origin_[anchor];
  if (others == 0) return -1;
  int k = std::uniform_int_distribution<int>(0, others - 1)(*rng);
  for (int i : genuine) {
    if (origin_[i] != origin_[anchor] && k-- == 0) return i;
  }
  return -1;
}

int TripletSampler::SampleNegative(int anchor, std::mt19937_64* rng) const {
  const int signer = labels_[anchor];
  const bool has_forgeries = !forgeries_[signer].empty();
  const bool others = all_genuine_.size() > genuine_[signer].size() && forgery_fraction_ < 1;
  const bool forgery = has_forgeries && (!others || std::uniform_real_distribution<double>(
                                                        0, 1)(*rng) < forgery_fraction_);
  if (forgery) return Pick(forgeries_[signer], rng);
  int negative;
  do {
    negative = Pick(all_genuine_, rng);
  } while (labels_[negative] == signer);
  return negative;
}

// ---------------------------------------------------------------------------------------------
// The loss

template <typename T>
absl::StatusOr<FrameTripletLossStats> FrameTripletLoss(const Network<T>& network, const T* params,
                                                       absl::Span<const Series* const> series,
                                                       absl::Span<const TripletGroup> groups,
                                                       const FrameTripletLossOptions& options,
                                                       T scale, FrameTripletWorkspace<T>* ws,
                                                       T* grad) {
  const Architecture& arch = network.architecture();
  if (arch.is_logistic() || network.TrainsSeriesAlone()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the frame-triplet loss needs per-frame states trained through the batched path; ",
        arch.ToString(), " has none (use a gru or lstm cell, or two relu layers)"));
  }
  FrameTripletLossStats stats;
  if (groups.empty()) return stats;
  const int n = static_cast<int>(series.size());
  ws->local.assign(n, -1);
  ws->batch.clear();
  auto add = [&](int i) {
    if (i < 0 || i >= n) {
      return absl::InvalidArgumentError(
          absl::StrFormat("a triplet refers to series %d of %d", i, n));
    }
    if (ws->local[i] < 0) {
      ws->local[i] = static_cast<int>(ws->batch.size());
      ws->batch.push_back(series[i]);
    }
    return absl::OkStatus();
  };
  for (const TripletGroup& g : groups) {
    if (g.positives.empty() || g.negatives.empty()) {
      return absl::InvalidArgumentError("a triplet group needs a positive and a negative");
    }
    SRN_RETURN_IF_ERROR(add(g.anchor));
    for (int i : g.positives) SRN_RETURN_IF_ERROR(add(i));
    for (int i : g.negatives) SRN_RETURN_IF_ERROR(add(i));
  }
  network.Forward(params, ws->batch, T(0), nullptr, &ws->net, &ws->embeddings);

  // Each series' states, in time order, from the packed rows of the top layer.
  const PackedBatch<T>& packed = ws->net.packed;
  const RowMatrixT<T>& top = ws->net.layers.back().out;
  const int b = packed.batch();
  const int h = arch.hidden;
  const bool l2 = options.normalization == FrameNormalization::kL2;
  ws->raw.resize(b);
  ws->states.resize(b);
  ws->d_states.resize(b);
  for (int q = 0; q < b; ++q) {
    const int j = packed.order[q];
    const int len = packed.lengths[q];
    RowMatrixT<T>& raw = ws->raw[j];
    raw.resize(len, h);
    for (int t = 0; t < len; ++t) raw.row(t) = top.row(packed.step_offset[t] + q);
    if (l2) {
      ws->states[j] = raw;
      NormalizeRows(&ws->states[j]);
    }
    if (grad != nullptr) ws->d_states[j].setZero(len, h);
  }
  const std::vector<RowMatrixT<T>>& states = l2 ? ws->states : ws->raw;

  // The candidate with the largest (positives) or smallest (negatives) D to the anchor `a`; its
  // soft-DTW stays in `chosen_ws` (candidates after the first are computed aside and swapped in).
  auto choose = [&](int a, const std::vector<int>& candidates, bool largest,
                    SoftDtwWorkspace<T>* chosen_ws, int* chosen, double* d) -> absl::Status {
    for (size_t k = 0; k < candidates.size(); ++k) {
      const int c = ws->local[candidates[k]];
      SoftDtwWorkspace<T>* target = k == 0 ? chosen_ws : &ws->dtw_candidate;
      SRN_ASSIGN_OR_RETURN(const T value, SoftDtw(states[a], states[c], options.soft_dtw, target));
      const double distance =
          static_cast<double>(value) / static_cast<double>(states[a].rows() + states[c].rows());
      if (k == 0 || (largest ? distance > *d : distance < *d)) {
        *d = distance;
        *chosen = c;
        if (k > 0) std::swap(*chosen_ws, ws->dtw_candidate);
      }
    }
    return absl::OkStatus();
  };
  for (const TripletGroup& group : groups) {
    const int a = ws->local[group.anchor];
    int p = 0, g = 0;
    double d_ap = 0, d_an = 0;
    SRN_RETURN_IF_ERROR(choose(a, group.positives, /*largest=*/true, &ws->dtw, &p, &d_ap));
    SRN_RETURN_IF_ERROR(
        choose(a, group.negatives, /*largest=*/false, &ws->dtw_negative, &g, &d_an));
    stats.d_positive += d_ap;
    stats.d_negative += d_an;
    const double loss = options.margin + d_ap - d_an;
    if (!(loss > 0)) continue;
    stats.loss += loss;
    ++stats.active;
    if (grad == nullptr) continue;
    const T sum_ap = static_cast<T>(states[a].rows() + states[p].rows());
    const T sum_an = static_cast<T>(states[a].rows() + states[g].rows());
    SRN_RETURN_IF_ERROR(SoftDtwBackward(states[a], states[p], &ws->dtw, &ws->grad_a, &ws->grad_b));
    ws->d_states[a] += (scale / sum_ap) * ws->grad_a;
    ws->d_states[p] += (scale / sum_ap) * ws->grad_b;
    SRN_RETURN_IF_ERROR(
        SoftDtwBackward(states[a], states[g], &ws->dtw_negative, &ws->grad_a, &ws->grad_b));
    ws->d_states[a] -= (scale / sum_an) * ws->grad_a;
    ws->d_states[g] -= (scale / sum_an) * ws->grad_b;
  }
  if (grad == nullptr || stats.active == 0) return stats;

  RowMatrixT<T>& d_packed = ws->d_packed;
  d_packed.resize(packed.rows(), h);
  for (int q = 0; q < b; ++q) {
    const int j = packed.order[q];
    if (l2) NormalizeRowsBackward(ws->raw[j], &ws->d_states[j]);
    for (int t = 0; t < packed.lengths[q]; ++t) {
      d_packed.row(packed.step_offset[t] + q) = ws->d_states[j].row(t);
    }
  }
  SRN_RETURN_IF_ERROR(network.BackwardFrames(params, d_packed, &ws->net, grad));
  return stats;
}

template absl::StatusOr<FrameTripletLossStats> FrameTripletLoss<float>(
    const Network<float>&, const float*, absl::Span<const Series* const>,
    absl::Span<const TripletGroup>, const FrameTripletLossOptions&, float,
    FrameTripletWorkspace<float>*, float*);
template absl::StatusOr<FrameTripletLossStats> FrameTripletLoss<double>(
    const Network<double>&, const double*, absl::Span<const Series* const>,
    absl::Span<const TripletGroup>, const FrameTripletLossOptions&, double,
    FrameTripletWorkspace<double>*, double*);

// ---------------------------------------------------------------------------------------------
// Training

absl::Status ValidateFrameTripletOptions(const FrameTripletOptions& o) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("frame-triplet training: ", what));
  };
  if (!(o.loss.margin >= 0) || !std::isfinite(o.loss.margin)) return bad("margin must be >= 0");
  if (!(o.loss.soft_dtw.gamma > 0) || !std::isfinite(o.loss.soft_dtw.gamma)) {
    return bad("gamma must be > 0");
  }
  if (std::isnan(o.loss.soft_dtw.dtw.band_fraction)) return bad("the training band is NaN");
  if (!(o.learning_rate > 0)) return bad("the learning rate must be > 0");
  if (!(o.adam_beta1 >= 0 && o.adam_beta1 < 1) || !(o.adam_beta2 >= 0 && o.adam_beta2 < 1) ||
      !(o.adam_epsilon > 0)) {
    return bad("Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0");
  }
  if (!(o.clip_norm > 0)) return bad("clip_norm must be > 0");
  if (!(o.init_scale > 0)) return bad("init_scale must be > 0");
  if (o.batch_triplets < 1 || o.triplets_per_epoch < 1 || o.max_epochs < 1 || o.patience < 1 ||
      o.shards < 1) {
    return bad("batch_triplets, triplets_per_epoch, max_epochs, patience and shards must be >= 1");
  }
  if (o.mining_candidates < 1) return bad("mining_candidates must be >= 1");
  if (!(o.lr_decay > 0 && o.lr_decay <= 1)) return bad("lr_decay must be in (0, 1]");
  if (!(o.forgery_fraction >= 0 && o.forgery_fraction <= 1)) {
    return bad("forgery_fraction must be in [0, 1]");
  }
  if (!(o.validation_band >= 0 && o.validation_band <= 1)) {
    return bad("validation_band must be in [0, 1]");
  }
  if (o.validation_refs < 2 || o.validation_draws < 1) {
    return bad("validation needs validation_refs >= 2 and validation_draws >= 1");
  }
  if (o.head_pairs < 2) return bad("head_pairs must be >= 2");
  if (!(o.head_l2 >= 0) || !std::isfinite(o.head_l2)) return bad("head_l2 must be >= 0");
  return absl::OkStatus();
}

namespace {

// The top layer's states of every series (time order, normalized as asked), on `threads`
// threads, a few series per Forward.
std::vector<Series> States(const Network<float>& network, const float* params,
                           const std::vector<const Series*>& series,
                           FrameNormalization normalization, int threads, ThreadPool* pool) {
  constexpr int kChunk = 8;
  const int n = static_cast<int>(series.size());
  std::vector<Series> out(n);
  const int chunks = (n + kChunk - 1) / kChunk;
  pool->ParallelFor(chunks, threads, [&](int begin, int end, int) {
    Network<float>::Workspace ws;
    RowMatrix embeddings;
    std::vector<const Series*> batch;
    for (int c = begin; c < end; ++c) {
      const int first = c * kChunk;
      const int last = std::min(n, first + kChunk);
      batch.assign(series.begin() + first, series.begin() + last);
      network.Forward(params, batch, 0.0f, nullptr, &ws, &embeddings);
      const PackedBatch<float>& packed = ws.packed;
      const RowMatrix& top = ws.layers.back().out;
      for (int q = 0; q < packed.batch(); ++q) {
        RowMatrix m(packed.lengths[q], top.cols());
        for (int t = 0; t < packed.lengths[q]; ++t) {
          m.row(t) = top.row(packed.step_offset[t] + q);
        }
        NormalizeFrames(normalization, &m);
        out[first + packed.order[q]] = Series(std::move(m));
      }
    }
  });
  return out;
}

struct ValidationErrors {
  double eer_skilled = 0;  // validation_refs references
  double eer_skilled_1ref = 0;
  double eer_random = 0;
};

// The svc2004-cv trials of the validation signers scored by DTW over the states.
absl::StatusOr<ValidationErrors> Validate(const Dataset& validation,
                                          const std::vector<Series>& states,
                                          const FrameTripletOptions& o, int threads) {
  const DtwOptions band =
      DtwOptions::Fraction(o.validation_band).WithCost(o.loss.soft_dtw.dtw.local_cost);
  const std::vector<double> similarity = SimilarityMatrix(
      validation, [&](int i, int j) { return -NormalizedDtwDistance(states[i], states[j], band); },
      threads);
  SignatureCvOptions cv;
  cv.draws = o.validation_draws;
  cv.seed = o.seed;
  cv.normalization = ScoreNormalization::kRatio;
  cv.threads = threads;
  ValidationErrors out;
  for (int refs : {o.validation_refs, 1}) {
    SRN_ASSIGN_OR_RETURN(const SignatureTrials trials,
                         MakeSignatureTrials(validation, similarity, refs, cv));
    SRN_ASSIGN_OR_RETURN(const VerificationErrors errors, ComputeVerificationErrors(trials, -1));
    if (refs == 1) {
      out.eer_skilled_1ref = errors.eer_skilled;
    } else {
      out.eer_skilled = errors.eer_skilled;
      out.eer_random = errors.eer_random;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<FrameTripletResult> TrainFrameTripletModel(const Dataset& train,
                                                          const Dataset& validation,
                                                          const FrameTripletConfig& config,
                                                          const FrameTripletCallbacks& callbacks) {
  const FrameTripletOptions& o = config.options;
  SRN_RETURN_IF_ERROR(ValidateFrameTripletOptions(o));
  if (train.examples.empty()) return absl::InvalidArgumentError("the training set is empty");
  if (validation.examples.empty()) {
    return absl::InvalidArgumentError("the validation set is empty");
  }
  SRN_ASSIGN_OR_RETURN(
      Preprocessor preprocessor,
      Preprocessor::Fit(train.SeriesPointers(), config.window, config.kind, config.center_series));
  Dataset augmented;
  std::vector<int> origin;
  if (AugmentsData(config.augment)) {
    SRN_ASSIGN_OR_RETURN(augmented, AugmentDataset(train, config.augment, config.kind));
    // AugmentDataset appends copy k of example i at k * n + i.
    for (size_t i = 0; i < augmented.examples.size(); ++i) {
      origin.push_back(static_cast<int>(i % train.examples.size()));
    }
  }
  SRN_ASSIGN_OR_RETURN(
      Dataset train_p,
      PreprocessDataset(preprocessor, AugmentsData(config.augment) ? augmented : train));
  SRN_ASSIGN_OR_RETURN(Dataset val_p, PreprocessDataset(preprocessor, validation));
  Architecture arch = config.arch;
  arch.input_dims = preprocessor.output_dims();
  SRN_RETURN_IF_ERROR(arch.Validate());
  const ParameterLayout layout(arch);
  const Network<float> network(arch, layout);
  if (arch.is_logistic() || network.TrainsSeriesAlone()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frame-triplet training needs an encoder with per-frame states on the batched path; ",
        arch.ToString(), " has none (use a gru or lstm cell, or two relu layers)"));
  }
  SRN_ASSIGN_OR_RETURN(const TripletSampler sampler,
                       TripletSampler::Create(train_p, o.forgery_fraction, std::move(origin)));

  const int threads = o.threads > 0 ? o.threads : DefaultThreads();
  ThreadPool pool(threads);
  const std::vector<const Series*> train_series = train_p.SeriesPointers();
  const std::vector<const Series*> val_series = val_p.SeriesPointers();
  Vector params = InitParameters(arch, static_cast<float>(o.init_scale), o.seed);
  Vector adam_m = Vector::Zero(params.size());
  Vector adam_v = Vector::Zero(params.size());
  const int shards = o.shards;
  std::vector<std::unique_ptr<FrameTripletWorkspace<float>>> workspaces;
  std::vector<Vector> grads(shards);
  std::vector<FrameTripletLossStats> shard_stats(shards);
  std::vector<absl::Status> shard_status(shards);
  for (int s = 0; s < shards; ++s) {
    workspaces.push_back(std::make_unique<FrameTripletWorkspace<float>>());
  }
  std::mt19937_64 rng(o.seed ^ 0x6a09e667f3bcc909ull);
  const int steps = (o.triplets_per_epoch + o.batch_triplets - 1) / o.batch_triplets;
  double lr = o.learning_rate;
  int64_t adam_t = 0;
  FrameTripletResult result;
  Vector best_params = params;
  double best = std::numeric_limits<double>::infinity();
  int bad_epochs = 0;
  std::vector<TripletGroup> batch;

  for (int epoch = 1; epoch <= o.max_epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0, dp_sum = 0, dn_sum = 0;
    int64_t active = 0, seen = 0;
    for (int step = 1; step <= steps; ++step) {
      if (callbacks.cancel != nullptr && callbacks.cancel->load()) {
        result.cancelled = true;
        break;
      }
      batch.resize(o.batch_triplets);
      for (TripletGroup& g : batch) g = sampler.SampleGroup(o.mining_candidates, &rng);
      const float scale = 1.0f / static_cast<float>(batch.size());
      pool.ParallelFor(shards, std::min(threads, shards), [&](int begin, int end, int) {
        for (int s = begin; s < end; ++s) {
          const size_t first = batch.size() * s / shards;
          const size_t last = batch.size() * (s + 1) / shards;
          grads[s].setZero(params.size());
          absl::StatusOr<FrameTripletLossStats> r =
              FrameTripletLoss<float>(network, params.data(), train_series,
                                      absl::MakeConstSpan(batch).subspan(first, last - first),
                                      o.loss, scale, workspaces[s].get(), grads[s].data());
          shard_status[s] = r.status();
          if (r.ok()) shard_stats[s] = *r;
        }
      });
      Vector& grad = grads[0];
      for (int s = 0; s < shards; ++s) {
        SRN_RETURN_IF_ERROR(shard_status[s]);
        if (s > 0) grad += grads[s];
        loss_sum += shard_stats[s].loss;
        dp_sum += shard_stats[s].d_positive;
        dn_sum += shard_stats[s].d_negative;
        active += shard_stats[s].active;
      }
      seen += static_cast<int64_t>(batch.size());
      if (!std::isfinite(loss_sum) || !grad.allFinite()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "frame-triplet training diverged at epoch %d step %d (try a lower --lr or a larger "
            "--gamma)",
            epoch, step));
      }
      const float norm = grad.norm();
      if (norm > o.clip_norm) grad *= static_cast<float>(o.clip_norm) / norm;
      ++adam_t;
      const float b1 = static_cast<float>(o.adam_beta1);
      const float b2 = static_cast<float>(o.adam_beta2);
      adam_m = b1 * adam_m + (1 - b1) * grad;
      adam_v = b2 * adam_v + (1 - b2) * grad.cwiseAbs2();
      const double c1 = 1 - std::pow(o.adam_beta1, static_cast<double>(adam_t));
      const double c2 = 1 - std::pow(o.adam_beta2, static_cast<double>(adam_t));
      const float step_size = static_cast<float>(lr * std::sqrt(c2) / c1);
      params.array() -=
          step_size * adam_m.array() / (adam_v.array().sqrt() + static_cast<float>(o.adam_epsilon));
      if (callbacks.on_step) callbacks.on_step(epoch, step, steps);
    }
    if (seen == 0) break;  // cancelled before a step of this epoch

    const std::vector<Series> states =
        States(network, params.data(), val_series, o.loss.normalization, threads, &pool);
    SRN_ASSIGN_OR_RETURN(const ValidationErrors errors, Validate(val_p, states, o, threads));
    FrameTripletEpoch report;
    report.epoch = epoch;
    report.train_loss = loss_sum / static_cast<double>(seen);
    report.active_fraction = static_cast<double>(active) / static_cast<double>(seen);
    report.mean_d_positive = dp_sum / static_cast<double>(seen);
    report.mean_d_negative = dn_sum / static_cast<double>(seen);
    report.val_eer_skilled = errors.eer_skilled;
    report.val_eer_skilled_1ref = errors.eer_skilled_1ref;
    report.val_eer_random = errors.eer_random;
    report.learning_rate = lr;
    const double criterion = 0.5 * (errors.eer_skilled + errors.eer_skilled_1ref);
    report.improved = criterion < best;
    if (report.improved) {
      best = criterion;
      best_params = params;
      result.best_epoch = epoch;
      result.best_val_eer = criterion;
      bad_epochs = 0;
    } else {
      lr *= o.lr_decay;
      ++bad_epochs;
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
    if (result.cancelled || bad_epochs >= o.patience) break;
  }
  if (result.best_epoch == 0) {
    if (result.cancelled) return absl::CancelledError("cancelled before the first epoch ended");
    return absl::FailedPreconditionError("no epoch was validated");
  }

  ModelMetadata meta;
  meta.training_data = config.training_data;
  meta.trained_classes = TrainedClassNames(train, validation);
  meta.command = config.command;
  meta.seed = o.seed;
  meta.created = NowUtcIso8601();
  meta.hyperparameters = {
      {"objective", "frame-triplet"},
      {"family", arch.FamilyName()},
      {"hidden", absl::StrCat(arch.hidden)},
      {"layers", absl::StrCat(arch.layers)},
      {"window", absl::StrCat(config.window)},
      {"center_series", config.center_series ? "true" : "false"},
      {"frame_normalization", std::string(FrameNormalizationName(o.loss.normalization))},
      {"frame_cost", std::string(FrameCostName(o.loss.soft_dtw.dtw.local_cost))},
      {"margin", absl::StrCat(o.loss.margin)},
      {"gamma", absl::StrCat(o.loss.soft_dtw.gamma)},
      {"soft_dtw_band", absl::StrCat(o.loss.soft_dtw.dtw.band_fraction)},
      {"distance", "soft-DTW of the states / (Ta + Tb)"},
      {"optimizer", "adam"},
      {"learning_rate", absl::StrCat(o.learning_rate)},
      {"clip_norm", absl::StrCat(o.clip_norm)},
      {"init_scale", absl::StrCat(o.init_scale)},
      {"batch_triplets", absl::StrCat(o.batch_triplets)},
      {"triplets_per_epoch", absl::StrCat(o.triplets_per_epoch)},
      {"max_epochs", absl::StrCat(o.max_epochs)},
      {"lr_decay", absl::StrCat(o.lr_decay)},
      {"patience", absl::StrCat(o.patience)},
      {"forgery_fraction", absl::StrCat(o.forgery_fraction)},
      {"mining_candidates", absl::StrCat(o.mining_candidates)},
      {"validation", absl::StrFormat("states DTW band %g, refs 1 and %d, %d draws",
                                     o.validation_band, o.validation_refs, o.validation_draws)},
      {"augment_copies", absl::StrCat(config.augment.copies)},
      {"augment", DescribeAugment(config.augment)},
      {"train_examples", absl::StrCat(train.examples.size())},
      {"validation_examples", absl::StrCat(validation.examples.size())},
      {"head", "not trained: as initialized"},  // replaced by FitSimilarityHead's description
  };
  const FrameTripletEpoch& chosen = result.history[result.best_epoch - 1];
  meta.metrics = {{"val_eer_skilled", chosen.val_eer_skilled},
                  {"val_eer_skilled_1ref", chosen.val_eer_skilled_1ref},
                  {"val_eer_random", chosen.val_eer_random},
                  {"best_epoch", result.best_epoch},
                  {"epochs", static_cast<double>(result.history.size())}};
  SRN_ASSIGN_OR_RETURN(
      result.model, SimilarityModel::Create(arch, std::move(preprocessor), std::move(best_params),
                                            std::move(meta)));
  if (o.fit_head) {
    // The original training examples: an augmented copy and its origin would be a pair too
    // easy to be similar.
    Dataset originals;
    if (AugmentsData(config.augment)) {
      SRN_ASSIGN_OR_RETURN(originals, PreprocessDataset(result.model->preprocessor(), train));
    }
    HeadFitOptions head;
    head.pairs = o.head_pairs;
    head.forgery_fraction = o.forgery_fraction;
    head.l2 = o.head_l2;
    head.seed = o.seed;
    head.threads = threads;
    SRN_ASSIGN_OR_RETURN(
        HeadFit fit,
        FitSimilarityHead(*result.model, AugmentsData(config.augment) ? originals : train_p,
                          val_p, head));
    result.model = std::move(fit.model);
    result.head_val_auc = fit.val_auc;
    result.head_val_auc_before = fit.val_auc_before;
    result.head_pairs = fit.pairs;
  }
  return result;
}

}  // namespace srn
