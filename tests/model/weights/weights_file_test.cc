#include "model/weights/weights_file.h"

#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/nn/architecture.h"
#include "model/nn/parameters.h"
#include "model/data/preprocess.h"
#include "model/nn/similarity_model.h"
#include "model/weights/weights.pb.h"

namespace srn {
namespace {

namespace pb = ::srn::weights::v1;
using ::testing::HasSubstr;

// --- helpers ---------------------------------------------------------------------------------

Preprocessor MakePreprocessor(int raw_dims, int window, FeatureKind kind = FeatureKind::kFrames) {
  Preprocessor p;
  p.kind = kind;
  p.raw_dims = raw_dims;
  p.window = window;
  p.mean.resize(raw_dims);
  p.scale.resize(raw_dims);
  for (int d = 0; d < raw_dims; ++d) {
    p.mean[d] = 0.25f * d - 1.0f;
    p.scale[d] = 1.0f / (d + 1.5f);
  }
  return p;
}

ModelMetadata MakeMetadata() {
  ModelMetadata m;
  m.training_data = "arabic-voice speakers 1-60";
  // Not UTF-8 on purpose: a Latin-1 path on a command line must not make the file unreadable.
  m.command = "srn-train --out=/tmp/mod\xe8le.srnw --epochs=3";
  m.hyperparameters = {{"batch", "32"}, {"lr", "0.001"}, {"margin", ""}};
  m.metrics = {{"val_auc", 0.93}, {"val_eer", 0.0712345678901234}};
  m.seed = 0xfedcba9876543210ULL;
  m.created = "2026-11-25T12:00:00Z";
  m.trained_classes = {"speaker 1", "speaker 2", "speaker 60"};
  ThresholdCalibration t;
  t.points = {{0.01, 0.91, 0.0097, 0.31}, {0.001, 0.97, 0.0009, 0.55}};
  t.eer = 0.071;
  t.eer_threshold = 0.62;
  t.default_choice = "far=0.01";
  t.default_threshold = 0.91;
  t.references = 3;
  t.genuine_trials = 2000;
  t.impostor_trials = 90000;
  t.measured_on = "voice.csv (--protocol=test): 28 classes never trained on";
  m.thresholds = t;
  return m;
}

struct ModelSpec {
  std::string family;
  int hidden = 8;
  int layers = 1;
  int raw_dims = 3;
  int window = 2;
  FeatureKind kind = FeatureKind::kFrames;
  uint64_t seed = 7;
};

std::shared_ptr<const SimilarityModel> MakeModel(const ModelSpec& spec,
                                                 ModelMetadata metadata = MakeMetadata()) {
  absl::StatusOr<Architecture> parsed = ParseFamily(spec.family);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  Architecture arch = *parsed;
  if (!arch.is_logistic()) {
    arch.hidden = spec.hidden;
    arch.layers = spec.layers;
  }
  arch.input_dims = spec.raw_dims * spec.window;
  Vector params = InitParameters(arch, 0.1f, spec.seed);
  // InitParameters leaves biases and c at zero; make them distinct so they are checked too.
  const ParameterLayout layout(arch);
  for (const TensorSpec& t : layout.tensors()) {
    if (t.cols == 1 && t.name != "v") {
      for (int64_t i = 0; i < t.size(); ++i) params[t.offset + i] += 0.001f * (i + 1);
    }
  }
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = SimilarityModel::Create(
      arch, MakePreprocessor(spec.raw_dims, spec.window, spec.kind), std::move(params),
      std::move(metadata));
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

std::shared_ptr<const SimilarityModel> SmallModel() { return MakeModel({"srn-a", 4, 1, 3, 2}); }

// A fresh path in the test's temporary directory.
std::string TempPath(const std::string& name) {
  static int counter = 0;
  return absl::StrCat(::testing::TempDir(), "/weights_file_test_", getpid(), "_", counter++, "_",
                      name);
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

pb::WeightsFile PayloadOf(const std::string& file_bytes) {
  pb::WeightsFile file;
  EXPECT_TRUE(file.ParseFromString(file_bytes.substr(kWeightsHeaderSize)));
  return file;
}

std::string Reframe(const pb::WeightsFile& file, uint32_t version = kWeightsFormatVersion) {
  return weights_internal::FramePayload(file.SerializeAsString(), version);
}

pb::Tensor* FindTensor(pb::WeightsFile* file, const std::string& name) {
  for (pb::Tensor& t : *file->mutable_tensors()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

absl::Status ParseStatus(const std::string& bytes) {
  return ParseModel(bytes, "test.srnw").status();
}

// Reference CRC-32C, one bit at a time.
uint32_t BitwiseCrc32c(const std::string& s) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
  }
  return ~c;
}

uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint64_t Le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

void ExpectSameModel(const SimilarityModel& got, const SimilarityModel& want) {
  const Architecture& a = got.architecture();
  const Architecture& b = want.architecture();
  EXPECT_EQ(a.cell, b.cell);
  EXPECT_EQ(a.recurrent, b.recurrent);
  EXPECT_EQ(a.pooling, b.pooling);
  EXPECT_EQ(a.input_dims, b.input_dims);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.layers, b.layers);

  const Preprocessor& p = got.preprocessor();
  const Preprocessor& q = want.preprocessor();
  EXPECT_EQ(p.kind, q.kind);
  EXPECT_EQ(p.raw_dims, q.raw_dims);
  EXPECT_EQ(p.window, q.window);
  EXPECT_EQ(p.center_series, q.center_series);
  ASSERT_EQ(p.mean.size(), q.mean.size());
  ASSERT_EQ(p.scale.size(), q.scale.size());
  EXPECT_EQ(std::memcmp(p.mean.data(), q.mean.data(), q.mean.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(p.scale.data(), q.scale.data(), q.scale.size() * sizeof(float)), 0);

  ASSERT_EQ(got.params().size(), want.params().size());
  EXPECT_EQ(std::memcmp(got.params().data(), want.params().data(),
                        want.params().size() * sizeof(float)),
            0)
      << "parameters differ";

  const ModelMetadata& m = got.metadata();
  const ModelMetadata& n = want.metadata();
  EXPECT_EQ(m.training_data, n.training_data);
  EXPECT_EQ(m.command, n.command);
  EXPECT_EQ(m.hyperparameters, n.hyperparameters);
  EXPECT_EQ(m.metrics, n.metrics);
  EXPECT_EQ(m.seed, n.seed);
  EXPECT_EQ(m.created, n.created);
  EXPECT_EQ(m.trained_classes, n.trained_classes);
  ASSERT_EQ(m.thresholds.has_value(), n.thresholds.has_value());
  if (n.thresholds.has_value()) {
    const ThresholdCalibration& t = *m.thresholds;
    const ThresholdCalibration& u = *n.thresholds;
    ASSERT_EQ(t.points.size(), u.points.size());
    for (size_t k = 0; k < t.points.size(); ++k) {
      EXPECT_EQ(t.points[k].target_far, u.points[k].target_far);
      EXPECT_EQ(t.points[k].threshold, u.points[k].threshold);
      EXPECT_EQ(t.points[k].far, u.points[k].far);
      EXPECT_EQ(t.points[k].frr, u.points[k].frr);
    }
    EXPECT_EQ(t.eer, u.eer);
    EXPECT_EQ(t.eer_threshold, u.eer_threshold);
    EXPECT_EQ(t.default_choice, u.default_choice);
    EXPECT_EQ(t.default_threshold, u.default_threshold);
    EXPECT_EQ(t.references, u.references);
    EXPECT_EQ(t.genuine_trials, u.genuine_trials);
    EXPECT_EQ(t.impostor_trials, u.impostor_trials);
    EXPECT_EQ(t.measured_on, u.measured_on);
  }
}

// --- round trips -----------------------------------------------------------------------------

class RoundTripTest : public ::testing::TestWithParam<ModelSpec> {};

TEST_P(RoundTripTest, SaveThenLoadGivesTheSameModel) {
  const std::shared_ptr<const SimilarityModel> model = MakeModel(GetParam());
  const std::string path = TempPath("model.srnw");
  ASSERT_TRUE(SaveModel(*model, path).ok());
  EXPECT_FALSE(FileExists(path + ".tmp"));

  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameModel(**loaded, *model);
  EXPECT_EQ(ModelFingerprint(**loaded), ModelFingerprint(*model));
  // Saving the loaded model reproduces the file byte for byte.
  EXPECT_EQ(SerializeModel(**loaded), SerializeModel(*model));

  // The loaded model is usable and computes exactly what the original does.
  Series a(5, GetParam().raw_dims), b(3, GetParam().raw_dims);
  for (int i = 0; i < a.frames().size(); ++i) a.mutable_frames().data()[i] = std::sin(0.7f * i);
  for (int i = 0; i < b.frames().size(); ++i) b.mutable_frames().data()[i] = std::cos(0.3f * i);
  absl::StatusOr<float> want = model->Similarity(a, b);
  absl::StatusOr<float> got = (*loaded)->Similarity(a, b);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
  ::unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Families, RoundTripTest,
    ::testing::Values(ModelSpec{"srn-a", 8, 1, 3, 2}, ModelSpec{"sn-l", 6, 1, 4, 1},
                      ModelSpec{"gru-a", 5, 1, 2, 3}, ModelSpec{"lstm-l", 7, 2, 3, 2},
                      ModelSpec{"gru-s", 4, 2, 3, 2},
                      ModelSpec{"logistic", 0, 0, 5, 2, FeatureKind::kSignature}),
    [](const ::testing::TestParamInfo<ModelSpec>& info) {
      std::string name = info.param.family;
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

TEST(WeightsFileTest, EmptyMetadataRoundTrips) {
  const std::shared_ptr<const SimilarityModel> model =
      MakeModel({"gru-a", 3, 2, 2, 1}, ModelMetadata{});
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded =
      ParseModel(SerializeModel(*model), "mem");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameModel(**loaded, *model);
}

TEST(WeightsFileTest, SaveReplacesAnExistingFile) {
  const std::string path = TempPath("replace.srnw");
  WriteFile(path, "old contents");
  const std::shared_ptr<const SimilarityModel> model = SmallModel();
  ASSERT_TRUE(SaveModel(*model, path).ok());
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(ModelFingerprint(**loaded), ModelFingerprint(*model));
  ::unlink(path.c_str());
}

TEST(WeightsFileTest, SaveIntoAMissingDirectoryFailsAndLeavesNoTemporaryFile) {
  const std::string path = TempPath("no/such/dir/model.srnw");
  const absl::Status status = SaveModel(*SmallModel(), path);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ".tmp"));
}

TEST(WeightsFileTest, SaveOverADirectoryFailsAndRemovesTheTemporaryFile) {
  const std::string dir = TempPath("existing_dir");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const absl::Status status = SaveModel(*SmallModel(), dir);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(FileExists(dir + ".tmp"));
  ::rmdir(dir.c_str());
}

// --- the frame -------------------------------------------------------------------------------

TEST(WeightsFileTest, FrameHoldsMagicVersionLengthAndChecksum) {
  const std::shared_ptr<const SimilarityModel> model = SmallModel();
  const std::string bytes = SerializeModel(*model);
  ASSERT_GT(bytes.size(), kWeightsHeaderSize);
  EXPECT_EQ(bytes.substr(0, 8), std::string("SRNW\r\n\x1a\n", 8));
  EXPECT_EQ(Le32(bytes, 8), 1u);
  EXPECT_EQ(Le64(bytes, 12), bytes.size() - kWeightsHeaderSize);
  const std::string covered = bytes.substr(8, 12) + bytes.substr(kWeightsHeaderSize);
  EXPECT_EQ(Le64(bytes, 20), static_cast<uint64_t>(BitwiseCrc32c(covered)));

  // The payload is a self-describing WeightsFile message.
  const pb::WeightsFile file = PayloadOf(bytes);
  EXPECT_EQ(file.architecture().family(), "srn-a");
  EXPECT_EQ(file.architecture().cell(), pb::CELL_TYPE_RELU);
  EXPECT_EQ(file.architecture().pooling(), pb::POOLING_MEAN);
  EXPECT_EQ(file.architecture().input_dims(), 6);
  EXPECT_EQ(file.architecture().hidden(), 4);
  EXPECT_EQ(file.dimensions().raw_dims(), 3);
  EXPECT_EQ(file.dimensions().embedding_dims(), 4);
  EXPECT_EQ(file.dimensions().parameter_count(), model->layout().total_size());
  EXPECT_EQ(file.preprocessing().kind(), pb::FEATURE_KIND_FRAMES);
  EXPECT_EQ(file.preprocessing().window(), 2);
  EXPECT_EQ(file.preprocessing().mean_size(), 3);
  EXPECT_EQ(file.preprocessing().mean(1), -0.75f);
  ASSERT_EQ(file.tensors_size(), 5);  // l0.W, l0.A, l0.b, v, c
  EXPECT_EQ(file.tensors(0).name(), "l0.W");
  EXPECT_THAT(file.tensors(0).shape(), ::testing::ElementsAre(4, 6));
  EXPECT_EQ(file.tensors(0).data(7), model->params()[7]);
  EXPECT_EQ(file.tensors(4).name(), "c");
  EXPECT_EQ(file.metadata().hyperparameters(0).name(), "batch");  // sorted
  EXPECT_EQ(file.metadata().metrics(1).value(), 0.0712345678901234);
}

TEST(WeightsFileTest, SerializationIsDeterministic) {
  EXPECT_EQ(SerializeModel(*SmallModel()), SerializeModel(*SmallModel()));
}

TEST(Crc32cTest, MatchesPublishedVectors) {
  // RFC 3720 (iSCSI) appendix B.4 and the usual check value.
  const std::string check = "123456789";
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xff');
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  for (auto crc : {weights_internal::Crc32c, weights_internal::Crc32cPortable}) {
    EXPECT_EQ(crc(0, check.data(), check.size()), 0xe3069283u);
    EXPECT_EQ(crc(0, zeros.data(), zeros.size()), 0x8a9136aau);
    EXPECT_EQ(crc(0, ones.data(), ones.size()), 0x62a8ab43u);
    EXPECT_EQ(crc(0, ascending.data(), ascending.size()), 0x46dd794eu);
    EXPECT_EQ(crc(0, nullptr, 0), 0u);
  }
}

TEST(Crc32cTest, AllPathsAgreeWithTheBitwiseReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(3);
  std::string buffer(300, '\0');
  for (char& c : buffer) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; start + n <= buffer.size(); n += 1 + n / 8) {
      const std::string piece = buffer.substr(start, n);
      const uint32_t want = BitwiseCrc32c(piece);
      EXPECT_EQ(weights_internal::Crc32c(0, piece.data(), n), want) << start << " " << n;
      EXPECT_EQ(weights_internal::Crc32cPortable(0, piece.data(), n), want) << start << " " << n;
      // Continuing a CRC over a split equals the CRC of the whole.
      const size_t half = n / 3;
      EXPECT_EQ(weights_internal::Crc32c(weights_internal::Crc32c(0, piece.data(), half),
                                         piece.data() + half, n - half),
                want);
      EXPECT_EQ(weights_internal::Crc32cPortable(
                    weights_internal::Crc32cPortable(0, piece.data(), half), piece.data() + half,
                    n - half),
                want);
    }
  }
}

TEST(Fnv1a64Test, MatchesPublishedVectors) {
  auto fnv = [](const std::string& s) {
    return weights_internal::Fnv1a64(weights_internal::kFnv64Offset, s.data(), s.size());
  };
  EXPECT_EQ(fnv(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv("foobar"), 0x85944171f73967e8ULL);
}

// --- fingerprint -----------------------------------------------------------------------------

TEST(ModelFingerprintTest, IsSixteenHexDigitsAndEqualForEqualWeights) {
  const std::string a = ModelFingerprint(*SmallModel());
  EXPECT_THAT(a, ::testing::MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(ModelFingerprint(*SmallModel()), a);
}

TEST(ModelFingerprintTest, IgnoresMetadata) {
  ModelMetadata other;
  other.command = "something else";
  other.seed = 1;
  other.metrics["val_auc"] = 0.5;
  EXPECT_EQ(ModelFingerprint(*MakeModel({"srn-a", 4, 1, 3, 2}, other)),
            ModelFingerprint(*SmallModel()));
}

TEST(ModelFingerprintTest, ChangesWithAnyWeightOrPreprocessing) {
  const std::shared_ptr<const SimilarityModel> base = SmallModel();
  const std::string want = ModelFingerprint(*base);
  auto rebuild = [&](Vector params, Preprocessor pre) {
    absl::StatusOr<std::shared_ptr<const SimilarityModel>> m =
        SimilarityModel::Create(base->architecture(), std::move(pre), std::move(params));
    EXPECT_TRUE(m.ok()) << m.status();
    return ModelFingerprint(**m);
  };
  EXPECT_EQ(rebuild(base->params(), base->preprocessor()), want);
  // Every single weight, nudged by one ulp.
  for (Eigen::Index i = 0; i < base->params().size(); ++i) {
    Vector p = base->params();
    p[i] = std::nextafter(p[i], 1.0f);
    EXPECT_NE(rebuild(std::move(p), base->preprocessor()), want) << "weight " << i;
  }
  Preprocessor pre = base->preprocessor();
  pre.mean[2] = std::nextafter(pre.mean[2], 10.0f);
  EXPECT_NE(rebuild(base->params(), pre), want);
  pre = base->preprocessor();
  pre.scale[0] *= 2;
  EXPECT_NE(rebuild(base->params(), pre), want);
  pre = base->preprocessor();
  pre.kind = FeatureKind::kSignature;
  EXPECT_NE(rebuild(base->params(), pre), want);
  pre = base->preprocessor();
  pre.center_series = true;
  EXPECT_NE(rebuild(base->params(), pre), want);
}

TEST(WeightsFileTest, CentringSurvivesTheRoundTrip) {
  const std::shared_ptr<const SimilarityModel> base = SmallModel();
  Preprocessor pre = base->preprocessor();
  pre.center_series = true;
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> m =
      SimilarityModel::Create(base->architecture(), pre, base->params());
  ASSERT_TRUE(m.ok());
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded =
      ParseModel(SerializeModel(**m), "mem");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->preprocessor().center_series);
  EXPECT_FALSE(base->preprocessor().center_series);
  EXPECT_EQ(ModelFingerprint(**loaded), ModelFingerprint(**m));
}

TEST(ModelFingerprintTest, DependsOnTheArchitecture) {
  // Same parameter count and values, different pooling: different models.
  const std::shared_ptr<const SimilarityModel> mean_pool = SmallModel();
  Architecture last = mean_pool->architecture();
  last.pooling = Pooling::kLast;
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> m =
      SimilarityModel::Create(last, mean_pool->preprocessor(), mean_pool->params());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NE(ModelFingerprint(**m), ModelFingerprint(*mean_pool));
}

TEST(ModelFingerprintTest, IsStableAcrossBuilds) {
  // Embeddings are stored under this value: if this test fails, the fingerprint encoding changed
  // and every stored embedding would be orphaned. Hand-built logistic model, no randomness.
  Architecture arch = *ParseFamily("logistic");
  arch.input_dims = 2;
  Preprocessor pre;
  pre.raw_dims = 2;
  pre.window = 1;
  pre.mean = Vector::Zero(2);
  pre.scale = Vector::Ones(2);
  Vector params(3);
  params << 0.5f, -0.25f, 1.0f;  // v, c
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> m =
      SimilarityModel::Create(arch, pre, params);
  ASSERT_TRUE(m.ok()) << m.status();
  // Cross-checked against an independent Python implementation of the encoding documented in
  // model/weights_file.cc.
  EXPECT_EQ(ModelFingerprint(**m), "5e04ec84a8f560d0");
}

// --- corruption ------------------------------------------------------------------------------

TEST(WeightsFileCorruptionTest, MissingFileIsNotFound) {
  const std::string path = TempPath("absent.srnw");
  const absl::Status status = LoadModel(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

TEST(WeightsFileCorruptionTest, DirectoryIsRefused) {
  const absl::Status status = LoadModel(::testing::TempDir()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

TEST(WeightsFileCorruptionTest, TruncationAnywhereIsDataLoss) {
  const std::string bytes = SerializeModel(*SmallModel());
  for (size_t size : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{12}, size_t{27},
                      size_t{28}, size_t{29}, bytes.size() / 2, bytes.size() - 4,
                      bytes.size() - 1}) {
    const absl::Status status = ParseStatus(bytes.substr(0, size));
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << size << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("test.srnw: truncated")) << size;
  }
}

TEST(WeightsFileCorruptionTest, TruncatedFileOnDiskIsDataLoss) {
  const std::string path = TempPath("truncated.srnw");
  const std::string bytes = SerializeModel(*SmallModel());
  WriteFile(path, bytes.substr(0, bytes.size() - 10));
  const absl::Status status = LoadModel(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  ::unlink(path.c_str());
}

TEST(WeightsFileCorruptionTest, TrailingBytesAreDataLoss) {
  const absl::Status status = ParseStatus(SerializeModel(*SmallModel()) + '\0');
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("1 unexpected bytes"));
}

TEST(WeightsFileCorruptionTest, EveryFlippedByteIsDataLoss) {
  // The whole file of a small model, header included, with two kinds of flips per byte.
  const std::string bytes = SerializeModel(*SmallModel());
  ASSERT_LT(bytes.size(), 4000u);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char mask : {0x01, 0xff}) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(corrupt[i] ^ mask);
      const absl::Status status = ParseStatus(corrupt);
      ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " ^ " << int{mask} << ": " << status;
    }
  }
}

TEST(WeightsFileCorruptionTest, CorruptPayloadsWithValidChecksumsNeverCrash) {
  // What the checksum would not catch (a buggy or hostile writer): every byte of the payload
  // flipped, re-framed with a valid checksum. Loading may succeed (e.g. a changed weight) or
  // fail with DataLoss or InvalidArgument, but must not crash or accept a broken model.
  const std::string bytes = SerializeModel(*MakeModel({"gru-a", 2, 2, 2, 1}));
  const std::string payload = bytes.substr(kWeightsHeaderSize);
  int loaded = 0, invalid = 0, data_loss = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string corrupt = payload;
      corrupt[i] = static_cast<char>(corrupt[i] ^ mask);
      absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
          ParseModel(weights_internal::FramePayload(corrupt), "fuzz");
      if (model.ok()) {
        ++loaded;
        for (Eigen::Index k = 0; k < (*model)->params().size(); ++k) {
          ASSERT_TRUE(std::isfinite((*model)->params()[k]));
        }
      } else if (model.status().code() == absl::StatusCode::kInvalidArgument) {
        ++invalid;
      } else {
        ASSERT_EQ(model.status().code(), absl::StatusCode::kDataLoss)
            << "byte " << i << ": " << model.status();
        ++data_loss;
      }
    }
  }
  // All three outcomes occur, so the loop really exercised the validation.
  EXPECT_GT(loaded, 0);
  EXPECT_GT(invalid, 0);
  EXPECT_GT(data_loss, 0);
}

