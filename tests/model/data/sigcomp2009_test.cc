#include "model/data/sigcomp2009.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

// One .hwr row as the tablet writes it: a tab, then 5 fields of width 5.
std::string Row(int x, int y, int p, int azimuth = 1470, int altitude = 430) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "\t%5d %5d %5d %5d %5d\n", x, y, p, azimuth, altitude);
  return buffer;
}

// A small valid file: hovering, a stroke, a marker pair, a second stroke, hovering.
std::string ValidFile(int shift = 0) {
  return "ABCDE-012_345_678 9\n" + Row(100, 100, -1, 1076363264, -1) + Row(110, 105, 300 + shift) +
         Row(120, 110, 400) + Row(130, 115, 500) + "0 0 -4 0 0\n" + Row(0, 0, -4, 0, 0) +
         Row(200, 300, 250) + Row(210, 290, 260) + Row(220, 280, 0);
}

class SigComp2009Test : public testing::ScratchDirTest {};

TEST_F(SigComp2009Test, KeepsPenDownRowsWithTimeFromTheRowIndex) {
  const std::string path = Write("NFI-00101001.hwr", ValidFile());
  absl::StatusOr<std::vector<PenSample>> s = ReadSigComp2009File(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 5u);  // 9 rows: 1 hovering, 2 markers and 1 hovering dropped
  const double want[5][5] = {
      // x    y    t (5 ms per row)  pressure  start
      {110, 105, 5, 300, 1},  // after hovering: a stroke starts
      {120, 110, 10, 400, 0},
      {130, 115, 15, 500, 0},
      {200, 300, 30, 250, 1},  // after the marker rows (rows 4 and 5): a new stroke
      {210, 290, 35, 260, 0}};
  for (int i = 0; i < 5; ++i) {
    const PenSample& p = (*s)[i];
    EXPECT_EQ(p.x, want[i][0]) << i;
    EXPECT_EQ(p.y, want[i][1]) << i;
    EXPECT_EQ(p.t_ms, want[i][2]) << i;
    EXPECT_EQ(p.pressure, want[i][3]) << i;
    EXPECT_EQ(p.stroke_start, want[i][4] == 1) << i;
  }
}

TEST(ParseSigComp2009FileTest, ParsesContentInMemoryNamingTheGivenName) {
  absl::StatusOr<std::vector<PenSample>> s =
      ParseSigComp2009File("Tag 3\n1 1 -1 0 0\n2 2 50 0 0\n3 3 60 0 0\n", "upload");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].t_ms, 5);
  EXPECT_TRUE((*s)[0].stroke_start);
  const absl::Status bad = ParseSigComp2009File("Tag 1\n1 1 -2 0 0\n", "upload").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("upload:2: pen state -2"));
}

TEST_F(SigComp2009Test, MalformedFilesNameFileAndLine) {
  struct Case {
    std::string text;
    const char* where;  // expected "<path>:<line>:" suffix, or ":" for the file alone
    const char* what;
  };
  const std::string header = "NLDCC-001_001_001 2\n";
  const Case cases[] = {
      {"", ":1:", "empty file"},
      {"ABCDE-012_345_678\n" + Row(1, 2, 3), ":1:", "expected the header '<tag> <number"},
      {"ABCDE-012_345_678 2 3\n" + Row(1, 2, 3), ":1:", "found 'ABCDE-012_345_678 2 3'"},
      {"ABCDE-012_345_678 two\n" + Row(1, 2, 3), ":1:", "expected the header"},
      {"ABCDE-012_345_678 0\n", ":1:", "expected the header"},
      {"2\n" + Row(1, 2, 3) + Row(1, 2, 3), ":1:", "expected the header"},
      {header + Row(1, 2, 3) + "\t1 2 3 4\n",
       ":3:", "expected 5 integers (X Y Pressure Azimuth Altitude), found 4"},
      {header + "\t1\n" + Row(1, 2, 3), ":2:", "found 1"},
      {header + Row(1, 2, 3) + "\t1 2 3 4 5 6\n", ":3:", "found 6"},
      {header + Row(1, 2, 3) + "\t1 2 x 4 5\n", ":3:", "'x' is not an integer"},
      {header + "\t1 2.5 3 4 5\n" + Row(1, 2, 3), ":2:", "'2.5' is not an integer"},
      {"NLDCC-001_001_001 3\n" + Row(1, 2, 3) + Row(2, 2, 3),
       ":3:", "line 1 announces 3 samples but the file has 2"},
      {"NLDCC-001_001_001 1\n" + Row(1, 2, 3) + Row(2, 2, 3),
       ":3:", "more sample rows than the 1 announced on line 1"},
      {header + Row(1, 2, 3) + Row(2, 2, -2), ":3:", "pen state -2 is none of"},
      {header + Row(1, 2, -1) + Row(2, 2, 0), ":", "no pen-down row"},
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.hwr", c.text);
    absl::Status status = ReadSigComp2009File(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + c.where)) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.what)) << c.text;
  }
  absl::Status missing = ReadSigComp2009File(dir() + "/none.hwr").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("none.hwr"));
}

