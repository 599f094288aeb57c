#include "server/similarity_core.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "model/signature/signature_dtw.h"
#include "model/data/signature_features.h"
#include "model/weights/weights_file.h"
#include "server/series_input.h"
#include "server/server.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr int kDims = 3;

std::shared_ptr<const ServingModel> Serving(uint64_t seed, const std::string& family = "srn-a") {
  return *MakeServingModel(testing::RandomModel(family, kDims, 8, seed), "test", "");
}

// A signature model served with the DTW fusion `fusion` and single-reference spread `spread`.
std::shared_ptr<const ServingModel> SignatureServing(
    DtwFusionCalibration fusion, std::optional<DtwSpreadModel> spread = std::nullopt) {
  CalibrationOverride calibration;
  calibration.dtw_fusion = fusion;
  calibration.dtw_spread_set = true;
  calibration.dtw_spread = spread;
  return *MakeServingModel(
      testing::RandomModel("gru-a", kSignatureFeatureDims, 8, 11, /*signature=*/true), "test", "",
      calibration);
}

v1::SeriesInput RandomInput(int frames, std::mt19937_64* rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  v1::SeriesInput in;
  in.mutable_frames()->set_num_features(kDims);
  for (int i = 0; i < frames * kDims; ++i) in.mutable_frames()->add_values(n(*rng));
  return in;
}

class SimilarityCoreTest : public ::testing::Test {
 protected:
  // The store outlives cores built on it through `store_` (a raw view of the owned one).
  std::unique_ptr<SimilarityCore> MakeCore(std::shared_ptr<const ServingModel> model,
                                           std::unique_ptr<SubjectStore> store = nullptr) {
    if (store == nullptr) store = NewInMemorySubjectStore();
    auto core =
        std::make_unique<SimilarityCore>(std::move(model), std::move(store), options_, nullptr);
    EXPECT_TRUE(core->Recover().ok());
    return core;
  }

  v1::EnrollRequest Enroll(const std::string& id, std::vector<v1::SeriesInput> refs,
                           v1::EnrollMode mode = v1::ENROLL_MODE_ADD) {
    v1::EnrollRequest r;
    r.set_subject_id(id);
    r.set_mode(mode);
    for (auto& in : refs) *r.add_references() = in;
    return r;
  }

  CoreOptions options_;
  std::mt19937_64 rng_{42};
};

TEST_F(SimilarityCoreTest, EmbedMatchesTheModelAndTagsIt) {
  auto model = Serving(1);
  auto core = MakeCore(model);
  v1::EmbedRequest req;
  *req.add_series() = RandomInput(5, &rng_);
  *req.add_series() = RandomInput(9, &rng_);
  absl::StatusOr<v1::EmbedResponse> resp = core->Embed(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->model_id(), model->id);
  ASSERT_EQ(resp->embeddings_size(), 2);
  const auto s = *Series::FromValues(req.series(1).frames().values(), kDims);
  const RowMatrix direct = *model->model->Embed({&s});
  for (int k = 0; k < direct.cols(); ++k)
    EXPECT_FLOAT_EQ(resp->embeddings(1).values(k), direct(0, k));
}

TEST_F(SimilarityCoreTest, EnrollAddsOrReplacesAndVerifyFusesScores) {
  auto core = MakeCore(Serving(2));
  const v1::SeriesInput a = RandomInput(6, &rng_), b = RandomInput(7, &rng_),
                        c = RandomInput(8, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("alice", {a})).ok());
  absl::StatusOr<v1::EnrollResponse> added = core->Enroll(Enroll("alice", {b, c}));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->subject().reference_count(), 3);
  absl::StatusOr<v1::EnrollResponse> replaced =
      core->Enroll(Enroll("alice", {b}, v1::ENROLL_MODE_REPLACE));
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->subject().reference_count(), 1);
  EXPECT_EQ(replaced->subject().created_unix_ms(), added->subject().created_unix_ms());
  ASSERT_TRUE(core->Enroll(Enroll("alice", {a, c})).ok());  // now b, a, c

  v1::VerifyRequest v;
  v.set_subject_id("alice");
  *v.mutable_query() = a;
  v.set_fusion(v1::FUSION_MAX);
  absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->reference_scores_size(), 3);
  // The query is reference 1 itself: its score is that of identical embeddings.
  const float s0 = r->reference_scores(0), s1 = r->reference_scores(1), s2 = r->reference_scores(2);
  EXPECT_FLOAT_EQ(r->score(), std::max({s0, s1, s2}));
  v.set_fusion(v1::FUSION_MEAN);
  EXPECT_FLOAT_EQ(core->Verify(v)->score(), (s0 + s1 + s2) / 3);
  v.set_fusion(v1::FUSION_TOP_K_MEAN);
  v.set_top_k(2);
  std::vector<float> sorted = {s0, s1, s2};
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_FLOAT_EQ(core->Verify(v)->score(), (sorted[0] + sorted[1]) / 2);
}