TEST(WeightsFileCorruptionTest, WrongMagicIsDataLoss) {
  std::string bytes = SerializeModel(*SmallModel());
  bytes.replace(0, 4, "PK\x03\x04");
  absl::Status status = ParseStatus(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("not an srn weights file"));
  // A short text file too, and the CR LF of the magic turned into LF by a text-mode copy.
  EXPECT_EQ(ParseStatus("hello").code(), absl::StatusCode::kDataLoss);
  const std::string good = SerializeModel(*SmallModel());
  std::string unix_eol = good;
  unix_eol.erase(4, 1);
  status = ParseStatus(unix_eol);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("not an srn weights file"));
}

// Bytes this process has read through read() and the like so far (Linux's /proc/self/io).
int64_t BytesReadSoFar() {
  std::ifstream io("/proc/self/io");
  std::string key;
  int64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return -1;
}

// A sparse file of `size` bytes that starts with `head`.
void WriteSparse(const std::string& path, const std::string& head, int64_t size) {
  WriteFile(path, head);
  ASSERT_EQ(::truncate(path.c_str(), size), 0);
}

TEST(WeightsFileCorruptionTest, LargeFilesAreJudgedByTheirHeaderBeforeBeingRead) {
  constexpr int64_t kSize = 300 << 20;
  const std::string path = TempPath("large.srnw");
  if (BytesReadSoFar() < 0) GTEST_SKIP() << "no /proc/self/io";
  const std::string good = SerializeModel(*SmallModel());
  std::string header = good.substr(0, kWeightsHeaderSize);

  struct Case {
    std::string name, head, message;
    absl::StatusCode code;
  };
  std::string wrong_length = header;
  for (int i = 12; i < 20; ++i) wrong_length[i] = '\x10';  // about 1.2e18 bytes announced
  std::string zero_version = header;
  zero_version.replace(8, 4, std::string(4, '\0'));
  std::string exact = header;
  for (int i = 0; i < 8; ++i) exact[12 + i] = static_cast<char>(((kSize - 28) >> (8 * i)) & 0xff);
  const std::vector<Case> cases = {
      {"garbage", "this is not a weights file at all", "not an srn weights file (bad magic bytes)",
       absl::StatusCode::kDataLoss},
      {"zip", "PK\x03\x04", "not an srn weights file", absl::StatusCode::kDataLoss},
      {"announcing more than the file holds", wrong_length,
       "truncated: the header announces a 1157442765409226768-byte payload but only 314572772 "
       "bytes follow it",
       absl::StatusCode::kDataLoss},
      {"announcing less than the file holds", header,
       absl::StrCat(kSize - 28 - (good.size() - kWeightsHeaderSize),
                    " unexpected bytes after the ", good.size() - kWeightsHeaderSize,
                    "-byte payload"),
       absl::StatusCode::kDataLoss},
      {"version 0", zero_version, "invalid format version 0", absl::StatusCode::kDataLoss},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WriteSparse(path, c.head, kSize);
    const int64_t before = BytesReadSoFar();
    const absl::Status status = LoadModel(path).status();
    const int64_t read = BytesReadSoFar() - before;
    EXPECT_EQ(status.code(), c.code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + ": " + c.message));
    EXPECT_LT(read, 4096) << "bytes read before refusing";
  }
  // A header that agrees with the file's size is worth reading the payload for (which then
  // fails its checksum).
  WriteSparse(path, exact, kSize);
  const absl::Status status = LoadModel(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("checksum mismatch"));
  ::unlink(path.c_str());
}

