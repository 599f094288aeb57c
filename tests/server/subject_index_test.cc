#include "server/subject_index.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

std::shared_ptr<const ServingModel> Serving(uint64_t seed) {
  return *MakeServingModel(testing::RandomModel("srn-a", 3, 8, seed), "test", "");
}

std::shared_ptr<const SubjectEntry> Entry(const std::string& id, int refs,
                                          const ServingModel& model, std::mt19937_64* rng) {
  auto e = std::make_shared<SubjectEntry>();
  e->id = id;
  e->model_id = model.id;
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  e->embeddings.resize(refs, model.model->embedding_dims());
  for (int i = 0; i < e->embeddings.size(); ++i) e->embeddings.data()[i] = u(*rng);
  e->inputs.assign(refs, std::make_shared<const std::string>("input"));
  return e;
}

// What Identify must return, computed the slow way.
std::vector<std::pair<std::string, float>> BruteForce(
    const std::map<std::string, std::shared_ptr<const SubjectEntry>>& subjects,
    const ServingModel& model, const Vector& q, int k, ReferenceFusion rule, float threshold,
    ScanScore scan = ScanScore::kModel) {
  std::vector<std::pair<std::string, float>> all;
  for (const auto& [id, e] : subjects) {
    std::vector<double> s;
    for (int r = 0; r < e->references(); ++r) {
      if (scan == ScanScore::kModel) {
        s.push_back(model.model->Score(q.data(), e->embeddings.row(r).data()));
      } else {
        double d2 = 0;
        for (int i = 0; i < q.size(); ++i) {
          const double d = static_cast<double>(q[i]) - e->embeddings(r, i);
          d2 += d * d;
        }
        s.push_back(-std::sqrt(d2));
      }
    }
    const float fused = static_cast<float>(FuseReferenceScores(s, rule, 2));
    if (fused >= threshold) all.push_back({id, fused});
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (static_cast<int>(all.size()) > k) all.resize(k);
  return all;
}

TEST(SubjectIndexTest, UpsertLookupListRemove) {
  auto model = Serving(1);
  SubjectIndex index(model);
  std::mt19937_64 rng(1);
  index.Upsert(Entry("bob", 2, *model, &rng));
  index.Upsert(Entry("alice", 3, *model, &rng));
  EXPECT_EQ(index.subjects(), 2);
  EXPECT_EQ(index.references(), 5);
  ASSERT_NE(index.Lookup("alice").subject, nullptr);
  EXPECT_EQ(index.Lookup("alice").model->id, model->id);
  EXPECT_EQ(index.Lookup("carol").subject, nullptr);
  index.Upsert(Entry("alice", 1, *model, &rng));  // replaced
  EXPECT_EQ(index.references(), 3);
  auto page = index.List("", 10);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]->id, "alice");
  EXPECT_EQ(page[1]->id, "bob");
  EXPECT_EQ(index.List("alice", 10).size(), 1u);
  EXPECT_TRUE(index.Remove("alice"));
  EXPECT_FALSE(index.Remove("alice"));
  EXPECT_EQ(index.subjects(), 1);
  EXPECT_EQ(index.references(), 2);
}

TEST(SubjectIndexTest, IdentifyMatchesBruteForceThroughUpdatesAndCompaction) {
  auto model = Serving(2);
  SubjectIndex index(model);
  std::mt19937_64 rng(3);
  std::map<std::string, std::shared_ptr<const SubjectEntry>> truth;
  std::uniform_int_distribution<int> refs(1, 6), who(0, 2999), action(0, 9);
  for (int step = 0; step < 12000; ++step) {
    const std::string id = absl::StrCat("s", who(rng));
    if (action(rng) < 2 && truth.count(id)) {
      EXPECT_TRUE(index.Remove(id));
      truth.erase(id);
    } else {
      auto e = Entry(id, refs(rng), *model, &rng);
      truth[id] = e;
      index.Upsert(e);
    }
  }
  ASSERT_EQ(index.subjects(), static_cast<int64_t>(truth.size()));
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    Vector q(model->model->embedding_dims());
    for (int i = 0; i < q.size(); ++i) q[i] = std::abs(n(rng));
    const ReferenceFusion rule = trial % 3 == 0   ? ReferenceFusion::kMax
                                 : trial % 3 == 1 ? ReferenceFusion::kMean
                                                  : ReferenceFusion::kTopKMean;
    const float threshold = trial % 2 == 0 ? -1.0f : 0.5f;
    bool stale = true;
    const auto got = index.Identify(*model, q.data(), 7, rule, 2, threshold, trial % 2 + 1, &stale);
    EXPECT_FALSE(stale);
    const auto want = BruteForce(truth, *model, q, 7, rule, threshold);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].subject->id, want[i].first) << "rank " << i;
      EXPECT_NEAR(got[i].score, want[i].second, 1e-5);
    }
    // The shortlist by distance (re-ranked by Verify for states models): minus the Euclidean
    // distance, fused the same way.
    const float far = -1e9f;
    const auto by_distance = index.Identify(*model, q.data(), 7, rule, 2, far, trial % 2 + 1,
                                            &stale, ScanScore::kDistance);
    const auto nearest = BruteForce(truth, *model, q, 7, rule, far, ScanScore::kDistance);
    ASSERT_EQ(by_distance.size(), nearest.size());
    for (size_t i = 0; i < by_distance.size(); ++i) {
      EXPECT_EQ(by_distance[i].subject->id, nearest[i].first) << "rank " << i;
      EXPECT_NEAR(by_distance[i].score, nearest[i].second, 1e-4);
    }
  }
}

TEST(SubjectIndexTest, IdentifyAgainstAnotherModelIsStale) {
  auto model = Serving(4);
  SubjectIndex index(model);
  std::mt19937_64 rng(5);
  index.Upsert(Entry("a", 1, *model, &rng));
  auto other = Serving(5);
  Vector q = Vector::Ones(8);
  bool stale = false;
  EXPECT_TRUE(index.Identify(*other, q.data(), 3, ReferenceFusion::kMax, 1, -1, 1, &stale).empty());
  EXPECT_TRUE(stale);
  index.Reset(other, {});
  EXPECT_EQ(index.subjects(), 0);
  EXPECT_EQ(index.model()->id, other->id);
}

TEST(SubjectIndexTest, ReadersSeeWholeSnapshotsWhileAWriterWorks) {
  auto model = Serving(6);
  SubjectIndex index(model);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) index.Upsert(Entry(absl::StrCat("s", i), 2, *model, &rng));
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      Vector q = Vector::Ones(8);
      while (!stop.load()) {
        bool stale = false;
        auto got = index.Identify(*model, q.data(), 5, ReferenceFusion::kMean, 1, -1, 1, &stale);
        EXPECT_EQ(got.size(), 5u);
        for (const auto& c : got) EXPECT_EQ(c.subject->model_id, model->id);
        auto view = index.Lookup("s1");
        if (view.subject) {
          EXPECT_GT(view.subject->references(), 0);
        }
        ++reads;
      }
    });
  }
  std::mt19937_64 wrng(8);
  for (int i = 0; i < 3000; ++i) {
    const std::string id = absl::StrCat("s", i % 700);
    if (i % 5 == 0) {
      index.Remove(id);
    } else {
      index.Upsert(Entry(id, 1 + i % 4, *model, &wrng));
    }
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace srn