TEST_F(SimilarityCoreTest, ThresholdPrecedenceRequestThenSubjectThenServer) {
  options_.default_threshold = 0.0f;  // everything accepted by default
  auto core = MakeCore(Serving(3));
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("s", {a})).ok());
  v1::VerifyRequest v;
  v.set_subject_id("s");
  *v.mutable_query() = RandomInput(6, &rng_);
  EXPECT_EQ(core->Verify(v)->threshold(), 0.0f);
  EXPECT_TRUE(core->Verify(v)->accepted());
  v1::EnrollRequest strict = Enroll("s", {a});
  strict.set_threshold(1.0f);
  ASSERT_TRUE(core->Enroll(strict).ok());
  EXPECT_EQ(core->Verify(v)->threshold(), 1.0f);
  EXPECT_FALSE(core->Verify(v)->accepted());
  // A later enrollment without a threshold keeps the subject's.
  ASSERT_TRUE(core->Enroll(Enroll("s", {a})).ok());
  EXPECT_EQ(core->Verify(v)->threshold(), 1.0f);
  v.set_threshold(0.25f);
  EXPECT_EQ(core->Verify(v)->threshold(), 0.25f);
}

// The mean similarity among the embeddings of `inputs` under `model`, computed independently.
double MeanMutual(const ServingModel& model, const std::vector<v1::SeriesInput>& inputs) {
  std::vector<Series> series;
  for (const auto& in : inputs) series.push_back(*Series::FromValues(in.frames().values(), kDims));
  std::vector<const Series*> pointers;
  for (const Series& s : series) pointers.push_back(&s);
  const RowMatrix e = *model.model->Embed(pointers);
  double sum = 0;
  int pairs = 0;
  for (int i = 0; i < e.rows(); ++i) {
    for (int j = i + 1; j < e.rows(); ++j, ++pairs)
      sum += model.model->Score(e.row(i).data(), e.row(j).data());
  }
  return sum / pairs;
}