TEST(WeightsFileCorruptionTest, NewerVersionIsRefusedClearly) {
  const std::string bytes = SerializeModel(*SmallModel());
  const std::string payload = bytes.substr(kWeightsHeaderSize);
  const absl::Status status = ParseStatus(weights_internal::FramePayload(payload, 99));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("written by a newer srn"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("version 99"));
  // Version 0 was never written.
  EXPECT_EQ(ParseStatus(weights_internal::FramePayload(payload, 0)).code(),
            absl::StatusCode::kDataLoss);
  // Re-framing with the current version gives back the original file exactly.
  EXPECT_EQ(weights_internal::FramePayload(payload), bytes);
}

TEST(WeightsFileCorruptionTest, PayloadThatIsNotAMessageIsDataLoss) {
  const absl::Status status = ParseStatus(weights_internal::FramePayload("\xff\xff\xff\xff"));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("not a valid"));
}

TEST(WeightsFileCorruptionTest, EmptyMessageIsInvalidArgument) {
  const absl::Status status = ParseStatus(weights_internal::FramePayload(""));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("no architecture"));
}

// --- well-formed but inconsistent files ------------------------------------------------------

struct Edit {
  std::string what;
  std::function<void(pb::WeightsFile*)> apply;
  std::string message;  // expected in the error
};

