#include "server/similarity_core.h"

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/preprocess.h"
#include "model/data/signature_features.h"
#include "model/signature/frame_states.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/verification.h"
#include "model/weights/weights_file.h"
#include "server/series_input.h"
#include "server/server.h"
#include "tests/testing/requests.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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
  return testing::RandomFramesInput(frames, kDims, rng);
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

  v1::EnrollRequest Enroll(const std::string& id, const std::vector<v1::SeriesInput>& refs,
                           v1::EnrollMode mode = v1::ENROLL_MODE_ADD) {
    return testing::EnrollRequestOf(id, refs, mode);
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
  auto model = Serving(2);
  auto core = MakeCore(model);
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
  // The references kept, in order, are b, a, c: each score is the model's similarity of the query
  // (a) to that one (the second is a itself).
  const auto similarity = [&](const v1::SeriesInput& x) {
    const Series qa = *Series::FromValues(a.frames().values(), kDims);
    const Series sx = *Series::FromValues(x.frames().values(), kDims);
    return *model->model->Similarity(qa, sx);
  };
  EXPECT_FLOAT_EQ(r->reference_scores(0), similarity(b));
  EXPECT_FLOAT_EQ(r->reference_scores(1), similarity(a));
  EXPECT_FLOAT_EQ(r->reference_scores(2), similarity(c));
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

// Serving(seed) with thresholds recorded as srn-eval --calibrate does.
std::shared_ptr<const ServingModel> CalibratedServing(uint64_t seed, double default_threshold) {
  const auto m = testing::RandomModel("srn-a", kDims, 8, seed);
  ModelMetadata meta;
  ThresholdCalibration t;
  t.points = {{0.01, default_threshold, 0.009, 0.3}};
  t.default_choice = "far=0.01";
  t.default_threshold = default_threshold;
  t.genuine_trials = 10;
  t.impostor_trials = 1000;
  t.measured_on = "held-out sines";
  meta.thresholds = t;
  meta.trained_classes = {"a", "b"};
  return *MakeServingModel(
      *SimilarityModel::Create(m->architecture(), m->preprocessor(), m->params(), meta), "test",
      "");
}

TEST_F(SimilarityCoreTest, DefaultThresholdIsTheModelsCalibratedOneAndVerifySaysWhy) {
  auto core = MakeCore(CalibratedServing(3, 0.875));
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("s", {a})).ok());
  v1::VerifyRequest v;
  v.set_subject_id("s");
  *v.mutable_query() = RandomInput(6, &rng_);
  absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->threshold(), 0.875f);
  EXPECT_EQ(r->accepted(), r->score() >= 0.875f);
  EXPECT_EQ(r->threshold_source(),
            "the model's calibration (far=0.01, measured on held-out sines)");
  v.set_threshold(0.25f);
  EXPECT_EQ(core->Verify(v)->threshold_source(), "the request's threshold");

  absl::StatusOr<v1::ModelInfo> info = core->GetModelInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->default_threshold(), 0.875f);
  EXPECT_THAT(info->default_threshold_source(), HasSubstr("the model's calibration"));
  ASSERT_EQ(info->threshold_calibration().points_size(), 1);
  EXPECT_EQ(info->threshold_calibration().points(0).threshold(), 0.875);
  EXPECT_EQ(info->threshold_calibration().measured_on(), "held-out sines");
  EXPECT_THAT(info->trained_classes(), ElementsAre("a", "b"));
}

TEST_F(SimilarityCoreTest, TheServersDefaultThresholdOverridesTheModels) {
  options_.default_threshold = 0.125f;
  auto core = MakeCore(CalibratedServing(3, 0.875));
  EXPECT_EQ(core->GetModelInfo()->default_threshold(), 0.125f);
  EXPECT_EQ(core->GetModelInfo()->default_threshold_source(), "the server's --default_threshold");
}

TEST_F(SimilarityCoreTest, AnUncalibratedModelAcceptsAtOneHalfAndSaysHowToCalibrate) {
  auto core = MakeCore(Serving(3));
  EXPECT_EQ(core->GetModelInfo()->default_threshold(), 0.5f);
  EXPECT_THAT(core->GetModelInfo()->default_threshold_source(),
              HasSubstr("uncalibrated: this model records no threshold (srn-eval --calibrate"));
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("s", {a})).ok());
  v1::VerifyRequest v;
  v.set_subject_id("s");
  *v.mutable_query() = a;
  EXPECT_THAT(core->Verify(v)->threshold_source(), HasSubstr("0.5, uncalibrated"));
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
                }())
                .status()
                .code(),
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
  absl::Status Put(const SubjectRecord& r, const Precondition& e) override {
    return inner_->Put(r, e);
  }
  absl::StatusOr<std::vector<std::string>> PutAll(const std::vector<SubjectRecord>& r,
                                                  const std::vector<Precondition>& e) override {
    return inner_->PutAll(r, e);
  }
  absl::Status Delete(const std::string& id) override { return inner_->Delete(id); }
  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    return inner_->ForEach(fn);
  }
  absl::StatusOr<int64_t> Count() override { return inner_->Count(); }
  absl::StatusOr<SubjectRecord> Get(const std::string& id) override { return inner_->Get(id); }

 private:
  SubjectStore* inner_;
};

// The stored inputs of subject `id` (empty when it is not stored).
std::vector<std::string> StoredInputs(SubjectStore& store, const std::string& id) {
  absl::StatusOr<SubjectRecord> record = store.Get(id);
  std::vector<std::string> inputs;
  if (record.ok()) {
    for (const StoredReference& r : record->references) inputs.push_back(r.input);
  }
  return inputs;
}

// Two servers on one store, neither following the other (the worst case of a follower that lags):
// a write never overwrites a change the writer has not seen. Enroll applies the stored subject and
// adds to it; a model swap leaves the other server's changes (and deletions) as stored.
TEST_F(SimilarityCoreTest, ServersSharingAStoreNeverOverwriteEachOthersChanges) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto model = Serving(7);
  auto a = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  auto b = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  const v1::SeriesInput r1 = RandomInput(5, &rng_), r2 = RandomInput(6, &rng_),
                        r3 = RandomInput(7, &rng_);
  ASSERT_TRUE(a->Enroll(Enroll("alice", {r1})).ok());
  ASSERT_TRUE(a->Enroll(Enroll("bob", {r1})).ok());
  // B has not seen alice: its Enroll adds to what A stored.
  absl::StatusOr<v1::EnrollResponse> added = b->Enroll(Enroll("alice", {r2}));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->subject().reference_count(), 2);
  EXPECT_EQ(StoredInputs(*backing, "alice"),
            (std::vector<std::string>{r1.SerializeAsString(), r2.SerializeAsString()}));
  // And A, which has not seen B's addition, adds to it in turn.
  added = a->Enroll(Enroll("alice", {r3}));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->subject().reference_count(), 3);
  EXPECT_EQ(StoredInputs(*backing, "alice").size(), 3u);

  // B replaces bob (applying A's bob first); A then deletes him. B, swapping models, re-embeds
  // its stale alice (2 references) and its bob: neither write reaches the store, and B serves
  // both as stored (alice with 3 references, no bob).
  ASSERT_TRUE(b->Enroll(Enroll("bob", {r2}, v1::ENROLL_MODE_REPLACE)).ok());
  v1::DeleteSubjectRequest d;
  d.set_subject_id("bob");
  ASSERT_TRUE(a->DeleteSubject(d).ok());
  auto new_model = Serving(8, "gru-a");
  ASSERT_TRUE(b->SwapModel(new_model).ok());
  EXPECT_EQ(StoredInputs(*backing, "alice").size(), 3u);
  EXPECT_TRUE(StoredInputs(*backing, "bob").empty()) << "a deleted subject came back";
  v1::GetSubjectRequest g;
  g.set_subject_id("alice");
  absl::StatusOr<v1::Subject> served = b->GetSubject(g);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->reference_count(), 3);
  EXPECT_EQ(served->model_id(), new_model->id);
  g.set_subject_id("bob");
  EXPECT_EQ(b->GetSubject(g).status().code(), absl::StatusCode::kNotFound);
}

