#include "server/training_data.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/svc2004.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class TrainingDataTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    data_dir_ = dir() + "/data";
    Write("data/sines/a.csv", "1,2\n3,4\n");
    Write("data/sines/b.csv", "5,6\n7,8\n");
    Write("data/sines/manifest.csv", "path,label\na.csv,x\nb.csv,y\n");
    Write("outside.csv", "1,2\n3,4\n");
  }

  static v1::DatasetRef Ref(v1::DatasetFormat format, const std::string& path) {
    v1::DatasetRef ref;
    ref.set_format(format);
    ref.set_path(path);
    return ref;
  }

  // A frames series of `dims` features with one frame per value run.
  static v1::LabelledSeries Frames(const std::string& label, int dims, int frames = 3) {
    v1::LabelledSeries s;
    s.set_label(label);
    s.mutable_series()->mutable_frames()->set_num_features(dims);
    for (int i = 0; i < dims * frames; ++i) s.mutable_series()->mutable_frames()->add_values(i);
    return s;
  }

  std::string data_dir_;
};

TEST_F(TrainingDataTest, DataPathsMustStayInsideTheDataDirectory) {
  EXPECT_EQ(ResolveDataPath("", "x").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ResolveDataPath(data_dir_, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ResolveDataPath(data_dir_, data_dir_ + "/sines/manifest.csv"),
            std::filesystem::canonical(data_dir_ + "/sines/manifest.csv").string());
  EXPECT_EQ(*ResolveDataPath(data_dir_, "sines/manifest.csv"),
            std::filesystem::canonical(data_dir_ + "/sines/manifest.csv").string());
  EXPECT_EQ(ResolveDataPath(data_dir_, "../outside.csv").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ResolveDataPath(data_dir_, "sines/../../outside.csv").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ResolveDataPath(data_dir_, dir() + "/outside.csv").status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(::symlink(dir().c_str(), (data_dir_ + "/link").c_str()), 0);
  EXPECT_EQ(ResolveDataPath(data_dir_, "link/outside.csv").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ResolveDataPath(data_dir_, "missing.csv").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TrainingDataTest, ChecksAndDescribesDatasetReferences) {
  absl::StatusOr<DataDirDataset> csv =
      ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_CSV, "sines/manifest.csv"));
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(csv->source.format, DatasetFormat::kCsv);
  EXPECT_EQ(csv->source.path, std::filesystem::canonical(data_dir_ + "/sines/manifest.csv"));
  EXPECT_EQ(csv->requested_path, "sines/manifest.csv");
  EXPECT_EQ(csv->description, "csv manifest sines/manifest.csv");

  v1::DatasetRef svc = Ref(v1::DATASET_FORMAT_SVC2004, "sines");
  svc.add_svc2004_users(3);
  svc.add_svc2004_users(7);
  absl::StatusOr<DataDirDataset> signatures = ResolveDatasetRef(data_dir_, svc);
  ASSERT_TRUE(signatures.ok()) << signatures.status();
  EXPECT_EQ(signatures->source.format, DatasetFormat::kSvc2004);
  EXPECT_EQ(signatures->source.svc2004_users, (std::vector<int>{3, 7}));
  EXPECT_EQ(signatures->description, "svc2004 sines (users 3,7)");

  v1::DatasetRef voices = Ref(v1::DATASET_FORMAT_ARABIC_DIGIT, "sines");
  voices.set_arabic_label_speaker(true);
  absl::StatusOr<DataDirDataset> arabic = ResolveDatasetRef(data_dir_, voices);
  ASSERT_TRUE(arabic.ok()) << arabic.status();
  EXPECT_EQ(arabic->source.arabic_label, ArabicLabel::kSpeaker);
  EXPECT_EQ(arabic->description, "arabic digits by speaker sines");

  EXPECT_EQ(
      ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_UNSPECIFIED, "sines")).status().code(),
      absl::StatusCode::kInvalidArgument);
  // An unknown format is named as such, with the allowed values.
  const absl::Status unknown =
      ResolveDatasetRef(data_dir_, Ref(static_cast<v1::DatasetFormat>(42), "sines")).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("format: 42 is not a known srn.v1.DatasetFormat value; "
                                   "allowed: DATASET_FORMAT_UNSPECIFIED"),
            std::string::npos)
      << unknown;
  svc.add_svc2004_users(41);
  EXPECT_EQ(ResolveDatasetRef(data_dir_, svc).status().code(), absl::StatusCode::kInvalidArgument);
  v1::DatasetRef users_on_csv = Ref(v1::DATASET_FORMAT_CSV, "sines/manifest.csv");
  users_on_csv.add_svc2004_users(1);
  EXPECT_EQ(ResolveDatasetRef(data_dir_, users_on_csv).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A folder for a manifest, a file for a folder format.
  EXPECT_EQ(ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_CSV, "sines")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_SVC2004, "sines/a.csv"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_CSV, "../outside.csv"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrainingDataTest, ReadsDataDirectoryDatasetsThroughTheLoaders) {
  absl::StatusOr<DataDirDataset> csv =
      ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_CSV, "sines/manifest.csv"));
  ASSERT_TRUE(csv.ok()) << csv.status();
  absl::StatusOr<Dataset> data = LoadDataDirDataset(data_dir_, *csv);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->examples.size(), 2u);
  EXPECT_EQ(data->num_labels(), 2);

  // A manifest inside may not name series files outside.
  Write("data/leaky/manifest.csv", "path,label\n../../outside.csv,x\n");
  absl::StatusOr<DataDirDataset> leaky =
      ResolveDatasetRef(data_dir_, Ref(v1::DATASET_FORMAT_CSV, "leaky/manifest.csv"));
  ASSERT_TRUE(leaky.ok()) << leaky.status();
  const absl::Status refused = LoadDataDirDataset(data_dir_, *leaky).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("leaky/manifest.csv: series file"));

  JobData job;
  job.dataset = *csv;
  FeatureKind kind = FeatureKind::kSignature;
  data = TakeJobData(data_dir_, &job, &kind);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(kind, FeatureKind::kFrames);
  EXPECT_EQ(data->examples.size(), 2u);
}