TEST(WeightsFileConsistencyTest, InconsistentModelsAreInvalidArgumentNamingTheProblem) {
  const std::string bytes = SerializeModel(*SmallModel());  // srn-a h=4 in=6 (3 x window 2)
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<Edit> edits = {
      {"W with an extra column",
       [](pb::WeightsFile* f) {
         pb::Tensor* t = FindTensor(f, "l0.W");
         t->set_shape(1, 7);
         for (int i = 0; i < 4; ++i) t->add_data(0.0f);
       },
       "tensor 'l0.W' has shape [4, 7] but architecture srn-a h=4 layers=1 in=6 needs [4, 6]"},
      {"transposed bias",
       [](pb::WeightsFile* f) {
         pb::Tensor* t = FindTensor(f, "l0.b");
         t->set_shape(0, 1);
         t->set_shape(1, 4);
       },
       "tensor 'l0.b' has shape [1, 4]"},
      {"shape with three dims", [](pb::WeightsFile* f) { FindTensor(f, "c")->add_shape(1); },
       "tensor 'c' has shape [1, 1, 1]"},
      {"too few values",
       [](pb::WeightsFile* f) { FindTensor(f, "l0.A")->mutable_data()->RemoveLast(); },
       "tensor 'l0.A' holds 15 values but its shape [4, 4] needs 16"},
      {"missing tensor",
       [](pb::WeightsFile* f) {
         auto* tensors = f->mutable_tensors();
         for (int i = 0; i < tensors->size(); ++i) {
           if (tensors->Get(i).name() == "l0.A") {
             tensors->DeleteSubrange(i, 1);
             break;
           }
         }
       },
       "missing tensor 'l0.A'"},
      {"extra tensor",
       [](pb::WeightsFile* f) {
         pb::Tensor* t = f->add_tensors();
         t->set_name("l1.W");
         t->add_shape(4);
         t->add_shape(4);
         t->mutable_data()->Resize(16, 0.0f);
       },
       "unexpected tensor 'l1.W'"},
      {"duplicate tensor", [](pb::WeightsFile* f) { *f->add_tensors() = *FindTensor(f, "v"); },
       "tensor 'v' appears more than once"},
      {"calibrated threshold above 1",
       [](pb::WeightsFile* f) {
         f->mutable_metadata()->mutable_thresholds()->mutable_points(0)->set_threshold(1.5);
       },
       "metadata: thresholds: the point for FAR 0.01 has a value outside [0, 1] (recalibrate"},
      {"calibration without trials",
       [](pb::WeightsFile* f) {
         f->mutable_metadata()->mutable_thresholds()->set_genuine_trials(0);
       },
       "metadata: thresholds: it needs at least one reference and trials of each kind"},
      {"NaN weight", [&](pb::WeightsFile* f) { FindTensor(f, "l0.W")->set_data(13, nan); },
       "tensor 'l0.W' value [2, 1] is not finite (nan)"},
      {"infinite bias", [&](pb::WeightsFile* f) { FindTensor(f, "c")->set_data(0, -inf); },
       "tensor 'c' value [0, 0] is not finite (-inf)"},
      {"hidden size disagreeing with the tensors",
       [](pb::WeightsFile* f) {
         f->mutable_architecture()->set_hidden(5);
         f->mutable_dimensions()->set_embedding_dims(5);
         f->mutable_dimensions()->set_parameter_count(5 * 6 + 25 + 5 + 5 + 1);
       },
       "tensor 'l0.W' has shape [4, 6]"},
      {"NaN in the preprocessing mean",
       [&](pb::WeightsFile* f) { f->mutable_preprocessing()->set_mean(1, nan); },
       "preprocessing: mean of feature 1 is not finite"},
      {"scale too short",
       [](pb::WeightsFile* f) { f->mutable_preprocessing()->mutable_scale()->RemoveLast(); },
       "preprocessing: scale has 2 entries; raw_dims is 3"},
      {"window not feeding the encoder",
       [](pb::WeightsFile* f) { f->mutable_preprocessing()->set_window(3); },
       "preprocessing yields 9 features per frame (raw_dims 3 x window 3) but "
       "architecture.input_dims is 6"},
      {"window out of range", [](pb::WeightsFile* f) { f->mutable_preprocessing()->set_window(0); },
       "preprocessing: window must be in [1, 64]"},
      {"unset feature kind",
       [](pb::WeightsFile* f) {
         f->mutable_preprocessing()->set_kind(pb::FEATURE_KIND_UNSPECIFIED);
       },
       "preprocessing.kind is unset or unknown (0)"},
      {"unknown cell",
       [](pb::WeightsFile* f) {
         f->mutable_architecture()->set_cell(static_cast<pb::CellType>(17));
       },
       "architecture.cell is unset or unknown (17)"},
      {"unset pooling",
       [](pb::WeightsFile* f) { f->mutable_architecture()->set_pooling(pb::POOLING_UNSPECIFIED); },
       "architecture.pooling is unset or unknown (0)"},
      {"impossible architecture",
       [](pb::WeightsFile* f) { f->mutable_architecture()->set_layers(0); },
       "architecture: layers must be in [1, 16], got 0"},
      {"family disagreeing with the fields",
       [](pb::WeightsFile* f) { f->mutable_architecture()->set_family("gru-a"); },
       "architecture.family is 'gru-a' but the architecture fields describe 'srn-a'"},
      {"wrong parameter count",
       [](pb::WeightsFile* f) { f->mutable_dimensions()->set_parameter_count(1); },
       "parameter_count 1) disagree"},
      {"wrong raw_dims in dimensions",
       [](pb::WeightsFile* f) { f->mutable_dimensions()->set_raw_dims(6); },
       "dimensions (raw_dims 6"},
      {"no preprocessing", [](pb::WeightsFile* f) { f->clear_preprocessing(); },
       "the file has no preprocessing"},
      {"duplicate hyperparameter",
       [](pb::WeightsFile* f) {
         *f->mutable_metadata()->add_hyperparameters() = f->metadata().hyperparameters(1);
       },
       "metadata: hyperparameter 'lr' appears more than once"},
  };
  for (const Edit& edit : edits) {
    pb::WeightsFile file = PayloadOf(bytes);
    edit.apply(&file);
    const absl::Status status = ParseStatus(Reframe(file));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << edit.what << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("test.srnw: ")) << edit.what;
    EXPECT_THAT(std::string(status.message()), HasSubstr(edit.message)) << edit.what;
  }
}

