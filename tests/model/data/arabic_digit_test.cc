#include "model/data/arabic_digit.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class ArabicDigitTest : public testing::ScratchDirTest {
 protected:
  std::string MakeTempDir() const { return dir(); }
};

const char kSep[] = "            \n";  // the files' 12-space separator line

std::string Frame(float base) {
  std::string line;
  for (int i = 0; i < 13; ++i) {
    line += std::to_string(base + i);
    line += i == 12 ? "\n" : " ";
  }
  return line;
}

TEST_F(ArabicDigitTest, ReadsBlocksBetweenSeparators) {
  const std::string dir = MakeTempDir();
  const std::string path =
      Write("a.txt", std::string(kSep) + Frame(0) + Frame(100) + kSep + "\n" + Frame(-5.5f));
  absl::StatusOr<std::vector<ArabicBlock>> blocks = ReadArabicDigitBlocks(path);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), 2u);  // consecutive separators make no empty block
  EXPECT_EQ((*blocks)[0].first_line, 2);
  EXPECT_EQ((*blocks)[0].series.length(), 2);
  EXPECT_EQ((*blocks)[0].series.dims(), 13);
  EXPECT_EQ((*blocks)[0].series.frames()(1, 12), 112.0f);
  EXPECT_EQ((*blocks)[1].first_line, 6);
  EXPECT_EQ((*blocks)[1].series.length(), 1);
  EXPECT_EQ((*blocks)[1].series.frames()(0, 0), -5.5f);
  EXPECT_EQ((*blocks)[1].series.frames()(0, 1), -4.5f);
}

TEST_F(ArabicDigitTest, MalformedLinesNameFileAndLine) {
  const std::string dir = MakeTempDir();
  std::string twelve = Frame(0);
  twelve.erase(twelve.rfind(' '));  // drop the last value
  twelve += "\n";
  std::string path = Write("short.txt", std::string(kSep) + Frame(0) + twelve);
  absl::Status status = ReadArabicDigitBlocks(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":3:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("found 12"));

  path = Write("long.txt", std::string(kSep) + "1 " + Frame(0));
  status = ReadArabicDigitBlocks(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":2:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("found 14"));

  for (const char* bad : {"abc", "1.5x", "nan", "inf", "--1"}) {
    path = Write("bad.txt", std::string(kSep) + Frame(0) + kSep + Frame(0) + bad + " " + Frame(1));
    status = ReadArabicDigitBlocks(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":5:")) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr(bad));
  }
}

TEST_F(ArabicDigitTest, MissingFilesAreNotFound) {
  const std::string dir = MakeTempDir();
  absl::Status status = ReadArabicDigitBlocks(dir + "/nope.txt").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("nope.txt"));
  status = LoadArabicDigit(dir, ArabicLabel::kDigit).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("Train_Arabic_Digit.txt"));
}

TEST_F(ArabicDigitTest, WrongBlockCountIsDataLoss) {
  const std::string dir = MakeTempDir();
  Write("Train_Arabic_Digit.txt", std::string(kSep) + Frame(0) + kSep + Frame(1));
  Write("Test_Arabic_Digit.txt", std::string(kSep) + Frame(0));
  absl::Status status = LoadArabicDigit(dir, ArabicLabel::kSpeaker).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("Train_Arabic_Digit.txt"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("expected 6600 blocks, found 2"));
}

