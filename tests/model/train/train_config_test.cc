#include "model/train/train_config.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

// Expects `settings` to be refused with a message containing `text`.
void ExpectRefused(const TrainSettings& settings, ZeroMeans zero, const std::string& text,
                   const TrainFieldNamer& name = nullptr) {
  absl::StatusOr<TrainSettings> completed = CompleteTrainSettings(settings, zero, name);
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_THAT(std::string(completed.status().message()), HasSubstr(text));
}

TEST(TrainConfigTest, ParsesValidationSplits) {
  EXPECT_EQ(*ParseValidationSplit("auto"), ValidationSplit::kAuto);
  EXPECT_EQ(*ParseValidationSplit("classes"), ValidationSplit::kClasses);
  EXPECT_EQ(*ParseValidationSplit("examples"), ValidationSplit::kExamples);
  EXPECT_EQ(ParseValidationSplit("bogus").status().code(), absl::StatusCode::kInvalidArgument);
}

// The settings' defaults are the trainer's, the augmentation's and the architecture's own: a run
// with default settings is a run with default options.
TEST(TrainConfigTest, DefaultSettingsMakeTheDefaultConfig) {
  ASSERT_TRUE(CompleteTrainSettings(TrainSettings(), ZeroMeans::kZero).ok());
  absl::StatusOr<TrainConfig> made = MakeTrainConfig(TrainSettings());
  ASSERT_TRUE(made.ok()) << made.status();
  const TrainConfig defaults;
  EXPECT_EQ(made->arch, Architecture());
  EXPECT_EQ(made->arch.hidden, Architecture().hidden);
  EXPECT_EQ(made->arch.layers, Architecture().layers);
  EXPECT_EQ(made->window, defaults.window);
  EXPECT_EQ(made->center_series, defaults.center_series);
  const TrainOptions& o = made->options;
  const TrainOptions& d = defaults.options;
  EXPECT_EQ(o.learning_rate, d.learning_rate);
  EXPECT_EQ(o.dropout, d.dropout);
  EXPECT_EQ(o.batch_pairs, d.batch_pairs);
  EXPECT_EQ(o.pairs_per_epoch, d.pairs_per_epoch);
  EXPECT_EQ(o.max_epochs, d.max_epochs);
  EXPECT_EQ(o.patience, d.patience);
  EXPECT_EQ(o.lr_decay, d.lr_decay);
  EXPECT_EQ(o.hard_negative_fraction, d.hard_negative_fraction);
  EXPECT_EQ(o.weight_average, d.weight_average);
  EXPECT_EQ(o.seed, d.seed);
  EXPECT_EQ(o.clip, d.clip);
  EXPECT_EQ(o.init_scale, d.init_scale);
  EXPECT_EQ(o.forgery_fraction, d.forgery_fraction);
  EXPECT_EQ(o.hard_negative_pool, d.hard_negative_pool);
  EXPECT_EQ(o.threads, d.threads);  // not a setting: the caller's
  const AugmentOptions& a = made->augment;
  const AugmentOptions& e = defaults.augment;
  EXPECT_EQ(a.copies, e.copies);
  EXPECT_EQ(a.noise, e.noise);
  EXPECT_EQ(a.max_rotation, e.max_rotation);
  EXPECT_EQ(a.max_scale, e.max_scale);
  EXPECT_EQ(a.max_shear, e.max_shear);
  EXPECT_EQ(a.time_warp, e.time_warp);
  EXPECT_EQ(a.max_length_change, e.max_length_change);
  EXPECT_EQ(a.seed, e.seed);
}