// A server following an activation another made adopts the embeddings that server stored, and
// re-embeds (in memory, writing nothing) only a subject stored under another model since.
TEST_F(SimilarityCoreTest, AdoptModelServesTheEmbeddingsTheActivatingServerStored) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto old_model = Serving(7);
  auto activator = MakeCore(old_model, std::make_unique<SharedStore>(backing.get()));
  auto follower = MakeCore(old_model, std::make_unique<SharedStore>(backing.get()));
  ASSERT_TRUE(activator->Enroll(Enroll("alice", {RandomInput(5, &rng_)})).ok());
  ASSERT_TRUE(activator->Enroll(Enroll("bob", {RandomInput(6, &rng_)})).ok());
  auto new_model = Serving(8, "gru-a");
  ASSERT_TRUE(activator->SwapModel(new_model).ok());
  // Written by the follower, still on the old model, after the swap.
  ASSERT_TRUE(follower->Enroll(Enroll("carol", {RandomInput(7, &rng_)})).ok());
  const SubjectRecord carol_before = *backing->Get("carol");

  ServingModelAdoption adopted;
  ASSERT_TRUE(follower->AdoptModel(new_model, &adopted).ok());
  EXPECT_EQ(adopted.as_stored, 2);
  EXPECT_EQ(adopted.reembedded, 1);
  EXPECT_EQ(follower->model()->id, new_model->id);
  EXPECT_EQ(*backing->Get("carol"), carol_before);  // nothing written
  v1::GetSubjectRequest g;
  for (const char* id : {"alice", "bob", "carol"}) {
    g.set_subject_id(id);
    absl::StatusOr<v1::Subject> subject = follower->GetSubject(g);
    ASSERT_TRUE(subject.ok()) << subject.status();
    EXPECT_EQ(subject->model_id(), new_model->id) << id;
  }
  // Its scores are the activator's.
  const v1::SeriesInput query = RandomInput(5, &rng_);
  for (const char* id : {"alice", "bob"}) {
    v1::VerifyRequest verify;
    verify.set_subject_id(id);
    *verify.mutable_query() = query;
    absl::StatusOr<v1::VerifyResponse> mine = follower->Verify(verify);
    absl::StatusOr<v1::VerifyResponse> theirs = activator->Verify(verify);
    ASSERT_TRUE(mine.ok() && theirs.ok()) << mine.status() << theirs.status();
    EXPECT_EQ(mine->score(), theirs->score()) << id;
  }
}

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
  ASSERT_TRUE(backing
                  ->ForEach([&](SubjectRecord r) {
                    EXPECT_EQ(r.model_id, new_model->id);
                    for (int k = 0; k < expected.cols(); ++k)
                      EXPECT_FLOAT_EQ(r.references[0].embedding[k], expected(0, k));
                    found = true;
                    return absl::OkStatus();
                  })
                  .ok());
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

// A Cancellation that says stop after `allowed` checks (counting them).
class StopAfter final : public Cancellation {
 public:
  explicit StopAfter(int allowed) : allowed_(allowed) {}
  absl::Status Check() const override {
    return ++checks_ > allowed_ ? absl::DeadlineExceededError("deadline passed") : absl::OkStatus();
  }
  int checks() const { return checks_; }

 private:
  const int allowed_;
  mutable int checks_ = 0;
};