TEST(WeightsFileConsistencyTest, TensorsMayComeInAnyOrder) {
  const std::shared_ptr<const SimilarityModel> model = MakeModel({"gru-a", 3, 2, 2, 1});
  pb::WeightsFile file = PayloadOf(SerializeModel(*model));
  std::reverse(file.mutable_tensors()->begin(), file.mutable_tensors()->end());
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded =
      ParseModel(Reframe(file), "reversed");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameModel(**loaded, *model);
}

TEST(WeightsFileConsistencyTest, UnknownFieldsFromANewerMinorWriterAreIgnored) {
  // Version 1 readers must accept additive changes: append field 1000 (varint 5) to the payload.
  const std::shared_ptr<const SimilarityModel> model = SmallModel();
  const std::string bytes = SerializeModel(*model);
  const std::string extended = bytes.substr(kWeightsHeaderSize) + std::string("\xc0\x3e\x05", 3);
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded =
      ParseModel(weights_internal::FramePayload(extended), "extended");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameModel(**loaded, *model);
}

// --- size ------------------------------------------------------------------------------------

// A model of several megabytes round-trips and keeps its fingerprint. (How fast it loads is
// measured by the model benchmark, not asserted here: a loaded machine would make that flaky.)
TEST(WeightsFileSizeTest, AMultiMegabyteModelRoundTrips) {
  // lstm-a h=256, 2 layers: ~815k floats, 3.3 MB.
  const std::shared_ptr<const SimilarityModel> model = MakeModel({"lstm-a", 256, 2, 13, 2});
  const std::string bytes = SerializeModel(*model);
  ASSERT_GT(bytes.size(), 3u << 20);
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> loaded = ParseModel(bytes, "big");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameModel(**loaded, *model);
  EXPECT_EQ(ModelFingerprint(**loaded), ModelFingerprint(*model));
}

}  // namespace
}  // namespace srn
