#include "model/train/head_fit.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "model/metrics/metrics.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr int kHidden = 8;

// Sine signers with skilled forgeries (a slightly shifted frequency); signers 0-5 train the
// head, 6-9 validate it.
struct SineSplit {
  Dataset train;
  Dataset validation;
};
SineSplit MakeSplit() {
  const Dataset all = testing::MakeSineDataset(10, 6, 2, 15, 25, 5, /*forgeries=*/4);
  return {all.Filter([](const Example& e) { return e.label < 6; }),
          all.Filter([](const Example& e) { return e.label >= 6; })};
}

HeadFitOptions SmallOptions() {
  HeadFitOptions o;
  o.pairs = 1000;
  o.validation_pairs = 1000;
  o.threads = 2;
  return o;
}

// Every parameter but v and c, bit for bit.
bool SameEncoder(const SimilarityModel& a, const SimilarityModel& b) {
  const ParameterLayout& layout = a.layout();
  for (const TensorSpec& t : layout.tensors()) {
    if (t.name == "v" || t.name == "c") continue;
    if (std::memcmp(a.params().data() + t.offset, b.params().data() + t.offset,
                    sizeof(float) * t.size()) != 0) {
      return false;
    }
  }
  return true;
}

// The pooled embedding of a random GRU already tells the signers apart in part; its random head
// does not use that, the fitted one does, on signers it never saw. Impostors of other signers
// (Identify's case) are told apart well; skilled forgeries, a slightly shifted sine, hardly by a
// random encoder, so the default mix (half of the impostors forgeries) scores lower.
TEST(FitSimilarityHeadTest, SeparatesGenuineFromImpostorPairsOfUnseenSigners) {
  const SineSplit data = MakeSplit();
  const std::shared_ptr<const SimilarityModel> model =
      testing::RandomModel("gru-a", 2, kHidden, 11);
  HeadFitOptions o = SmallOptions();
  o.forgery_fraction = 0;
  absl::StatusOr<HeadFit> fit = FitSimilarityHead(*model, data.train, data.validation, o);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_GT(fit->val_auc, 0.8) << "measured 0.88; before " << fit->val_auc_before;
  EXPECT_GT(fit->val_auc, fit->val_auc_before + 0.2);
  EXPECT_EQ(fit->pairs, 1000);
  EXPECT_GE(fit->iterations, 1);
  EXPECT_GT(fit->train_auc, 0.8);
  EXPECT_LT(fit->train_loss, std::log(2.0)) << "better than a constant guess";
  EXPECT_TRUE(SameEncoder(*model, *fit->model)) << "the encoder is frozen";
  EXPECT_EQ(fit->model->architecture().ToString(), model->architecture().ToString());
  const ModelMetadata& meta = fit->model->metadata();
  EXPECT_NE(meta.hyperparameters.at("head").find("logistic regression on 1000"),
            std::string::npos);
  EXPECT_EQ(meta.metrics.at("val_auc"), fit->val_auc);
  EXPECT_EQ(meta.metrics.at("val_auc_before_head_fit"), fit->val_auc_before);

  // The served score (SimilarityModel::Score: v and c over the raw features, mapped back from
  // the standardized ones the fit used) ranks every genuine pair of the validation signers.
  const RowMatrix emb =
      fit->model->EmbedPreprocessed(data.validation.SeriesPointers(), /*threads=*/1);
  std::vector<double> scores;
  std::vector<int> labels;
  const std::vector<Example>& ex = data.validation.examples;
  for (size_t i = 0; i < ex.size(); ++i) {
    for (size_t j = i + 1; j < ex.size(); ++j) {
      if (ex[i].forgery || ex[j].forgery) continue;
      double score = 0;
      fit->model->Score(emb.row(i).data(), emb.row(j).data(), 1, &score);
      scores.push_back(score);
      labels.push_back(ex[i].label == ex[j].label);
    }
  }
  const absl::StatusOr<double> served = Auc(scores, labels);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_GT(*served, 0.8);

  absl::StatusOr<HeadFit> mixed =
      FitSimilarityHead(*model, data.train, data.validation, SmallOptions());
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_GT(mixed->val_auc, 0.7) << "measured 0.74; before " << mixed->val_auc_before;
  EXPECT_GT(mixed->val_auc, mixed->val_auc_before + 0.2);
}

TEST(FitSimilarityHeadTest, IsDeterministicForASeed) {
  const SineSplit data = MakeSplit();
  const std::shared_ptr<const SimilarityModel> model =
      testing::RandomModel("gru-a", 2, kHidden, 11);
  HeadFitOptions o = SmallOptions();
  absl::StatusOr<HeadFit> a = FitSimilarityHead(*model, data.train, data.validation, o);
  o.threads = 1;  // the embeddings do not depend on the threads
  absl::StatusOr<HeadFit> b = FitSimilarityHead(*model, data.train, data.validation, o);
  o.seed = 2;
  absl::StatusOr<HeadFit> c = FitSimilarityHead(*model, data.train, data.validation, o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->model->params(), b->model->params());
  EXPECT_EQ(a->val_auc, b->val_auc);
  EXPECT_NE(a->model->params(), c->model->params()) << "another seed draws other pairs";
}

TEST(FitSimilarityHeadTest, RejectsBadOptionsAndDataWithoutPairs) {
  const SineSplit data = MakeSplit();
  const std::shared_ptr<const SimilarityModel> model =
      testing::RandomModel("gru-a", 2, kHidden, 11);
  HeadFitOptions o = SmallOptions();
  o.l2 = -1;
  EXPECT_EQ(FitSimilarityHead(*model, data.train, data.validation, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = SmallOptions();
  o.pairs = 1;
  EXPECT_EQ(FitSimilarityHead(*model, data.train, data.validation, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // One signer without forgeries: nothing is dissimilar.
  const Dataset alone =
      data.train.Filter([](const Example& e) { return e.label == 0 && !e.forgery; });
  const absl::Status s = FitSimilarityHead(*model, alone, data.validation, SmallOptions()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("training set"), absl::string_view::npos) << s;
  // Series of the wrong width.
  const SineSplit wide{testing::MakeSineDataset(4, 4, 3, 10, 12, 1, 2), data.validation};
  EXPECT_EQ(FitSimilarityHead(*model, wide.train, wide.validation, SmallOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace srn