TEST(TrainConfigTest, ZeroAsksForTheDefaultOnlyWhenSaidSo) {
  TrainSettings zeros;
  zeros.family = "";
  zeros.validation = "";
  zeros.hidden = 0;
  zeros.layers = 0;
  zeros.window = 0;
  zeros.learning_rate = 0;
  zeros.batch_pairs = 0;
  zeros.max_epochs = 0;
  zeros.patience = 0;
  zeros.lr_decay = 0;
  zeros.seed = 0;
  absl::StatusOr<TrainSettings> filled = CompleteTrainSettings(zeros, ZeroMeans::kDefault);
  ASSERT_TRUE(filled.ok()) << filled.status();
  const TrainSettings d;
  EXPECT_EQ(filled->family, d.family);
  EXPECT_EQ(filled->validation, d.validation);
  EXPECT_EQ(filled->hidden, d.hidden);
  EXPECT_EQ(filled->layers, d.layers);
  EXPECT_EQ(filled->window, d.window);
  EXPECT_EQ(filled->learning_rate, d.learning_rate);
  EXPECT_EQ(filled->batch_pairs, d.batch_pairs);
  EXPECT_EQ(filled->max_epochs, kJobDefaultMaxEpochs);  // a job's default, not srn-train's
  EXPECT_EQ(filled->patience, d.patience);
  EXPECT_EQ(filled->lr_decay, d.lr_decay);
  EXPECT_EQ(filled->seed, d.seed);
  // Given values are kept.
  TrainSettings given = zeros;
  given.hidden = 8;
  given.seed = 7;
  given.max_epochs = 3;
  filled = CompleteTrainSettings(given, ZeroMeans::kDefault);
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(filled->hidden, 8);
  EXPECT_EQ(filled->seed, 7u);
  EXPECT_EQ(filled->max_epochs, 3);

  // Taken as themselves, zeros are values: seed 0 is a seed, hidden 0 is out of range.
  TrainSettings seed0;
  seed0.seed = 0;
  filled = CompleteTrainSettings(seed0, ZeroMeans::kZero);
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(filled->seed, 0u);
  TrainSettings hidden0;
  hidden0.hidden = 0;
  ExpectRefused(hidden0, ZeroMeans::kZero, "hidden must be in [1, 1024], got 0");
}

TEST(TrainConfigTest, EveryFieldIsCheckedAgainstItsRange) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    std::function<void(TrainSettings*)> set;
    std::string message;
  };
  const Case cases[] = {
      {[](TrainSettings* s) { s->family = "transformer"; }, "family: unknown model family"},
      {[](TrainSettings* s) { s->hidden = 1025; }, "hidden must be in [1, 1024], got 1025"},
      {[](TrainSettings* s) { s->layers = 9; }, "layers must be in [1, 8], got 9"},
      {[](TrainSettings* s) { s->window = 65; }, "window must be in [1, 64], got 65"},
      {[](TrainSettings* s) { s->validation = "bogus"; },
       "validation must be auto, classes or examples, got 'bogus'"},
      {[](TrainSettings* s) { s->learning_rate = -1; },
       "learning_rate must be positive and finite"},
      {[=](TrainSettings* s) { s->learning_rate = inf; },
       "learning_rate must be positive and finite"},
      {[](TrainSettings* s) { s->dropout = 1; }, "dropout must be in [0, 1), got 1"},
      {[=](TrainSettings* s) { s->dropout = nan; }, "dropout must be in [0, 1)"},
      {[](TrainSettings* s) { s->batch_pairs = -1; }, "batch_pairs must be in [1, 100000], got -1"},
      {[](TrainSettings* s) { s->pairs_per_epoch = -1; },
       "pairs_per_epoch must be in [0, 10000000]"},
      {[](TrainSettings* s) { s->max_epochs = 1001; }, "max_epochs must be in [1, 1000], got 1001"},
      {[](TrainSettings* s) { s->patience = -1; }, "patience must be at least 1, got -1"},
      {[](TrainSettings* s) { s->lr_decay = 1.5; }, "lr_decay must be in (0, 1], got 1.5"},
      {[](TrainSettings* s) { s->hard_negatives = 1.5; },
       "hard_negatives must be in [0, 1], got 1.5"},
      {[](TrainSettings* s) { s->weight_average = 1; },
       "weight_average must be 0 (off) or in (0, 1), got 1"},
      {[](TrainSettings* s) { s->clip = 0; }, "clip must be positive and finite, got 0"},
      {[](TrainSettings* s) { s->init_scale = -0.1; }, "init_scale must be positive and finite"},
      {[](TrainSettings* s) { s->forgery_fraction = 2; },
       "forgery_fraction must be in [0, 1], got 2"},
      {[](TrainSettings* s) { s->hard_negative_pool = 0; },
       "hard_negative_pool must be at least 1"},
      {[](TrainSettings* s) { s->augment_copies = -1; }, "augment_copies must be at least 0"},
      {[](TrainSettings* s) { s->augment_noise = -1; },
       "augment_noise must be at least 0 and finite"},
      {[=](TrainSettings* s) { s->augment_strength = inf; },
       "augment_strength must be at least 0 and finite"},
  };
  // Values that are out of range whichever way a zero is read.
  for (const Case& c : cases) {
    TrainSettings s;
    c.set(&s);
    ExpectRefused(s, ZeroMeans::kZero, c.message);
    ExpectRefused(s, ZeroMeans::kDefault, c.message);
    EXPECT_EQ(MakeTrainConfig(s).status().code(), absl::StatusCode::kInvalidArgument) << c.message;
  }
  // Bounds are inclusive where the message says so.
  TrainSettings edge;
  edge.hidden = 1024;
  edge.layers = 8;
  edge.window = 64;
  edge.batch_pairs = 100000;
  edge.pairs_per_epoch = 10000000;
  edge.max_epochs = 1000;
  edge.lr_decay = 1;
  edge.hard_negatives = 1;
  edge.forgery_fraction = 0;
  EXPECT_TRUE(CompleteTrainSettings(edge, ZeroMeans::kZero).ok());
}

