#include "model/eval/protocols.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/dataset_loader.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::srn::testing::MakeSineDataset;
using ::testing::HasSubstr;

std::set<int> Labels(const Dataset& d) {
  std::set<int> labels;
  for (const Example& e : d.examples) labels.insert(e.label);
  return labels;
}

TEST(ProtocolsTest, ParsesProtocolNames) {
  for (const char* name : {"within-domain", "out-of-domain", "one-shot", "all", "test"}) {
    absl::StatusOr<Protocol> p = ParseProtocol(name);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(ProtocolName(*p), name);
  }
  EXPECT_EQ(ParseProtocol("ood").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProtocolsTest, Svc2004Task1SplitsLikeTask2) {
  SRN_REQUIRE_DATA(task1, "svc2004/Task1");
  absl::StatusOr<Dataset> d = LoadNamedDataset("svc2004-task1", DataDir());
  ASSERT_TRUE(d.ok()) << d.status();
  // Signers 1-30 train, 31-40 test, as svc2004.
  absl::StatusOr<Split> split = MakeSplit(*d, "svc2004-task1", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(*Labels(split->test).begin(), 30);
  EXPECT_EQ(Labels(split->test).size(), 10u);
}

TEST(ProtocolsTest, OutOfDomainSplitIsClassDisjoint) {
  const Dataset data = MakeSineDataset(30, 5, 1, 5, 5, 1);
  absl::StatusOr<Split> split = MakeSplit(data, "sines", Protocol::kOutOfDomain, 7);
  ASSERT_TRUE(split.ok()) << split.status();
  const std::set<int> train = Labels(split->train), val = Labels(split->validation),
                      test = Labels(split->test);
  // 70% of the classes train (21), the rest test; 10% of 21 training classes validate.
  EXPECT_EQ(test.size(), 9u);
  EXPECT_EQ(val.size(), 2u);
  EXPECT_EQ(train.size(), 19u);
  for (int l : val) EXPECT_EQ(train.count(l), 0u);
  for (int l : test) EXPECT_EQ(train.count(l) + val.count(l), 0u);
  EXPECT_EQ(split->train.examples.size() + split->validation.examples.size() +
                split->test.examples.size(),
            data.examples.size());
}

TEST(ProtocolsTest, TheSeedDrawsADatasetsClassSplitAndTheDescriptionNamesEveryClass) {
  const Dataset data = MakeSineDataset(30, 5, 1, 5, 5, 1);
  absl::StatusOr<Split> a = MakeSplit(data, "my.csv", Protocol::kOutOfDomain, 1);
  absl::StatusOr<Split> again = MakeSplit(data, "my.csv", Protocol::kOneShot, 1);
  absl::StatusOr<Split> b = MakeSplit(data, "my.csv", Protocol::kOutOfDomain, 2);
  ASSERT_TRUE(a.ok() && again.ok() && b.ok());
  EXPECT_EQ(Labels(a->test), Labels(again->test));
  EXPECT_EQ(a->description, again->description);
  EXPECT_NE(Labels(a->test), Labels(b->test));
  // Not the last 30% in label order, which every seed gave before.
  EXPECT_NE(Labels(a->test), (std::set<int>{21, 22, 23, 24, 25, 26, 27, 28, 29}));
  // The validation hold-out does not move the test classes.
  absl::StatusOr<Split> by_examples =
      MakeSplit(data, "my.csv", Protocol::kOutOfDomain, 1, ValidationSplit::kExamples);
  ASSERT_TRUE(by_examples.ok());
  EXPECT_EQ(Labels(by_examples->test), Labels(a->test));

  EXPECT_THAT(a->description, HasSubstr("split drawn by seed 1 (choose one with --test_classes "
                                        "or --split); train classes (19): "));
  EXPECT_THAT(a->description, HasSubstr("; validation classes (2): "));
  EXPECT_THAT(a->description, HasSubstr("; test classes (9): "));
  for (int l = 0; l < 30; ++l) {
    EXPECT_THAT(a->description, HasSubstr(data.label_names[l])) << l;
  }
  EXPECT_THAT(by_examples->description,
              HasSubstr("; validation: 10% of each training class's examples; test classes"));
}

TEST(ProtocolsTest, ChosenTestClassesAndSplitFileClassesAreHonoured) {
  const Dataset data = MakeSineDataset(6, 10, 1, 5, 5, 1);  // "class 0" .. "class 5"
  absl::StatusOr<Split> split = MakeSplit(data, "my.csv", Protocol::kOutOfDomain, 1,
                                          ValidationSplit::kExamples,
                                          *ParseTestClasses("class 4,class 1"));
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(Labels(split->test), (std::set<int>{1, 4}));
  EXPECT_EQ(Labels(split->train), (std::set<int>{0, 2, 3, 5}));
  EXPECT_THAT(split->description,
              HasSubstr("split of --test_classes; train classes (4): class 0, class 2, class 3, "
                        "class 5; validation: 10% of each training class's examples; test "
                        "classes (2): class 1, class 4"));

  absl::StatusOr<ClassChoice> file = ParseSplitFile(
      "class 0,train\nclass 1,test\nclass 2,validation\nclass 3,train\nclass 4,train\n"
      "class 5,test\n",
      "split.txt");
  ASSERT_TRUE(file.ok()) << file.status();
  split = MakeSplit(data, "my.csv", Protocol::kOneShot, 1, ValidationSplit::kAuto, *file);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(Labels(split->test), (std::set<int>{1, 5}));
  EXPECT_EQ(Labels(split->validation), (std::set<int>{2}));
  EXPECT_EQ(Labels(split->train), (std::set<int>{0, 3, 4}));
  EXPECT_EQ(split->description,
            "split of --split=split.txt; train classes (3): class 0, class 3, class 4; "
            "validation classes (1): class 2; test classes (2): class 1, class 5");
}

TEST(ProtocolsTest, AChoiceOfClassesForAnotherProtocolIsRefused) {
  const Dataset data = MakeSineDataset(6, 10, 1, 5, 5, 1);
  for (Protocol p : {Protocol::kWithinDomain, Protocol::kAll, Protocol::kTest}) {
    absl::StatusOr<Split> split =
        MakeSplit(data, "my.csv", p, 1, ValidationSplit::kAuto, *ParseTestClasses("class 1"));
    EXPECT_EQ(split.status().code(), absl::StatusCode::kInvalidArgument) << ProtocolName(p);
    EXPECT_THAT(split.status().message(),
                HasSubstr("--test_classes chooses the classes of --protocol=out-of-domain or "
                          "one-shot"));
  }
  absl::StatusOr<Split> unknown = MakeSplit(data, "my.csv", Protocol::kOutOfDomain, 1,
                                            ValidationSplit::kAuto, *ParseTestClasses("class 9"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("class 'class 9' is not in the dataset"));
}

TEST(ProtocolsTest, TheTestProtocolTestsEveryClass) {
  const Dataset data = MakeSineDataset(3, 4, 1, 5, 5, 1);
  absl::StatusOr<Split> split = MakeSplit(data, "new.csv", Protocol::kTest, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->test.examples.size(), data.examples.size());
  EXPECT_TRUE(split->train.examples.empty());
  EXPECT_TRUE(split->validation.examples.empty());
  EXPECT_EQ(split->description, "every class tests; test classes (3): class 0, class 1, class 2");
}

TEST(ProtocolsTest, ValidationByExamplesKeepsEveryTrainingClass) {
  const Dataset data = MakeSineDataset(30, 10, 1, 5, 5, 1);
  absl::StatusOr<Split> split =
      MakeSplit(data, "sines", Protocol::kOutOfDomain, 7, ValidationSplit::kExamples);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(Labels(split->validation), Labels(split->train));
  EXPECT_EQ(Labels(split->train).size(), 21u);
  EXPECT_EQ(split->validation.examples.size(), 21u);  // one of each class's ten
  // Forcing classes on few classes still holds out whole classes.
  const Dataset few = MakeSineDataset(6, 10, 1, 5, 5, 1);
  split = MakeSplit(few, "sines", Protocol::kWithinDomain, 7, ValidationSplit::kClasses);
  ASSERT_TRUE(split.ok());
  for (int l : Labels(split->validation)) EXPECT_EQ(Labels(split->train).count(l), 0u);
}

TEST(ProtocolsTest, WithinDomainSplitKeepsEveryClassOnBothSides) {
  const Dataset data = MakeSineDataset(5, 20, 1, 5, 5, 1);
  absl::StatusOr<Split> split = MakeSplit(data, "sines", Protocol::kWithinDomain, 3);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(Labels(split->test), Labels(split->train));
  EXPECT_EQ(split->test.examples.size(), 30u);        // 30% of each class
  EXPECT_EQ(split->validation.examples.size(), 5u);  // 10% of 14 training examples, rounded
  EXPECT_EQ(split->train.examples.size(), 65u);
  // Another seed draws other examples.
  absl::StatusOr<Split> other = MakeSplit(data, "sines", Protocol::kWithinDomain, 4);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(split->test.examples[0].source + split->test.examples[1].source,
            other->test.examples[0].source + other->test.examples[1].source);
}

// Scores by a hidden "true class" value, optionally corrupted.
TEST(EvaluatePairsTest, PerfectScorerAndForgeryTrials) {
  Dataset test = MakeSineDataset(3, 4, 1, 5, 5, 1, /*forgeries=*/2);  // 18 examples, 6 forgeries
  const PairScorer perfect = [&](int i, int j) {
    const Example& a = test.examples[i];
    const Example& b = test.examples[j];
    return a.label == b.label && !a.forgery && !b.forgery ? 1.0 : 0.0;
  };
  EvalOptions options;
  options.threads = 2;
  absl::StatusOr<EvalResult> r = EvaluatePairs(test, perfect, nullptr, options);
  ASSERT_TRUE(r.ok()) << r.status();
  // All 153 unordered pairs minus the 15 forgery-forgery pairs.
  EXPECT_EQ(r->pairs, 153 - 15);
  EXPECT_DOUBLE_EQ(r->auc, 1.0);
  EXPECT_DOUBLE_EQ(r->eer.eer, 0.0);
  EXPECT_DOUBLE_EQ(r->oneshot.accuracy, 1.0);
  EXPECT_EQ(r->oneshot.queries_per_draw, 12 - 3);  // genuine examples only

  // A scorer that cannot tell a forgery from the genuine article.
  const PairScorer fooled = [&](int i, int j) {
    return test.examples[i].label == test.examples[j].label ? 1.0 : 0.0;
  };
  r = EvaluatePairs(test, fooled, nullptr, options);
  ASSERT_TRUE(r.ok());
  EXPECT_LT(r->auc, 1.0);
  EXPECT_GT(r->eer.eer, 0.0);
}

TEST(EvaluatePairsTest, SamplingKeepsAboutMaxPairs) {
  const Dataset test = MakeSineDataset(10, 30, 1, 5, 5, 1);  // 44850 pairs
  EvalOptions options;
  options.max_pairs = 5000;
  options.want_oneshot = false;
  absl::StatusOr<EvalResult> r = EvaluatePairs(
      test,
      [&](int i, int j) { return test.examples[i].label == test.examples[j].label ? 1.0 : 0.0; },
      nullptr, options);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->pairs, 5000, 300);
  EXPECT_DOUBLE_EQ(r->auc, 1.0);
}

TEST(ResultLineTest, FormatsTheMachineReadableLine) {
  EvalResult r;
  r.has_auc = true;
  r.auc = 0.91234;
  r.eer = {0.0512, 0.3};
  r.has_oneshot = true;
  r.oneshot.accuracy = 0.45;
  EXPECT_EQ(
      ResultLine(Protocol::kOutOfDomain, "arabic-voice", "srn-a", r, false),
      "RESULT protocol=out-of-domain dataset=arabic-voice model=srn-a auc=0.9123 oneshot=0.4500");
  EXPECT_EQ(ResultLine(Protocol::kTest, "new.csv", "srn-a", r, false),
            "RESULT protocol=test dataset=new.csv model=srn-a auc=0.9123 oneshot=0.4500");
  EXPECT_EQ(ResultLine(Protocol::kOneShot, "svc2004", "dtw", r, true),
            "RESULT protocol=one-shot dataset=svc2004 model=dtw oneshot=0.4500 eer=0.0512");
}

TEST(ProtocolsRealDataTest, PaperSplitsOfTheArabicData) {
  SRN_REQUIRE_DATA(dir, "spoken_arabic_digit/Train_Arabic_Digit.txt");
  absl::StatusOr<Dataset> digits = LoadNamedDataset("arabic-digit", DataDir());
  ASSERT_TRUE(digits.ok()) << digits.status();
  absl::StatusOr<Split> split = MakeSplit(*digits, "arabic-digit", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(Labels(split->test), (std::set<int>{7, 8, 9}));  // digits 8-10
  std::set<int> train = Labels(split->train);
  for (int l : Labels(split->validation)) train.insert(l);
  EXPECT_EQ(train, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(split->test.examples.size(), 3u * 880u);
  EXPECT_EQ(split->description,
            "fixed split of arabic-digit; train classes (7): 0, 1, 2, 3, 4, 5, 6; validation: 10% "
            "of each training class's examples; test classes (3): 7, 8, 9");

  absl::StatusOr<Dataset> voices = LoadNamedDataset("arabic-voice", DataDir());
  ASSERT_TRUE(voices.ok());
  split = MakeSplit(*voices, "arabic-voice", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok());
  const std::set<int> test = Labels(split->test);
  EXPECT_EQ(test.size(), 28u);  // speakers 61-88
  EXPECT_EQ(*test.begin(), 60);
  EXPECT_EQ(Labels(split->validation).size(), 6u);  // class-disjoint validation speakers
  EXPECT_EQ(Labels(split->train).size(), 54u);
}

TEST(ProtocolsRealDataTest, DtwBaselineBeatsChanceOnArabicDigits) {
  SRN_REQUIRE_DATA(dir, "spoken_arabic_digit/Train_Arabic_Digit.txt");
  absl::StatusOr<Dataset> digits = LoadNamedDataset("arabic-digit", DataDir());
  ASSERT_TRUE(digits.ok());
  absl::StatusOr<Split> split = MakeSplit(*digits, "arabic-digit", Protocol::kOutOfDomain, 1);
  ASSERT_TRUE(split.ok());
  // A third of the test speakers keeps this fast.
  const Dataset small = split->test.Filter([](const Example& e) { return e.group % 3 == 0; });
  EvalOptions options;
  options.max_pairs = 50000;
  options.oneshot_draws = 2;
  absl::StatusOr<EvalResult> r =
      EvaluateDtw(split->train, small, DtwOptions::Fraction(0.1), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->auc, 0.6);
  EXPECT_GT(r->oneshot.accuracy, 0.4);
}

}  // namespace
}  // namespace srn