TEST_F(SigComp2009Test, LabelsComeFromTheFileName) {
  // Authors 1 and 3; writer 2 forges author 1, writer 4 forges author 3. Shifted pressures make
  // the files distinguishable.
  Write("NFI/genuine/NFI-00102001.hwr", ValidFile(2));
  Write("NFI/genuine/NFI-00101001.hwr", ValidFile(1));
  Write("NFI/genuine/NFI-00301003.hwr", ValidFile(3));
  Write("NFI/forgery/NFI-00401003.hwr", ValidFile(4));
  Write("NFI/forgery/NFI-00201001.hwr", ValidFile(5));
  Write("NFI/genuine/README.txt", "not a signature");
  absl::StatusOr<Dataset> d = LoadSigComp2009(dir(), SigComp2009Subset::kNfi);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "sigcomp2009-nfi");
  EXPECT_THAT(d->label_names, ::testing::ElementsAre("NFI-001", "NFI-003"));
  ASSERT_EQ(d->examples.size(), 5u);
  struct Want {
    const char* file;
    int label;
    bool forgery;
    int group;
  };
  const Want want[5] = {{"NFI-00101001.hwr", 0, false, 1},
                        {"NFI-00102001.hwr", 0, false, 1},
                        {"NFI-00201001.hwr", 0, true, 2},  // a forgery of author 1 by writer 2
                        {"NFI-00301003.hwr", 1, false, 3},
                        {"NFI-00401003.hwr", 1, true, 4}};
  for (int i = 0; i < 5; ++i) {
    const Example& e = d->examples[i];
    EXPECT_THAT(e.source, EndsWith(want[i].file)) << i;
    EXPECT_EQ(e.label, want[i].label) << i;
    EXPECT_EQ(e.forgery, want[i].forgery) << i;
    EXPECT_EQ(e.group, want[i].group) << i;
    EXPECT_EQ(e.series.dims(), kSignatureFeatureDims) << i;
    // 5 pen-down rows at 200 Hz in strokes of 15 and 5 ms: 2 + 1 samples at 100 Hz.
    EXPECT_EQ(e.series.length(), 3) << i;
    EXPECT_TRUE(e.series.frames().allFinite()) << i;
  }
}

TEST_F(SigComp2009Test, ReadsNisdccNames) {
  Write("NISDCC/genuine/NISDCC-012_012_001.hwr", ValidFile());
  Write("NISDCC/genuine/NISDCC-005_005_002.hwr", ValidFile());
  Write("NISDCC/forgery/NISDCC-022_012_005.hwr", ValidFile());
  absl::StatusOr<Dataset> d = LoadSigComp2009(dir(), SigComp2009Subset::kNisdcc);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "sigcomp2009-nisdcc");
  EXPECT_THAT(d->label_names, ::testing::ElementsAre("NISDCC-005", "NISDCC-012"));
  ASSERT_EQ(d->examples.size(), 3u);
  EXPECT_THAT(d->examples[0].source, EndsWith("NISDCC-005_005_002.hwr"));
  EXPECT_THAT(d->examples[2].source, EndsWith("NISDCC-022_012_005.hwr"));
  EXPECT_EQ(d->examples[2].label, 1);
  EXPECT_TRUE(d->examples[2].forgery);
  EXPECT_EQ(d->examples[2].group, 22);
}

