#ifndef SRN_MODEL_TRAIN_TRAINER_H_
#define SRN_MODEL_TRAIN_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/nn/architecture.h"
#include "model/train/augment.h"
#include "model/data/dataset.h"
#include "model/nn/network.h"
#include "model/nn/pair_loss.h"
#include "model/nn/parallel.h"
#include "model/nn/parameters.h"
#include "model/data/preprocess.h"
#include "model/nn/similarity_model.h"
#include "model/train/train_config.h"

namespace srn {

// What happened in one epoch.
struct EpochReport {
  int epoch = 0;
  double train_loss = 0;
  double val_auc = 0;
  double learning_rate = 0;
  bool improved = false;
  double seconds = 0;       // wall time of the epoch
  int64_t pairs_seen = 0;   // cumulative
};

struct TrainResult {
  Vector params;            // the parameters with the best validation AUC
  double best_val_auc = 0;
  int best_epoch = 0;
  std::vector<EpochReport> history;
  bool cancelled = false;
};

struct TrainCallbacks {
  std::function<void(const EpochReport&)> on_epoch;              // after each epoch
  std::function<void(int epoch, int step, int steps)> on_step;  // after each mini-batch
  const std::atomic<bool>* cancel = nullptr;                     // stop early when set
};

// Trains the encoder and head of one architecture on pairs (binary cross-entropy, BPTT,
// RMSprop, clipping, dropout, learning-rate decay on validation AUC, early stopping). Mini-batches
// are split into fixed shards computed on worker threads, and their gradients are summed in a
// fixed order, so a seed always gives the same model. Inputs must already be preprocessed.
// Not thread-safe: one thread drives a Trainer.
class Trainer final {
 public:
  Trainer(const Architecture& arch, const TrainOptions& options);
  ~Trainer();

  // One optimisation step on `pairs` (indices into `series`): forward, backward, clip, RMSprop.
  // Returns the mean loss of the pairs before the update.
  double Step(const std::vector<const Series*>& series, absl::Span<const Pair> pairs);

  // Trains on `train` until early stopping, max_epochs or cancellation, choosing the learning
  // rate schedule and the returned parameters by AUC on `validation`. Fails with
  // FailedPrecondition when either set cannot give pairs, or when the loss diverges.
  absl::StatusOr<TrainResult> Fit(const Dataset& train, const Dataset& validation,
                                  const TrainCallbacks& callbacks = {});

  // Embeddings of preprocessed series with the current parameters (n x embedding_dims).
  RowMatrix Embed(const std::vector<const Series*>& series) const;

  const Vector& params() const { return params_; }
  // The parameters validation sees: the bias-corrected moving average with weight_average on
  // (the raw parameters before the first step), else the raw parameters.
  Vector EvaluatedParams() const;
  void set_params(Vector params);
  double learning_rate() const { return lr_; }
  const Architecture& architecture() const { return arch_; }

 private:
  struct Shard;

  RowMatrix EmbedWith(const Vector& params, const std::vector<const Series*>& series) const;
  std::vector<Pair> MineHardNegatives(const std::vector<Pair>& batch, const RowMatrix& embeddings,
                                      const class PairSampler& sampler, std::mt19937_64* rng) const;

  const Architecture arch_;
  const TrainOptions options_;
  const ParameterLayout layout_;
  const Network<float> network_;
  const int threads_;
  // Its own threads, created by the thread that creates the Trainer and so sharing its priority:
  // a training worker that lowers its own priority lowers its helpers' too.
  std::unique_ptr<ThreadPool> pool_;
  Vector params_;
  Vector mean_square_;  // RMSprop state
  Vector average_;      // weight_average: the moving average, not yet bias-corrected
  double average_weight_ = 0;  // the weight the average has accumulated: 1 - decay^steps
  double lr_;
  uint64_t steps_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
};

struct TrainedModel {
  std::shared_ptr<const SimilarityModel> model;
  TrainResult result;
};

// Fits the preprocessing on `train`, applies it to both sets, trains, and packages the best
// parameters with their preprocessing and metadata (hyperparameters, seed, validation AUC).
absl::StatusOr<TrainedModel> TrainModel(const Dataset& train, const Dataset& validation,
                                        const TrainConfig& config,
                                        const TrainCallbacks& callbacks = {});

// Applies a preprocessor to every example of a dataset; the error names the failing example.
absl::StatusOr<Dataset> PreprocessDataset(const Preprocessor& preprocessor, const Dataset& data);

}  // namespace srn

#endif  // SRN_MODEL_TRAIN_TRAINER_H_