TEST_F(SimilarityCoreTest, ThresholdShiftDerivesTheThresholdFromTheReferences) {
  auto model = Serving(4);
  auto core = MakeCore(model);
  const std::vector<v1::SeriesInput> refs = {RandomInput(6, &rng_), RandomInput(7, &rng_),
                                             RandomInput(5, &rng_)};
  v1::EnrollRequest request = Enroll("s", {refs[0], refs[1]});
  request.set_threshold_shift(-0.05f);
  absl::StatusOr<v1::EnrollResponse> enrolled = core->Enroll(request);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  const double expected2 = MeanMutual(*model, {refs[0], refs[1]}) - 0.05;
  EXPECT_NEAR(enrolled->subject().threshold(), expected2, 1e-6);
  EXPECT_EQ(enrolled->subject().threshold_shift(), -0.05f);
  v1::VerifyRequest v;
  v.set_subject_id("s");
  *v.mutable_query() = RandomInput(6, &rng_);
  EXPECT_NEAR(core->Verify(v)->threshold(), expected2, 1e-6);

  // ADD keeps the shift and re-derives over all references.
  enrolled = core->Enroll(Enroll("s", {refs[2]}));
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_NEAR(enrolled->subject().threshold(), MeanMutual(*model, refs) - 0.05, 1e-6);

  // A new model re-derives it from its own similarities.
  auto next = Serving(5, "gru-a");
  ASSERT_TRUE(core->SwapModel(next).ok());
  EXPECT_NEAR(core->Verify(v)->threshold(), MeanMutual(*next, refs) - 0.05, 1e-6);

  // A fixed threshold replaces the shift; the derived one cannot come from a single reference.
  v1::EnrollRequest fixed = Enroll("s", {refs[0]}, v1::ENROLL_MODE_REPLACE);
  fixed.set_threshold(0.9f);
  enrolled = core->Enroll(fixed);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_FALSE(enrolled->subject().has_threshold_shift());
  EXPECT_EQ(core->Verify(v)->threshold(), 0.9f);
  v1::EnrollRequest one = Enroll("t", {refs[0]});
  one.set_threshold_shift(0.0f);
  EXPECT_EQ(core->Enroll(one).status().code(), absl::StatusCode::kInvalidArgument);
  v1::EnrollRequest both = Enroll("t", {refs[0], refs[1]});
  both.set_threshold_shift(0.0f);
  both.set_threshold(0.5f);
  EXPECT_EQ(core->Enroll(both).status().code(), absl::StatusCode::kInvalidArgument);
  v1::EnrollRequest far = Enroll("t", {refs[0], refs[1]});
  far.set_threshold_shift(1.5f);
  EXPECT_EQ(core->Enroll(far).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core->GetSubject([] {
                  v1::GetSubjectRequest g;
                  g.set_subject_id("t");
                  return g;
                }()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SimilarityCoreTest, IdentifyRanksTheEnrolledCopyFirst) {
  auto core = MakeCore(Serving(4));
  std::vector<v1::SeriesInput> refs;
  for (int i = 0; i < 20; ++i) {
    refs.push_back(RandomInput(6 + i % 5, &rng_));
    ASSERT_TRUE(core->Enroll(Enroll("s" + std::to_string(i), {refs.back()})).ok());
  }
  v1::IdentifyRequest req;
  *req.mutable_query() = refs[13];
  req.set_top_k(3);
  req.set_fusion(v1::FUSION_MAX);
  absl::StatusOr<v1::IdentifyResponse> r = core->Identify(req);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->candidates_size(), 3);
  // Identify's scores are Verify's scores against each subject.
  for (const auto& c : r->candidates()) {
    v1::VerifyRequest v;
    v.set_subject_id(c.subject_id());
    *v.mutable_query() = refs[13];
    v.set_fusion(v1::FUSION_MAX);
    EXPECT_NEAR(core->Verify(v)->score(), c.score(), 1e-6);
  }
  EXPECT_GE(r->candidates(0).score(), r->candidates(1).score());
  req.set_threshold(1.0f);  // open set: nobody is that similar
  EXPECT_EQ(core->Identify(req)->candidates_size(), 0);
}

TEST_F(SimilarityCoreTest, ListPagesThroughEverySubjectOnce) {
  auto core = MakeCore(Serving(5));
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(core->Enroll(Enroll("id" + std::to_string(100 + i), {RandomInput(3, &rng_)})).ok());
  }
  std::vector<std::string> seen;
  v1::ListSubjectsRequest req;
  req.set_page_size(10);
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListSubjectsResponse> r = core->ListSubjects(req);
    ASSERT_TRUE(r.ok());
    for (const auto& s : r->subjects()) seen.push_back(s.subject_id());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST_F(SimilarityCoreTest, DeleteThenNotFound) {
  auto core = MakeCore(Serving(6));
  ASSERT_TRUE(core->Enroll(Enroll("x", {RandomInput(4, &rng_)})).ok());
  v1::DeleteSubjectRequest d;
  d.set_subject_id("x");
  EXPECT_TRUE(core->DeleteSubject(d).ok());
  EXPECT_EQ(core->DeleteSubject(d).status().code(), absl::StatusCode::kNotFound);
  v1::GetSubjectRequest g;
  g.set_subject_id("x");
  EXPECT_EQ(core->GetSubject(g).status().code(), absl::StatusCode::kNotFound);
}

// A store that lets the test look at what the core wrote, across cores.
class SharedStore final : public SubjectStore {
 public:
  explicit SharedStore(SubjectStore* inner) : inner_(inner) {}
  absl::Status Put(const SubjectRecord& r) override { return inner_->Put(r); }
  absl::Status PutAll(const std::vector<SubjectRecord>& r) override { return inner_->PutAll(r); }
  absl::Status Delete(const std::string& id) override { return inner_->Delete(id); }
  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    return inner_->ForEach(fn);
  }
  absl::StatusOr<int64_t> Count() override { return inner_->Count(); }

 private:
  SubjectStore* inner_;
};

