#include "model/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/metrics/metrics.h"
#include "model/train/pair_sampler.h"
#include "model/nn/parallel.h"
#include "base/clock.h"
#include "base/status_macros.h"

namespace srn {

// Per-shard scratch: each shard's forward/backward runs on its own thread with its own state.
struct Trainer::Shard {
  Network<float>::Workspace ws;
  RowMatrix emb;
  RowMatrix d_emb;
  Vector grad;
  std::vector<const Series*> series;
  std::vector<Pair> pairs;
  std::vector<int> local;  // batch series index -> shard-local index, -1 if unused
  double loss = 0;
};

Trainer::Trainer(const Architecture& arch, const TrainOptions& options)
    : arch_(arch),
      options_(options),
      layout_(arch),
      network_(arch_, layout_),
      threads_(options.threads > 0 ? options.threads : DefaultThreads()),
      pool_(std::make_unique<ThreadPool>(threads_)),
      params_(InitParameters(arch, static_cast<float>(options.init_scale), options.seed)),
      mean_square_(Vector::Zero(layout_.total_size())),
      lr_(options.learning_rate) {
  for (int s = 0; s < std::max(1, options.shards); ++s)
    shards_.push_back(std::make_unique<Shard>());
}

Trainer::~Trainer() = default;

void Trainer::set_params(Vector params) {
  params_ = std::move(params);
  mean_square_.setZero(layout_.total_size());
  average_.resize(0);
  average_weight_ = 0;
}

Vector Trainer::EvaluatedParams() const {
  if (average_weight_ <= 0) return params_;
  return average_ / static_cast<float>(average_weight_);
}

double Trainer::Step(const std::vector<const Series*>& series, absl::Span<const Pair> pairs) {
  const int num_shards = static_cast<int>(shards_.size());
  const int num_pairs = static_cast<int>(pairs.size());
  if (num_pairs == 0) return 0;
  const float scale = 1.0f / static_cast<float>(num_pairs);
  const uint64_t step = steps_++;

  auto run_shard = [&](int s) {
    Shard& shard = *shards_[s];
    shard.grad.setZero(layout_.total_size());
    shard.loss = 0;
    const int begin = static_cast<int>(static_cast<int64_t>(num_pairs) * s / num_shards);
    const int end = static_cast<int>(static_cast<int64_t>(num_pairs) * (s + 1) / num_shards);
    if (begin == end) return;
    shard.local.assign(series.size(), -1);
    shard.series.clear();
    shard.pairs.clear();
    auto local_index = [&](int i) {
      if (shard.local[i] < 0) {
        shard.local[i] = static_cast<int>(shard.series.size());
        shard.series.push_back(series[i]);
      }
      return shard.local[i];
    };
    for (int p = begin; p < end; ++p) {
      const int a = local_index(pairs[p].a);
      const int b = local_index(pairs[p].b);
      shard.pairs.push_back({a, b, pairs[p].label});
    }
    // Dropout noise depends only on (seed, step, shard): the same on any number of threads.
    std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ull + step * 1000003ull + s);
    network_.Forward(params_.data(), shard.series, static_cast<float>(options_.dropout), &rng,
                     &shard.ws, &shard.emb);
    shard.loss = PairLoss<float>(params_.data(), layout_, shard.emb, shard.pairs, scale,
                                 &shard.d_emb, shard.grad.data());
    network_.Backward(params_.data(), shard.d_emb, &shard.ws, shard.grad.data());
  };
  pool_->ParallelFor(num_shards, std::min(threads_, num_shards), [&](int begin, int end, int) {
    for (int s = begin; s < end; ++s) run_shard(s);
  });