TEST_F(SimilarityCoreTest, AbandonedEnrollAndVerifyStopWithTheReasonAndStoreNothing) {
  auto core = MakeCore(SignatureServing({2.0, -1.0, 2.0, -3.0}));
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                             Signature(0, &rng_), Signature(0, &rng_)};
  // How many times an enrollment that runs to the end checks (per reference, per pair, inside
  // each DTW); stopped at any of them, it stores nothing and says why.
  StopAfter never(1 << 20);
  ASSERT_TRUE(core->Enroll(Enroll("counted", refs), never).ok());
  const int enroll_checks = never.checks();
  EXPECT_GE(enroll_checks, 4 + 6);
  v1::GetSubjectRequest get;
  get.set_subject_id("a");
  for (int allowed : {0, 2, 5, enroll_checks - 1}) {
    StopAfter stop(allowed);
    const absl::Status status = core->Enroll(Enroll("a", refs), stop).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << allowed;
    EXPECT_EQ(core->GetSubject(get).status().code(), absl::StatusCode::kNotFound) << allowed;
  }

  v1::VerifyRequest v;
  v.set_subject_id("counted");
  *v.mutable_query() = Signature(0, &rng_);
  StopAfter verify_never(1 << 20);
  const absl::StatusOr<v1::VerifyResponse> full = core->Verify(v, verify_never);
  ASSERT_TRUE(full.ok()) << full.status();
  for (int allowed : {0, 1, verify_never.checks() - 1}) {
    StopAfter stop(allowed);
    EXPECT_EQ(core->Verify(v, stop).status().code(), absl::StatusCode::kDeadlineExceeded)
        << allowed;
  }
  EXPECT_EQ(core->Verify(v)->score(), full->score());  // nothing was left behind
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
    EXPECT_NEAR(r.score(), FusedVerificationScore(srn, mutual, distance / spread, 3, fusion), 1e-5);
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
  off.dtw_fusion_off = true;
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
  EXPECT_NEAR(r.score(), FusedVerificationScore(r.srn_score(), 0, distance / spread, 1, fusion),
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
  // A learned verifier: DTW over its states, fused with the DTW verifier, with both one-reference
  // spread models.
  EXPECT_TRUE((*bundled)->VerifiesByStates());
  EXPECT_EQ((*bundled)->calibration.learned, LearnedScore::kStatesDtw);
  EXPECT_TRUE((*bundled)->FusesDtw());
  EXPECT_TRUE((*bundled)->calibration.states_spread.has_value());
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

// ---- Verification by the encoder's per-frame states (LearnedScore::kStatesDtw) ----------------

// A signature model that verifies by its states: random GRU parameters whose metadata records
// what the frame-triplet objective records (L2-normalized frames, Euclidean frame cost) and the
// verification calibration `calibration`, as srn-eval --stamp_out writes it.
std::shared_ptr<const ServingModel> StatesServing(const VerificationCalibration& calibration,
                                                  uint64_t seed = 11) {
  const std::shared_ptr<const SimilarityModel> base =
      testing::RandomModel("gru-a", kSignatureFeatureDims, 8, seed, /*signature=*/true);
  ModelMetadata metadata = base->metadata();
  metadata.hyperparameters["objective"] = "frame-triplet";
  metadata.hyperparameters["frame_normalization"] = "l2";
  metadata.hyperparameters["frame_cost"] = "euclidean";
  metadata.verification = FormatVerificationCalibration(calibration);
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
      SimilarityModel::Create(base->architecture(), base->preprocessor(), base->params(), metadata);
  EXPECT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::shared_ptr<const ServingModel>> serving =
      MakeServingModel(*std::move(model), "test", "");
  EXPECT_TRUE(serving.ok()) << serving.status();
  return *serving;
}

VerificationCalibration StatesCalibration(double weight,
                                          std::optional<DtwSpreadModel> spread = std::nullopt) {
  VerificationCalibration c;
  c.learned = LearnedScore::kStatesDtw;
  c.states_dtw = DtwOptions::Fraction(0.3).WithCost(DtwLocalCost::kEuclidean);
  c.states_spread = spread;
  c.dtw_fusion = {weight, -1.2, weight, -1.6};
  return c;
}

// The server's flags replace parts of a states model's calibration, never what it verifies by:
// --dtw_fusion=off drops the DTW verifier but keeps the offsets that calibrate the score, and
// overriding both the fusion and the DTW spread still verifies by the states.
TEST(CalibrationOverrideTest, AStatesModelKeepsItsScoreAndOffsets) {
  const std::shared_ptr<const ServingModel> recorded =
      StatesServing(StatesCalibration(0.5, DtwSpreadModel{}));
  CalibrationOverride off;
  off.dtw_fusion_off = true;
  absl::StatusOr<std::shared_ptr<const ServingModel>> served =
      MakeServingModel(recorded->model, "test", "", off);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_TRUE((*served)->VerifiesByStates());
  EXPECT_FALSE((*served)->FusesDtw());
  EXPECT_EQ((*served)->calibration.dtw_fusion.weight_many, 0.0);
  EXPECT_EQ((*served)->calibration.dtw_fusion.offset_one, -1.2);
  EXPECT_EQ((*served)->calibration.dtw_fusion.offset_many, -1.6);
  CalibrationOverride both;
  both.dtw_fusion = DtwFusionCalibration{1.0, -2.0, 1.0, -3.0};
  both.dtw_spread_set = true;
  served = MakeServingModel(recorded->model, "test", "", both);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_TRUE((*served)->VerifiesByStates());
  EXPECT_TRUE((*served)->calibration.states_spread.has_value());
  EXPECT_EQ((*served)->calibration.dtw_fusion.offset_many, -3.0);
  EXPECT_FALSE((*served)->calibration.dtw_spread.has_value());
}

DtwSpreadModel SomeSpreadModel() {
  DtwSpreadModel spread;
  spread.coefficients = {0.2, -0.3, 0.5, 0.1};
  spread.log_min = -3;
  spread.log_max = 3;
  return spread;
}

// What Verify must answer for a states model, computed here from the model's own functions:
// FrameStates, StatesDistance and, when weighted, the DTW verifier, combined by
// ScoreVerification.
VerificationScore ExpectedStatesScore(const ServingModel& serving,
                                      const std::vector<v1::SeriesInput>& refs,
                                      const v1::SeriesInput& query,
                                      std::vector<double>* similarities) {
  const SimilarityModel& model = *serving.model;
  const VerificationCalibration& c = serving.calibration;
  const RequestLimits limits;
  const Series query_features = *ToRawSeries(query, model, limits, "q");
  const Series query_states = *FrameStates(model, query_features);
  std::vector<Series> ref_features, ref_states;
  for (const v1::SeriesInput& ref : refs) {
    ref_features.push_back(*ToRawSeries(ref, model, limits, "ref"));
    ref_states.push_back(*FrameStates(model, ref_features.back()));
  }
  const int n = static_cast<int>(refs.size());
  similarities->clear();
  for (int r = 0; r < n; ++r) {
    similarities->push_back(-StatesDistance(query_states, ref_states[r], c.states_dtw));
  }
  double spread = 1;
  if (n >= 2) {
    double sum = 0;
    for (int a = 0; a < n; ++a) {
      for (int b = a + 1; b < n; ++b) {
        sum += StatesDistance(ref_states[a], ref_states[b], c.states_dtw);
      }
    }
    spread = sum / (n * (n - 1) / 2);
  } else if (c.states_spread.has_value()) {
    spread = *PredictDtwSpread(*c.states_spread, ref_features[0]);
  }
  VerificationEvidence evidence;
  evidence.similarities = *similarities;
  evidence.mutual_similarity = -spread;
  std::vector<double> distances;
  if ((n >= 2 ? c.dtw_fusion.weight_many : c.dtw_fusion.weight_one) > 0) {
    const SignatureDtwOptions dtw;
    std::vector<Series> prepared;
    for (const Series& f : ref_features) prepared.push_back(*PrepareForSignatureDtw(f, dtw));
    const Series q = *PrepareForSignatureDtw(query_features, dtw);
    for (const Series& p : prepared) distances.push_back(SignatureDtwDistance(q, p, dtw));
    evidence.dtw_distances = distances;
    evidence.dtw_spread = n >= 2 ? MeanMutualDtwDistance(prepared, dtw) : 1.0;
  }
  VerificationPolicy policy;
  policy.learned = LearnedScore::kStatesDtw;
  policy.dtw_fusion = c.dtw_fusion;
  return ScoreVerification(evidence, policy);
}

class StatesVerifyTest : public SimilarityCoreTest {
 protected:
  v1::VerifyResponse Verify(SimilarityCore& core, const std::string& id,
                            const v1::SeriesInput& query) {
    v1::VerifyRequest v;
    v.set_subject_id(id);
    *v.mutable_query() = query;
    absl::StatusOr<v1::VerifyResponse> r = core.Verify(v);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::VerifyResponse();
  }

  // Verify's answer against ExpectedStatesScore, bit for bit (as floats, as the response has them).
  void ExpectExact(SimilarityCore& core, const std::string& id,
                   const std::vector<v1::SeriesInput>& refs, const v1::SeriesInput& query,
                   const std::string& where) {
    SCOPED_TRACE(where);
    std::vector<double> similarities;
    const VerificationScore expected =
        ExpectedStatesScore(*core.model(), refs, query, &similarities);
    const v1::VerifyResponse r = Verify(core, id, query);
    ASSERT_TRUE(std::isfinite(expected.score));
    EXPECT_EQ(r.score(), static_cast<float>(expected.score));
    ASSERT_TRUE(expected.states_ratio.has_value());
    ASSERT_TRUE(r.has_srn_score());
    EXPECT_EQ(r.srn_score(), static_cast<float>(-*expected.states_ratio));
    EXPECT_EQ(r.has_dtw_distance_ratio(), expected.dtw_ratio.has_value());
    if (expected.dtw_ratio.has_value()) {
      EXPECT_EQ(r.dtw_distance_ratio(), static_cast<float>(*expected.dtw_ratio));
    }
    ASSERT_EQ(r.reference_scores_size(), static_cast<int>(similarities.size()));
    for (size_t i = 0; i < similarities.size(); ++i) {
      EXPECT_EQ(r.reference_scores(i), static_cast<float>(similarities[i]));
    }
    EXPECT_EQ(r.fusion(), v1::FUSION_MEAN);
    EXPECT_EQ(r.model_id(), core.model()->id);
  }
};

TEST_F(StatesVerifyTest, ScoreIsScoreVerificationOfTheStatesBitForBit) {
  for (const double weight : {0.0, 0.5}) {
    for (const bool with_spread : {false, true}) {
      const std::string where =
          absl::StrCat("DTW weight ", weight, with_spread ? ", " : ", no ", "states spread");
      auto model = StatesServing(
          StatesCalibration(weight, with_spread ? std::optional(SomeSpreadModel()) : std::nullopt));
      ASSERT_TRUE(model->VerifiesByStates());
      EXPECT_EQ(model->FusesDtw(), weight > 0);
      auto core = MakeCore(model);
      const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                                 Signature(0, &rng_), Signature(0, &rng_)};
      // One reference; three enrolled at once; four by adding one to the three (the appended
      // subject keeps the first three's states and computes the fourth's).
      ASSERT_TRUE(core->Enroll(Enroll("one", {refs[0]})).ok());
      ASSERT_TRUE(core->Enroll(Enroll("three", {refs[0], refs[1], refs[2]})).ok());
      ASSERT_TRUE(core->Enroll(Enroll("four", {refs[0], refs[1], refs[2]})).ok());
      ASSERT_TRUE(core->Enroll(Enroll("four", {refs[3]})).ok());
      for (const int shape : {0, 1}) {
        const v1::SeriesInput query = Signature(shape, &rng_);
        ExpectExact(*core, "one", {refs[0]}, query, where + ", 1 reference");
        ExpectExact(*core, "three", {refs[0], refs[1], refs[2]}, query, where + ", 3 references");
        ExpectExact(*core, "four", refs, query, where + ", 4 references (appended)");
      }
      if (with_spread) {
        // The prediction is really used: without it the one-reference score differs.
        std::vector<double> sims;
        auto plain = StatesServing(StatesCalibration(weight));
        const v1::SeriesInput query = Signature(0, &rng_);
        EXPECT_NE(Verify(*core, "one", query).score(),
                  static_cast<float>(ExpectedStatesScore(*plain, {refs[0]}, query, &sims).score));
      }
    }
  }
}