TEST(ArabicDigitRealDataTest, DigitLabels) {
  SRN_REQUIRE_DATA(train, "spoken_arabic_digit/Train_Arabic_Digit.txt");
  SRN_REQUIRE_DATA(test, "spoken_arabic_digit/Test_Arabic_Digit.txt");
  const std::string dir = std::filesystem::path(train).parent_path().string();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Dataset> d = LoadArabicDigit(dir, ArabicLabel::kDigit);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(d.ok()) << d.status();
  std::cout << "LoadArabicDigit: " << seconds << " s\n";
  EXPECT_EQ(d->name, "arabic-digit");
  ASSERT_EQ(d->examples.size(), 8800u);
  EXPECT_EQ(d->dims(), 13);
  ASSERT_EQ(d->num_labels(), 10);
  EXPECT_EQ(d->label_names[0], "0");
  EXPECT_EQ(d->label_names[9], "9");
  std::vector<int> per_digit(10, 0);
  int64_t train_frames = 0, test_frames = 0;
  for (size_t i = 0; i < d->examples.size(); ++i) {
    const Example& e = d->examples[i];
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, 10);
    ++per_digit[e.label];
    const bool is_train = i < 6600;
    (is_train ? train_frames : test_frames) += e.series.length();
    EXPECT_GE(e.series.length(), is_train ? 4 : 7) << i;
    EXPECT_LE(e.series.length(), is_train ? 93 : 83) << i;
    EXPECT_EQ(e.series.dims(), 13);
  }
  for (int digit = 0; digit < 10; ++digit) EXPECT_EQ(per_digit[digit], 880) << digit;
  EXPECT_EQ(train_frames, 263256);  // SOURCE.md
  EXPECT_EQ(test_frames, 87063);

  const Example& first = d->examples[0];
  EXPECT_EQ(first.source, "Train_Arabic_Digit.txt:2");
  EXPECT_EQ(first.label, 0);
  EXPECT_EQ(first.group, 0);
  EXPECT_FLOAT_EQ(first.series.frames()(0, 0), -0.81101f);
  EXPECT_FLOAT_EQ(first.series.frames()(0, 1), -7.2382f);
  EXPECT_FLOAT_EQ(first.series.frames()(0, 2), 1.5429f);
  EXPECT_FLOAT_EQ(first.series.frames()(0, 12), 0.5114f);
  EXPECT_FLOAT_EQ(first.series.frames()(1, 0), -0.37028f);
  // Train block 659: digit 0, speaker 65. Block 660: digit 1, speaker 0. Test
  // block 0 (index 6600): digit 0, speaker 66; test block 2199: digit 9,
  // speaker 87.
  EXPECT_EQ(d->examples[659].label, 0);
  EXPECT_EQ(d->examples[659].group, 65);
  EXPECT_EQ(d->examples[660].label, 1);
  EXPECT_EQ(d->examples[660].group, 0);
  EXPECT_EQ(d->examples[6600].label, 0);
  EXPECT_EQ(d->examples[6600].group, 66);
  EXPECT_EQ(d->examples[6600].source, "Test_Arabic_Digit.txt:2");
  EXPECT_EQ(d->examples[8799].label, 9);
  EXPECT_EQ(d->examples[8799].group, 87);
}

TEST(ArabicDigitRealDataTest, SpeakerLabels) {
  SRN_REQUIRE_DATA(train, "spoken_arabic_digit/Train_Arabic_Digit.txt");
  SRN_REQUIRE_DATA(test, "spoken_arabic_digit/Test_Arabic_Digit.txt");
  const std::string dir = std::filesystem::path(train).parent_path().string();
  absl::StatusOr<Dataset> d = LoadArabicDigit(dir, ArabicLabel::kSpeaker);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "arabic-voice");
  ASSERT_EQ(d->examples.size(), 8800u);
  ASSERT_EQ(d->num_labels(), 88);
  EXPECT_EQ(d->label_names[0], "speaker 1");
  EXPECT_EQ(d->label_names[87], "speaker 88");
  std::vector<int> per_speaker(88, 0);
  std::vector<std::vector<int>> digits_per_speaker(88, std::vector<int>(10, 0));
  for (size_t i = 0; i < d->examples.size(); ++i) {
    const Example& e = d->examples[i];
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, 88);
    ASSERT_GE(e.group, 0);
    ASSERT_LT(e.group, 10);
    ++per_speaker[e.label];
    ++digits_per_speaker[e.label][e.group];
    EXPECT_EQ(e.label < 66, i < 6600) << i;  // train speakers only in the train file
  }
  for (int s = 0; s < 88; ++s) {
    EXPECT_EQ(per_speaker[s], 100) << s;
    for (int digit = 0; digit < 10; ++digit) EXPECT_EQ(digits_per_speaker[s][digit], 10);
  }
  // Blocks 10-19 of the train file are the second speaker's first digit.
  EXPECT_EQ(d->examples[9].label, 0);
  EXPECT_EQ(d->examples[10].label, 1);
  EXPECT_EQ(d->examples[10].group, 0);
}

}  // namespace
}  // namespace srn
