#include "model/train/train_config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace srn {

absl::StatusOr<ValidationSplit> ParseValidationSplit(const std::string& name) {
  if (name == "auto") return ValidationSplit::kAuto;
  if (name == "classes") return ValidationSplit::kClasses;
  if (name == "examples") return ValidationSplit::kExamples;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown validation split '", name, "' (expected auto, classes or examples)"));
}

namespace {

// Checks one field at a time, naming it as the front end spells it.
class FieldChecker final {
 public:
  explicit FieldChecker(const TrainFieldNamer& name) : name_(name) {}

  absl::Status IntIn(absl::string_view field, int64_t value, int64_t lo, int64_t hi) const {
    if (value >= lo && value <= hi) return absl::OkStatus();
    return Bad(field, absl::StrCat("must be in [", lo, ", ", hi, "]"), value);
  }
  absl::Status AtLeast(absl::string_view field, int64_t value, int64_t lo) const {
    if (value >= lo) return absl::OkStatus();
    return Bad(field, absl::StrCat("must be at least ", lo), value);
  }
  absl::Status PositiveFinite(absl::string_view field, double value) const {
    if (value > 0 && std::isfinite(value)) return absl::OkStatus();
    return Bad(field, "must be positive and finite", value);
  }
  absl::Status NonNegativeFinite(absl::string_view field, double value) const {
    if (value >= 0 && std::isfinite(value)) return absl::OkStatus();
    return Bad(field, "must be at least 0 and finite", value);
  }
  // [0, 1] or, with `open_top`, [0, 1).
  absl::Status Fraction(absl::string_view field, double value, bool open_top) const {
    if (value >= 0 && (open_top ? value < 1 : value <= 1)) return absl::OkStatus();
    return Bad(field, open_top ? "must be in [0, 1)" : "must be in [0, 1]", value);
  }
  absl::Status Bad(absl::string_view field, absl::string_view rule, double value) const {
    return absl::InvalidArgumentError(absl::StrCat(Name(field), " ", rule, ", got ", value));
  }
  std::string Name(absl::string_view field) const {
    return name_ ? name_(field) : std::string(field);
  }

 private:
  const TrainFieldNamer& name_;
};

}  // namespace

absl::StatusOr<TrainSettings> CompleteTrainSettings(TrainSettings s, ZeroMeans zero,
                                                    const TrainFieldNamer& name) {
  if (zero == ZeroMeans::kDefault) {
    const TrainSettings defaults;
    if (s.family.empty()) s.family = defaults.family;
    if (s.validation.empty()) s.validation = defaults.validation;
    if (s.hidden == 0) s.hidden = defaults.hidden;
    if (s.layers == 0) s.layers = defaults.layers;
    if (s.window == 0) s.window = defaults.window;
    if (s.learning_rate == 0) s.learning_rate = defaults.learning_rate;
    if (s.batch_pairs == 0) s.batch_pairs = defaults.batch_pairs;
    if (s.max_epochs == 0) s.max_epochs = kJobDefaultMaxEpochs;
    if (s.patience == 0) s.patience = defaults.patience;
    if (s.lr_decay == 0) s.lr_decay = defaults.lr_decay;
    if (s.seed == 0) s.seed = defaults.seed;
  }
  const FieldChecker check(name);
  if (absl::StatusOr<Architecture> arch = ParseFamily(s.family); !arch.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(check.Name("family"), ": ", arch.status().message()));
  }
  SRN_RETURN_IF_ERROR(check.IntIn("hidden", s.hidden, 1, 1024));
  SRN_RETURN_IF_ERROR(check.IntIn("layers", s.layers, 1, 8));
  SRN_RETURN_IF_ERROR(check.IntIn("window", s.window, 1, 64));
  if (!ParseValidationSplit(s.validation).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        check.Name("validation"), " must be auto, classes or examples, got '", s.validation, "'"));
  }
  SRN_RETURN_IF_ERROR(check.PositiveFinite("learning_rate", s.learning_rate));
  SRN_RETURN_IF_ERROR(check.Fraction("dropout", s.dropout, /*open_top=*/true));
  SRN_RETURN_IF_ERROR(check.IntIn("batch_pairs", s.batch_pairs, 1, 100000));
  SRN_RETURN_IF_ERROR(check.IntIn("pairs_per_epoch", s.pairs_per_epoch, 0, 10000000));
  SRN_RETURN_IF_ERROR(check.IntIn("max_epochs", s.max_epochs, 1, 1000));
  SRN_RETURN_IF_ERROR(check.AtLeast("patience", s.patience, 1));
  if (!(s.lr_decay > 0 && s.lr_decay <= 1)) {
    return check.Bad("lr_decay", "must be in (0, 1]", s.lr_decay);
  }
  SRN_RETURN_IF_ERROR(check.Fraction("hard_negatives", s.hard_negatives, /*open_top=*/false));
  if (!(s.weight_average >= 0 && s.weight_average < 1)) {
    return check.Bad("weight_average", "must be 0 (off) or in (0, 1)", s.weight_average);
  }
  SRN_RETURN_IF_ERROR(check.PositiveFinite("clip", s.clip));
  SRN_RETURN_IF_ERROR(check.PositiveFinite("init_scale", s.init_scale));
  SRN_RETURN_IF_ERROR(check.Fraction("forgery_fraction", s.forgery_fraction, /*open_top=*/false));
  SRN_RETURN_IF_ERROR(check.AtLeast("hard_negative_pool", s.hard_negative_pool, 1));
  SRN_RETURN_IF_ERROR(check.AtLeast("augment_copies", s.augment_copies, 0));
  SRN_RETURN_IF_ERROR(check.NonNegativeFinite("augment_noise", s.augment_noise));
  SRN_RETURN_IF_ERROR(check.NonNegativeFinite("augment_strength", s.augment_strength));
  return s;
}

absl::StatusOr<TrainConfig> MakeTrainConfig(const TrainSettings& in) {
  SRN_ASSIGN_OR_RETURN(const TrainSettings s, CompleteTrainSettings(in, ZeroMeans::kZero));
  TrainConfig config;
  SRN_ASSIGN_OR_RETURN(config.arch, ParseFamily(s.family));
  if (!config.arch.is_logistic()) {
    config.arch.hidden = s.hidden;
    config.arch.layers = s.layers;
  }
  config.window = s.window;
  config.center_series = s.center_series;
  TrainOptions& o = config.options;
  o.learning_rate = s.learning_rate;
  o.dropout = s.dropout;
  o.batch_pairs = s.batch_pairs;
  o.pairs_per_epoch = s.pairs_per_epoch;
  o.max_epochs = s.max_epochs;
  o.patience = s.patience;
  o.lr_decay = s.lr_decay;
  o.hard_negative_fraction = s.hard_negatives;
  o.weight_average = s.weight_average;
  o.seed = s.seed;
  o.clip = s.clip;
  o.init_scale = s.init_scale;
  o.forgery_fraction = s.forgery_fraction;
  o.hard_negative_pool = s.hard_negative_pool;
  AugmentOptions& a = config.augment;
  a.copies = s.augment_copies;
  a.noise = s.augment_noise;
  a.seed = s.seed;
  if (const double k = s.augment_strength; k != 1.0) {
    a.max_rotation *= k;
    a.max_scale *= k;
    a.max_shear *= k;
    a.time_warp = std::min(0.9, a.time_warp * k);
    a.max_length_change = std::min(0.9, a.max_length_change * k);
  }
  return config;
}

}  // namespace srn