TEST_F(SigComp2009Test, LoaderErrorsNameTheFileOrFolder) {
  // No subset folder at all.
  absl::Status status = LoadSigComp2009(dir(), SigComp2009Subset::kNfi).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("NFI/genuine: no such folder"));

  // genuine/ but no forgery/.
  Write("NFI/genuine/NFI-00101001.hwr", ValidFile());
  status = LoadSigComp2009(dir(), SigComp2009Subset::kNfi).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("NFI/forgery: no such folder"));

  // Both folders empty.
  Write("NISDCC/genuine/notes.txt", "");
  Write("NISDCC/forgery/notes.txt", "");
  status = LoadSigComp2009(dir(), SigComp2009Subset::kNisdcc).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no .hwr files"));

  struct Case {
    const char* file;
    const char* what;
  };
  const Case cases[] = {
      {"NFI/forgery/NFI-0010100.hwr", "does not follow NFI-<www><ss><aaa>.hwr"},
      {"NFI/forgery/NFI-0010100a.hwr", "does not follow NFI-<www><ss><aaa>.hwr"},
      {"NFI/forgery/NISDCC-001_001_001.hwr", "does not follow NFI-<www><ss><aaa>.hwr"},
      {"NFI/forgery/NFI-00301003.hwr",
       "writer 3 == author 3 makes it genuine, but it is in forgery/"},
      {"NFI/genuine/NFI-00201001.hwr",
       "writer 2 != author 1 makes it a forgery, but it is in genuine/"},
  };
  for (const Case& c : cases) {
    const std::string path = Write(c.file, ValidFile());
    status = LoadSigComp2009(dir(), SigComp2009Subset::kNfi).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.file;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + ": ")) << c.file;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.what)) << c.file;
    ASSERT_EQ(std::remove(path.c_str()), 0);
  }
  ASSERT_TRUE(LoadSigComp2009(dir(), SigComp2009Subset::kNfi).ok());  // the cases' files are gone

  const Case nisdcc[] = {
      {"NISDCC/genuine/NISDCC-001-001-001.hwr", "does not follow NISDCC-<www>_<aaa>_<sss>.hwr"},
      {"NISDCC/genuine/NISDCC-001_001_0001.hwr", "does not follow NISDCC-<www>_<aaa>_<sss>.hwr"},
      {"NISDCC/genuine/NFI-00101001.hwr", "does not follow NISDCC-<www>_<aaa>_<sss>.hwr"},
  };
  for (const Case& c : nisdcc) {
    const std::string path = Write(c.file, ValidFile());
    status = LoadSigComp2009(dir(), SigComp2009Subset::kNisdcc).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.file;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + ": ")) << c.file;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.what)) << c.file;
    ASSERT_EQ(std::remove(path.c_str()), 0);
  }

  // A reader error and a feature error, each naming the file.
  std::string path =
      Write("NFI/forgery/NFI-00201001.hwr", "ABCDE-012_345_678 2\n" + Row(1, 2, 3) + "\t1 2 3\n");
  status = LoadSigComp2009(dir(), SigComp2009Subset::kNfi).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":3: expected 5 integers"));
  path = Write("NFI/forgery/NFI-00201001.hwr",
               "ABCDE-012_345_678 3\n" + Row(1, 2, -1) + Row(1, 2, 3) + Row(1, 2, 0));
  status = LoadSigComp2009(dir(), SigComp2009Subset::kNfi).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ": a signature needs at least 2"));
}

TEST(SigComp2009SubsetNameTest, Names) {
  EXPECT_EQ(SigComp2009SubsetName(SigComp2009Subset::kNfi), "nfi");
  EXPECT_EQ(SigComp2009SubsetName(SigComp2009Subset::kNisdcc), "nisdcc");
}

// ---- The real data (sigcomp2009/SOURCE.md and MANIFEST.tsv). ----

// The manifest's paths (relative to the sigcomp2009 folder) under `prefix`, e.g. "NFI/".
std::set<std::string> ManifestPaths(const std::string& manifest, const std::string& prefix) {
  std::set<std::string> paths;
  std::ifstream in(manifest);
  std::string line;
  std::getline(in, line);  // path  bytes  sha256
  while (std::getline(in, line)) {
    const std::string path = line.substr(0, line.find('\t'));
    if (path.rfind(prefix, 0) == 0) paths.insert(path);
  }
  return paths;
}