TEST_F(StatesVerifyTest, GenuineLikeQueryScoresHigherThanAnotherShape) {
  auto core = MakeCore(StatesServing(StatesCalibration(0.0)));
  ASSERT_TRUE(
      core->Enroll(Enroll("s", {Signature(0, &rng_), Signature(0, &rng_), Signature(0, &rng_)}))
          .ok());
  for (int trial = 0; trial < 3; ++trial) {
    const v1::VerifyResponse genuine = Verify(*core, "s", Signature(0, &rng_));
    const v1::VerifyResponse other = Verify(*core, "s", Signature(1, &rng_));
    EXPECT_GT(genuine.score(), other.score());
    EXPECT_GT(genuine.srn_score(), other.srn_score());
    EXPECT_GT(genuine.score(), 0.0f);
    EXPECT_LT(genuine.score(), 1.0f);
  }
}

TEST_F(StatesVerifyTest, ThresholdShiftStartsFromTheCalibratedEqualErrorPoint) {
  auto core = MakeCore(StatesServing(StatesCalibration(0.5)));
  v1::EnrollRequest e = Enroll("s", {Signature(0, &rng_), Signature(0, &rng_)});
  e.set_threshold_shift(0.1f);
  absl::StatusOr<v1::EnrollResponse> enrolled = core->Enroll(e);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  const v1::VerifyResponse r = Verify(*core, "s", Signature(0, &rng_));
  EXPECT_FLOAT_EQ(r.threshold(), 0.6f);
  EXPECT_EQ(r.accepted(), r.score() >= 0.6f);
}

TEST_F(StatesVerifyTest, ModelSwapsReprepareSubjects) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto embedding = SignatureServing(DtwFusionCalibration{2.0, -1.0, 2.0, -3.0});
  auto states = StatesServing(StatesCalibration(0.5, SomeSpreadModel()), /*seed=*/23);
  ASSERT_NE(embedding->id, states->id);
  auto core = MakeCore(embedding, std::make_unique<SharedStore>(backing.get()));
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                             Signature(0, &rng_)};
  ASSERT_TRUE(core->Enroll(Enroll("three", refs)).ok());
  ASSERT_TRUE(core->Enroll(Enroll("one", {refs[0]})).ok());
  const v1::SeriesInput query = Signature(0, &rng_);
  const v1::VerifyResponse before = Verify(*core, "three", query);

  // Embedding -> states: the enrolled subjects verify by the new model's states.
  int64_t reembedded = 0;
  ASSERT_TRUE(core->SwapModel(states, &reembedded).ok());
  EXPECT_EQ(reembedded, 2);
  ExpectExact(*core, "three", refs, query, "after the swap to states");
  ExpectExact(*core, "one", {refs[0]}, query, "after the swap to states, 1 reference");
  // A server restarting on the store (subjects stored under the states model) prepares them
  // the same way.
  auto recovered = MakeCore(states, std::make_unique<SharedStore>(backing.get()));
  ExpectExact(*recovered, "three", refs, query, "recovered under states");
  ExpectExact(*recovered, "one", {refs[0]}, query, "recovered under states, 1 reference");
  // Identify still ranks by the embeddings.
  v1::IdentifyRequest identify;
  *identify.mutable_query() = query;
  absl::StatusOr<v1::IdentifyResponse> candidates = recovered->Identify(identify);
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  EXPECT_EQ(candidates->candidates_size(), 2);

  // States -> embedding: back to the embedding score, the same as before.
  ASSERT_TRUE(core->SwapModel(embedding).ok());
  const v1::VerifyResponse after = Verify(*core, "three", query);
  EXPECT_EQ(after.score(), before.score());
  EXPECT_EQ(after.srn_score(), before.srn_score());
  EXPECT_EQ(after.reference_scores(0), before.reference_scores(0));
}

// The stored record of `id` in `store`.
SubjectRecord StoredRecord(SubjectStore& store, const std::string& id) {
  SubjectRecord found;
  EXPECT_TRUE(store
                  .ForEach([&](SubjectRecord record) {
                    if (record.id == id) found = std::move(record);
                    return absl::OkStatus();
                  })
                  .ok());
  return found;
}