  Vector& grad = shards_[0]->grad;
  double loss = shards_[0]->loss;
  for (int s = 1; s < num_shards; ++s) {
    grad += shards_[s]->grad;
    loss += shards_[s]->loss;
  }
  const float clip = static_cast<float>(options_.clip);
  const float decay = static_cast<float>(options_.rms_decay);
  const float eps = static_cast<float>(options_.rms_epsilon);
  const float lr = static_cast<float>(lr_);
  auto g = grad.array().min(clip).max(-clip);
  mean_square_.array() = decay * mean_square_.array() + (1.0f - decay) * g.square();
  params_.array() -= lr * g / (mean_square_.array().sqrt() + eps);
  const double avg = options_.weight_average;
  if (avg > 0 && avg < 1) {
    if (average_.size() != params_.size()) average_.setZero(params_.size());
    average_ = static_cast<float>(avg) * average_ + static_cast<float>(1 - avg) * params_;
    average_weight_ = avg * average_weight_ + (1 - avg);
  }
  return loss;
}

RowMatrix Trainer::Embed(const std::vector<const Series*>& series) const {
  return EmbedWith(params_, series);
}

RowMatrix Trainer::EmbedWith(const Vector& params, const std::vector<const Series*>& series) const {
  RowMatrix out;
  EmbedParallel(network_, params.data(), series, threads_, &out, pool_.get());
  return out;
}

std::vector<Pair> Trainer::MineHardNegatives(const std::vector<Pair>& batch,
                                             const RowMatrix& embeddings,
                                             const PairSampler& sampler,
                                             std::mt19937_64* rng) const {
  std::vector<Pair> out = batch;
  const int e = static_cast<int>(embeddings.cols());
  std::uniform_real_distribution<double> coin(0, 1);
  for (Pair& p : out) {
    if (p.label != 0 || coin(*rng) >= options_.hard_negative_fraction) continue;
    float best = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < options_.hard_negative_pool; ++k) {
      const Pair candidate = sampler.SampleDissimilar(rng);
      const float logit =
          HeadLogit<float>(params_.data(), layout_, embeddings.row(candidate.a).data(),
                           embeddings.row(candidate.b).data(), e);
      if (logit > best) {
        best = logit;
        p = candidate;
      }
    }
  }
  return out;
}

namespace {

// AUC of the current model on fixed validation pairs.
absl::StatusOr<double> PairAuc(const RowMatrix& emb, const std::vector<Pair>& pairs,
                               const float* params, const ParameterLayout& layout) {
  std::vector<double> scores;
  std::vector<int> labels;
  scores.reserve(pairs.size());
  labels.reserve(pairs.size());
  for (const Pair& p : pairs) {
    scores.push_back(HeadLogit<float>(params, layout, emb.row(p.a).data(), emb.row(p.b).data(),
                                      static_cast<int>(emb.cols())));
    labels.push_back(p.label);
  }
  return Auc(scores, labels);
}

}  // namespace