// The ids of a real file name, parsed here independently of the loader.
struct NameIds {
  int writer = -1, author = -1, sample = -1;
};
NameIds IdsOf(const std::string& source) {
  static const std::regex nfi(R"(NFI-(\d{3})(\d{2})(\d{3})\.hwr$)");
  static const std::regex nisdcc(R"(NISDCC-(\d{3})_(\d{3})_(\d{3})\.hwr$)");
  std::smatch m;
  NameIds ids;
  if (std::regex_search(source, m, nfi)) {
    ids = {std::stoi(m[1]), std::stoi(m[3]), std::stoi(m[2])};
  } else if (std::regex_search(source, m, nisdcc)) {
    ids = {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
  }
  return ids;
}

// What a real subset must hold, checked example by example.
struct Tally {
  std::map<int, int> genuine_per_author;            // author -> genuine files
  std::map<int, int> forgeries_per_author;          // forged author -> forgeries
  std::map<int, std::set<int>> forgers_per_author;  // forged author -> forgers
  std::set<int> forgers;
  std::set<std::string> relative_paths;
};

Tally CheckAndTally(const Dataset& d, const std::string& dir, const std::string& subset_name) {
  Tally t;
  for (const Example& e : d.examples) {
    SCOPED_TRACE(e.source);
    const NameIds ids = IdsOf(e.source);
    EXPECT_GE(ids.author, 0);
    // The label rule: the claimed identity is aaa, a forgery's label is the forged author.
    EXPECT_EQ(d.label_names.at(e.label), absl::StrFormat("%s-%03d", subset_name, ids.author));
    EXPECT_EQ(e.forgery, ids.writer != ids.author);
    EXPECT_EQ(e.group, ids.writer);
    EXPECT_THAT(e.source, HasSubstr(e.forgery ? "/forgery/" : "/genuine/"));
    EXPECT_EQ(e.series.dims(), kSignatureFeatureDims);
    EXPECT_GE(e.series.length(), 2);
    EXPECT_TRUE(ValidateSeries(e.series).ok());
    EXPECT_TRUE(e.series.frames().allFinite());
    EXPECT_EQ(e.series.frames().col(9).maxCoeff(), 1.0f);  // pressure, over its maximum
    EXPECT_EQ(e.series.frames()(0, 11), 1.0f);             // a stroke starts at sample 0
    if (e.forgery) {
      ++t.forgeries_per_author[ids.author];
      t.forgers_per_author[ids.author].insert(ids.writer);
      t.forgers.insert(ids.writer);
    } else {
      ++t.genuine_per_author[ids.author];
    }
    EXPECT_EQ(e.source.rfind(dir + "/", 0), 0u);
    t.relative_paths.insert(e.source.substr(dir.size() + 1));
  }
  return t;
}

TEST(SigComp2009RealDataTest, LoadsNfi) {
  SRN_REQUIRE_DATA(dir, "sigcomp2009");
  absl::StatusOr<Dataset> d = LoadSigComp2009(dir, SigComp2009Subset::kNfi);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "sigcomp2009-nfi");
  EXPECT_EQ(d->dims(), kSignatureFeatureDims);
  ASSERT_EQ(d->examples.size(), 1552u);  // 932 genuine + 620 forgeries
  const Tally t = CheckAndTally(*d, dir, "NFI");
  EXPECT_EQ(t.relative_paths, ManifestPaths(dir + "/MANIFEST.tsv", "NFI/"));

  // Genuine: 79 authors, 932 files; 66 authors with 12, 11 with 11, 100 with 10, 075 with 9.
  EXPECT_EQ(d->num_labels(), 79);
  EXPECT_EQ(t.genuine_per_author.size(), 79u);
  std::map<int, int> authors_with;
  int genuine = 0;
  for (const auto& [author, n] : t.genuine_per_author) {
    ++authors_with[n];
    genuine += n;
  }
  EXPECT_EQ(genuine, 932);
  EXPECT_THAT(authors_with,
              ::testing::ElementsAre(::testing::Pair(9, 1), ::testing::Pair(10, 1),
                                     ::testing::Pair(11, 11), ::testing::Pair(12, 66)));
  EXPECT_EQ(t.genuine_per_author.at(75), 9);
  EXPECT_EQ(t.genuine_per_author.at(100), 10);
  for (int missing :
       {5, 13, 25, 32, 34, 36, 38, 40, 48, 50, 52, 57, 60, 61, 65, 76, 78, 81, 82, 87, 95}) {
    EXPECT_EQ(t.genuine_per_author.count(missing), 0u) << missing;
  }

  // Forgeries: 620 of 19 authors (all with genuine files) by 33 forgers; 4-6 forgers and 23-36
  // forgeries per forged author.
  EXPECT_EQ(t.forgeries_per_author.size(), 19u);
  EXPECT_EQ(t.forgers.size(), 33u);
  int forgeries = 0;
  for (const auto& [author, n] : t.forgeries_per_author) {
    forgeries += n;
    EXPECT_EQ(t.genuine_per_author.count(author), 1u) << author;
    EXPECT_GE(n, 23) << author;
    EXPECT_LE(n, 36) << author;
    EXPECT_GE(t.forgers_per_author.at(author).size(), 4u) << author;
    EXPECT_LE(t.forgers_per_author.at(author).size(), 6u) << author;
  }
  EXPECT_EQ(forgeries, 620);
}

