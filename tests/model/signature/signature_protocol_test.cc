#include "model/signature/signature_protocol.h"

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/svc2004.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

// `signers` classes, each with `genuine` genuine and `forged` forged one-frame series whose value
// encodes (signer, index), so scorers can be written by hand.
Dataset MakeData(int signers, int genuine, int forged) {
  Dataset d;
  d.name = "synthetic";
  for (int s = 0; s < signers; ++s) {
    d.label_names.push_back("S" + std::to_string(s));
    for (int k = 0; k < genuine + forged; ++k) {
      Example e;
      e.series = Series(1, 1);
      e.series.mutable_frames()(0, 0) = static_cast<float>(100 * s + k);
      e.label = s;
      e.forgery = k >= genuine;
      e.group = k;
      d.examples.push_back(e);
    }
  }
  return d;
}

TEST(SignatureCvFoldsTest, PartitionsSignersEvenly) {
  absl::StatusOr<std::vector<std::vector<int>>> folds = SignatureCvFolds(40, 4, 7);
  ASSERT_TRUE(folds.ok()) << folds.status();
  ASSERT_EQ(folds->size(), 4u);
  std::multiset<int> seen;
  for (const auto& f : *folds) {
    EXPECT_EQ(f.size(), 10u);
    seen.insert(f.begin(), f.end());
  }
  EXPECT_EQ(seen.size(), 40u);
  for (int s = 0; s < 40; ++s) EXPECT_EQ(seen.count(s), 1u) << s;
  // Deterministic for a seed, and the seed matters.
  EXPECT_EQ(*folds, *SignatureCvFolds(40, 4, 7));
  EXPECT_NE(*folds, *SignatureCvFolds(40, 4, 8));
  // Uneven sizes differ by at most one.
  absl::StatusOr<std::vector<std::vector<int>>> uneven = SignatureCvFolds(10, 3, 1);
  ASSERT_TRUE(uneven.ok());
  EXPECT_EQ((*uneven)[0].size(), 4u);
  EXPECT_EQ((*uneven)[2].size(), 3u);
}

