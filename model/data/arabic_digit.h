#ifndef SRN_MODEL_DATA_ARABIC_DIGIT_H_
#define SRN_MODEL_DATA_ARABIC_DIGIT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/data/series.h"

namespace srn {

// The UCI Spoken Arabic Digit data (13 MFCCs per frame; see
// spoken_arabic_digit/SOURCE.md in the data folder and docs/DATA_FORMATS.md). Thread-compatible.

inline constexpr int kArabicDigitDims = 13;
inline constexpr int kArabicTrainBlocks = 6600;
inline constexpr int kArabicTestBlocks = 2200;
inline constexpr int kArabicTrainSpeakers = 66;
inline constexpr int kArabicSpeakers = 88;

// What the examples' labels are.
enum class ArabicLabel {
  kDigit,    // label = digit 0-9 (names "0".."9"), group = global speaker 0-87
  kSpeaker,  // label = global speaker 0-87 (names "speaker 1".."speaker 88"), group = digit
};

// One utterance of a data file, in file order.
struct ArabicBlock {
  Series series;        // frames x 13
  int first_line = 0;   // 1-based line of the block's first frame
};

// Parses one data file: blocks are runs of frame lines separated by whitespace-only lines.
// NotFound with the path for a missing file; InvalidArgument "<file>:<line>: ..." for a frame
// line without exactly 13 finite numbers. Does not check the block count.
absl::StatusOr<std::vector<ArabicBlock>> ReadArabicDigitBlocks(const std::string& path);

// Loads Train_Arabic_Digit.txt then Test_Arabic_Digit.txt from `dir`: 8800 examples (the 6600
// train blocks first). Labels follow SOURCE.md: train block i is digit i / 660 by speaker
// (i % 660) / 10; test block i is digit i / 220 by speaker 66 + (i % 220) / 10. Source is
// "<file name>:<line of the block's first frame>". Dataset name "arabic-digit" (kDigit) or
// "arabic-voice" (kSpeaker). Errors as ReadArabicDigitBlocks, plus DataLoss naming the file when
// it does not hold exactly 6600 (train) or 2200 (test) blocks.
absl::StatusOr<Dataset> LoadArabicDigit(const std::string& dir, ArabicLabel label);

}  // namespace srn

#endif  // SRN_MODEL_DATA_ARABIC_DIGIT_H_
