// The serving core's failure paths (issue 24): a store that fails under each write and at
// recovery, and writes racing model swaps. The rule they check is "make durable, then publish":
// a call the store refused leaves nothing visible, the in-memory index stays equal to the store,
// and the next call succeeds once the store works again.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/series_input.h"
#include "server/similarity_core.h"
#include "server/subject_store.h"
#include "tests/testing/requests.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

constexpr int kDims = 3;

// A store that fails on command, in front of an in-memory one that outlives the cores.
class FailingStore final : public SubjectStore {
 public:
  explicit FailingStore(SubjectStore* inner) : inner_(inner) {}

  std::atomic<bool> fail_put{false};
  std::atomic<bool> fail_put_all{false};
  std::atomic<bool> fail_delete{false};
  std::atomic<bool> fail_for_each{false};

  absl::Status Put(const SubjectRecord& r, const Precondition& e) override {
    if (fail_put) return Injected("put");
    return inner_->Put(r, e);
  }
  absl::StatusOr<std::vector<std::string>> PutAll(const std::vector<SubjectRecord>& r,
                                                  const std::vector<Precondition>& e) override {
    if (fail_put_all) return Injected("batch write");
    return inner_->PutAll(r, e);
  }
  absl::Status Delete(const std::string& id) override {
    if (fail_delete) return Injected("delete");
    return inner_->Delete(id);
  }
  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    if (fail_for_each) return absl::DataLossError("injected: the store file is damaged");
    return inner_->ForEach(fn);
  }
  absl::StatusOr<int64_t> Count() override { return inner_->Count(); }

 private:
  static absl::Status Injected(const std::string& what) {
    return absl::UnavailableError(absl::StrCat("injected: disk I/O error during ", what));
  }
  SubjectStore* inner_;
};

std::shared_ptr<const ServingModel> Serving(uint64_t seed) {
  return *MakeServingModel(testing::RandomModel("srn-a", kDims, 8, seed), "test",
                           absl::StrCat("v", seed));
}

v1::SeriesInput RandomInput(int frames, std::mt19937_64* rng) {
  return testing::RandomFramesInput(frames, kDims, rng);
}

v1::EnrollRequest Enroll(const std::string& id, const std::vector<v1::SeriesInput>& refs,
                         v1::EnrollMode mode = v1::ENROLL_MODE_ADD) {
  return testing::EnrollRequestOf(id, refs, mode);
}

// What the index serves about every subject, by id: references, threshold, and the embedding of
// reference 0 (which says which model made it).
struct Served {
  int references = 0;
  std::optional<float> threshold;
  std::vector<float> first_embedding;
  std::string model_id;
  bool operator==(const Served& o) const {
    return references == o.references && threshold == o.threshold &&
           first_embedding == o.first_embedding && model_id == o.model_id;
  }
};

std::map<std::string, Served> FromStore(SubjectStore& store) {
  std::map<std::string, Served> out;
  EXPECT_TRUE(store
                  .ForEach([&](SubjectRecord r) {
                    Served& s = out[r.id];
                    s.references = static_cast<int>(r.references.size());
                    s.threshold = r.threshold;
                    s.first_embedding = r.references[0].embedding;
                    s.model_id = r.model_id;
                    return absl::OkStatus();
                  })
                  .ok());
  return out;
}

// The same, as the core lists it.
std::map<std::string, Served> FromCore(const SimilarityCore& core) {
  std::map<std::string, Served> out;
  v1::ListSubjectsRequest list;
  list.set_page_size(1000);
  absl::StatusOr<v1::ListSubjectsResponse> listed = core.ListSubjects(list);
  EXPECT_TRUE(listed.ok()) << listed.status();
  for (const v1::Subject& subject : listed->subjects()) {
    Served& s = out[subject.subject_id()];
    s.references = subject.reference_count();
    if (subject.has_threshold()) s.threshold = subject.threshold();
  }
  return out;
}

class CoreStoreFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto failing = std::make_unique<FailingStore>(backing_.get());
    store_ = failing.get();
    core_ = std::make_unique<SimilarityCore>(model_a_, std::move(failing), CoreOptions(), nullptr);
    ASSERT_TRUE(core_->Recover().ok());
  }

  // The index equals the store: the same subjects with the same references, thresholds and
  // model; and each subject's stored reference 0 verifies as identical to itself.
  void ExpectIndexEqualsStore(const std::string& where) {
    SCOPED_TRACE(where);
    std::map<std::string, Served> stored = FromStore(*backing_);
    std::map<std::string, Served> served = FromCore(*core_);
    ASSERT_EQ(served.size(), stored.size());
    std::vector<SubjectRecord> records;
    ASSERT_TRUE(backing_
                    ->ForEach([&](SubjectRecord r) {
                      records.push_back(std::move(r));
                      return absl::OkStatus();
                    })
                    .ok());
    for (const SubjectRecord& record : records) {
      const std::string& id = record.id;
      ASSERT_TRUE(served.count(id)) << id;
      EXPECT_EQ(served[id].references, static_cast<int>(record.references.size())) << id;
      EXPECT_EQ(served[id].threshold, record.threshold) << id;
      EXPECT_EQ(record.model_id, core_->model()->id) << id;
      // The served embedding of reference 0 is the stored one: Verify of its own input scores
      // it as the stored embedding scores against itself.
      v1::VerifyRequest v;
      v.set_subject_id(id);
      ASSERT_TRUE(v.mutable_query()->ParseFromString(record.references[0].input));
      v.set_fusion(v1::FUSION_MAX);
      absl::StatusOr<v1::VerifyResponse> r = core_->Verify(v);
      ASSERT_TRUE(r.ok()) << r.status();
      double self = 0;
      const float* e = record.references[0].embedding.data();
      core_->model()->model->Score(e, e, 1, &self);
      EXPECT_FLOAT_EQ(r->reference_scores(0), static_cast<float>(self)) << id;
    }
  }

  absl::Status EnrollStatus(const v1::EnrollRequest& request) {
    return core_->Enroll(request).status();
  }

  std::unique_ptr<SubjectStore> backing_ = NewInMemorySubjectStore();
  FailingStore* store_ = nullptr;
  std::shared_ptr<const ServingModel> model_a_ = Serving(1);
  std::shared_ptr<const ServingModel> model_b_ = Serving(2);
  std::unique_ptr<SimilarityCore> core_;
  std::mt19937_64 rng_{7};
};

TEST_F(CoreStoreFailureTest, AFailedEnrollOfANewSubjectLeavesNothingVisible) {
  store_->fail_put = true;
  const v1::SeriesInput a = RandomInput(6, &rng_);
  const absl::Status failed = EnrollStatus(Enroll("alice", {a}));
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_THAT(std::string(failed.message()), HasSubstr("disk I/O error during put"));
  v1::GetSubjectRequest get;
  get.set_subject_id("alice");
  EXPECT_EQ(core_->GetSubject(get).status().code(), absl::StatusCode::kNotFound);
  v1::VerifyRequest v;
  v.set_subject_id("alice");
  *v.mutable_query() = a;
  EXPECT_EQ(core_->Verify(v).status().code(), absl::StatusCode::kNotFound);
  v1::IdentifyRequest identify;
  *identify.mutable_query() = a;
  absl::StatusOr<v1::IdentifyResponse> found = core_->Identify(identify);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->candidates_size(), 0);
  EXPECT_EQ(core_->enrolled_subjects(), 0);
  ExpectIndexEqualsStore("after the failure");

  store_->fail_put = false;
  ASSERT_TRUE(core_->Enroll(Enroll("alice", {a})).ok());
  ExpectIndexEqualsStore("after the store recovered");
}

TEST_F(CoreStoreFailureTest, AFailedAddOrThresholdChangeKeepsTheSubjectAsItWas) {
  ASSERT_TRUE(core_->Enroll(Enroll("alice", {RandomInput(6, &rng_), RandomInput(5, &rng_)})).ok());
  ExpectIndexEqualsStore("enrolled");
  store_->fail_put = true;
  EXPECT_EQ(EnrollStatus(Enroll("alice", {RandomInput(7, &rng_)})).code(),
            absl::StatusCode::kUnavailable);
  v1::EnrollRequest threshold = Enroll("alice", {RandomInput(7, &rng_)});
  threshold.set_threshold(0.9f);
  EXPECT_EQ(EnrollStatus(threshold).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(EnrollStatus(Enroll("alice", {RandomInput(4, &rng_)}, v1::ENROLL_MODE_REPLACE)).code(),
            absl::StatusCode::kUnavailable);
  ExpectIndexEqualsStore("after three failed writes");
  v1::GetSubjectRequest get;
  get.set_subject_id("alice");
  EXPECT_EQ(core_->GetSubject(get)->reference_count(), 2);
  EXPECT_FALSE(core_->GetSubject(get)->has_threshold());

  store_->fail_put = false;
  ASSERT_TRUE(core_->Enroll(threshold).ok());
  EXPECT_EQ(core_->GetSubject(get)->reference_count(), 3);
  EXPECT_EQ(core_->GetSubject(get)->threshold(), 0.9f);
  ExpectIndexEqualsStore("after the store recovered");
}

TEST_F(CoreStoreFailureTest, AFailedDeleteKeepsTheSubjectServed) {
  const v1::SeriesInput a = RandomInput(6, &rng_);
  ASSERT_TRUE(core_->Enroll(Enroll("alice", {a})).ok());
  store_->fail_delete = true;
  v1::DeleteSubjectRequest del;
  del.set_subject_id("alice");
  absl::StatusOr<v1::DeleteSubjectResponse> failed = core_->DeleteSubject(del);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("during delete"));
  v1::VerifyRequest v;
  v.set_subject_id("alice");
  *v.mutable_query() = a;
  EXPECT_TRUE(core_->Verify(v).ok());
  ExpectIndexEqualsStore("after the failed delete");
  store_->fail_delete = false;
  ASSERT_TRUE(core_->DeleteSubject(del).ok());
  EXPECT_EQ(core_->Verify(v).status().code(), absl::StatusCode::kNotFound);
  ExpectIndexEqualsStore("deleted");
}

