#include "server/training_spec.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

void ExpectRefused(const v1::TrainingSpec& spec, const std::string& text) {
  absl::StatusOr<v1::TrainingSpec> completed = CompleteTrainingSpec(spec);
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_THAT(std::string(completed.status().message()), HasSubstr(text));
}

TEST(TrainingSpecTest, FillsTheDocumentedDefaults) {
  absl::StatusOr<v1::TrainingSpec> spec = CompleteTrainingSpec(v1::TrainingSpec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->family(), "srn-a");
  EXPECT_EQ(spec->hidden(), 64);
  EXPECT_EQ(spec->layers(), 1);
  EXPECT_EQ(spec->window(), 1);
  EXPECT_FALSE(spec->center_series());
  EXPECT_EQ(spec->learning_rate(), 1e-3);
  EXPECT_EQ(spec->dropout(), 0);
  EXPECT_EQ(spec->batch_pairs(), 50);
  EXPECT_EQ(spec->pairs_per_epoch(), 0);
  EXPECT_EQ(spec->max_epochs(), 20);
  EXPECT_EQ(spec->patience(), 5);
  EXPECT_EQ(spec->lr_decay(), 0.4);
  EXPECT_EQ(spec->seed(), 1u);
  EXPECT_EQ(spec->validation(), "auto");
  EXPECT_EQ(spec->activation(), v1::ACTIVATION_POLICY_MANUAL);
  EXPECT_EQ(spec->hard_negatives(), 0);
  EXPECT_EQ(spec->weight_average(), 0);

  v1::TrainingSpec given;
  given.set_family("gru-l");
  given.set_hidden(8);
  given.set_max_epochs(3);
  given.set_seed(9);
  given.set_validation("examples");
  given.set_activation(v1::ACTIVATION_POLICY_IF_BETTER);
  given.set_description("nightly");
  spec = CompleteTrainingSpec(given);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->family(), "gru-l");
  EXPECT_EQ(spec->hidden(), 8);
  EXPECT_EQ(spec->max_epochs(), 3);
  EXPECT_EQ(spec->seed(), 9u);
  EXPECT_EQ(spec->validation(), "examples");
  EXPECT_EQ(spec->activation(), v1::ACTIVATION_POLICY_IF_BETTER);
  EXPECT_EQ(spec->description(), "nightly");
}

TEST(TrainingSpecTest, RefusesValuesOutOfRangeNamingTheField) {
  v1::TrainingSpec spec;
  spec.set_learning_rate(-1);
  ExpectRefused(spec, "learning_rate must be positive and finite, got -1");
  spec = v1::TrainingSpec();
  spec.set_weight_average(1);
  ExpectRefused(spec, "weight_average must be 0 (off) or in (0, 1), got 1");
  spec = v1::TrainingSpec();
  spec.set_hard_negatives(1.5);
  ExpectRefused(spec, "hard_negatives must be in [0, 1], got 1.5");
  spec = v1::TrainingSpec();
  spec.set_family("transformer");
  ExpectRefused(spec, "family: unknown model family 'transformer'");
  spec = v1::TrainingSpec();
  spec.set_hidden(2000);
  ExpectRefused(spec, "hidden must be in [1, 1024], got 2000");
  spec = v1::TrainingSpec();
  spec.set_max_epochs(1001);
  ExpectRefused(spec, "max_epochs must be in [1, 1000], got 1001");
  spec = v1::TrainingSpec();
  spec.set_validation("bogus");
  ExpectRefused(spec, "validation must be auto, classes or examples, got 'bogus'");
  spec = v1::TrainingSpec();
  spec.set_activation(static_cast<v1::ActivationPolicy>(99));
  ExpectRefused(spec,
                "activation: 99 is not a known srn.v1.ActivationPolicy value; allowed: "
                "ACTIVATION_POLICY_UNSPECIFIED, ACTIVATION_POLICY_MANUAL, "
                "ACTIVATION_POLICY_IF_BETTER, ACTIVATION_POLICY_ALWAYS");
  spec = v1::TrainingSpec();
  spec.set_description(std::string(1001, 'x'));
  ExpectRefused(spec, "description is longer than 1000 characters");
}

TEST(TrainingSpecTest, MakesTheTrainConfigOfACompletedSpec) {
  v1::TrainingSpec given;
  given.set_family("lstm-s");
  given.set_hidden(12);
  given.set_window(2);
  given.set_hard_negatives(0.5);
  given.set_weight_average(0.9);
  given.set_seed(4);
  absl::StatusOr<v1::TrainingSpec> spec = CompleteTrainingSpec(given);
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<TrainConfig> config = TrainConfigOf(*spec);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->arch.FamilyName(), "lstm-s");
  EXPECT_EQ(config->arch.hidden, 12);
  EXPECT_EQ(config->window, 2);
  EXPECT_EQ(config->options.max_epochs, 20);
  EXPECT_EQ(config->options.hard_negative_fraction, 0.5);
  EXPECT_EQ(config->options.weight_average, 0.9);
  EXPECT_EQ(config->options.seed, 4u);
  // What the spec cannot say keeps the trainer's defaults.
  const TrainOptions defaults;
  EXPECT_EQ(config->options.clip, defaults.clip);
  EXPECT_EQ(config->options.init_scale, defaults.init_scale);
  EXPECT_EQ(config->options.forgery_fraction, defaults.forgery_fraction);
  EXPECT_EQ(config->options.hard_negative_pool, defaults.hard_negative_pool);
  EXPECT_EQ(config->augment.copies, 0);
}

}  // namespace
}  // namespace srn
