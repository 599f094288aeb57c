#include "model/data/dataset_loader.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "model/data/svc2004.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

class DatasetLoaderTest : public testing::ScratchDirTest {};

TEST_F(DatasetLoaderTest, NamesMapToFormatsUnderTheDataDirectory) {
  absl::StatusOr<DatasetSource> digits = NamedDatasetSource("arabic-digit", "/d");
  ASSERT_TRUE(digits.ok()) << digits.status();
  EXPECT_EQ(digits->format, DatasetFormat::kArabicDigit);
  EXPECT_EQ(digits->path, "/d/spoken_arabic_digit");
  EXPECT_EQ(digits->arabic_label, ArabicLabel::kDigit);
  absl::StatusOr<DatasetSource> voices = NamedDatasetSource("arabic-voice", "/d");
  ASSERT_TRUE(voices.ok()) << voices.status();
  EXPECT_EQ(voices->format, DatasetFormat::kArabicDigit);
  EXPECT_EQ(voices->arabic_label, ArabicLabel::kSpeaker);
  absl::StatusOr<DatasetSource> signatures = NamedDatasetSource("svc2004", "/d");
  ASSERT_TRUE(signatures.ok()) << signatures.status();
  EXPECT_EQ(signatures->format, DatasetFormat::kSvc2004);
  EXPECT_EQ(signatures->path, "/d/svc2004/Task2");
  EXPECT_TRUE(signatures->svc2004_users.empty());
  EXPECT_EQ(DatasetKind(DatasetFormat::kSvc2004), FeatureKind::kSignature);
  EXPECT_EQ(DatasetKind(DatasetFormat::kArabicDigit), FeatureKind::kFrames);
  EXPECT_EQ(DatasetKind(DatasetFormat::kCsv), FeatureKind::kFrames);
}

TEST_F(DatasetLoaderTest, UnknownDatasetIsInvalidArgument) {
  EXPECT_EQ(LoadNamedDataset("mcyt", "/nonexistent").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DatasetLoaderTest, AnExistingFileIsACsvManifest) {
  Write("a.csv", "1,2\n3,4\n");
  const std::string manifest = Write("m.csv", "path,label\na.csv,x\na.csv,y\n");
  absl::StatusOr<DatasetSource> source = NamedDatasetSource(manifest, "/unused");
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(source->format, DatasetFormat::kCsv);
  EXPECT_EQ(source->path, manifest);
  absl::StatusOr<Dataset> data = LoadNamedDataset(manifest, "/unused");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->examples.size(), 2u);
  EXPECT_EQ(data->dims(), 2);
}

TEST_F(DatasetLoaderTest, Svc2004LoadsTheChosenSignersOrAll) {
  SRN_REQUIRE_DATA(task2, "svc2004/Task2");
  DatasetSource source;
  source.format = DatasetFormat::kSvc2004;
  source.path = task2;
  source.svc2004_users = {3, 7};
  absl::StatusOr<Dataset> two = LoadDataset(source);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->examples.size(), 2u * kSvc2004SignaturesPerUser);
  source.svc2004_users.clear();
  absl::StatusOr<Dataset> all = LoadDataset(source);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->examples.size(), static_cast<size_t>(kSvc2004Users * kSvc2004SignaturesPerUser));
  source.svc2004_users = {41};
  EXPECT_EQ(LoadDataset(source).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
TEST(DatasetLoaderNamesTest, TheSignatureSetsAreSignatureData) {
  for (const char* name : {"svc2004", "svc2004-task1", "sigcomp2009-nfi", "sigcomp2009-nisdcc"}) {
    EXPECT_TRUE(IsSignatureDataset(name)) << name;
    absl::StatusOr<DatasetSource> source = NamedDatasetSource(name, "/d");
    ASSERT_TRUE(source.ok()) << name << ": " << source.status();
    EXPECT_EQ(DatasetKind(source->format), FeatureKind::kSignature) << name;
    // Each is read from its own folder of data_dir.
    EXPECT_EQ(LoadNamedDataset(name, "/nonexistent").status().code(), absl::StatusCode::kNotFound)
        << name;
  }
  for (const char* name : {"arabic-digit", "arabic-voice", "sigcomp2009", "manifest.csv"}) {
    EXPECT_FALSE(IsSignatureDataset(name)) << name;
  }
  const absl::Status unknown = NamedDatasetSource("mcyt", "/d").status();
  EXPECT_NE(
      std::string(unknown.message()).find("svc2004-task1, sigcomp2009-nfi, sigcomp2009-nisdcc"),
      std::string::npos)
      << unknown;
}

TEST(DatasetLoaderNamesTest, LoadsTheNamedSignatureSets) {
  SRN_REQUIRE_DATA(task1, "svc2004/Task1");
  SRN_REQUIRE_DATA(sigcomp, "sigcomp2009");
  const struct {
    const char* name;
    size_t examples;
    int labels;
  } sets[] = {{"svc2004-task1", 1600, 40}, {"sigcomp2009-nfi", 1552, 79},
              {"sigcomp2009-nisdcc", 780, 12}};
  for (const auto& set : sets) {
    absl::StatusOr<Dataset> d = LoadNamedDataset(set.name, DataDir());
    ASSERT_TRUE(d.ok()) << set.name << ": " << d.status();
    EXPECT_EQ(d->examples.size(), set.examples) << set.name;
    EXPECT_EQ(d->num_labels(), set.labels) << set.name;
  }
}

TEST(LoadSignatureDatasetsTest, RefusesOtherDatasetsAndRepeats) {
  const absl::Status frames =
      LoadSignatureDatasets({"svc2004", "arabic-digit"}, "/nonexistent").status();
  EXPECT_EQ(frames.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(frames.message()).find("'arabic-digit' is not a signature dataset"),
            std::string::npos)
      << frames;
  EXPECT_EQ(LoadSignatureDatasets({"svc2004", "svc2004"}, "/nonexistent").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadSignatureDatasets({}, "/nonexistent").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Names are checked before anything is read; then the reader's error passes through.
  EXPECT_EQ(LoadSignatureDatasets({"svc2004-task1", "sigcomp2009-nisdcc"}, "/nonexistent")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(LoadSignatureDatasetsTest, MergesTask1AndNisdccIntoDisjointSigners) {
  SRN_REQUIRE_DATA(task1, "svc2004/Task1");
  SRN_REQUIRE_DATA(sigcomp, "sigcomp2009/NISDCC");
  absl::StatusOr<Dataset> d = LoadSignatureDatasets({"svc2004-task1", "sigcomp2009-nisdcc"},
                                                    DataDir());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->examples.size(), 1600u + 780u);
  ASSERT_EQ(d->num_labels(), 40 + 12);
  EXPECT_EQ(d->label_names[0].rfind("svc2004-task1/", 0), 0u) << d->label_names[0];
  EXPECT_EQ(d->label_names[40].rfind("sigcomp2009-nisdcc/", 0), 0u) << d->label_names[40];
  int nisdcc_forgeries = 0;
  for (const Example& e : d->examples) {
    // SVC2004 files come first; every SigComp2009 file (path under sigcomp2009/) has a label of
    // the NISDCC range, forgeries included.
    const bool nisdcc = e.source.find("sigcomp2009") != std::string::npos;
    EXPECT_EQ(nisdcc, e.label >= 40) << e.source << " has label " << e.label;
    nisdcc_forgeries += nisdcc && e.forgery;
  }
  EXPECT_EQ(nisdcc_forgeries, 720);
}

}  // namespace srn
