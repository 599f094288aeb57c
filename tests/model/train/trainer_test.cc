#include "model/train/trainer.h"

#include <atomic>
#include <cmath>

#include "gtest/gtest.h"
#include "model/data/dataset_loader.h"
#include "model/eval/protocols.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::srn::testing::MakeSineDataset;

TrainConfig SmallConfig(const std::string& family) {
  TrainConfig config;
  config.arch = *ParseFamily(family);
  if (!config.arch.is_logistic()) config.arch.hidden = 16;
  config.options.pairs_per_epoch = 2500;
  config.options.max_epochs = 5;
  config.options.learning_rate = 1e-2;
  config.options.validation_pairs = 500;
  return config;
}

TEST(TrainerTest, LearnsToSeparateClasses) {
  const Dataset train = MakeSineDataset(6, 12, 2, 15, 25, 1);
  const Dataset val = MakeSineDataset(6, 6, 2, 15, 25, 2);
  for (const std::string family : {"srn-a", "gru-l", "lstm-a"}) {
    absl::StatusOr<TrainedModel> trained = TrainModel(train, val, SmallConfig(family));
    ASSERT_TRUE(trained.ok()) << trained.status();
    EXPECT_GT(trained->result.best_val_auc, 0.75) << family;  // chance is 0.5
    EXPECT_EQ(trained->model->metadata().metrics.at("val_auc"), trained->result.best_val_auc);
    // The returned parameters are those of the best epoch.
    const EpochReport& best = trained->result.history[trained->result.best_epoch - 1];
    EXPECT_TRUE(best.improved);
    EXPECT_EQ(best.val_auc, trained->result.best_val_auc);
  }
}

TEST(TrainerTest, SameSeedSameModelOnAnyThreadCount) {
  const Dataset train = MakeSineDataset(4, 8, 2, 10, 20, 3);
  const Dataset val = MakeSineDataset(4, 4, 2, 10, 20, 4);
  TrainConfig config = SmallConfig("srn-a");
  config.options.max_epochs = 2;
  config.options.dropout = 0.2;
  config.options.hard_negative_fraction = 0.5;
  config.options.threads = 1;
  absl::StatusOr<TrainedModel> a = TrainModel(train, val, config);
  config.options.threads = 2;
  absl::StatusOr<TrainedModel> b = TrainModel(train, val, config);
  config.options.seed = 2;
  absl::StatusOr<TrainedModel> c = TrainModel(train, val, config);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->model->params(), b->model->params());
  EXPECT_NE(a->model->params(), c->model->params());
}

// A family at 8 hidden units over the 2 features of MakeSineDataset, for driving Trainer::Step.
Architecture TinyArchitecture(const std::string& family) {
  Architecture arch = *ParseFamily(family);
  arch.input_dims = 2;
  arch.hidden = 8;
  return arch;
}

TEST(TrainerTest, StepReducesLossOnAFixedBatch) {
  const Dataset data = MakeSineDataset(3, 4, 2, 10, 10, 5);
  const Architecture arch = TinyArchitecture("gru-a");
  TrainOptions options;
  options.learning_rate = 1e-2;
  Trainer trainer(arch, options);
  const std::vector<const Series*> series = data.SeriesPointers();
  const std::vector<Pair> pairs = {{0, 1, 1}, {0, 4, 0},  {5, 6, 1},
                                   {2, 9, 0}, {8, 11, 1}, {3, 7, 0}};
  const double first = trainer.Step(series, pairs);
  double last = first;
  for (int i = 0; i < 60; ++i) last = trainer.Step(series, pairs);
  EXPECT_LT(last, 0.6 * first);
}