// A model activation re-embeds the gallery and stores it in one batch: when the batch fails, the
// old model keeps serving with its own embeddings, and a later activation succeeds.
TEST_F(CoreStoreFailureTest, AFailedActivationKeepsTheOldModelAndItsEmbeddings) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(core_->Enroll(Enroll(absl::StrCat("s", i), {RandomInput(5 + i, &rng_)})).ok());
  }
  store_->fail_put_all = true;
  const absl::Status failed = core_->SwapModel(model_b_);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_THAT(std::string(failed.message()), HasSubstr("during batch write"));
  EXPECT_EQ(core_->model()->id, model_a_->id);
  v1::VerifyRequest v;
  v.set_subject_id("s0");
  *v.mutable_query() = RandomInput(5, &rng_);
  EXPECT_EQ(core_->Verify(v)->model_id(), model_a_->id);
  ExpectIndexEqualsStore("after the failed activation");

  store_->fail_put_all = false;
  int64_t reembedded = 0;
  ASSERT_TRUE(core_->SwapModel(model_b_, &reembedded).ok());
  EXPECT_EQ(reembedded, 5);
  EXPECT_EQ(core_->model()->id, model_b_->id);
  ExpectIndexEqualsStore("activated");
}

// Recovery that cannot read the store refuses to serve (the server does not start) rather than
// serving an empty gallery; once the store reads again, everything acknowledged is back.
TEST_F(CoreStoreFailureTest, RecoveryThatCannotReadTheStoreFailsAndLaterRecoversAll) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(core_->Enroll(Enroll(absl::StrCat("s", i), {RandomInput(6, &rng_)})).ok());
  }
  auto failing = std::make_unique<FailingStore>(backing_.get());
  failing->fail_for_each = true;
  FailingStore* view = failing.get();
  SimilarityCore restarted(model_a_, std::move(failing), CoreOptions(), nullptr);
  const absl::Status failed = restarted.Recover();
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss) << failed;
  EXPECT_THAT(std::string(failed.message()), HasSubstr("damaged"));
  view->fail_for_each = false;
  ASSERT_TRUE(restarted.Recover().ok());
  EXPECT_EQ(restarted.enrolled_subjects(), 3);
}

// A restart under another model re-embeds and stores the gallery in one batch before serving;
// when that batch fails, recovery fails and the store keeps the old model's records intact.
TEST_F(CoreStoreFailureTest, RecoveryUnderANewModelThatCannotStoreFailsWithoutDamage) {
  ASSERT_TRUE(core_->Enroll(Enroll("alice", {RandomInput(6, &rng_)})).ok());
  const std::map<std::string, Served> before = FromStore(*backing_);
  auto failing = std::make_unique<FailingStore>(backing_.get());
  failing->fail_put_all = true;
  SimilarityCore restarted(model_b_, std::move(failing), CoreOptions(), nullptr);
  EXPECT_EQ(restarted.Recover().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromStore(*backing_), before);
}

// ---- Writes racing model swaps ------------------------------------------------------------

