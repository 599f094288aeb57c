#ifndef SRN_MODEL_TRAIN_TRAIN_CONFIG_H_
#define SRN_MODEL_TRAIN_TRAIN_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/data/preprocess.h"
#include "model/nn/architecture.h"
#include "model/train/augment.h"

namespace srn {

// The training configuration: what a user chooses for a training run (TrainSettings, with its
// defaults and allowed ranges), the one function that completes and checks those choices
// (CompleteTrainSettings), and what the trainer runs (TrainConfig, made by MakeTrainConfig).
// srn-train's flags, srn-server's TrainingSpec and srnctl's train flags all go through here.
// Everything is a value or a pure function: thread-safe.

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

// How the validation set is held out of the training part of a split (see MakeSplit).
enum class ValidationSplit {
  kAuto,      // whole classes when there are 20 or more training classes, else examples
  kClasses,   // 10% of the training classes (at least 2), like an out-of-domain test
  kExamples,  // 10% of each training class's examples, so every training class still trains
};

// "auto", "classes" or "examples".
absl::StatusOr<ValidationSplit> ParseValidationSplit(const std::string& name);

// The choices a user makes for one training run, named as srn-server's TrainingSpec names them
// (srn-train's and srnctl's flags set the same fields; the last group is srn-train's only). The
// initializers are the defaults; the comments give the ranges CompleteTrainSettings accepts.
struct TrainSettings {
  std::string family = "srn-a";     // a family ParseFamily knows
  int hidden = 64;                  // [1, 1024] (the logistic model has none and ignores it)
  int layers = 1;                   // [1, 8]
  int window = 1;                   // [1, 64] frames concatenated per input
  bool center_series = false;       // see Preprocessor::center_series
  std::string validation = "auto";  // ParseValidationSplit's names
  double learning_rate = 1e-3;      // positive and finite
  double dropout = 0;               // [0, 1)
  int batch_pairs = 50;             // [1, 100000]
  int pairs_per_epoch = 0;          // [0, 10000000]; 0: 10 x training series, at least 5000
  int max_epochs = 60;              // [1, 1000]
  int patience = 5;                 // at least 1
  double lr_decay = 0.4;            // (0, 1]
  double hard_negatives = 0;        // [0, 1]: TrainOptions::hard_negative_fraction
  double weight_average = 0;        // 0 (off) or (0, 1)
  uint64_t seed = 1;                // any
  double clip = 5;                  // positive and finite
  double init_scale = 0.1;          // positive and finite
  double forgery_fraction = 0.5;    // [0, 1]
  int hard_negative_pool = 16;      // at least 1
  int augment_copies = 0;           // at least 0: AugmentOptions::copies
  double augment_noise = 0;         // at least 0, finite: AugmentOptions::noise
  double augment_strength = 1;      // at least 0, finite: multiplies the augmentation amplitudes
};

// A training job on srn-server stops after this many epochs unless its spec says otherwise: it
// runs on a serving machine's spare cycles (srn-train's default is the paper's 60).
inline constexpr int kJobDefaultMaxEpochs = 20;

// How CompleteTrainSettings reads a zero.
enum class ZeroMeans {
  kZero,     // as itself: srn-train's flags, which always hold a value
  // As "the default" (the convention of srn-server's TrainingSpec, and of srnctl's flags that
  // fill one): an empty family or validation, or a zero hidden, layers, window, learning_rate,
  // batch_pairs, max_epochs (kJobDefaultMaxEpochs), patience, lr_decay or seed, takes the
  // default. Elsewhere a zero is the default already (dropout, ...) or out of range.
  kDefault,
};

// How a front end spells a TrainSettings field (given by its name above) in errors, e.g.
// "learning_rate" -> "--lr". Null: the field's own name.
using TrainFieldNamer = std::function<std::string(absl::string_view field)>;

// Fills the defaults `zero` asks for and checks every field against its range. InvalidArgument
// names the first bad field, spelled by `name`, its allowed range and the value given, e.g.
// "hidden must be in [1, 1024], got 2000".
absl::StatusOr<TrainSettings> CompleteTrainSettings(TrainSettings settings, ZeroMeans zero,
                                                    const TrainFieldNamer& name = nullptr);

// What the trainer runs for `settings` (checked as CompleteTrainSettings with kZero checks them;
// InvalidArgument as it says). The caller sets what is not a choice of the user: kind,
// training_data, command and options.threads.
absl::StatusOr<TrainConfig> MakeTrainConfig(const TrainSettings& settings);

}  // namespace srn

#endif  // SRN_MODEL_TRAIN_TRAIN_CONFIG_H_