TEST_F(SimilarityCoreTest, RecoverReembedsReferencesOfAnotherModel) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto old_model = Serving(7);
  const v1::SeriesInput a = RandomInput(6, &rng_);
  {
    auto core = MakeCore(old_model, std::make_unique<SharedStore>(backing.get()));
    ASSERT_TRUE(core->Enroll(Enroll("alice", {a})).ok());
  }
  auto new_model = Serving(8, "gru-a");
  auto core = MakeCore(new_model, std::make_unique<SharedStore>(backing.get()));
  v1::GetSubjectRequest g;
  g.set_subject_id("alice");
  ASSERT_TRUE(core->GetSubject(g).ok());
  EXPECT_EQ(core->GetSubject(g)->model_id(), new_model->id);
  // The stored embedding is now the new model's embedding of the stored input.
  const auto s = *Series::FromValues(a.frames().values(), kDims);
  const RowMatrix expected = *new_model->model->Embed({&s});
  bool found = false;
  ASSERT_TRUE(backing->ForEach([&](SubjectRecord r) {
    EXPECT_EQ(r.model_id, new_model->id);
    for (int k = 0; k < expected.cols(); ++k)
      EXPECT_FLOAT_EQ(r.references[0].embedding[k], expected(0, k));
    found = true;
    return absl::OkStatus();
  }).ok());
  EXPECT_TRUE(found);
}

// A pen trajectory of one of two shapes, slightly perturbed by `rng` (a "signer's" signature).
v1::SeriesInput Signature(int shape, std::mt19937_64* rng) {
  std::normal_distribution<double> noise(0.0, 0.02);
  std::uniform_real_distribution<double> speed(0.9, 1.1);
  const double rate = speed(*rng);
  const int samples = static_cast<int>(60 / rate);
  v1::SeriesInput in;
  v1::PenTrajectory* pen = in.mutable_pen();
  for (int i = 0; i < samples; ++i) {
    const double t = 6.283 * i / samples;
    const double x = shape == 0 ? std::cos(t) + 0.3 * std::cos(3 * t) : t;
    const double y = shape == 0 ? std::sin(2 * t) : std::sin(t) * std::sin(4 * t);
    pen->add_x(100 * (x + noise(*rng)));
    pen->add_y(100 * (y + noise(*rng)));
    pen->add_t_ms(10.0 * i);
    pen->add_pressure(500 + 200 * std::sin(t + shape) + 10 * noise(*rng));
  }
  return in;
}

