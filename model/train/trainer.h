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

namespace srn {

// How to train, with the paper's settings as defaults where it gives them.
struct TrainOptions {
  double learning_rate = 1e-3;  // RMSprop step size
  double rms_decay = 0.9;
  double rms_epsilon = 1e-6;
  double clip = 5.0;             // gradients clipped elementwise to [-clip, clip]
  double init_scale = 0.1;       // uniform initialisation in [-init_scale, init_scale]
  double dropout = 0.0;          // on hidden activations between layers and on the embedding
  int batch_pairs = 50;          // pairs per mini-batch
  int pairs_per_epoch = 0;       // 0: 10 x training examples, at least 5000
  int max_epochs = 60;
  double lr_decay = 0.4;         // learning rate x lr_decay whenever validation AUC stops rising
  int patience = 5;              // stop after this many epochs in a row without a new best
  int validation_pairs = 4000;   // fixed balanced pairs drawn once from the validation set
  double forgery_fraction = 0.5;  // signature mode: share of negatives that are skilled forgeries
  // Hard-negative mining: this fraction of each batch's dissimilar pairs is the highest-scoring
  // of `hard_negative_pool` candidates each, scored with embeddings refreshed every epoch.
  double hard_negative_fraction = 0.0;
  int hard_negative_pool = 16;
  // Parameter averaging: when in (0, 1), an exponential moving average of the parameters with this
  // decay per step (bias-corrected, so it averages only the steps taken) is what validation
  // scores and what Fit returns; training itself steps the raw parameters as before.
  double weight_average = 0.0;
  uint64_t seed = 1;
  int threads = 0;               // 0: DefaultThreads()
  // Gradient shards per mini-batch. Fixed independently of `threads`, so that a seed gives the
  // same model on any machine.
  int shards = 2;
};

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

// Everything that defines one training run from raw (unpreprocessed) data.
struct TrainConfig {
  Architecture arch;       // input_dims is filled in from the data and window
  int window = 1;
  bool center_series = false;  // see Preprocessor::center_series
  FeatureKind kind = FeatureKind::kFrames;
  TrainOptions options;
  // Perturbed copies of the training examples (see augment.h: signatures or frames, by `kind`);
  // the standardization is still fitted on the original examples only.
  AugmentOptions augment;
  std::string training_data;  // description stored in the weights file
  std::string command;        // command line stored in the weights file
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