// Enrollment stores the references' spreads with the subject, tagged by the model and the
// options; a restart under the same ones reads them instead of deriving them again (a value
// planted in the store is what Verify then divides by), and answers exactly as before.
TEST_F(StatesVerifyTest, ARestartReusesTheStoredSpreads) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto model = StatesServing(StatesCalibration(0.5));
  const std::string tag = DerivationTag(*model, options_.dtw);
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                             Signature(0, &rng_)};
  const v1::SeriesInput query = Signature(0, &rng_);
  {
    auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
    ASSERT_TRUE(core->Enroll(Enroll("s", refs)).ok());
  }
  SubjectRecord record = StoredRecord(*backing, "s");
  const std::optional<ReferenceSpreads> stored = DecodeSpreads(record.derived, tag);
  ASSERT_TRUE(stored.has_value()) << record.derived;
  EXPECT_GT(stored->states, 0);
  EXPECT_GT(stored->dtw, 0);
  {
    auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
    EXPECT_EQ(core->subjects_missing_spreads(), 0);
    ExpectExact(*core, "s", refs, query, "restarted");
  }
  // Plant other spreads under the same tag: the restarted server uses them as stored.
  record.derived = EncodeSpreads(tag, {stored->dtw * 2, stored->states * 2});
  ASSERT_TRUE(backing->Put(record, Precondition::Any()).ok());
  auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  std::vector<double> similarities;
  const VerificationScore derived = ExpectedStatesScore(*model, refs, query, &similarities);
  const v1::VerifyResponse planted = Verify(*core, "s", query);
  EXPECT_NE(planted.score(), static_cast<float>(derived.score));
  EXPECT_EQ(planted.srn_score(), static_cast<float>(-*derived.states_ratio / 2));
}

// A store without spreads (written before they were stored), or with spreads under another tag
// (other options): the server recovers without deriving them, Verify derives them for itself and
// answers exactly, and DeriveMissingSpreads stores them; a stopped one stores nothing.
TEST_F(StatesVerifyTest, SpreadsTheStoreLacksAreDerivedOnDemandThenStored) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto model = StatesServing(StatesCalibration(0.5, SomeSpreadModel()));
  const std::string tag = DerivationTag(*model, options_.dtw);
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_)};
  {
    auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
    ASSERT_TRUE(core->Enroll(Enroll("one", {refs[0]})).ok());
    ASSERT_TRUE(core->Enroll(Enroll("two", refs)).ok());
  }
  const std::string one_derived = StoredRecord(*backing, "one").derived;
  const std::string two_derived = StoredRecord(*backing, "two").derived;
  SubjectRecord one = StoredRecord(*backing, "one");
  one.derived.clear();
  SubjectRecord two = StoredRecord(*backing, "two");
  SignatureDtwOptions other = options_.dtw;
  other.dtw.band_fraction = 0.2;
  two.derived = EncodeSpreads(DerivationTag(*model, other), *DecodeSpreads(two_derived, tag));
  ASSERT_TRUE(backing->PutAll({one, two}, {}).status().ok());

  {
    auto stopped = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
    CancellationFlag stop;
    stop.Cancel();
    EXPECT_EQ(stopped->DeriveMissingSpreads(stop).status().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(stopped->subjects_missing_spreads(), 2);
    EXPECT_EQ(StoredRecord(*backing, "one"), one);
  }
  auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  EXPECT_EQ(core->subjects_missing_spreads(), 2);
  const v1::SeriesInput query = Signature(0, &rng_);
  ExpectExact(*core, "one", {refs[0]}, query, "derived by Verify, 1 reference");
  ExpectExact(*core, "two", refs, query, "derived by Verify, 2 references");
  absl::StatusOr<int64_t> derived = core->DeriveMissingSpreads(NeverCancelled());
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ(*derived, 2);
  EXPECT_EQ(core->subjects_missing_spreads(), 0);
  EXPECT_EQ(StoredRecord(*backing, "one").derived, one_derived);
  EXPECT_EQ(StoredRecord(*backing, "two").derived, two_derived);
  ExpectExact(*core, "two", refs, query, "stored");
  EXPECT_EQ(*core->DeriveMissingSpreads(NeverCancelled()), 0);
}

// DTW work over the call's budget is refused before it starts, saying what and how to proceed:
// Enroll's mutual distances (none for one reference) and Verify's query against the references.
TEST_F(StatesVerifyTest, CallsOverTheDtwBudgetAreRefusedBeforeTheWork) {
  options_.max_dtw_cells = 1;
  auto core = MakeCore(StatesServing(StatesCalibration(0.5)));
  absl::StatusOr<v1::EnrollResponse> two =
      core->Enroll(Enroll("two", {Signature(0, &rng_), Signature(0, &rng_)}));
  EXPECT_EQ(two.status().code(), absl::StatusCode::kResourceExhausted) << two.status();
  EXPECT_THAT(std::string(two.status().message()),
              HasSubstr("enrolling (the mutual distances of the subject's 2 references) would "
                        "compute"));
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("--max_dtw_cells_per_call"));
  EXPECT_EQ(core->enrolled_subjects(), 0);
  ASSERT_TRUE(core->Enroll(Enroll("one", {Signature(0, &rng_)})).ok());
  v1::VerifyRequest v;
  v.set_subject_id("one");
  *v.mutable_query() = Signature(0, &rng_);
  absl::StatusOr<v1::VerifyResponse> refused = core->Verify(v);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("against 1 references) would compute"));
  // The default budget takes signatures with room to spare.
  options_.max_dtw_cells = CoreOptions().max_dtw_cells;
  auto roomy = MakeCore(StatesServing(StatesCalibration(0.5)));
  ASSERT_TRUE(roomy->Enroll(Enroll("two", {Signature(0, &rng_), Signature(0, &rng_)})).ok());
  v.set_subject_id("two");
  EXPECT_TRUE(roomy->Verify(v).ok());
}