TEST_F(SimilarityCoreTest, VerifyFusesTheDtwVerifierForSignatureModels) {
  const DtwFusionCalibration fusion = {2.0, -1.0, 2.0, -3.0};
  auto model = SignatureServing(fusion);
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                             Signature(0, &rng_)};
  v1::EnrollRequest enroll = Enroll("a", refs);
  enroll.set_threshold_shift(0.1f);
  absl::StatusOr<v1::EnrollResponse> enrolled = core->Enroll(enroll);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  // The fused score is already normalized by the references: the derived threshold is 0.5 + t.
  EXPECT_NEAR(enrolled->subject().threshold(), 0.6, 1e-6);

  // Everything the server computes, recomputed independently.
  const RequestLimits limits;
  std::vector<Series> raw, prepared;
  for (const auto& in : refs) {
    raw.push_back(*ToRawSeries(in, *model->model, limits, "ref"));
    prepared.push_back(*PrepareForSignatureDtw(raw.back(), SignatureDtwOptions{}));
  }
  std::vector<const Series*> pointers;
  for (const Series& r : raw) pointers.push_back(&r);
  const RowMatrix emb = *model->model->Embed(pointers);
  double mutual = 0;
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j)
      mutual += model->model->Score(emb.row(i).data(), emb.row(j).data()) / 3;
  }
  const double spread = MeanMutualDtwDistance(prepared, SignatureDtwOptions{});
  auto verify = [&](const v1::SeriesInput& query) {
    v1::VerifyRequest v;
    v.set_subject_id("a");
    *v.mutable_query() = query;
    absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::VerifyResponse();
  };
  double genuine_ratio = 0, genuine_score = 0;
  for (int shape : {0, 1}) {
    const v1::SeriesInput query = Signature(shape, &rng_);
    const v1::VerifyResponse r = verify(query);
    ASSERT_TRUE(r.has_srn_score() && r.has_dtw_distance_ratio());
    const Series q = *ToRawSeries(query, *model->model, limits, "q");
    const Series qp = *PrepareForSignatureDtw(q, SignatureDtwOptions{});
    double distance = 0, srn = 0;
    const RowMatrix qe = *model->model->Embed({&q});
    for (int k = 0; k < 3; ++k) {
      distance += SignatureDtwDistance(qp, prepared[k], SignatureDtwOptions{}) / 3;
      srn += model->model->Score(qe.row(0).data(), emb.row(k).data()) / 3;
    }
    EXPECT_NEAR(r.srn_score(), srn, 1e-5);
    EXPECT_NEAR(r.dtw_distance_ratio(), distance / spread, 1e-4);
    EXPECT_NEAR(r.score(),
                FusedVerificationScore(srn, mutual, distance / spread, 3, fusion),
                1e-5);
    EXPECT_EQ(r.accepted(), r.score() >= 0.6f);
    if (shape == 0) {
      genuine_ratio = r.dtw_distance_ratio();
      genuine_score = r.score();
    } else {
      // The other shape is far from the references, so its fused score is lower.
      EXPECT_GT(r.dtw_distance_ratio(), 2 * genuine_ratio);
      EXPECT_LT(r.score(), genuine_score);
    }
  }

  // GetModelInfo says so.
  absl::StatusOr<v1::ModelInfo> info = core->GetModelInfo();
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(info->has_dtw_fusion());
  EXPECT_EQ(info->dtw_fusion().weight_many(), 2.0);
  EXPECT_EQ(info->dtw_fusion().offset_one(), -1.0);

  // Without the fusion (the same store recovered by a server with other options) the score is
  // the SRN's, and the derived threshold follows the references' mutual similarity again.
  auto unfused = SignatureServing(DtwFusionCalibration{});
  ASSERT_EQ(unfused->id, model->id);
  core = MakeCore(unfused, std::make_unique<SharedStore>(backing.get()));
  const v1::VerifyResponse plain = verify(refs[0]);
  EXPECT_FALSE(plain.has_srn_score());
  EXPECT_FALSE(core->GetModelInfo()->has_dtw_fusion());
  EXPECT_NEAR(plain.threshold(), mutual + 0.1, 1e-5);
  // A calibration recorded in the model's weights file is the one used, unless overridden.
  ModelMetadata metadata = model->model->metadata();
  VerificationCalibration recorded_calibration;
  recorded_calibration.dtw_fusion = fusion;
  metadata.verification = FormatVerificationCalibration(recorded_calibration);
  std::shared_ptr<const SimilarityModel> recorded = *SimilarityModel::Create(
      model->model->architecture(), model->model->preprocessor(), model->model->params(), metadata);
  core = MakeCore(*MakeServingModel(recorded, "test", ""),
                  std::make_unique<SharedStore>(backing.get()));
  EXPECT_TRUE(verify(refs[0]).has_srn_score());
  EXPECT_EQ(verify(refs[0]).score(), verify(refs[0]).score());
  EXPECT_EQ(core->GetModelInfo()->dtw_fusion().weight_many(), 2.0);
  CalibrationOverride off;
  off.dtw_fusion = DtwFusionCalibration{};
  core = MakeCore(*MakeServingModel(recorded, "test", "", off),
                  std::make_unique<SharedStore>(backing.get()));
  EXPECT_FALSE(verify(refs[0]).has_srn_score());
  // Nor is DTW fused for a model that does not take signatures.
  auto frames = MakeCore(Serving(12));
  ASSERT_TRUE(frames->Enroll(Enroll("f", {RandomInput(6, &rng_), RandomInput(5, &rng_)})).ok());
  v1::VerifyRequest v;
  v.set_subject_id("f");
  *v.mutable_query() = RandomInput(6, &rng_);
  EXPECT_FALSE(frames->Verify(v)->has_srn_score());
}