TEST_F(TrainingDataTest, Svc2004FoldersAreSignatures) {
  SRN_REQUIRE_DATA(task2, "svc2004/Task2");
  const std::string root = std::filesystem::path(task2).parent_path().parent_path().string();
  v1::DatasetRef ref = Ref(v1::DATASET_FORMAT_SVC2004, "svc2004/Task2");
  ref.add_svc2004_users(2);
  absl::StatusOr<DataDirDataset> dataset = ResolveDatasetRef(root, ref);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  JobData job;
  job.dataset = *dataset;
  FeatureKind kind = FeatureKind::kFrames;
  absl::StatusOr<Dataset> data = TakeJobData(root, &job, &kind);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(kind, FeatureKind::kSignature);
  EXPECT_EQ(data->examples.size(), static_cast<size_t>(kSvc2004SignaturesPerUser));
}

TEST_F(TrainingDataTest, UploadsAreCheckedAsTheyArrive) {
  UploadedDataset upload(3, RequestLimits());
  ASSERT_TRUE(upload.Add(Frames("a", 2)).ok());
  ASSERT_TRUE(upload.Add(Frames("b", 2)).ok());
  EXPECT_EQ(upload.Add(Frames("", 2)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(upload.Add(Frames(std::string(257, 'x'), 2)).code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status other_dims = upload.Add(Frames("x", 3));
  EXPECT_EQ(other_dims.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other_dims.message()), HasSubstr("series[2]: has 3 features per frame"));
  v1::LabelledSeries pen;
  pen.set_label("c");
  pen.mutable_series()->mutable_pen();
  const absl::Status mixed = upload.Add(pen);
  EXPECT_EQ(mixed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mixed.message()), HasSubstr("mixes pen samples and frames"));
  ASSERT_TRUE(upload.Add(Frames("a", 2)).ok());
  EXPECT_EQ(upload.Add(Frames("a", 2)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(upload.size(), 3);
  EXPECT_EQ(upload.kind(), FeatureKind::kFrames);

  JobData job;
  job.upload_kind = upload.kind();
  job.upload = upload.Take();
  FeatureKind kind = FeatureKind::kSignature;
  absl::StatusOr<Dataset> data = TakeJobData("", &job, &kind);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(kind, FeatureKind::kFrames);
  EXPECT_EQ(data->examples.size(), 3u);
  EXPECT_EQ(data->label_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(job.upload.has_value());  // read once
  EXPECT_EQ(TakeJobData("", &job, &kind).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace srn