// For a states model, Identify's candidates are the pooled embedding's shortlist ranked by
// Verify's own score: each candidate's score is exactly what Verify answers for that subject, the
// order follows it, and the threshold drops candidates by it. With re-ranking off, the scores are
// the pooled embedding's, which Verify never gives.
TEST_F(StatesVerifyTest, IdentifyRanksTheShortlistByVerifysScore) {
  auto model = StatesServing(StatesCalibration(0.5, SomeSpreadModel()));
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto core = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  for (int i = 0; i < 6; ++i) {
    const int shape = i % 2;
    ASSERT_TRUE(
        core->Enroll(Enroll(absl::StrCat("s", i), {Signature(shape, &rng_), Signature(shape, &rng_),
                                                   Signature(shape, &rng_)}))
            .ok());
  }
  const v1::SeriesInput query = Signature(1, &rng_);
  v1::IdentifyRequest identify;
  *identify.mutable_query() = query;
  identify.set_top_k(6);
  absl::StatusOr<v1::IdentifyResponse> ranked = core->Identify(identify);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  ASSERT_EQ(ranked->candidates_size(), 6);
  for (int i = 0; i < ranked->candidates_size(); ++i) {
    const v1::Candidate& c = ranked->candidates(i);
    EXPECT_EQ(c.score(), Verify(*core, c.subject_id(), query).score()) << c.subject_id();
    if (i > 0) {
      EXPECT_GE(ranked->candidates(i - 1).score(), c.score());
    }
  }
  // The query has shape 1: the three subjects of that shape come first.
  for (int i = 0; i < 3; ++i) {
    const std::string& id = ranked->candidates(i).subject_id();
    EXPECT_TRUE(id == "s1" || id == "s3" || id == "s5") << id;
  }
  // The threshold applies to Verify's score.
  const float cut = (ranked->candidates(1).score() + ranked->candidates(2).score()) / 2;
  identify.set_threshold(cut);
  absl::StatusOr<v1::IdentifyResponse> open_set = core->Identify(identify);
  ASSERT_TRUE(open_set.ok()) << open_set.status();
  ASSERT_EQ(open_set->candidates_size(), 2);
  EXPECT_EQ(open_set->candidates(1).subject_id(), ranked->candidates(1).subject_id());
  // A shortlist shorter than top_k is still ranked: re-ranking needs no more than top_k.
  options_.identify_rerank = 1;
  auto short_list = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  identify.clear_threshold();
  identify.set_top_k(2);
  absl::StatusOr<v1::IdentifyResponse> two = short_list->Identify(identify);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->candidates_size(), 2);
  EXPECT_EQ(two->candidates(0).score(),
            Verify(*short_list, two->candidates(0).subject_id(), query).score());
  // Off: the pooled embedding's scores.
  options_.identify_rerank = 0;
  auto pooled = MakeCore(model, std::make_unique<SharedStore>(backing.get()));
  absl::StatusOr<v1::IdentifyResponse> by_embedding = pooled->Identify(identify);
  ASSERT_TRUE(by_embedding.ok()) << by_embedding.status();
  ASSERT_EQ(by_embedding->candidates_size(), 2);
  EXPECT_NE(by_embedding->candidates(0).score(),
            Verify(*pooled, by_embedding->candidates(0).subject_id(), query).score());
}

// The slow part of an enrollment (each reference's states and DTW series, the DTWs between every
// pair) runs without the write lock: while one enrollment is held inside it, another subject's
// enrollment and a deletion complete. (Before, the pairs were computed under the lock, and
// another Enroll waited for all of them.)
TEST_F(StatesVerifyTest, AnEnrollmentPreparesWithoutHoldingOtherWritesBack) {
  auto core = MakeCore(StatesServing(StatesCalibration(0.5)));
  ASSERT_TRUE(core->Enroll(Enroll("gone", {Signature(1, &rng_)})).ok());
  // Holds the enrollment at its first cancellation check, inside the preparation, until the
  // other writes are done (or 20 s pass: then they were waiting for it, which fails the test).
  class HoldAtFirstCheck final : public Cancellation {
   public:
    absl::Status Check() const override {
      if (!held_.exchange(true)) {
        entered_.Notify();
        timed_out_ = !released_.WaitForNotificationWithTimeout(absl::Seconds(20));
      }
      return absl::OkStatus();
    }
    mutable std::atomic<bool> held_{false}, timed_out_{false};
    mutable absl::Notification entered_, released_;
  } hold;
  const v1::EnrollRequest slow = Enroll("slow", {Signature(0, &rng_), Signature(0, &rng_)});
  absl::Status slow_status;
  std::thread slow_enroll([&] { slow_status = core->Enroll(slow, hold).status(); });
  hold.entered_.WaitForNotification();
  EXPECT_TRUE(core->Enroll(Enroll("other", {Signature(1, &rng_)})).ok());
  v1::DeleteSubjectRequest del;
  del.set_subject_id("gone");
  EXPECT_TRUE(core->DeleteSubject(del).ok());
  hold.released_.Notify();
  slow_enroll.join();
  EXPECT_FALSE(hold.timed_out_) << "the other writes waited for the held enrollment";
  EXPECT_TRUE(slow_status.ok()) << slow_status;
  EXPECT_EQ(core->enrolled_subjects(), 2);
}

// Without memory for prepared references, every Verify prepares them again, and answers the same.
TEST_F(StatesVerifyTest, VerifyAnswersTheSameWithoutPreparedReferencesKept) {
  options_.prepared_cache_bytes = 0;
  auto core = MakeCore(StatesServing(StatesCalibration(0.5)));
  const std::vector<v1::SeriesInput> refs = {Signature(0, &rng_), Signature(0, &rng_),
                                             Signature(0, &rng_)};
  ASSERT_TRUE(core->Enroll(Enroll("s", {refs[0], refs[1]})).ok());
  ASSERT_TRUE(core->Enroll(Enroll("s", {refs[2]})).ok());  // appends, preparing the first two
  for (const int shape : {0, 1}) {
    ExpectExact(*core, "s", refs, Signature(shape, &rng_), absl::StrCat("shape ", shape));
  }
}

TEST_F(StatesVerifyTest, GetModelInfoReportsTheVerificationScore) {
  auto core = MakeCore(StatesServing(StatesCalibration(0.0, SomeSpreadModel())));
  absl::StatusOr<v1::ModelInfo> info = core->GetModelInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->verification_score(), "states-dtw");
  EXPECT_EQ(info->states_dtw(), "band=0.3 cost=euclidean");
  EXPECT_EQ(info->states_single_reference_spread(), FormatDtwSpreadModel(SomeSpreadModel()));
  // The offsets calibrate the score even without the DTW verifier.
  ASSERT_TRUE(info->has_dtw_fusion());
  EXPECT_EQ(info->dtw_fusion().weight_many(), 0.0);
  EXPECT_EQ(info->dtw_fusion().offset_many(), -1.6);

  auto embedding = MakeCore(SignatureServing(DtwFusionCalibration{}));
  EXPECT_EQ(embedding->GetModelInfo()->verification_score(), "embedding");
  EXPECT_EQ(embedding->GetModelInfo()->states_dtw(), "");
}