// Enroll, Delete and Verify run while the model is swapped back and forth. Every acknowledged
// Enroll is in the store with the embeddings of the model that is served at the end (each swap
// re-embeds all), none is lost, and calls fail only with the documented retryable code.
TEST(CoreSwapRaceTest, WritesDuringSwapsAreNeverLostOrLeftWithAnotherModelsEmbeddings) {
  std::unique_ptr<SubjectStore> backing = NewInMemorySubjectStore();
  auto a = Serving(1), b = Serving(2);
  auto core = std::make_unique<SimilarityCore>(
      a, std::make_unique<FailingStore>(backing.get()), CoreOptions(), nullptr);
  ASSERT_TRUE(core->Recover().ok());
  constexpr int kWriters = 3;
  constexpr int kPerWriter = 60;  // at least; writers go on until kSwaps swaps have happened
  constexpr int kSwaps = 40;
  std::atomic<bool> done{false};
  std::atomic<int> swaps{0};
  std::atomic<int> unexpected{0};
  std::vector<std::map<std::string, int>> acknowledged(kWriters);  // id -> reference count
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      for (int i = 0; i < kPerWriter || swaps < kSwaps; ++i) {
        const std::string id = absl::StrCat("w", w, "-", i % 20);
        if (i % 7 == 6) {
          v1::DeleteSubjectRequest del;
          del.set_subject_id(id);
          absl::StatusOr<v1::DeleteSubjectResponse> r = core->DeleteSubject(del);
          if (r.ok()) {
            acknowledged[w].erase(id);
          } else if (r.status().code() != absl::StatusCode::kNotFound) {
            ++unexpected;
            ADD_FAILURE() << r.status();
          }
          continue;
        }
        const v1::SeriesInput input = RandomInput(5 + i % 4, &rng);
        absl::StatusOr<v1::EnrollResponse> r = core->Enroll(
            Enroll(id, {input}, i % 3 == 0 ? v1::ENROLL_MODE_REPLACE : v1::ENROLL_MODE_ADD));
        if (r.ok()) {
          acknowledged[w][id] = r->subject().reference_count();
        } else if (r.status().code() != absl::StatusCode::kUnavailable) {
          ++unexpected;
          ADD_FAILURE() << r.status();
        }
        // Verify the enrolled input itself: the model that answers scores its own embedding of
        // it against the subject's last reference (this one: only this writer writes `id`), so
        // that reference must hold that model's embedding, whatever swaps happened meanwhile.
        v1::VerifyRequest v;
        v.set_subject_id(id);
        *v.mutable_query() = input;
        absl::StatusOr<v1::VerifyResponse> verified = core->Verify(v);
        if (!verified.ok()) {
          if (verified.status().code() != absl::StatusCode::kNotFound || r.ok()) {
            ++unexpected;
            ADD_FAILURE() << verified.status();
          }
          continue;
        }
        if (!r.ok()) continue;
        const ServingModel& answered = verified->model_id() == a->id ? *a : *b;
        const Series series = *Series::FromValues(input.frames().values(), kDims);
        const RowMatrix e = *answered.model->Embed({&series});
        double self = 0;
        answered.model->Score(e.data(), e.data(), 1, &self);
        EXPECT_FLOAT_EQ(verified->reference_scores(verified->reference_scores_size() - 1),
                        static_cast<float>(self))
            << id << " holds an embedding that is not by the model that answered";
      }
    });
  }
  std::thread swapper([&] {
    for (int s = 0; !done; ++s) {
      const absl::Status swapped = core->SwapModel(s % 2 == 0 ? b : a);
      ++swaps;
      // A pause, so that writers get the lock between swaps (it is not fair) and race the next.
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (!swapped.ok()) {
        ++unexpected;
        ADD_FAILURE() << swapped;
      }
    }
  });
  for (std::thread& t : writers) t.join();
  done = true;
  swapper.join();
  EXPECT_EQ(unexpected, 0);
  EXPECT_GE(swaps, kSwaps);

  // Everything acknowledged and not deleted since is stored, by the served model, with
  // embeddings that model gives its stored inputs; nothing else is stored.
  const std::shared_ptr<const ServingModel> served = core->model();
  std::map<std::string, int> expected;
  for (const auto& m : acknowledged) expected.insert(m.begin(), m.end());
  std::map<std::string, int> stored;
  ASSERT_TRUE(backing
                  ->ForEach([&](SubjectRecord r) {
                    stored[r.id] = static_cast<int>(r.references.size());
                    EXPECT_EQ(r.model_id, served->id) << r.id;
                    for (const StoredReference& ref : r.references) {
                      v1::SeriesInput input;
                      EXPECT_TRUE(input.ParseFromString(ref.input));
                      const Series s = *Series::FromValues(input.frames().values(), kDims);
                      const RowMatrix e = *served->model->Embed({&s});
                      for (int k = 0; k < e.cols(); ++k) {
                        EXPECT_FLOAT_EQ(ref.embedding[k], e(0, k)) << r.id;
                      }
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(stored, expected);
  EXPECT_EQ(core->enrolled_subjects(), static_cast<int64_t>(expected.size()));
}

}  // namespace
}  // namespace srn