TEST(TrainerTest, WeightAverageIsTheBiasCorrectedMeanOfTheSteps) {
  const Dataset data = MakeSineDataset(3, 4, 2, 10, 10, 5);
  const Architecture arch = TinyArchitecture("srn-a");
  TrainOptions options;
  options.learning_rate = 1e-2;
  options.weight_average = 0.7;
  Trainer trainer(arch, options);
  EXPECT_EQ(trainer.EvaluatedParams(), trainer.params());  // nothing averaged yet
  const std::vector<const Series*> series = data.SeriesPointers();
  const std::vector<Pair> pairs = {{0, 1, 1}, {0, 4, 0}, {5, 6, 1}, {2, 9, 0}};
  std::vector<Vector> after_step;
  for (int i = 0; i < 6; ++i) {
    trainer.Step(series, pairs);
    after_step.push_back(trainer.params());
  }
  // sum_i d^(k-i) (1 - d) p_i / (1 - d^k): every step's parameters, none of the initial ones.
  const double d = options.weight_average;
  const int k = static_cast<int>(after_step.size());
  Eigen::VectorXd expected = Eigen::VectorXd::Zero(after_step[0].size());
  for (int i = 1; i <= k; ++i) {
    expected += std::pow(d, k - i) * (1 - d) * after_step[i - 1].cast<double>();
  }
  expected /= 1 - std::pow(d, k);
  const Vector averaged = trainer.EvaluatedParams();
  EXPECT_LT((averaged.cast<double>() - expected).norm(), 1e-5 * expected.norm());
  EXPECT_GT((averaged - trainer.params()).norm(), 1e-3 * trainer.params().norm());

  // Without averaging, and after set_params, validation sees the raw parameters.
  trainer.set_params(after_step[2]);
  EXPECT_EQ(trainer.EvaluatedParams(), after_step[2]);
  options.weight_average = 0;
  Trainer plain(arch, options);
  plain.Step(series, pairs);
  EXPECT_EQ(plain.EvaluatedParams(), plain.params());
}

TEST(TrainerTest, FitReturnsTheAveragedParameters) {
  const Dataset train = MakeSineDataset(4, 8, 2, 10, 20, 3);
  const Dataset val = MakeSineDataset(4, 4, 2, 10, 20, 4);
  TrainConfig config = SmallConfig("srn-a");
  config.arch.input_dims = 2;
  config.options.max_epochs = 1;  // the only epoch is the best one
  config.options.weight_average = 0.9;
  Trainer trainer(config.arch, config.options);
  absl::StatusOr<TrainResult> result = trainer.Fit(train, val);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->params, trainer.EvaluatedParams());
  EXPECT_NE(result->params, trainer.params());
  EXPECT_GT(result->best_val_auc, 0.6);
}

TEST(TrainerTest, DivergenceIsAClearFailure) {
  const Dataset train = MakeSineDataset(4, 8, 2, 10, 20, 3);
  TrainConfig config = SmallConfig("srn-l");
  config.options.learning_rate = 1e8;
  config.options.clip = 1e30;
  absl::StatusOr<TrainedModel> trained = TrainModel(train, train, config);
  ASSERT_FALSE(trained.ok());
  EXPECT_EQ(trained.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(trained.status().message().find("diverged"), std::string::npos) << trained.status();
}

TEST(TrainerTest, CancelStopsEarly) {
  const Dataset train = MakeSineDataset(4, 8, 2, 10, 20, 3);
  std::atomic<bool> cancel{false};
  TrainCallbacks callbacks;
  callbacks.cancel = &cancel;
  int steps = 0;
  callbacks.on_step = [&](int, int, int) {
    if (++steps == 3) cancel.store(true);
  };
  absl::StatusOr<TrainedModel> trained = TrainModel(train, train, SmallConfig("srn-a"), callbacks);
  ASSERT_TRUE(trained.ok());
  EXPECT_TRUE(trained->result.cancelled);
  EXPECT_EQ(steps, 3);
}

TEST(TrainerTest, RejectsUnusableData) {
  const Dataset one_each = MakeSineDataset(3, 1, 2, 10, 10, 1);
  const Dataset fine = MakeSineDataset(3, 4, 2, 10, 10, 1);
  EXPECT_EQ(TrainModel(one_each, fine, SmallConfig("srn-a")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(TrainModel(Dataset{}, fine, SmallConfig("srn-a")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The CI's real-data check: a few seconds of training on the paper's Arabic (digit)
// out-of-domain split must beat chance clearly on the unseen digits.
TEST(TrainerRealDataTest, ShortArabicDigitRunBeatsChance) {
  SRN_REQUIRE_DATA(dir, "spoken_arabic_digit/Train_Arabic_Digit.txt");
  absl::StatusOr<Dataset> data = LoadNamedDataset("arabic-digit", DataDir());
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<Split> split = MakeSplit(*data, "arabic-digit", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  TrainConfig config;
  config.arch = *ParseFamily("srn-a");
  config.arch.hidden = 32;
  config.options.pairs_per_epoch = 10000;
  config.options.max_epochs = 2;
  absl::StatusOr<TrainedModel> trained = TrainModel(split->train, split->validation, config);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EvalOptions eval;
  eval.max_pairs = 200000;
  eval.oneshot_draws = 3;
  absl::StatusOr<EvalResult> result = EvaluateModel(*trained->model, split->test, eval);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->auc, 0.65);
  EXPECT_GT(result->oneshot.accuracy, 0.45);  // chance is 1/3
}

}  // namespace
}  // namespace srn