TEST_F(SimilarityCoreTest, OneReferenceDividesTheDtwDistanceByThePredictedSpread) {
  const DtwFusionCalibration fusion = {2.0, -1.0, 2.0, -3.0};
  DtwSpreadModel spread_model;
  spread_model.coefficients = {0.2, -0.3, 0.5, 0.1};
  spread_model.log_min = -3;
  spread_model.log_max = 3;
  auto model = SignatureServing(fusion, spread_model);
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  const v1::SeriesInput ref = Signature(0, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("one", {ref})).ok());
  const v1::SeriesInput query = Signature(0, &rng_);

  const RequestLimits limits;
  const Series ref_features = *ToRawSeries(ref, *model->model, limits, "ref");
  const Series query_features = *ToRawSeries(query, *model->model, limits, "q");
  const double distance = SignatureDtwDistance(
      *PrepareForSignatureDtw(query_features, SignatureDtwOptions{}),
      *PrepareForSignatureDtw(ref_features, SignatureDtwOptions{}), SignatureDtwOptions{});
  const double spread = *PredictDtwSpread(spread_model, ref_features);
  ASSERT_GT(std::abs(spread - 1), 0.05);  // the division is visible
  auto verify = [&]() {
    v1::VerifyRequest v;
    v.set_subject_id("one");
    *v.mutable_query() = query;
    absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::VerifyResponse();
  };
  v1::VerifyResponse r = verify();
  EXPECT_NEAR(r.dtw_distance_ratio(), distance / spread, 1e-4 * distance);
  EXPECT_NEAR(r.score(),
              FusedVerificationScore(r.srn_score(), 0, distance / spread, 1, fusion),
              1e-5);
  EXPECT_EQ(core->GetModelInfo()->dtw_fusion().single_reference_spread(),
            FormatDtwSpreadModel(spread_model));

  // Without a spread model (the same store, recovered by a server with other options) the
  // distance is used as it is.
  core = MakeCore(SignatureServing(fusion), std::make_unique<SharedStore>(backing.get()));
  r = verify();
  EXPECT_NEAR(r.dtw_distance_ratio(), distance, 1e-4 * distance);
  EXPECT_EQ(core->GetModelInfo()->dtw_fusion().single_reference_spread(), "");
}

// The bundled model carries the calibration srn-eval measured for it (docs/DEFAULT_MODEL.md).
TEST(BundledCalibrationTest, TravelsInTheBundledWeightsFile) {
  absl::StatusOr<std::shared_ptr<const ServingModel>> bundled =
      LoadServingModel(SRN_DEFAULT_MODEL_PATH, "");
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  EXPECT_TRUE((*bundled)->FusesDtw());
  EXPECT_TRUE((*bundled)->calibration.dtw_spread.has_value());
}

TEST_F(SimilarityCoreTest, SwapModelReembedsAndSwitchesTogether) {
  auto core = MakeCore(Serving(9));
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("alice", {a})).ok());
  auto next = Serving(10, "lstm-l");
  ASSERT_TRUE(core->SwapModel(next).ok());
  EXPECT_EQ(core->model()->id, next->id);
  v1::VerifyRequest v;
  v.set_subject_id("alice");
  *v.mutable_query() = a;
  absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_id(), next->id);
  const auto s = *Series::FromValues(a.frames().values(), kDims);
  const RowMatrix e = *next->model->Embed({&s});
  EXPECT_NEAR(r->score(), next->model->Score(e.row(0).data(), e.row(0).data()), 1e-6);

  // A model that cannot take the stored series leaves everything as it was.
  auto incompatible =
      *MakeServingModel(testing::RandomModel("srn-a", kDims + 1, 8, 11), "test", "");
  EXPECT_EQ(core->SwapModel(incompatible).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(core->model()->id, next->id);
  EXPECT_TRUE(core->Verify(v).ok());
}

}  // namespace
}  // namespace srn