TEST(SignatureCvFoldsTest, RejectsBadFoldCounts) {
  EXPECT_EQ(SignatureCvFolds(40, 1, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureCvFolds(3, 4, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SignatureCvSplitTest, SignerDisjoint) {
  const Dataset data = MakeData(40, 3, 2);
  const std::vector<std::vector<int>> folds = *SignatureCvFolds(40, 4, 1);
  std::set<int> tested;
  for (int fold = 0; fold < 4; ++fold) {
    absl::StatusOr<Split> split = MakeSignatureCvSplit(data, 4, fold, 1);
    ASSERT_TRUE(split.ok()) << split.status();
    std::set<int> test, train, validation;
    for (const Example& e : split->test.examples) test.insert(e.label);
    for (const Example& e : split->train.examples) train.insert(e.label);
    for (const Example& e : split->validation.examples) validation.insert(e.label);
    EXPECT_EQ(test, std::set<int>(folds[fold].begin(), folds[fold].end()));
    EXPECT_EQ(validation.size(), 3u);
    EXPECT_EQ(train.size(), 27u);
    for (int s : test) {
      EXPECT_FALSE(train.count(s) || validation.count(s)) << "signer " << s << " leaks";
    }
    for (int s : validation) EXPECT_FALSE(train.count(s));
    // Every example of a test signer, forgeries included, is in the test set.
    EXPECT_EQ(split->test.examples.size(), 10u * 5u);
    tested.insert(test.begin(), test.end());
  }
  EXPECT_EQ(tested.size(), 40u);
  EXPECT_EQ(MakeSignatureCvSplit(data, 4, 4, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignatureSignersSplitTest, ValidatesOnEligibleSignersChosenByTheSeed) {
  // Signers 0-39: 20 genuine and skilled forgeries; 40-51: 5 genuine (too few to validate on);
  // 52-59: no forgeries. Eligible: 40, so 4 validate.
  Dataset data = MakeData(40, 20, 3);
  const Dataset few = MakeData(12, 5, 4), unforged = MakeData(8, 20, 0);
  for (const Dataset* part : {&few, &unforged}) {
    const int offset = data.num_labels();
    for (const std::string& name : part->label_names) data.label_names.push_back(name);
    for (Example e : part->examples) {
      e.label += offset;
      data.examples.push_back(e);
    }
  }
  absl::StatusOr<Split> split = MakeSignatureSignersSplit(data, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  std::set<int> train, validation;
  for (const Example& e : split->train.examples) train.insert(e.label);
  for (const Example& e : split->validation.examples) validation.insert(e.label);
  EXPECT_EQ(validation.size(), 4u);
  EXPECT_EQ(train.size(), 60u - 4u);
  for (int s : validation) {
    EXPECT_LT(s, 40) << "signer " << s << " cannot be validated on";
    EXPECT_FALSE(train.count(s)) << "signer " << s << " leaks";
  }
  EXPECT_TRUE(split->test.examples.empty());
  EXPECT_EQ(split->train.examples.size() + split->validation.examples.size(),
            data.examples.size());
  EXPECT_EQ(split->validation.examples.size(), 4u * 23u);  // forgeries included
  EXPECT_THAT(split->description, ::testing::HasSubstr("validation signers S"));
  // The seed chooses; the same seed chooses the same.
  const absl::StatusOr<Split> same_seed = MakeSignatureSignersSplit(data, 1);
  const absl::StatusOr<Split> other_seed = MakeSignatureSignersSplit(data, 2);
  ASSERT_TRUE(same_seed.ok() && other_seed.ok());
  std::set<int> again, other;
  for (const Example& e : same_seed->validation.examples) again.insert(e.label);
  for (const Example& e : other_seed->validation.examples) other.insert(e.label);
  EXPECT_EQ(again, validation);
  EXPECT_NE(other, validation);
}

TEST(SignatureSignersSplitTest, NeedsTwoEligibleSigners) {
  EXPECT_EQ(MakeSignatureSignersSplit(MakeData(10, 5, 2), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeSignatureSignersSplit(MakeData(10, 20, 0), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Two eligible signers validate; at least one other must train... here 3 signers leave one.
  EXPECT_EQ(MakeSignatureSignersSplit(MakeData(3, 6, 1), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Split> four = MakeSignatureSignersSplit(MakeData(4, 6, 1), 1);
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(four->validation.examples.size(), 2u * 7u);
}

TEST(SignatureTrialsTest, CountsPerSigner) {
  // 3 signers x (6 genuine + 4 forgeries); 2 references, 2 draws. Per signer and draw: 4 genuine
  // trials, 4 skilled, 2 x 6 random.
  const Dataset data = MakeData(3, 6, 4);
  const TrialScorer score = [&](int i, int j) {
    return -std::abs(data.examples[i].series.frames()(0, 0) -
                     data.examples[j].series.frames()(0, 0));
  };
  const std::vector<double> sim = SimilarityMatrix(data, score, 2);
  // Forgery-forgery cells are never scored.
  EXPECT_TRUE(std::isnan(sim[6 * 30 + 7]));
  EXPECT_EQ(sim[0 * 30 + 1], -1.0);
  SignatureCvOptions options;
  options.draws = 2;
  absl::StatusOr<SignatureTrials> t = MakeSignatureTrials(data, sim, 2, options);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->score.size(), 2u * 3u * (4 + 4 + 12));
  for (int signer = 0; signer < 3; ++signer) {
    for (int draw = 0; draw < 2; ++draw) {
      int genuine = 0, skilled = 0, random = 0;
      for (size_t k = 0; k < t->score.size(); ++k) {
        if (t->signer[k] != signer || t->draw[k] != draw) continue;
        if (t->label[k] == 1) {
          ++genuine;
        } else {
          ++(t->skilled[k] ? skilled : random);
        }
      }
      EXPECT_EQ(genuine, 4);
      EXPECT_EQ(skilled, 4);
      EXPECT_EQ(random, 12);
    }
  }
  // The references are fixed by (seed, signer, draw), whatever the scorer.
  absl::StatusOr<SignatureTrials> again = MakeSignatureTrials(data, sim, 2, options);
  EXPECT_EQ(t->score, again->score);
  EXPECT_EQ(MakeSignatureTrials(data, sim, 6, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeSignatureTrials(data, std::vector<double>(5), 1, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignatureTrialsTest, OneReferenceDividesByItsPredictedSpread) {
  const Dataset data = MakeData(3, 6, 4);
  const TrialScorer score = [&](int i, int j) {
    return -1.0 - std::abs(data.examples[i].series.frames()(0, 0) -
                           data.examples[j].series.frames()(0, 0));
  };
  const std::vector<double> sim = SimilarityMatrix(data, score, 2);
  // Spread 1 + signer, so every trial of a claimed signer is divided by the same number.
  std::vector<double> spread;
  for (const Example& e : data.examples) spread.push_back(1.0 + e.label);
  SignatureCvOptions options;
  options.draws = 2;
  options.normalization = ScoreNormalization::kRatio;
  const SignatureTrials plain = *MakeSignatureTrials(data, sim, 1, options);
  absl::StatusOr<SignatureTrials> divided = MakeSignatureTrials(data, sim, 1, options, spread);
  ASSERT_TRUE(divided.ok()) << divided.status();
  ASSERT_EQ(divided->score.size(), plain.score.size());
  for (size_t k = 0; k < plain.score.size(); ++k) {
    EXPECT_DOUBLE_EQ(divided->score[k], plain.score[k] / (1.0 + plain.signer[k])) << k;
  }
  // With several references the mutual distances normalize instead, and the shift normalization
  // (SRN scores) never divides.
  EXPECT_EQ(MakeSignatureTrials(data, sim, 2, options, spread)->score,
            MakeSignatureTrials(data, sim, 2, options)->score);
  options.normalization = ScoreNormalization::kShift;
  EXPECT_EQ(MakeSignatureTrials(data, sim, 1, options, spread)->score,
            MakeSignatureTrials(data, sim, 1, options)->score);
  spread.pop_back();
  EXPECT_EQ(MakeSignatureTrials(data, sim, 1, options, spread).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignatureErrorsTest, GlobalThresholdPoolsSignersPerSignerDoesNot) {
  // Signer 0 scores high and signer 1 low: each is perfectly separable on its own (per-signer
  // EER 0), but pooled at one threshold the skilled EER is 0.5 (worked out on OperatingPoints:
  // the FAR - FRR sign change is reached at score 8, far 0.5, frr 0.5).
  SignatureTrials t;
  t.refs = 1;
  auto add = [&](int signer, double score, int label, bool skilled) {
    t.score.push_back(score);
    t.label.push_back(label);
    t.skilled.push_back(skilled);
    t.signer.push_back(signer);
    t.draw.push_back(0);
  };
  for (double s : {10.0, 11.0}) add(0, s, 1, false);
  for (double s : {8.0, 9.0}) add(0, s, 0, true);
  for (double s : {2.0, 3.0}) add(1, s, 1, false);
  for (double s : {0.0, 1.0}) add(1, s, 0, true);
  add(0, -100, 0, false);
  add(1, -100, 0, false);
  absl::StatusOr<VerificationErrors> e = ComputeVerificationErrors(t, 0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_DOUBLE_EQ(e->eer_skilled, 0.5);
  EXPECT_DOUBLE_EQ(e->eer_skilled_per_signer, 0.0);
  EXPECT_DOUBLE_EQ(e->eer_random, 0.0);
  EXPECT_DOUBLE_EQ(e->eer_random_per_signer, 0.0);

  absl::StatusOr<SignatureCvRow> row = SummarizeSignatureCv({t, t}, 50);
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_DOUBLE_EQ(row->eer_skilled.mean, 0.5);
  EXPECT_DOUBLE_EQ(row->eer_skilled.stddev, 0.0);
  EXPECT_EQ(SignatureResultLine("m", *row),
            "RESULT protocol=svc2004-cv dataset=svc2004 model=m refs=1 eer_skilled=0.5000 "
            "eer_random=0.0000 eer_skilled_ps=0.0000 eer_random_ps=0.0000");
  // A weight of 0 fuses to the first system; mismatched trials are refused.
  absl::StatusOr<std::vector<SignatureTrials>> fused = FuseSystems({t, t}, {t, t}, {0.0});
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ((*fused)[0].score, t.score);
  SignatureTrials shorter = t;
  shorter.score.pop_back();
  shorter.label.pop_back();
  EXPECT_EQ(FuseSystems({t, t}, {t, shorter}, {1.0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// One signer's trials with the given genuine and skilled-forgery scores, and one random forgery
// scoring -100.
SignatureTrials Trials(const std::vector<double>& genuine, const std::vector<double>& skilled) {
  SignatureTrials t;
  t.refs = 1;
  t.score.push_back(-100);
  t.label.push_back(0);
  t.skilled.push_back(false);
  for (double g : genuine) {
    t.score.push_back(g);
    t.label.push_back(1);
    t.skilled.push_back(false);
  }
  for (double f : skilled) {
    t.score.push_back(f);
    t.label.push_back(0);
    t.skilled.push_back(true);
  }
  t.signer.assign(t.score.size(), 0);
  t.draw.assign(t.score.size(), 0);
  return t;
}

TEST(FuseSystemsTest, ChoosesWeightsOnOtherFoldsAndReportsTheOverallBest) {
  // System a cannot tell genuine from forged; b can, so any positive weight separates the
  // trials of every fold and weight 0 does not.
  const SignatureTrials a = Trials({1, 1}, {1, 1});
  const SignatureTrials b = Trials({2, 3}, {0, 1});
  std::vector<double> chosen;
  double overall = -1;
  absl::StatusOr<std::vector<SignatureTrials>> fused =
      FuseSystems({a, a, a}, {b, b, b}, {0.0, 0.5, 4.0}, &chosen, &overall);
  ASSERT_TRUE(fused.ok()) << fused.status();
  EXPECT_EQ(chosen, std::vector<double>({0.5, 0.5, 0.5}));  // first of the tied best
  EXPECT_EQ(overall, 0.5);
  EXPECT_EQ((*fused)[1].score, std::vector<double>({-150, 2, 2.5, 1, 1.5}));
}

TEST(EqualErrorThresholdTest, BalancesFarAndFrrOverAllFolds) {
  // At 3.5 one genuine score of three is below (FRR 1/3) and one forgery of three at or above
  // (FAR 1/3); no other candidate balances them.
  absl::StatusOr<double> t = EqualErrorThreshold({Trials({3, 4}, {1, 3.5}), Trials({5}, {2})});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_DOUBLE_EQ(*t, 3.5);
  // Separable scores: the lowest genuine score has FAR = FRR = 0.
  EXPECT_DOUBLE_EQ(*EqualErrorThreshold({Trials({5, 6}, {1, 2})}), 5);
  EXPECT_EQ(EqualErrorThreshold({Trials({5}, {})}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CalibrateFarTest, ThresholdFromOtherFolds) {
  // Two folds with identical scores: the threshold chosen on one meets the target on the other.
  SignatureTrials t;
  t.refs = 1;
  for (int k = 0; k < 10; ++k) {
    t.score.push_back(k);  // skilled impostors 0..9
    t.label.push_back(0);
    t.skilled.push_back(true);
    t.signer.push_back(0);
    t.draw.push_back(0);
  }
  for (double s : {7.5, 20.0}) {  // the threshold is 8: 7.5 is rejected
    t.score.push_back(s);
    t.label.push_back(1);
    t.skilled.push_back(false);
    t.signer.push_back(0);
    t.draw.push_back(0);
  }
  absl::StatusOr<FarCalibration> c = CalibrateFar({t, t}, 0.2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->far_skilled, 0.2);
  EXPECT_DOUBLE_EQ(c->frr, 0.5);
  EXPECT_DOUBLE_EQ(c->far_random, 0.0);  // there are none
  EXPECT_DOUBLE_EQ(c->threshold, 8);
}

// Real data: DTW verification of 4 SVC2004 signers, with the verifier's default features and
// per-signature normalization, and with all features standardized on 4 other signers.
TEST(SignatureProtocolRealDataTest, DtwOnFourSigners) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  absl::StatusOr<Dataset> data = LoadSvc2004Users(dir, {1, 2, 3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(data.ok()) << data.status();
  Split split;
  split.train = data->Filter([](const Example& e) { return e.label >= 4; });
  split.test = data->Filter([](const Example& e) { return e.label < 4; });
  SignatureDtwOptions standardized;
  standardized.features.clear();
  standardized.per_series = false;
  standardized.dtw = DtwOptions::Fraction(0.1);
  for (const SignatureDtwOptions& dtw : {SignatureDtwOptions{}, standardized}) {
    absl::StatusOr<TrialScorer> scorer = DtwFoldScorer(dtw)(0, split);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    const std::vector<double> sim = SimilarityMatrix(split.test, *scorer, 0);
    SignatureCvOptions options;
    options.draws = 1;
    options.normalization = ScoreNormalization::kRatio;
    absl::StatusOr<SignatureTrials> t = MakeSignatureTrials(split.test, sim, 5, options);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->score.size(), 4u * (15 + 20 + 60));
    absl::StatusOr<VerificationErrors> e = ComputeVerificationErrors(*t, 0);
    ASSERT_TRUE(e.ok()) << e.status();
    // Other signers' signatures are easy for DTW, skilled forgeries much less so.
    EXPECT_LT(e->eer_random, 0.1);
    EXPECT_LT(e->eer_skilled, 0.4);
  }
  // A feature the data does not have is an error, not a crash.
  SignatureDtwOptions bad;
  bad.features = {0, 12};
  EXPECT_EQ(DtwFoldScorer(bad)(0, split).status().code(), absl::StatusCode::kInvalidArgument);
}

// Real data, 8 signers in 4 folds: the spread models fitted on the DTW matrices' within-signer
// distances are the ones fitted on those signers' signatures directly, and fold f's never sees
// fold f's signers.
TEST(SignatureProtocolRealDataTest, FoldSpreadModelsFitTheOtherFoldsSigners) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  absl::StatusOr<Dataset> data = LoadSvc2004Users(dir, {1, 2, 3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(data.ok()) << data.status();
  SignatureCvOptions options;
  options.folds = 4;
  absl::StatusOr<std::vector<FoldMatrix>> folds =
      ScoreSignatureFolds(*data, DtwFoldScorer(SignatureDtwOptions{}), options);
  ASSERT_TRUE(folds.ok()) << folds.status();
  DtwSpreadModel all;
  absl::StatusOr<std::vector<DtwSpreadModel>> models = PredictFoldSpreads(&*folds, &all);
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 4u);
  const auto expect_same = [](const DtwSpreadModel& got, const DtwSpreadModel& want) {
    for (int d = 0; d <= kSpreadDescriptors; ++d) {
      EXPECT_NEAR(got.coefficients[d], want.coefficients[d], 1e-6);
    }
    EXPECT_NEAR(got.log_min, want.log_min, 1e-9);
    EXPECT_NEAR(got.log_max, want.log_max, 1e-9);
  };
  for (int f = 0; f < 4; ++f) {
    std::set<int> own;
    for (const Example& e : (*folds)[f].test.examples) own.insert(e.label);
    const Dataset others = data->Filter([&](const Example& e) { return !own.count(e.label); });
    absl::StatusOr<std::vector<SpreadSample>> samples =
        DtwSpreadSamples(others, SignatureDtwOptions{}, 0);
    ASSERT_TRUE(samples.ok()) << samples.status();
    expect_same((*models)[f], *FitDtwSpreadModel(*samples));
    const FoldMatrix& m = (*folds)[f];
    ASSERT_EQ(m.single_reference_spread.size(), m.test.examples.size());
    for (double spread : m.single_reference_spread) {
      EXPECT_GE(spread, std::exp((*models)[f].log_min) * (1 - 1e-12));
      EXPECT_LE(spread, std::exp((*models)[f].log_max) * (1 + 1e-12));
    }
  }
  expect_same(all, *FitDtwSpreadModel(*DtwSpreadSamples(*data, SignatureDtwOptions{}, 0)));
}

}  // namespace
}  // namespace srn
