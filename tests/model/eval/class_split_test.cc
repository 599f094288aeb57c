#include "model/eval/class_split.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const std::vector<std::string> kNames = {"walk", "run", "wave", "sit", "jump"};

TEST(ClassSplitTest, TestClassesAreTrimmedAndTheRestTrain) {
  absl::StatusOr<ClassChoice> choice = ParseTestClasses(" wave, jump ");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_THAT(choice->classes,
              ElementsAre(Pair("wave", SplitPart::kTest), Pair("jump", SplitPart::kTest)));
  absl::StatusOr<std::vector<SplitPart>> parts = AssignClasses(*choice, kNames);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_THAT(*parts, ElementsAre(SplitPart::kTrain, SplitPart::kTrain, SplitPart::kTest,
                                  SplitPart::kTrain, SplitPart::kTest));
}

TEST(ClassSplitTest, TestClassesRefuseEmptyAndRepeatedNames) {
  absl::StatusOr<ClassChoice> empty = ParseTestClasses("wave,,jump");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("empty class name"));
  absl::StatusOr<ClassChoice> twice = ParseTestClasses("wave,jump,wave");
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("names class 'wave' twice"));
}

TEST(ClassSplitTest, UnknownClassNamesSayWhichAndListTheDatasetsClasses) {
  absl::StatusOr<std::vector<SplitPart>> parts =
      AssignClasses(*ParseTestClasses("wave,swim"), kNames);
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parts.status().message(),
              HasSubstr("--test_classes: class 'swim' is not in the dataset; use the names of its "
                        "label column (5 classes: walk, run, wave, sit, jump)"));
}

TEST(ClassSplitTest, EveryClassTestingOrNoneIsRefused) {
  absl::StatusOr<std::vector<SplitPart>> all =
      AssignClasses(*ParseTestClasses("walk,run,wave,sit,jump"), kNames);
  EXPECT_EQ(all.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(all.status().message(), HasSubstr("no training class"));
  EXPECT_THAT(all.status().message(), HasSubstr("--protocol=test"));
  absl::StatusOr<ClassChoice> no_test =
      ParseSplitFile("walk,train\nrun,train\nwave,validation\nsit,train\njump,train\n", "s.txt");
  ASSERT_TRUE(no_test.ok()) << no_test.status();
  absl::StatusOr<std::vector<SplitPart>> parts = AssignClasses(*no_test, kNames);
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parts.status().message(),
              HasSubstr("--split=s.txt: no test class; give at least one class the part 'test'"));
}

TEST(ClassSplitTest, SplitFileWithHeaderCommentsAndSpaces) {
  absl::StatusOr<ClassChoice> choice = ParseSplitFile(
      "# my split\nclass,part\n\n walk , train\nrun,validation\r\nwave,test\nsit,train\n"
      "jump,test",
      "split.txt");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->origin, "--split=split.txt");
  absl::StatusOr<std::vector<SplitPart>> parts = AssignClasses(*choice, kNames);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_THAT(*parts, ElementsAre(SplitPart::kTrain, SplitPart::kValidation, SplitPart::kTest,
                                  SplitPart::kTrain, SplitPart::kTest));
}

TEST(ClassSplitTest, SplitFileErrorsNameTheLine) {
  const auto error = [](const std::string& text) {
    absl::StatusOr<ClassChoice> c = ParseSplitFile(text, "s.txt");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    return std::string(c.status().message());
  };
  EXPECT_THAT(error("walk,train\nrun test\n"),
              HasSubstr("s.txt:2: expected '<class>,<train|validation|test>', found 'run test'"));
  EXPECT_THAT(error("walk,training\n"),
              HasSubstr("s.txt:1: unknown part 'training' for class 'walk' (expected train, "
                        "validation or test)"));
  EXPECT_THAT(error("walk,train\n,test\n"), HasSubstr("s.txt:2: the class name is empty"));
  EXPECT_THAT(error("walk,train\nrun,test\nwalk,test\n"),
              HasSubstr("s.txt:3: class 'walk' is already assigned on line 1: give each class "
                        "one line, in one part"));
  EXPECT_THAT(error("# nothing\n\n"), HasSubstr("s.txt: no classes"));
}

TEST(ClassSplitTest, SplitFileMustNameEveryClass) {
  absl::StatusOr<std::vector<SplitPart>> parts =
      AssignClasses(*ParseSplitFile("walk,train\nwave,test\n", "s.txt"), kNames);
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parts.status().message(),
              HasSubstr("3 of the dataset's classes have no line: run, sit, jump; add a line "
                        "'<class>,<train|validation|test>' for each"));
}

class ClassSplitFileTest : public testing::ScratchDirTest {};

TEST_F(ClassSplitFileTest, ReadsAFileAndReportsAMissingOne) {
  const std::string path = Write("split.txt", "walk,train\nrun,test\n");
  absl::StatusOr<ClassChoice> choice = ReadSplitFile(path);
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->classes.size(), 2u);
  EXPECT_EQ(ReadSplitFile(dir() + "/none.txt").status().code(), absl::StatusCode::kNotFound);
}

TEST(ClassSplitTest, SeededPartsAreReproducibleAndFollowTheSeed) {
  const std::vector<SplitPart> a = SeededClassParts(20, 1);
  EXPECT_EQ(a, SeededClassParts(20, 1));
  EXPECT_EQ(std::count(a.begin(), a.end(), SplitPart::kTest), 6);  // 14 of 20 train
  EXPECT_NE(a, SeededClassParts(20, 2));
  // Not simply the last classes, as the split before seeds drove it was.
  std::vector<SplitPart> last(20, SplitPart::kTrain);
  for (int l = 14; l < 20; ++l) last[l] = SplitPart::kTest;
  EXPECT_NE(a, last);
  // Two classes: one of each.
  const std::vector<SplitPart> two = SeededClassParts(2, 9);
  EXPECT_EQ(std::count(two.begin(), two.end(), SplitPart::kTest), 1);
}

}  // namespace
}  // namespace srn