absl::StatusOr<TrainResult> Trainer::Fit(const Dataset& train, const Dataset& validation,
                                         const TrainCallbacks& callbacks) {
  PairSampler::Options sampler_options;
  sampler_options.forgery_fraction = options_.forgery_fraction;
  absl::StatusOr<PairSampler> train_sampler = PairSampler::Create(train, sampler_options);
  if (!train_sampler.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("training set: ", train_sampler.status().message()));
  }
  absl::StatusOr<PairSampler> val_sampler = PairSampler::Create(validation, sampler_options);
  if (!val_sampler.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("validation set: ", val_sampler.status().message()));
  }
  for (const Dataset* d : {&train, &validation}) {
    for (const Example& e : d->examples) {
      if (e.series.dims() != arch_.input_dims || e.series.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "example ", e.source, " has ", e.series.length(), " frames of ", e.series.dims(),
            " features; the encoder takes ", arch_.input_dims));
      }
    }
  }

  std::mt19937_64 rng(options_.seed);
  std::mt19937_64 val_rng(options_.seed ^ 0x5DEECE66Dull);
  const std::vector<Pair> val_pairs =
      val_sampler->SampleBalanced(options_.validation_pairs, &val_rng);
  const std::vector<const Series*> val_series = validation.SeriesPointers();
  const std::vector<const Series*> train_series = train.SeriesPointers();
  const int pairs_per_epoch =
      options_.pairs_per_epoch > 0
          ? options_.pairs_per_epoch
          : std::max<int>(5000, 10 * static_cast<int>(train.examples.size()));
  const int batch = std::max(1, options_.batch_pairs);
  const int steps_per_epoch = (pairs_per_epoch + batch - 1) / batch;

  TrainResult result;
  result.params = params_;
  result.best_val_auc = -1;
  int epochs_without_best = 0;
  int64_t pairs_seen = 0;
  std::vector<const Series*> batch_series;
  std::vector<Pair> batch_pairs;
  std::vector<int> local(train.examples.size(), -1);

  for (int epoch = 1; epoch <= options_.max_epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<Pair> epoch_pairs = train_sampler->SampleBalanced(pairs_per_epoch, &rng);
    RowMatrix mining_emb;
    if (options_.hard_negative_fraction > 0) mining_emb = Embed(train_series);
    double loss_sum = 0;
    int loss_count = 0;
    for (int step = 0; step < steps_per_epoch; ++step) {
      if (callbacks.cancel != nullptr && callbacks.cancel->load()) {
        result.cancelled = true;
        return result;
      }
      const int begin = step * batch;
      const int end = std::min(pairs_per_epoch, begin + batch);
      std::vector<Pair> pairs(epoch_pairs.begin() + begin, epoch_pairs.begin() + end);
      if (options_.hard_negative_fraction > 0) {
        pairs = MineHardNegatives(pairs, mining_emb, *train_sampler, &rng);
      }
      batch_series.clear();
      batch_pairs.clear();
      for (const Pair& p : pairs) {
        for (int idx : {p.a, p.b}) {
          if (local[idx] < 0) {
            local[idx] = static_cast<int>(batch_series.size());
            batch_series.push_back(train_series[idx]);
          }
        }
        batch_pairs.push_back({local[p.a], local[p.b], p.label});
      }
      for (const Pair& p : pairs) local[p.a] = local[p.b] = -1;
      const double loss = Step(batch_series, batch_pairs);
      if (!std::isfinite(loss)) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "training diverged: the loss is %f at epoch %d step %d (learning rate %g); lower the "
            "learning rate",
            loss, epoch, step + 1, lr_));
      }
      loss_sum += loss;
      ++loss_count;
      pairs_seen += end - begin;
      if (callbacks.on_step) callbacks.on_step(epoch, step + 1, steps_per_epoch);
    }
    if (!params_.allFinite()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "training diverged: parameters are no longer finite after epoch %d (learning rate %g); "
          "lower the learning rate",
          epoch, lr_));
    }
    // An average of finite parameters is finite: a non-finite parameter never becomes finite
    // again, so the check above covers every step the average holds.
    Vector evaluated = EvaluatedParams();
    SRN_ASSIGN_OR_RETURN(const double val_auc, PairAuc(EmbedWith(evaluated, val_series), val_pairs,
                                                       evaluated.data(), layout_));
    EpochReport report;
    report.epoch = epoch;
    report.train_loss = loss_sum / std::max(1, loss_count);
    report.val_auc = val_auc;
    report.learning_rate = lr_;
    report.pairs_seen = pairs_seen;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (val_auc > result.best_val_auc) {
      report.improved = true;
      result.best_val_auc = val_auc;
      result.best_epoch = epoch;
      result.params = std::move(evaluated);
      epochs_without_best = 0;
    } else {
      lr_ *= options_.lr_decay;  // the paper: x0.4 whenever validation AUC stops increasing
      ++epochs_without_best;
    }
    result.history.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
    if (epochs_without_best >= options_.patience) break;
  }
  return result;
}