TEST_F(StatesVerifyTest, BadQueriesAreInvalidArguments) {
  auto core = MakeCore(StatesServing(StatesCalibration(0.5)));
  ASSERT_TRUE(core->Enroll(Enroll("s", {Signature(0, &rng_), Signature(0, &rng_)})).ok());
  ASSERT_TRUE(core->Enroll(Enroll("one", {Signature(0, &rng_)})).ok());
  for (const std::string id : {"s", "one"}) {
    SCOPED_TRACE(id);
    // One pen sample.
    v1::VerifyRequest v;
    v.set_subject_id(id);
    v1::PenTrajectory* pen = v.mutable_query()->mutable_pen();
    pen->add_x(1);
    pen->add_y(2);
    pen->add_t_ms(0);
    pen->add_pressure(100);
    EXPECT_EQ(core->Verify(v).status().code(), absl::StatusCode::kInvalidArgument);
    // Frames of the wrong width.
    *v.mutable_query() = RandomInput(30, &rng_);
    EXPECT_EQ(core->Verify(v).status().code(), absl::StatusCode::kInvalidArgument);
    // A constant trajectory (no movement at all).
    v.mutable_query()->Clear();
    pen = v.mutable_query()->mutable_pen();
    for (int i = 0; i < 40; ++i) {
      pen->add_x(5);
      pen->add_y(5);
      pen->add_t_ms(10.0 * i);
      pen->add_pressure(0);
    }
    absl::StatusOr<v1::VerifyResponse> r = core->Verify(v);
    if (r.ok()) {
      EXPECT_TRUE(std::isfinite(r->score()));
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    }
  }
  // A model recording an unreadable frame normalization is refused when it is loaded.
  const std::shared_ptr<const SimilarityModel> base =
      testing::RandomModel("gru-a", kSignatureFeatureDims, 8, 5, /*signature=*/true);
  ModelMetadata metadata = base->metadata();
  metadata.hyperparameters["frame_normalization"] = "cubic";
  metadata.verification = FormatVerificationCalibration(StatesCalibration(0.0));
  EXPECT_EQ(MakeServingModel(*SimilarityModel::Create(base->architecture(), base->preprocessor(),
                                                      base->params(), metadata),
                             "test", "")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

// ---- No NaN leaves the server: property tests over extreme inputs ----------------------------

// Frames of `frames` x kDims values from `value(i)` (i counts values).
v1::SeriesInput FramesOf(int frames, const std::function<float(int)>& value) {
  v1::SeriesInput in;
  in.mutable_frames()->set_num_features(kDims);
  for (int i = 0; i < frames * kDims; ++i) in.mutable_frames()->add_values(value(i));
  return in;
}

// Extreme frame series, by name: huge, tiny, mixed-sign, denormal, long constant runs.
std::vector<std::pair<std::string, v1::SeriesInput>> ExtremeFrames() {
  const float max = std::numeric_limits<float>::max();
  const float denorm = std::numeric_limits<float>::denorm_min();
  return {
      {"3.4e38 everywhere", FramesOf(8, [&](int) { return 3.4e38f; })},
      {"float max, mixed sign", FramesOf(8, [&](int i) { return i % 2 ? max : -max; })},
      {"one huge value", FramesOf(8, [&](int i) { return i == 10 ? 3.4e38f : 0.5f; })},
      {"1e30 ramp", FramesOf(8, [&](int i) { return 1e30f * static_cast<float>(i); })},
      {"1e20 mixed sign", FramesOf(8, [&](int i) { return i % 3 ? 1e20f : -1e20f; })},
      {"1e6 constant, long", FramesOf(5000, [&](int) { return 1e6f; })},
      {"tiny", FramesOf(8, [&](int i) { return 1e-38f * static_cast<float>(i % 5); })},
      {"denormal", FramesOf(8, [&](int i) { return i % 2 ? denorm : -denorm; })},
      {"zeros, long", FramesOf(5000, [&](int) { return 0.0f; })},
      {"constant run then a jump",
       FramesOf(3000, [&](int i) { return i < 2900 * kDims ? 1.0f : 1e9f; })},
  };
}

// A pen trajectory of `n` samples with x(i), y(i), t_ms(i) and pressure(i).
v1::SeriesInput PenOf(int n, const std::function<double(int)>& x,
                      const std::function<double(int)>& y, const std::function<double(int)>& t,
                      const std::function<double(int)>& p) {
  v1::SeriesInput in;
  v1::PenTrajectory* pen = in.mutable_pen();
  for (int i = 0; i < n; ++i) {
    pen->add_x(x(i));
    pen->add_y(y(i));
    pen->add_t_ms(t(i));
    pen->add_pressure(p(i));
  }
  return in;
}

std::vector<std::pair<std::string, v1::SeriesInput>> ExtremePens() {
  const auto wave = [](double scale) {
    return [scale](int i) { return scale * std::sin(0.3 * i); };
  };
  const auto ramp = [](double scale) { return [scale](int i) { return scale * i; }; };
  const auto ms = [](double step) { return [step](int i) { return step * i; }; };
  const auto constant = [](double v) { return [v](int) { return v; }; };
  const double denorm = std::numeric_limits<double>::denorm_min();
  return {
      {"huge coordinates", PenOf(60, wave(1e300), ramp(1e300), ms(10), constant(500))},
      {"float-limit coordinates", PenOf(60, wave(3.4e38), ramp(3.4e38), ms(10), constant(500))},
      {"huge mixed-sign coordinates",
       PenOf(
           60, [](int i) { return i % 2 ? 1e300 : -1e300; }, wave(1), ms(10), constant(1))},
      {"tiny coordinates", PenOf(60, wave(1e-300), ramp(1e-300), ms(10), constant(500))},
      {"denormal coordinates", PenOf(60, wave(denorm), ramp(denorm), ms(10), constant(0))},
      {"denormal time steps", PenOf(60, wave(100), ramp(1), ms(denorm), constant(500))},
      {"tiny time steps", PenOf(60, wave(100), ramp(1), ms(1e-30), constant(500))},
      {"huge time steps", PenOf(60, wave(100), ramp(1), ms(1e300), constant(500))},
      {"huge start time",
       PenOf(
           60, wave(100), ramp(1), [](int i) { return 1e300 + 10.0 * i; }, constant(500))},
      {"huge pressure", PenOf(60, wave(100), ramp(1), ms(10),
                              [](int i) { return 1e300 * (1.5 + std::sin(0.3 * i)); })},
      {"long constant run, then movement", PenOf(
                                               3000, [](int i) { return i < 2950 ? 5.0 : 5.0 + i; },
                                               constant(5), ms(10), constant(300))},
      {"long constant run with tiny steps",
       PenOf(
           3000, [](int i) { return i < 2950 ? 5.0 : 5.0 + 1e-300 * i; }, constant(5), ms(10),
           constant(300))},
  };
}

class NoNanTest : public SimilarityCoreTest {
 protected:
  // Either a refusal saying what is wrong (INVALID_ARGUMENT; RESOURCE_EXHAUSTED for a pen
  // trajectory whose times would resample into more frames than the limit; or INTERNAL rather
  // than a wrong number), or an answer whose every number is finite and whose scores are in
  // [0, 1].
  static bool Refused(const absl::Status& status) {
    EXPECT_TRUE(status.code() == absl::StatusCode::kInvalidArgument ||
                status.code() == absl::StatusCode::kResourceExhausted ||
                status.code() == absl::StatusCode::kInternal)
        << status;
    EXPECT_FALSE(status.message().empty());
    return true;
  }
  static void ExpectScore(float score, const std::string& what) {
    EXPECT_TRUE(score >= 0.0f && score <= 1.0f) << what << " = " << score;
  }
  static void ExpectFinite(float value, const std::string& what) {
    EXPECT_TRUE(std::isfinite(value)) << what << " = " << value;
  }

  // Every call of the similarity service with `input` as its series, query or reference.
  void ExpectNoNan(SimilarityCore& core, const v1::SeriesInput& input,
                   const v1::SeriesInput& normal) {
    v1::EmbedRequest embed;
    *embed.add_series() = input;
    if (absl::StatusOr<v1::EmbedResponse> r = core.Embed(embed); !r.ok()) {
      Refused(r.status());
    } else {
      for (float v : r->embeddings(0).values()) ExpectFinite(v, "embedding value");
    }
    v1::SimilarityRequest similarity;
    *similarity.mutable_a() = input;
    *similarity.mutable_b() = normal;
    if (absl::StatusOr<v1::SimilarityResponse> r = core.Similarity(similarity); !r.ok()) {
      Refused(r.status());
    } else {
      ExpectScore(r->similarity(), "similarity");
    }
    for (const std::string id : {"normal", "extreme"}) {
      SCOPED_TRACE(id);
      v1::VerifyRequest verify;
      verify.set_subject_id(id);
      *verify.mutable_query() = id == "normal" ? input : normal;
      absl::StatusOr<v1::VerifyResponse> r = core.Verify(verify);
      if (!r.ok()) {
        // Only a subject the extreme input was enrolled into may be missing.
        if (r.status().code() != absl::StatusCode::kNotFound) Refused(r.status());
        continue;
      }
      ExpectScore(r->score(), "verification score");
      ExpectScore(r->threshold(), "threshold");
      for (float s : r->reference_scores()) ExpectFinite(s, "reference score");
      if (r->has_srn_score()) ExpectFinite(r->srn_score(), "srn_score");
      if (r->has_dtw_distance_ratio()) ExpectFinite(r->dtw_distance_ratio(), "DTW ratio");
    }
    for (const bool with_threshold : {false, true}) {
      v1::IdentifyRequest identify;
      *identify.mutable_query() = input;
      if (with_threshold) identify.set_threshold(0.01f);
      if (absl::StatusOr<v1::IdentifyResponse> r = core.Identify(identify); !r.ok()) {
        Refused(r.status());
      } else {
        for (const v1::Candidate& c : r->candidates()) ExpectScore(c.score(), "candidate score");
      }
    }
  }

  // Enrolls `normal` references as "normal" and tries `input` as "extreme", then checks every
  // call. `huge_refused`: inputs named as overflowing must be INVALID_ARGUMENT saying what to do.
  void Check(std::shared_ptr<const ServingModel> model,
             const std::vector<std::pair<std::string, v1::SeriesInput>>& inputs,
             const std::vector<v1::SeriesInput>& normal) {
    for (const auto& [name, input] : inputs) {
      SCOPED_TRACE(name);
      auto core = MakeCore(model);
      ASSERT_TRUE(core->Enroll(Enroll("normal", normal)).ok());
      absl::StatusOr<v1::EnrollResponse> enrolled = core->Enroll(Enroll("extreme", {input}));
      if (!enrolled.ok()) Refused(enrolled.status());
      ExpectNoNan(*core, input, normal[0]);
    }
  }
};

TEST_F(NoNanTest, FramesModelsRefuseOrAnswerFiniteScores) {
  for (const std::string family : {"srn-a", "gru-a", "lstm-s", "sn-l"}) {
    SCOPED_TRACE(family);
    Check(Serving(31, family), ExtremeFrames(), {RandomInput(6, &rng_), RandomInput(7, &rng_)});
  }
}

TEST_F(NoNanTest, SignatureEmbeddingModelRefusesOrAnswersFiniteScores) {
  Check(SignatureServing(DtwFusionCalibration{2.0, -1.0, 2.0, -3.0}), ExtremePens(),
        {Signature(0, &rng_), Signature(0, &rng_)});
}

TEST_F(NoNanTest, StatesModelRefusesOrAnswersFiniteScores) {
  for (const double weight : {0.0, 0.5}) {
    SCOPED_TRACE(weight);
    Check(StatesServing(StatesCalibration(weight, SomeSpreadModel())), ExtremePens(),
          {Signature(0, &rng_), Signature(0, &rng_)});
  }
}

TEST_F(NoNanTest, ValuesNearTheFloatLimitAreRefusedSayingWhatToDo) {
  auto core = MakeCore(Serving(32));
  v1::EmbedRequest embed;
  *embed.add_series() = FramesOf(5, [](int i) { return i == 10 ? 3.4e38f : 0.5f; });
  const absl::Status status = core->Embed(embed).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("series[0]: frame 3 value 3.4e+38 (feature 1) is too large"),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("scale the series"), std::string::npos) << status;

  // The bound is in training standard deviations: a value just inside it is served.
  const Preprocessor& pre = core->model()->model->preprocessor();
  const double step = kMaxStandardizedValue / pre.scale[0];
  const float inside = static_cast<float>(pre.mean[0] + 0.99 * step);
  const float outside = static_cast<float>(pre.mean[0] + 1.01 * step);
  *embed.mutable_series(0) = FramesOf(5, [&](int i) { return i == 0 ? inside : 0.5f; });
  EXPECT_TRUE(core->Embed(embed).ok());
  *embed.mutable_series(0) = FramesOf(5, [&](int i) { return i == 0 ? outside : 0.5f; });
  EXPECT_EQ(core->Embed(embed).status().code(), absl::StatusCode::kInvalidArgument);

  // Pen features are invariant to translation and scale, so coordinates near the float limit
  // (or beyond it, as doubles) give ordinary features: served, with scores in [0, 1] (checked
  // above); ComputeSignatureFeatures refuses the degenerate ones (no extent, one sample).
  auto signature = MakeCore(SignatureServing(DtwFusionCalibration{}));
  v1::SimilarityRequest pens;
  *pens.mutable_a() = ExtremePens()[1].second;  // float-limit coordinates
  *pens.mutable_b() = ExtremePens()[0].second;  // 1e300 coordinates
  absl::StatusOr<v1::SimilarityResponse> similar = signature->Similarity(pens);
  ASSERT_TRUE(similar.ok()) << similar.status();
  EXPECT_TRUE(similar->similarity() >= 0.0f && similar->similarity() <= 1.0f);
}

TEST_F(SimilarityCoreTest, UnknownEnumValuesAreRefusedNamingFieldAndAllowedValues) {
  auto core = MakeCore(Serving(33));
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core->Enroll(Enroll("s", {a})).ok());
  const std::string fusion =
      "fusion: 7 is not a known srn.v1.Fusion value; allowed: FUSION_UNSPECIFIED, FUSION_MAX, "
      "FUSION_MEAN, FUSION_TOP_K_MEAN";
  v1::VerifyRequest verify;
  verify.set_subject_id("s");
  *verify.mutable_query() = a;
  verify.set_fusion(static_cast<v1::Fusion>(7));
  absl::Status status = core->Verify(verify).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), fusion);
  v1::IdentifyRequest identify;
  *identify.mutable_query() = a;
  identify.set_fusion(static_cast<v1::Fusion>(7));
  status = core->Identify(identify).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), fusion);
  status = core->Enroll(Enroll("s", {a}, static_cast<v1::EnrollMode>(-3))).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "mode: -3 is not a known srn.v1.EnrollMode value; allowed: ENROLL_MODE_UNSPECIFIED, "
            "ENROLL_MODE_ADD, ENROLL_MODE_REPLACE");
  // Known values still work.
  verify.set_fusion(v1::FUSION_MAX);
  EXPECT_TRUE(core->Verify(verify).ok());
}

}  // namespace
}  // namespace srn