TEST(SigComp2009RealDataTest, LoadsNisdcc) {
  SRN_REQUIRE_DATA(dir, "sigcomp2009");
  absl::StatusOr<Dataset> d = LoadSigComp2009(dir, SigComp2009Subset::kNisdcc);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "sigcomp2009-nisdcc");
  ASSERT_EQ(d->examples.size(), 780u);  // 60 genuine + 720 forgeries
  const Tally t = CheckAndTally(*d, dir, "NISDCC");
  EXPECT_EQ(t.relative_paths, ManifestPaths(dir + "/MANIFEST.tsv", "NISDCC/"));
  ASSERT_EQ(d->num_labels(), 12);
  EXPECT_EQ(d->label_names.front(), "NISDCC-001");
  EXPECT_EQ(d->label_names.back(), "NISDCC-012");
  // Authors 001-012 with 5 genuine and 60 forgeries each, by forgers 022-027 and 029-034.
  for (int author = 1; author <= 12; ++author) {
    EXPECT_EQ(t.genuine_per_author.at(author), 5) << author;
    EXPECT_EQ(t.forgeries_per_author.at(author), 60) << author;
    EXPECT_EQ(t.forgers_per_author.at(author).size(), 12u) << author;
  }
  EXPECT_THAT(t.forgers, ::testing::ElementsAre(22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34));
  // The first example: author 001's first genuine file, 774 pen-down rows in 4 strokes, 388
  // samples at 100 Hz.
  EXPECT_THAT(d->examples[0].source, EndsWith("/NISDCC/genuine/NISDCC-001_001_001.hwr"));
  EXPECT_EQ(d->examples[0].series.length(), 388);
  EXPECT_EQ(d->examples[0].series.frames().col(11).sum(), 4.0f);
}

// NFI-00104001.hwr starts with one hovering row: 310 rows, 291 pen-down in 2 strokes.
TEST(SigComp2009RealDataTest, DropsHoveringRows) {
  SRN_REQUIRE_DATA(path, "sigcomp2009/NFI/genuine/NFI-00104001.hwr");
  absl::StatusOr<std::vector<PenSample>> s = ReadSigComp2009File(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 291u);
  EXPECT_EQ((*s)[0].x, 7610);
  EXPECT_EQ((*s)[0].y, 15644);
  EXPECT_EQ((*s)[0].pressure, 308);
  EXPECT_EQ((*s)[0].t_ms, 5);  // row 1 at 200 Hz
  int strokes = 0;
  for (const PenSample& p : *s) strokes += p.stroke_start;
  EXPECT_EQ(strokes, 2);
}

// NISDCC-024_006_001.hwr: a marker pair (written without the tab and padding) on lines
// 2603-2604, between pen-down rows whose position jumps from (15083, 25308) to (10931, 25145).
TEST(SigComp2009RealDataTest, MarkerRowsBreakTheStroke) {
  SRN_REQUIRE_DATA(path, "sigcomp2009/NISDCC/forgery/NISDCC-024_006_001.hwr");
  absl::StatusOr<std::vector<PenSample>> s = ReadSigComp2009File(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->size(), 1549u);
  size_t after = 0;
  while (after < s->size() && (*s)[after].t_ms < 2603 * 5.0) ++after;  // row 2603: line 2605
  ASSERT_LT(after, s->size());
  ASSERT_GT(after, 0u);
  EXPECT_EQ((*s)[after].t_ms, 2603 * 5.0);
  EXPECT_EQ((*s)[after].x, 10931);
  EXPECT_TRUE((*s)[after].stroke_start);
  EXPECT_EQ((*s)[after - 1].t_ms, 2600 * 5.0);
  EXPECT_EQ((*s)[after - 1].x, 15083);
  EXPECT_FALSE((*s)[after - 1].stroke_start);
}

}  // namespace
}  // namespace srn