TEST(TrainConfigTest, ErrorsNameTheFieldAsTheFrontEndSpellsIt) {
  TrainSettings s;
  s.learning_rate = -2;
  ExpectRefused(s, ZeroMeans::kZero, "--lr must be positive and finite, got -2",
                [](absl::string_view field) {
                  return field == "learning_rate" ? std::string("--lr") : absl::StrCat("--", field);
                });
}

TEST(TrainConfigTest, MakesTheConfigTheTrainerRuns) {
  TrainSettings s;
  s.family = "gru-l";
  s.hidden = 16;
  s.layers = 2;
  s.window = 3;
  s.center_series = true;
  s.learning_rate = 0.01;
  s.hard_negatives = 0.25;
  s.seed = 9;
  s.augment_copies = 2;
  s.augment_strength = 4;
  absl::StatusOr<TrainConfig> c = MakeTrainConfig(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch.FamilyName(), "gru-l");
  EXPECT_EQ(c->arch.hidden, 16);
  EXPECT_EQ(c->arch.layers, 2);
  EXPECT_EQ(c->window, 3);
  EXPECT_TRUE(c->center_series);
  EXPECT_EQ(c->options.learning_rate, 0.01);
  EXPECT_EQ(c->options.hard_negative_fraction, 0.25);
  EXPECT_EQ(c->options.seed, 9u);
  EXPECT_EQ(c->augment.seed, 9u);
  EXPECT_EQ(c->augment.copies, 2);
  const AugmentOptions a;
  EXPECT_DOUBLE_EQ(c->augment.max_rotation, 4 * a.max_rotation);
  EXPECT_DOUBLE_EQ(c->augment.max_scale, 4 * a.max_scale);
  EXPECT_DOUBLE_EQ(c->augment.max_shear, 4 * a.max_shear);
  EXPECT_DOUBLE_EQ(c->augment.time_warp, 0.9);          // capped below 1
  EXPECT_DOUBLE_EQ(c->augment.max_length_change, 0.4);  // 4 x 0.1
  // The logistic model has no hidden layers, whatever hidden says.
  s.family = "logistic";
  c = MakeTrainConfig(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->arch.is_logistic());
}

}  // namespace
}  // namespace srn