absl::StatusOr<Dataset> PreprocessDataset(const Preprocessor& preprocessor, const Dataset& data) {
  Dataset out{data.name, data.label_names, {}};
  out.examples.reserve(data.examples.size());
  for (const Example& e : data.examples) {
    absl::StatusOr<Series> s = preprocessor.Apply(e.series);
    if (!s.ok()) {
      return absl::Status(s.status().code(), absl::StrCat(e.source, ": ", s.status().message()));
    }
    Example p = e;
    p.series = *std::move(s);
    out.examples.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<TrainedModel> TrainModel(const Dataset& train, const Dataset& validation,
                                        const TrainConfig& config,
                                        const TrainCallbacks& callbacks) {
  if (train.examples.empty()) return absl::InvalidArgumentError("the training set is empty");
  if (validation.examples.empty()) return absl::InvalidArgumentError("the validation set is empty");
  SRN_ASSIGN_OR_RETURN(Preprocessor preprocessor,
                       Preprocessor::Fit(train.SeriesPointers(), config.window, config.kind,
                                         config.center_series));
  Dataset augmented;
  if (AugmentsData(config.augment)) {
    SRN_ASSIGN_OR_RETURN(augmented, AugmentDataset(train, config.augment, config.kind));
  }
  SRN_ASSIGN_OR_RETURN(Dataset train_p,
                       PreprocessDataset(preprocessor,
                                         AugmentsData(config.augment) ? augmented : train));
  SRN_ASSIGN_OR_RETURN(Dataset val_p, PreprocessDataset(preprocessor, validation));
  Architecture arch = config.arch;
  arch.input_dims = preprocessor.output_dims();
  SRN_RETURN_IF_ERROR(arch.Validate());

  Trainer trainer(arch, config.options);
  SRN_ASSIGN_OR_RETURN(TrainResult result, trainer.Fit(train_p, val_p, callbacks));

  const TrainOptions& o = config.options;
  ModelMetadata meta;
  meta.training_data = config.training_data;
  meta.trained_classes = TrainedClassNames(train, validation);
  meta.command = config.command;
  meta.seed = o.seed;
  meta.created = NowUtcIso8601();
  meta.hyperparameters = {
      {"family", arch.FamilyName()},
      {"hidden", absl::StrCat(arch.hidden)},
      {"layers", absl::StrCat(arch.layers)},
      {"window", absl::StrCat(config.window)},
      {"center_series", config.center_series ? "true" : "false"},
      {"learning_rate", absl::StrCat(o.learning_rate)},
      {"dropout", absl::StrCat(o.dropout)},
      {"batch_pairs", absl::StrCat(o.batch_pairs)},
      {"pairs_per_epoch", absl::StrCat(o.pairs_per_epoch)},
      {"max_epochs", absl::StrCat(o.max_epochs)},
      {"lr_decay", absl::StrCat(o.lr_decay)},
      {"patience", absl::StrCat(o.patience)},
      {"clip", absl::StrCat(o.clip)},
      {"init_scale", absl::StrCat(o.init_scale)},
      {"forgery_fraction", absl::StrCat(o.forgery_fraction)},
      {"hard_negative_fraction", absl::StrCat(o.hard_negative_fraction)},
      {"hard_negative_pool", absl::StrCat(o.hard_negative_pool)},
      {"weight_average", absl::StrCat(o.weight_average)},
      {"augment_copies", absl::StrCat(config.augment.copies)},
      {"augment", DescribeAugment(config.augment)},
      {"train_examples", absl::StrCat(train.examples.size())},
      {"validation_examples", absl::StrCat(validation.examples.size())},
  };
  meta.metrics = {{"val_auc", result.best_val_auc},
                  {"best_epoch", result.best_epoch},
                  {"epochs", static_cast<double>(result.history.size())}};
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model,
                       SimilarityModel::Create(arch, std::move(preprocessor), result.params,
                                               std::move(meta)));
  return TrainedModel{std::move(model), std::move(result)};
}

}  // namespace srn
