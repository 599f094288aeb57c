#include "server/training_spec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/request_enums.h"

namespace srn {
namespace {

// The spec's choices as they are (zero: unset); the spec has no srn-train-only fields, so those
// keep their defaults.
TrainSettings SettingsOf(const v1::TrainingSpec& spec) {
  TrainSettings s;
  s.family = spec.family();
  s.hidden = spec.hidden();
  s.layers = spec.layers();
  s.window = spec.window();
  s.center_series = spec.center_series();
  s.validation = spec.validation();
  s.learning_rate = spec.learning_rate();
  s.dropout = spec.dropout();
  s.batch_pairs = spec.batch_pairs();
  s.pairs_per_epoch = spec.pairs_per_epoch();
  s.max_epochs = spec.max_epochs();
  s.patience = spec.patience();
  s.lr_decay = spec.lr_decay();
  s.hard_negatives = spec.hard_negatives();
  s.weight_average = spec.weight_average();
  s.seed = spec.seed();
  return s;
}

void SetSettings(const TrainSettings& s, v1::TrainingSpec* spec) {
  spec->set_family(s.family);
  spec->set_hidden(s.hidden);
  spec->set_layers(s.layers);
  spec->set_window(s.window);
  spec->set_center_series(s.center_series);
  spec->set_validation(s.validation);
  spec->set_learning_rate(s.learning_rate);
  spec->set_dropout(s.dropout);
  spec->set_batch_pairs(s.batch_pairs);
  spec->set_pairs_per_epoch(s.pairs_per_epoch);
  spec->set_max_epochs(s.max_epochs);
  spec->set_patience(s.patience);
  spec->set_lr_decay(s.lr_decay);
  spec->set_hard_negatives(s.hard_negatives);
  spec->set_weight_average(s.weight_average);
  spec->set_seed(s.seed);
}

}  // namespace

absl::StatusOr<v1::TrainingSpec> CompleteTrainingSpec(const v1::TrainingSpec& in) {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(in));
  SRN_ASSIGN_OR_RETURN(const TrainSettings settings,
                       CompleteTrainSettings(SettingsOf(in), ZeroMeans::kDefault));
  v1::TrainingSpec spec = in;
  SetSettings(settings, &spec);
  if (spec.activation() == v1::ACTIVATION_POLICY_UNSPECIFIED) {
    spec.set_activation(v1::ACTIVATION_POLICY_MANUAL);
  }
  if (spec.description().size() > 1000) {
    return absl::InvalidArgumentError("description is longer than 1000 characters");
  }
  return spec;
}

absl::StatusOr<TrainConfig> TrainConfigOf(const v1::TrainingSpec& spec) {
  return MakeTrainConfig(SettingsOf(spec));
}

}  // namespace srn
