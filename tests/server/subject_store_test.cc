#include "server/subject_store.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_postgres.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Helpers

// A fresh directory under the test temp dir, removed with its contents at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / "srn_subject_store_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A record whose every field depends on `version`, so that any mix-up shows.
SubjectRecord MakeRecord(const std::string& id, int version, int num_references = 3, int dim = 4) {
  SubjectRecord record;
  record.id = id;
  if (version % 2 == 1) record.threshold = 0.5f + static_cast<float>(version);
  if (version % 4 == 1) record.threshold_shift = -0.125f * static_cast<float>(version);
  record.created_unix_ms = 1700000000000 + version;
  record.updated_unix_ms = 1700000001000 + version;
  record.model_id = absl::StrCat("model-", version);
  // Opaque bytes, NUL included; some records keep none.
  if (version % 3 != 2) record.derived = std::string("derived\0", 8) + absl::StrCat(version);
  for (int j = 0; j < num_references; ++j) {
    StoredReference reference;
    // NUL and high bytes: the input is opaque binary, not text.
    reference.input = std::string("in\0\xff", 4) + absl::StrCat(id, "/", version, "/", j);
    for (int k = 0; k < dim; ++k) {
      reference.embedding.push_back(static_cast<float>(version) + 0.25f * static_cast<float>(j) -
                                    0.001f * static_cast<float>(k));
    }
    record.references.push_back(std::move(reference));
  }
  return record;
}

absl::StatusOr<std::vector<SubjectRecord>> ReadAll(SubjectStore& store) {
  std::vector<SubjectRecord> records;
  absl::Status status = store.ForEach([&](SubjectRecord record) {
    records.push_back(std::move(record));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return records;
}

std::vector<SubjectRecord> Values(const std::map<std::string, SubjectRecord>& records) {
  std::vector<SubjectRecord> values;
  for (const auto& [id, record] : records) values.push_back(record);
  return values;
}

std::vector<std::string> Ids(const std::vector<SubjectRecord>& records) {
  std::vector<std::string> ids;
  for (const SubjectRecord& record : records) ids.push_back(record.id);
  return ids;
}

// Where two record lists first differ, for failure messages.
std::string FirstDifference(const std::vector<SubjectRecord>& actual,
                            const std::vector<SubjectRecord>& expected) {
  for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    if (actual[i] != expected[i]) {
      return absl::StrCat("at index ", i, ": actual '", actual[i].id, "' (model ",
                          actual[i].model_id, "), expected '", expected[i].id, "' (model ",
                          expected[i].model_id, ")");
    }
  }
  return absl::StrCat(actual.size(), " records, expected ", expected.size());
}

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const absl::Status assert_ok_status = (expr);           \
    ASSERT_TRUE(assert_ok_status.ok()) << assert_ok_status; \
  } while (false)
#define EXPECT_OK(expr)                                     \
  do {                                                      \
    const absl::Status expect_ok_status = (expr);           \
    EXPECT_TRUE(expect_ok_status.ok()) << expect_ok_status; \
  } while (false)

// ---------------------------------------------------------------------------------------------
// The behaviour every SubjectStore shares.

enum class StoreKind { kMemory, kSqlite, kPostgres };

class SubjectStoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (GetParam() == StoreKind::kPostgres) {
      // A real PostgreSQL server of this test's own, and a fresh database in it.
      std::string why;
      postgres_ = testing::ScratchPostgres::Start(&why);
      if (postgres_ != nullptr) postgres_uri_ = postgres_->NewDatabase(&why);
      if (postgres_uri_.empty()) {
        if (testing::PostgresRequired()) FAIL() << why;
        GTEST_SKIP() << "PostgreSQL store not tested: " << why;
      }
    }
    absl::StatusOr<std::unique_ptr<SubjectStore>> store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::StatusOr<std::unique_ptr<SubjectStore>> Open() {
    switch (GetParam()) {
      case StoreKind::kMemory:
        return NewInMemorySubjectStore();
      case StoreKind::kSqlite:
        return OpenSqliteSubjectStore(dir_.File("subjects.db"));
      case StoreKind::kPostgres:
        return OpenPostgresSubjectStore(postgres_uri_);
    }
    return absl::InternalError("unknown store kind");
  }

  std::vector<SubjectRecord> All() {
    absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*store_);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<SubjectRecord>();
  }

  int64_t CountOrMinusOne() {
    absl::StatusOr<int64_t> count = store_->Count();
    EXPECT_TRUE(count.ok()) << count.status();
    return count.ok() ? *count : -1;
  }

  TempDir dir_;
  std::unique_ptr<testing::ScratchPostgres> postgres_;  // declared first: destroyed after store_
  std::string postgres_uri_;
  std::unique_ptr<SubjectStore> store_;
};

TEST_P(SubjectStoreTest, NewStoreIsEmpty) {
  EXPECT_EQ(CountOrMinusOne(), 0);
  EXPECT_TRUE(All().empty());
}

TEST_P(SubjectStoreTest, PutThenForEachReturnsTheRecordExactly) {
  const SubjectRecord with_threshold = MakeRecord("alice", 1, /*num_references=*/3, /*dim=*/5);
  ASSERT_TRUE(with_threshold.threshold.has_value());
  SubjectRecord bare;  // no threshold, no references, empty model id
  bare.id = "bob";
  bare.created_unix_ms = -5;  // times are opaque to the store, negative included
  bare.updated_unix_ms = std::numeric_limits<int64_t>::max();
  SubjectRecord empty_parts = MakeRecord("carol", 2, 2, 0);  // zero-dimensional embeddings
  empty_parts.references[0].input.clear();
  ASSERT_OK(store_->Put(with_threshold, Precondition::Any()));
  ASSERT_OK(store_->Put(bare, Precondition::Any()));
  ASSERT_OK(store_->Put(empty_parts, Precondition::Any()));

  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0] == with_threshold);
  EXPECT_TRUE(all[1] == bare);
  EXPECT_TRUE(all[2] == empty_parts);
  EXPECT_EQ(all[0].references[2].input, std::string("in\0\xff", 4) + "alice/1/2");
  EXPECT_EQ(all[0].references[1].embedding[4], 1.0f + 0.25f - 0.004f);
  EXPECT_EQ(*all[0].threshold, 1.5f);
  EXPECT_FALSE(all[1].threshold.has_value());
  EXPECT_EQ(all[1].updated_unix_ms, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(CountOrMinusOne(), 3);
}

TEST_P(SubjectStoreTest, PutReplacesEverythingStoredForTheSubject) {
  ASSERT_OK(store_->Put(MakeRecord("alice", 1, 5, 8), Precondition::Any()));
  ASSERT_OK(store_->Put(MakeRecord("bob", 3), Precondition::Any()));
  const SubjectRecord replacement = MakeRecord("alice", 2, 1, 3);  // fewer refs, no threshold
  ASSERT_OK(store_->Put(replacement, Precondition::Any()));

  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0] == replacement);
  EXPECT_EQ(all[0].references.size(), 1u);
  EXPECT_FALSE(all[0].threshold.has_value());
  EXPECT_TRUE(all[1] == MakeRecord("bob", 3));
  EXPECT_EQ(CountOrMinusOne(), 2);
}

// The compare-and-set that keeps servers sharing a store from overwriting each other's changes.
TEST_P(SubjectStoreTest, PutWritesOnlyOverTheStateItExpects) {
  const SubjectRecord first = MakeRecord("alice", 1);  // updated at 1700000001001
  ASSERT_OK(store_->Put(first, Precondition::Absent()));
  // A second creation, and a write that read an older state, are refused and change nothing.
  absl::Status stale = store_->Put(MakeRecord("alice", 2), Precondition::Absent());
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_THAT(std::string(stale.message()), HasSubstr("'alice' changed since"));
  EXPECT_THAT(std::string(stale.message()), HasSubstr("found one updated at 1700000001001 ms"));
  stale = store_->Put(MakeRecord("alice", 2), Precondition::UpdatedAt(1700000001000));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_THAT(std::string(stale.message()),
              HasSubstr("expected the record updated at 1700000001000"));
  ASSERT_EQ(All().size(), 1u);
  EXPECT_TRUE(All()[0] == first);
  // Over the state it read, a write goes through; a subject that is not stored has no state.
  ASSERT_OK(store_->Put(MakeRecord("alice", 2), Precondition::UpdatedAt(1700000001001)));
  EXPECT_TRUE(All()[0] == MakeRecord("alice", 2));
  stale = store_->Put(MakeRecord("bob", 1), Precondition::UpdatedAt(1700000001001));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_THAT(std::string(stale.message()), HasSubstr("found none"));
  ASSERT_OK(store_->Delete("alice"));
  EXPECT_EQ(store_->Put(MakeRecord("alice", 3), Precondition::UpdatedAt(1700000001002)).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(All().empty());
}

// Writes that commit together (group commit) still check their preconditions one after the
// other: of many creations of one subject at once, exactly one wins. (They queue behind a large
// write, so that the stores that commit together take them in one transaction.)
TEST_P(SubjectStoreTest, ConcurrentCreationsOfOneSubjectHaveOneWinner) {
  constexpr int kWriters = 16;
  std::vector<SubjectRecord> large;
  for (int i = 0; i < 2000; ++i) large.push_back(MakeRecord(absl::StrCat("large-", i), 1, 5, 64));
  std::thread first([&] { EXPECT_OK(store_->PutAll(large, {}).status()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kWriters) std::this_thread::yield();  // all at once
      results[t] = store_->Put(MakeRecord("same", t + 1), Precondition::Absent());
    });
  }
  for (std::thread& thread : threads) thread.join();
  first.join();
  int winner = -1;
  for (int t = 0; t < kWriters; ++t) {
    if (results[t].ok()) {
      EXPECT_EQ(winner, -1) << "two creations of one subject succeeded";
      winner = t;
    } else {
      EXPECT_EQ(results[t].code(), absl::StatusCode::kAborted) << results[t];
    }
  }
  ASSERT_NE(winner, -1);
  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), large.size() + 1);
  EXPECT_TRUE(all.back() == MakeRecord("same", winner + 1));  // ids in bytewise order
}

TEST_P(SubjectStoreTest, PutAllLeavesOutRecordsWhoseSubjectChanged) {
  ASSERT_OK(store_->Put(MakeRecord("a", 1), Precondition::Any()));
  ASSERT_OK(store_->Put(MakeRecord("b", 1), Precondition::Any()));
  ASSERT_OK(store_->Put(MakeRecord("c", 1), Precondition::Any()));
  // b changed since the writer read it; d was deleted; e is new.
  absl::StatusOr<std::vector<std::string>> skipped = store_->PutAll(
      {MakeRecord("a", 2), MakeRecord("b", 2), MakeRecord("d", 2), MakeRecord("e", 2)},
      {Precondition::UpdatedAt(1700000001001), Precondition::UpdatedAt(1700000001000),
       Precondition::UpdatedAt(1700000001001), Precondition::Absent()});
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(*skipped, (std::vector<std::string>{"b", "d"}));
  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(all[0] == MakeRecord("a", 2));
  EXPECT_TRUE(all[1] == MakeRecord("b", 1));
  EXPECT_TRUE(all[2] == MakeRecord("c", 1));
  EXPECT_TRUE(all[3] == MakeRecord("e", 2));
  // One precondition per record, or none.
  const absl::Status mismatched =
      store_->PutAll({MakeRecord("a", 3), MakeRecord("c", 3)}, {Precondition::Any()}).status();
  EXPECT_EQ(mismatched.code(), absl::StatusCode::kInvalidArgument) << mismatched;
  EXPECT_THAT(std::string(mismatched.message()), HasSubstr("1 preconditions for 2 records"));
  EXPECT_TRUE(All()[0] == MakeRecord("a", 2));
}

TEST_P(SubjectStoreTest, DeleteRemovesTheSubjectAndUnknownIdsAreNotFound) {
  ASSERT_OK(store_->Put(MakeRecord("alice", 1), Precondition::Any()));
  ASSERT_OK(store_->Put(MakeRecord("bob", 2), Precondition::Any()));
  ASSERT_OK(store_->Delete("alice"));
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"bob"});
  EXPECT_EQ(CountOrMinusOne(), 1);

  const absl::Status again = store_->Delete("alice");
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound) << again;
  EXPECT_THAT(std::string(again.message()), HasSubstr("'alice'"));
  EXPECT_EQ(store_->Delete("nobody").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("").code(), absl::StatusCode::kNotFound);

  // A deleted id can be enrolled again, and gets only its new references.
  ASSERT_OK(store_->Put(MakeRecord("alice", 7, 1), Precondition::Any()));
  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0] == MakeRecord("alice", 7, 1));
}

TEST_P(SubjectStoreTest, ForEachVisitsSubjectsInBytewiseIdOrder) {
  const std::vector<std::string> ids = {"b",   "a",  "ab", "A",    "\xc3\xa9t\xc3\xa9",
                                        "a b", "10", "9",  "\x7f", "a\x01"};
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_OK(store_->Put(MakeRecord(ids[i], static_cast<int>(i), 1), Precondition::Any()));
  }
  std::vector<std::string> expected = ids;
  std::sort(expected.begin(), expected.end());
  // Spelled out, so that the test does not only agree with std::sort.
  ASSERT_EQ(expected, (std::vector<std::string>{"10", "9", "A", "a", "a\x01", "a b", "ab", "b",
                                                "\x7f", "\xc3\xa9t\xc3\xa9"}));
  EXPECT_EQ(Ids(All()), expected);
}

TEST_P(SubjectStoreTest, ForEachStopsAtTheFirstCallbackError) {
  for (const char* id : {"a", "b", "c", "d"})
    ASSERT_OK(store_->Put(MakeRecord(id, 1), Precondition::Any()));
  std::vector<std::string> visited;
  const absl::Status status = store_->ForEach([&](SubjectRecord record) {
    visited.push_back(record.id);
    if (record.id == "b") return absl::AbortedError("enough at b");
    return absl::OkStatus();
  });
  EXPECT_EQ(status, absl::AbortedError("enough at b"));
  EXPECT_EQ(visited, (std::vector<std::string>{"a", "b"}));
}

TEST_P(SubjectStoreTest, ForEachSeesASnapshotAndTheCallbackMayWrite) {
  for (const char* id : {"a", "b", "c"})
    ASSERT_OK(store_->Put(MakeRecord(id, 1), Precondition::Any()));
  std::vector<SubjectRecord> visited;
  ASSERT_OK(store_->ForEach([&](SubjectRecord record) {
    if (record.id == "a") {
      if (absl::Status s = store_->Put(MakeRecord("b", 2), Precondition::Any()); !s.ok()) return s;
      if (absl::Status s = store_->Delete("c"); !s.ok()) return s;
      if (absl::Status s = store_->Put(MakeRecord("d", 2), Precondition::Any()); !s.ok()) return s;
    }
    visited.push_back(std::move(record));
    return absl::OkStatus();
  }));
  ASSERT_EQ(visited.size(), 3u);
  EXPECT_TRUE(visited[0] == MakeRecord("a", 1));
  EXPECT_TRUE(visited[1] == MakeRecord("b", 1));
  EXPECT_TRUE(visited[2] == MakeRecord("c", 1));

  const std::vector<SubjectRecord> after = All();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_TRUE(after[0] == MakeRecord("a", 1));
  EXPECT_TRUE(after[1] == MakeRecord("b", 2));
  EXPECT_TRUE(after[2] == MakeRecord("d", 2));
}

TEST_P(SubjectStoreTest, PutAllStoresEverythingOrNothing) {
  ASSERT_OK(store_->Put(MakeRecord("keep", 1), Precondition::Any()));
  SubjectRecord invalid = MakeRecord("", 3);  // an empty id is invalid
  const absl::Status status =
      store_->PutAll({MakeRecord("keep", 2), MakeRecord("new", 2), invalid}, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("empty"));
  std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0] == MakeRecord("keep", 1));

  ASSERT_OK(store_->PutAll({MakeRecord("keep", 2), MakeRecord("new", 2)}, {}).status());
  all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0] == MakeRecord("keep", 2));
  EXPECT_TRUE(all[1] == MakeRecord("new", 2));
}

TEST_P(SubjectStoreTest, PutAllAppliesRecordsInOrderAndAcceptsAnEmptyBatch) {
  ASSERT_OK(store_->PutAll({}, {}).status());
  EXPECT_EQ(CountOrMinusOne(), 0);
  ASSERT_OK(store_->PutAll({MakeRecord("x", 1, 4), MakeRecord("y", 1), MakeRecord("x", 2, 2)}, {})
                .status());
  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0] == MakeRecord("x", 2, 2));  // the later duplicate wins, as with two Puts
  EXPECT_TRUE(all[1] == MakeRecord("y", 1));
}

TEST_P(SubjectStoreTest, InvalidRecordsAreRejectedAndChangeNothing) {
  ASSERT_OK(store_->Put(MakeRecord("existing", 1), Precondition::Any()));
  std::vector<std::pair<std::string, SubjectRecord>> cases;
  cases.emplace_back("empty", MakeRecord("", 1));
  cases.emplace_back("NUL", MakeRecord(std::string("a\0b", 3), 1));
  cases.emplace_back("longer than the limit",
                     MakeRecord(std::string(kMaxSubjectIdBytes + 1, 'x'), 1));
  SubjectRecord nan_threshold = MakeRecord("existing", 2);
  nan_threshold.threshold = std::nanf("");
  cases.emplace_back("threshold nan is not finite", nan_threshold);
  SubjectRecord inf_embedding = MakeRecord("existing", 3);
  inf_embedding.references[1].embedding[2] = std::numeric_limits<float>::infinity();
  cases.emplace_back("reference 1, embedding component 2 is inf", inf_embedding);
  SubjectRecord mixed_dims = MakeRecord("existing", 4);
  mixed_dims.references[2].embedding.push_back(1.0f);
  cases.emplace_back("reference 2 has an embedding of dimension 5 but reference 0 has dimension 4",
                     mixed_dims);

  for (const auto& [message, record] : cases) {
    SCOPED_TRACE(message);
    EXPECT_EQ(ValidateSubjectRecord(record).code(), absl::StatusCode::kInvalidArgument);
    const absl::Status put = store_->Put(record, Precondition::Any());
    EXPECT_EQ(put.code(), absl::StatusCode::kInvalidArgument) << put;
    EXPECT_THAT(std::string(put.message()), HasSubstr(message));
    EXPECT_EQ(store_->PutAll({MakeRecord("other", 1), record}, {}).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  const std::vector<SubjectRecord> all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0] == MakeRecord("existing", 1));

  // The limits themselves are accepted.
  const std::string longest(kMaxSubjectIdBytes, 'x');
  ASSERT_OK(store_->Put(MakeRecord(longest, 1), Precondition::Any()));
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"existing", longest}));
}

TEST_P(SubjectStoreTest, ManySubjects) {
  std::map<std::string, SubjectRecord> expected;
  std::vector<SubjectRecord> batch;
  for (int i = 0; i < 3000; ++i) {
    SubjectRecord record = MakeRecord(absl::StrCat("subject-", i), i, 1 + i % 5, 16);
    expected[record.id] = record;
    batch.push_back(std::move(record));
    if (batch.size() == 1000) {
      ASSERT_OK(store_->PutAll(batch, {}).status());
      batch.clear();
    }
  }
  for (int i = 0; i < 3000; i += 10) {
    const std::string id = absl::StrCat("subject-", i);
    ASSERT_OK(store_->Delete(id));
    expected.erase(id);
  }
  for (int i = 1; i < 1000; i += 10) {
    SubjectRecord record = MakeRecord(absl::StrCat("subject-", i), 5000 + i, 2, 16);
    ASSERT_OK(store_->Put(record, Precondition::Any()));
    expected[record.id] = record;
  }
  EXPECT_EQ(CountOrMinusOne(), 2700);
  const std::vector<SubjectRecord> all = All();
  EXPECT_TRUE(all == Values(expected)) << FirstDifference(all, Values(expected));
}

TEST_P(SubjectStoreTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 30;
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads + 1);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        absl::Status status =
            i % 3 == 2 ? store_->PutAll({MakeRecord(id, i), MakeRecord(id, i + 1)}, {}).status()
                       : store_->Put(MakeRecord(id, i), Precondition::Any());
        // Every thread deletes its own previous subject on every other step.
        if (status.ok() && i % 2 == 1) status = store_->Delete(absl::StrCat("t", t, "-", i - 1));
        if (!status.ok()) {
          results[t] = status;
          return;
        }
      }
    });
  }
  threads.emplace_back([&] {
    // Readers never see a half-applied PutAll or a subject without its references.
    for (int round = 0; round < 10; ++round) {
      const absl::Status status = store_->ForEach([](SubjectRecord record) {
        if (record.references.size() != 3) {
          return absl::InternalError(
              absl::StrCat(record.id, " has ", record.references.size(), " references"));
        }
        return absl::OkStatus();
      });
      if (!status.ok()) {
        results[kThreads] = status;
        return;
      }
    }
  });
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : results) EXPECT_OK(status);

  std::map<std::string, SubjectRecord> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kOpsPerThread; ++i) {
      if (i % 2 == 0 && i + 1 < kOpsPerThread) continue;  // deleted at step i + 1
      const std::string id = absl::StrCat("t", t, "-", i);
      expected[id] = MakeRecord(id, i % 3 == 2 ? i + 1 : i);
    }
  }
  const std::vector<SubjectRecord> all = All();
  EXPECT_TRUE(all == Values(expected)) << FirstDifference(all, Values(expected));
}

INSTANTIATE_TEST_SUITE_P(Stores, SubjectStoreTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite,
                                           StoreKind::kPostgres),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           switch (info.param) {
                             case StoreKind::kMemory: return "Memory";
                             case StoreKind::kSqlite: return "Sqlite";
                             case StoreKind::kPostgres: return "Postgres";
                           }
                           return "Unknown";
                         });

// Only a shared store has changes to follow; the others say so.
TEST_P(SubjectStoreTest, OnlyASharedStoreHasChangesToFollow) {
  if (GetParam() == StoreKind::kPostgres) {
    EXPECT_TRUE(store_->ChangePosition().ok());
  } else {
    EXPECT_EQ(store_->ChangePosition().status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_EQ(store_->WaitForChanges(0, 0).status().code(), absl::StatusCode::kUnimplemented);
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: following the changes of other writers.

class PostgresSubjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    postgres_ = testing::ScratchPostgres::Start(&why);
    if (postgres_ != nullptr) uri_ = postgres_->NewDatabase(&why);
    if (uri_.empty()) {
      if (testing::PostgresRequired()) FAIL() << why;
      GTEST_SKIP() << "PostgreSQL store not tested: " << why;
    }
  }

  std::unique_ptr<SubjectStore> Open() {
    absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenPostgresSubjectStore(uri_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::unique_ptr<testing::ScratchPostgres> postgres_;
  std::string uri_;
};

// Every write by any connection is a change, in commit order, and Get reads the state now.
TEST_F(PostgresSubjectStoreTest, ChangesListEveryWriteInCommitOrder) {
  std::unique_ptr<SubjectStore> writer = Open(), follower = Open();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(follower, nullptr);
  const absl::StatusOr<int64_t> start = follower->ChangePosition();
  ASSERT_OK(start.status());
  const int64_t before_ms = absl::ToUnixMillis(absl::Now());
  ASSERT_OK(writer->Put(MakeRecord("a", 1), Precondition::Any()));
  ASSERT_OK(writer->Put(MakeRecord("b", 1), Precondition::Any()));
  ASSERT_OK(writer->Delete("a"));
  EXPECT_EQ(writer->Delete("a").code(), absl::StatusCode::kNotFound);  // no change
  ASSERT_OK(writer->PutAll({MakeRecord("c", 2), MakeRecord("b", 3)}, {}).status());
  absl::StatusOr<SubjectStore::Changes> changes = follower->WaitForChanges(*start, 0);
  ASSERT_OK(changes.status());
  EXPECT_EQ(changes->ids, (std::vector<std::string>{"a", "b", "a", "c", "b"}));
  // Each with its write's time by the database's clock (this machine's: the same clock).
  const int64_t after_ms = absl::ToUnixMillis(absl::Now());
  ASSERT_EQ(changes->written_unix_ms.size(), changes->ids.size());
  for (const int64_t written_ms : changes->written_unix_ms) {
    EXPECT_GE(written_ms, before_ms - 5);
    EXPECT_LE(written_ms, after_ms + 5);
  }
  EXPECT_TRUE(std::is_sorted(changes->written_unix_ms.begin(), changes->written_unix_ms.end()));
  // What each write stored (nothing for the deletion), for followers to know their own echoes.
  const std::vector<int> versions = {1, 1, 0, 2, 3};
  ASSERT_EQ(changes->updated_unix_ms.size(), versions.size());
  ASSERT_EQ(changes->model_ids.size(), versions.size());
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(changes->updated_unix_ms[i],
              versions[i] == 0 ? 0 : MakeRecord("x", versions[i]).updated_unix_ms)
        << i;
    EXPECT_EQ(changes->model_ids[i], versions[i] == 0 ? "" : MakeRecord("x", versions[i]).model_id)
        << i;
  }
  EXPECT_GT(changes->next, *start);
  EXPECT_EQ(*follower->ChangePosition(), changes->next);
  absl::StatusOr<SubjectStore::Changes> none = follower->WaitForChanges(changes->next, 0);
  ASSERT_OK(none.status());
  EXPECT_TRUE(none->ids.empty());
  EXPECT_EQ(none->next, changes->next);

  absl::StatusOr<SubjectRecord> b = follower->Get("b");
  ASSERT_OK(b.status());
  EXPECT_EQ(*b, MakeRecord("b", 3));
  EXPECT_EQ(follower->Get("a").status().code(), absl::StatusCode::kNotFound);
}

// Writers drop changes older than the retention (here 0 s: every older one); a follower from
// before a dropped change is told to read the store again, and one from the position taken
// after that follows on.
TEST_F(PostgresSubjectStoreTest, AFollowerBehindThePrunedChangesIsToldToReadAgain) {
  absl::StatusOr<std::unique_ptr<SubjectStore>> writer =
      OpenPostgresSubjectStore(uri_, {.change_retention_seconds = 0});
  ASSERT_OK(writer.status());
  std::unique_ptr<SubjectStore> follower = Open();
  ASSERT_NE(follower, nullptr);
  const int64_t start = *follower->ChangePosition();
  ASSERT_OK((*writer)->Put(MakeRecord("a", 1), Precondition::Any()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a's change is older than b's
  ASSERT_OK((*writer)->Put(MakeRecord("b", 1), Precondition::Any()));
  absl::StatusOr<SubjectStore::Changes> missed = follower->WaitForChanges(start, 0);
  EXPECT_EQ(missed.status().code(), absl::StatusCode::kOutOfRange) << missed.status();
  EXPECT_THAT(std::string(missed.status().message()), HasSubstr("read the whole store again"));

  const int64_t now = *follower->ChangePosition();
  EXPECT_GT(now, start);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_OK((*writer)->Delete("a"));  // drops b's change
  absl::StatusOr<SubjectStore::Changes> changes = follower->WaitForChanges(now, 0);
  ASSERT_OK(changes.status());
  EXPECT_EQ(changes->ids, std::vector<std::string>{"a"});

  // A store that keeps changes for an hour drops none of these.
  std::unique_ptr<SubjectStore> keeper = Open();
  ASSERT_NE(keeper, nullptr);
  ASSERT_OK(keeper->Put(MakeRecord("c", 1), Precondition::Any()));
  changes = follower->WaitForChanges(now, 0);
  ASSERT_OK(changes.status());
  EXPECT_EQ(changes->ids, (std::vector<std::string>{"a", "c"}));

  EXPECT_EQ(OpenPostgresSubjectStore(uri_, {.change_retention_seconds = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A wait for changes ends when one commits, not at its timeout.
TEST_F(PostgresSubjectStoreTest, AWaitEndsWhenAChangeCommits) {
  std::unique_ptr<SubjectStore> writer = Open(), follower = Open();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(follower, nullptr);
  const int64_t start = *follower->ChangePosition();
  ASSERT_TRUE(follower->WaitForChanges(start, 0).ok());  // listening from here
  std::thread write([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_OK(writer->Put(MakeRecord("late", 1), Precondition::Any()));
  });
  const auto begin = std::chrono::steady_clock::now();
  absl::StatusOr<SubjectStore::Changes> changes = follower->WaitForChanges(start, 60);
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  write.join();
  ASSERT_OK(changes.status());
  EXPECT_EQ(changes->ids, std::vector<std::string>{"late"});
  EXPECT_LT(waited, 30) << "the notification did not end the wait";
}

// ---------------------------------------------------------------------------------------------
// SQLite: the file, reopening, bad files.

// Runs SQL on a store file behind the store's back (to inspect or damage it).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~RawDb() { sqlite3_close(db_); }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error ? error : sqlite3_errmsg(db_));
    }
    sqlite3_free(error);
  }

  // The first column of the first row, as bytes ("NULL" for NULL).
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string result = "<error>";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    } else if (sqlite3_step(stmt) == SQLITE_ROW) {
      if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
        result = "NULL";
      } else {
        const void* data = sqlite3_column_blob(stmt, 0);
        result.assign(static_cast<const char*>(data), sqlite3_column_bytes(stmt, 0));
      }
    } else {
      ADD_FAILURE() << sql << ": no row";
    }
    sqlite3_finalize(stmt);
    return result;
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteSubjectStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SubjectStore> OpenOrDie(const std::string& path) {
    absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenSqliteSubjectStore(path);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // A closed store at `path` holding subjects "a", "b", "c" (version 1, 3 references of dim 4).
  void MakeStore(const std::string& path) {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    ASSERT_OK(
        store->PutAll({MakeRecord("a", 1), MakeRecord("b", 1), MakeRecord("c", 1)}, {}).status());
  }

  TempDir dir_;
};

TEST_F(SqliteSubjectStoreTest, ReopeningFindsEverythingAcknowledged) {
  const std::string path = dir_.File("subjects.db");
  std::map<std::string, SubjectRecord> expected;
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 20; ++i) {
      SubjectRecord record = MakeRecord(absl::StrCat("s", i), i, 1 + i % 4, 64);
      ASSERT_OK(store->Put(record, Precondition::Any()));
      expected[record.id] = record;
    }
    ASSERT_OK(store->PutAll({MakeRecord("s3", 100), MakeRecord("z", 101)}, {}).status());
    expected["s3"] = MakeRecord("s3", 100);
    expected["z"] = MakeRecord("z", 101);
    ASSERT_OK(store->Delete("s7"));
    expected.erase("s7");
  }
  for (int round = 0; round < 2; ++round) {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_TRUE(*all == Values(expected)) << FirstDifference(*all, Values(expected));
    EXPECT_EQ(*store->Count(), static_cast<int64_t>(expected.size()));
    ASSERT_OK(store->Put(MakeRecord("round", round), Precondition::Any()));
    expected["round"] = MakeRecord("round", round);
  }
}

TEST_F(SqliteSubjectStoreTest, FileHasTheDocumentedSchemaAndEncoding) {
  const std::string path = dir_.File("subjects.db");
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    SubjectRecord record;
    record.id = "alice";
    record.threshold = 0.75f;
    record.threshold_shift = -0.25f;
    record.created_unix_ms = 11;
    record.updated_unix_ms = 22;
    record.model_id = "fingerprint-123";
    record.references.push_back({std::string("\x01\x00\x02", 3), {1.0f, -2.5f}});
    record.references.push_back({"second", {0.0f, 3.0f}});
    ASSERT_OK(store->Put(record, Precondition::Any()));
  }
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA application_id"), "1936879219");  // 0x73726E73, "srns"
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");  // persistent in the file
  EXPECT_EQ(raw.Query("SELECT threshold FROM subjects WHERE id = 'alice'"), "0.75");
  EXPECT_EQ(raw.Query("SELECT threshold_shift FROM subjects WHERE id = 'alice'"), "-0.25");
  EXPECT_EQ(raw.Query("SELECT created_ms || ',' || updated_ms || ',' || model_id FROM subjects"),
            "11,22,fingerprint-123");
  EXPECT_EQ(raw.Query("SELECT input FROM subject_references WHERE position = 0"),
            std::string("\x01\x00\x02", 3));
  // 1.0f and -2.5f as little-endian IEEE-754 float32.
  EXPECT_EQ(raw.Query("SELECT hex(embedding) FROM subject_references WHERE position = 0"),
            "0000803F000020C0");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM subject_references WHERE subject_id = 'alice'"), "2");
  // Deleting the subject row cascades to its references.
  raw.Exec("PRAGMA foreign_keys = ON; DELETE FROM subjects");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM subject_references"), "0");
}

TEST_F(SqliteSubjectStoreTest, AFailureInsideATransactionRollsItAllBack) {
  const std::string path = dir_.File("subjects.db");
  MakeStore(path);
  // A trigger makes SQLite itself fail halfway through a write, after earlier rows went in.
  RawDb(path).Exec(
      "CREATE TRIGGER poison BEFORE INSERT ON subject_references WHEN NEW.subject_id = 'poison' "
      "AND NEW.position = 2 BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  std::unique_ptr<SubjectStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);

  absl::Status status =
      store->PutAll({MakeRecord("a", 2), MakeRecord("new", 2), MakeRecord("poison", 2)}, {})
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("injected failure"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("store reference 2 of 'poison'"));
  status = store->Put(MakeRecord("poison", 2),
                      Precondition::Any());  // the subject row went in before the failure
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;

  const std::vector<SubjectRecord> expected = {MakeRecord("a", 1), MakeRecord("b", 1),
                                               MakeRecord("c", 1)};
  absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(*all == expected) << FirstDifference(*all, expected);
  // No transaction was left open: the store goes on writing, and a reopen sees the same.
  ASSERT_OK(store->Put(MakeRecord("poison", 3, /*num_references=*/2), Precondition::Any()));
  ASSERT_OK(store->Delete("poison"));
  store.reset();
  store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  all = ReadAll(*store);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(*all == expected) << FirstDifference(*all, expected);
}

TEST_F(SqliteSubjectStoreTest, BadPathsAreClearErrors) {
  absl::StatusOr<std::unique_ptr<SubjectStore>> store =
      OpenSqliteSubjectStore(dir_.File("missing/subjects.db"));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir_.File("missing")));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("No such file or directory"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("missing")));

  store = OpenSqliteSubjectStore(dir_.path());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is a directory"));

  WriteFileBytes(dir_.File("plain"), "x");
  store = OpenSqliteSubjectStore(dir_.File("plain/subjects.db"));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is not a directory"));

  store = OpenSqliteSubjectStore("");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  store = OpenSqliteSubjectStore(":memory:");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
}

TEST_F(SqliteSubjectStoreTest, ANonDatabaseFileIsRefusedAndLeftAlone) {
  const std::string path = dir_.File("notes.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) absl::StrAppend(&text, "line ", i, " of a plain text file\n");
  WriteFileBytes(path, text);
  absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenSqliteSubjectStore(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not an SQLite database"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
  EXPECT_EQ(ReadFileBytes(path), text);
}

TEST_F(SqliteSubjectStoreTest, AnotherProgramsDatabaseIsRefusedAndLeftAlone) {
  const std::string path = dir_.File("other.db");
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO accounts(name) VALUES('x')");
  }
  const std::string before = ReadFileBytes(path);
  absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenSqliteSubjectStore(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not an srn subject store"));
  EXPECT_EQ(ReadFileBytes(path), before);  // not even switched to WAL
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));

  const std::string tagged = dir_.File("tagged.db");
  RawDb(tagged).Exec("PRAGMA application_id = 1234");
  store = OpenSqliteSubjectStore(tagged);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("application_id 0x000004d2"));
}

TEST_F(SqliteSubjectStoreTest, AStoreOfANewerSchemaVersionIsRefused) {
  const std::string path = dir_.File("subjects.db");
  MakeStore(path);
  RawDb(path).Exec("PRAGMA user_version = 4");
  absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenSqliteSubjectStore(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("schema version 4, which is newer than the version 3"));
}

// A store written before threshold shifts existed (schema version 1, built here exactly as that
// version created it) opens, keeps its subjects without a shift, and stores shifts from then on.
TEST_F(SqliteSubjectStoreTest, AVersion1StoreIsUpgradedInPlace) {
  const std::string path = dir_.File("v1.db");
  {
    RawDb raw(path);
    raw.Exec(
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE subjects(id TEXT PRIMARY KEY NOT NULL, threshold REAL NULL,"
        "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, model_id TEXT NOT NULL)"
        "  WITHOUT ROWID;"
        "CREATE TABLE subject_references(subject_id TEXT NOT NULL REFERENCES subjects(id)"
        "  ON DELETE CASCADE, position INTEGER NOT NULL, input BLOB NOT NULL,"
        "  embedding BLOB NOT NULL, PRIMARY KEY(subject_id, position)) WITHOUT ROWID;"
        "INSERT INTO subjects VALUES('old', 0.5, 1, 2, 'm');"
        "INSERT INTO subject_references VALUES('old', 0, x'01', x'0000803F');"
        "PRAGMA application_id = 1936879219; PRAGMA user_version = 1;");
  }
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*store);
    ASSERT_OK(records.status());
    ASSERT_EQ(records->size(), 1u);
    EXPECT_EQ((*records)[0].id, "old");
    EXPECT_EQ((*records)[0].threshold, 0.5f);
    EXPECT_FALSE((*records)[0].threshold_shift.has_value());
    EXPECT_TRUE((*records)[0].derived.empty());
    EXPECT_EQ((*records)[0].references[0].embedding, std::vector<float>{1.0f});
    SubjectRecord shifted = MakeRecord("new", 1);
    ASSERT_TRUE(shifted.threshold_shift.has_value());
    ASSERT_FALSE(shifted.derived.empty());
    ASSERT_OK(store->Put(shifted, Precondition::Any()));
  }
  EXPECT_EQ(RawDb(path).Query("PRAGMA user_version"), "3");
  std::unique_ptr<SubjectStore> store = OpenOrDie(path);
  absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*store);
  ASSERT_OK(records.status());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0], MakeRecord("new", 1));
}

// A store of schema version 2 (before derived state was kept) opens with its subjects intact and
// none of them derived; derived state is stored from then on.
TEST_F(SqliteSubjectStoreTest, AVersion2StoreIsUpgradedInPlace) {
  const std::string path = dir_.File("v2.db");
  {
    RawDb raw(path);
    raw.Exec(
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE subjects(id TEXT PRIMARY KEY NOT NULL, threshold REAL NULL,"
        "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, model_id TEXT NOT NULL,"
        "  threshold_shift REAL NULL) WITHOUT ROWID;"
        "CREATE TABLE subject_references(subject_id TEXT NOT NULL REFERENCES subjects(id)"
        "  ON DELETE CASCADE, position INTEGER NOT NULL, input BLOB NOT NULL,"
        "  embedding BLOB NOT NULL, PRIMARY KEY(subject_id, position)) WITHOUT ROWID;"
        "INSERT INTO subjects VALUES('old', NULL, 1, 2, 'm', -0.5);"
        "INSERT INTO subject_references VALUES('old', 0, x'01', x'0000803F');"
        "PRAGMA application_id = 1936879219; PRAGMA user_version = 2;");
  }
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*store);
    ASSERT_OK(records.status());
    ASSERT_EQ(records->size(), 1u);
    EXPECT_EQ((*records)[0].threshold_shift, -0.5f);
    EXPECT_TRUE((*records)[0].derived.empty());
    ASSERT_OK(store->Put(MakeRecord("new", 1), Precondition::Any()));
  }
  EXPECT_EQ(RawDb(path).Query("PRAGMA user_version"), "3");
  std::unique_ptr<SubjectStore> store = OpenOrDie(path);
  absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*store);
  ASSERT_OK(records.status());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0], MakeRecord("new", 1));
}

// Derived state of another type than a BLOB is a damaged row, named.
TEST_F(SqliteSubjectStoreTest, ADerivedValueThatIsNotABlobIsDataLoss) {
  const std::string path = dir_.File("subjects.db");
  ASSERT_OK(OpenOrDie(path)->Put(MakeRecord("alice", 1), Precondition::Any()));
  RawDb(path).Exec("UPDATE subjects SET derived = 12 WHERE id = 'alice'");
  absl::StatusOr<std::vector<SubjectRecord>> records = ReadAll(*OpenOrDie(path));
  EXPECT_EQ(records.status().code(), absl::StatusCode::kDataLoss) << records.status();
  EXPECT_THAT(std::string(records.status().message()),
              HasSubstr("subject 'alice': the derived state is not a BLOB"));
}

TEST_F(SqliteSubjectStoreTest, ATruncatedDatabaseFileIsDataLoss) {
  const std::string path = dir_.File("subjects.db");
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    std::vector<SubjectRecord> records;
    for (int i = 0; i < 300; ++i) records.push_back(MakeRecord(absl::StrCat("s", i), i, 5, 64));
    ASSERT_OK(store->PutAll(records, {}).status());
  }
  // Closing the last connection checkpointed everything into the main file.
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  const std::string image = ReadFileBytes(path);
  ASSERT_GT(image.size(), 100000u);
  // Whole pages or more missing. (A few bytes off the end can go unnoticed: SQLite reads the
  // missing tail of the last page as zeros, which may well be what was there.)
  for (const size_t size : {size_t{50}, size_t{1000}, size_t{4096}, size_t{8192}, image.size() / 2,
                            image.size() - 4096}) {
    SCOPED_TRACE(absl::StrCat("truncated to ", size, " of ", image.size(), " bytes"));
    const std::string copy = dir_.File(absl::StrCat("truncated-", size, ".db"));
    WriteFileBytes(copy, image.substr(0, size));
    absl::StatusOr<std::unique_ptr<SubjectStore>> store = OpenSqliteSubjectStore(copy);
    // The damage shows either when opening or, at the latest, when reading everything back.
    const absl::Status status = store.ok() ? ReadAll(**store).status() : store.status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(copy));
    std::printf("[ status   ] %s: %s %s\n", absl::StrCat("truncated to ", size).c_str(),
                store.ok() ? "opened, then" : "open:", status.ToString().c_str());
  }
}

TEST_F(SqliteSubjectStoreTest, DamagedRowsAreDataLossNamingTheSubject) {
  struct Damage {
    std::string sql;
    std::string message;
  };
  const std::vector<Damage> damages = {
      {"UPDATE subject_references SET embedding = x'0102030405' WHERE subject_id = 'b' AND "
       "position = 1",
       "subject 'b': reference 1: embedding blob of 5 bytes is not a whole number of float32s"},
      {"UPDATE subject_references SET embedding = x'00000000' WHERE subject_id = 'b' AND "
       "position = 2",
       "subject 'b': reference 2 has dimension 1 but reference 0 has dimension 4"},
      {"UPDATE subject_references SET embedding = x'0000C07F0000C07F0000C07F0000C07F' WHERE "
       "subject_id = 'b' AND position = 0",
       "subject 'b': reference 0: embedding holds nan"},
      {"DELETE FROM subject_references WHERE subject_id = 'b' AND position = 1",
       "subject 'b': reference at position 2 where position 1 was expected"},
      {"UPDATE subject_references SET input = 'text' WHERE subject_id = 'b' AND position = 0",
       "subject 'b': reference 0: the input or the embedding is not a BLOB"},
      {"UPDATE subjects SET threshold = 'high' WHERE id = 'b'",
       "subject 'b': the threshold is not a number"},
      {"UPDATE subjects SET created_ms = 1.5 WHERE id = 'b'",
       "subject 'b': created_ms or updated_ms is not an INTEGER"},
      {"PRAGMA foreign_keys = OFF; DELETE FROM subjects WHERE id = 'b'",
       "subject 'b': has references but no subject row"},
      {"PRAGMA foreign_keys = OFF; INSERT INTO subject_references VALUES('d', 0, x'', x'')",
       "subject 'd': has references but no subject row"},
  };
  for (size_t i = 0; i < damages.size(); ++i) {
    SCOPED_TRACE(damages[i].sql);
    const std::string path = dir_.File(absl::StrCat("damaged-", i, ".db"));
    MakeStore(path);
    RawDb(path).Exec(damages[i].sql);
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    std::vector<std::string> visited;
    const absl::Status status = store->ForEach([&](SubjectRecord record) {
      visited.push_back(record.id);
      return absl::OkStatus();
    });
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(damages[i].message));
    EXPECT_THAT(std::string(status.message()), HasSubstr(path));
    EXPECT_EQ(visited.size(), i == damages.size() - 1 ? 3u : 1u);  // only "a" (before "b")
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite durability: a writer killed at random moments never loses an acknowledged change.

// The op sequence the killed writer runs: op i (i = 0, 1, ...) is, by i mod 4,
//   0, 1: Put s<i>              2: PutAll {s<i-1> replaced, t<i> new}       3: Delete s<i-3>
// so that puts of new ids, replacements, multi-record batches and deletes all get interrupted.
SubjectRecord DurableRecord(const std::string& id, int64_t version) {
  SubjectRecord record;
  record.id = id;
  if (version % 3 != 0) record.threshold = 0.25f * static_cast<float>(version);
  record.created_unix_ms = version;
  record.updated_unix_ms = version + 1;
  record.model_id = absl::StrCat("model-", version % 5);
  const int num_references = 1 + static_cast<int>(version % 5);
  for (int j = 0; j < num_references; ++j) {
    StoredReference reference;
    reference.input = absl::StrCat("input:", id, ":", version, ":", j, ":");
    reference.input.append(100 + (version * 7 + j) % 300,
                           static_cast<char>('a' + (version + j) % 26));
    for (int k = 0; k < 64; ++k) {
      reference.embedding.push_back(static_cast<float>(version) + 0.5f * static_cast<float>(j) +
                                    static_cast<float>(k) / 64.0f);
    }
    record.references.push_back(std::move(reference));
  }
  return record;
}

absl::Status ApplyOp(int64_t i, SubjectStore& store) {
  switch (i % 4) {
    case 0:
    case 1:
      return store.Put(DurableRecord(absl::StrCat("s", i), i), Precondition::Any());
    case 2:
      return store
          .PutAll(
              {DurableRecord(absl::StrCat("s", i - 1), i), DurableRecord(absl::StrCat("t", i), i)},
              {})
          .status();
    default:
      return store.Delete(absl::StrCat("s", i - 3));
  }
}

void ApplyOp(int64_t i, std::map<std::string, SubjectRecord>& state) {
  switch (i % 4) {
    case 0:
    case 1:
      state[absl::StrCat("s", i)] = DurableRecord(absl::StrCat("s", i), i);
      break;
    case 2:
      state[absl::StrCat("s", i - 1)] = DurableRecord(absl::StrCat("s", i - 1), i);
      state[absl::StrCat("t", i)] = DurableRecord(absl::StrCat("t", i), i);
      break;
    default:
      state.erase(absl::StrCat("s", i - 3));
  }
}

// The child: runs ops from `first` on, writing each op's index to `ack_fd` only after the store
// acknowledged it, until it is killed. Never returns into the test framework.
using StoreOpener = std::function<absl::StatusOr<std::unique_ptr<SubjectStore>>()>;

[[noreturn]] void RunWriterChild(const StoreOpener& open, int64_t first, int ack_fd) {
  absl::StatusOr<std::unique_ptr<SubjectStore>> store = open();
  if (!store.ok()) {
    std::fprintf(stderr, "child: %s\n", store.status().ToString().c_str());
    _exit(2);
  }
  for (int64_t i = first; i < first + 1000000; ++i) {
    const absl::Status status = ApplyOp(i, **store);
    if (!status.ok()) {
      std::fprintf(stderr, "child: op %lld: %s\n", static_cast<long long>(i),
                   status.ToString().c_str());
      _exit(3);
    }
    if (write(ack_fd, &i, sizeof(i)) != static_cast<ssize_t>(sizeof(i))) _exit(4);
  }
  _exit(0);
}

// Kills a writer process `trials` times, each a random 0-40 ms after its first acknowledged op,
// and checks after each kill that every acknowledged op is stored, the one in flight may be, and
// nothing else; then that the store takes writes. `settle`, when given, runs after each kill
// before the store is read: a database server may still commit the dead writer's last
// transaction until it notices the writer's connection is gone.
void ExpectKilledWritersLoseNothing(const StoreOpener& open, int trials,
                                    const std::function<void()>& settle = nullptr) {
  const int kTrials = trials;
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> delay_ms(0, 40);

  std::map<std::string, SubjectRecord> state;  // what ops [0, next) leave behind
  int64_t next = 0;
  int64_t acknowledged_total = 0;
  int in_flight_committed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int trial = 0; trial < kTrials; ++trial) {
    const int delay = delay_ms(rng);
    SCOPED_TRACE(absl::StrCat("trial ", trial, ", kill ", delay,
                              " ms after the first ack, first op ", next));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      RunWriterChild(open, next, fds[1]);
    }
    close(fds[1]);

    // Collect acknowledgements until the kill time, `delay` after the first one (so that every
    // trial has at least one, however slow the machine), then kill and drain what was written.
    std::string acks;
    std::optional<std::chrono::steady_clock::time_point> kill_at;
    const auto first_ack_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool killed = false;
    char buffer[4096];
    for (;;) {
      int timeout = -1;
      if (!killed) {
        if (!kill_at.has_value() && !acks.empty()) {
          kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            kill_at.value_or(first_ack_deadline) - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          ASSERT_EQ(kill(pid, SIGKILL), 0);
          killed = true;
        } else {
          timeout = static_cast<int>(left.count());
        }
      }
      pollfd pfd = {fds[0], POLLIN, 0};
      if (poll(&pfd, 1, timeout) <= 0) continue;  // timed out: time to kill
      const ssize_t n = read(fds[0], buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      ASSERT_GE(n, 0);
      if (n == 0) break;  // the child is gone and everything it wrote has been read
      acks.append(buffer, static_cast<size_t>(n));
    }
    close(fds[0]);
    int wait_status = 0;
    ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
        << "the writer did not die by our SIGKILL; exit status "
        << (WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);

    ASSERT_EQ(acks.size() % sizeof(int64_t), 0u);
    const int64_t acked = static_cast<int64_t>(acks.size() / sizeof(int64_t));
    for (int64_t k = 0; k < acked; ++k) {
      int64_t op;
      std::memcpy(&op, acks.data() + k * sizeof(int64_t), sizeof(op));
      ASSERT_EQ(op, next + k);
    }
    ASSERT_GE(acked, 1) << "no acknowledgement within 60 s of the writer's start";
    acknowledged_total += acked;
    if (settle) settle();

    // Every acknowledged op is in; the one in flight at the kill may or may not be; nothing else.
    std::map<std::string, SubjectRecord> without_in_flight = state;
    for (int64_t i = next; i < next + acked; ++i) ApplyOp(i, without_in_flight);
    std::map<std::string, SubjectRecord> with_in_flight = without_in_flight;
    ApplyOp(next + acked, with_in_flight);

    absl::StatusOr<std::unique_ptr<SubjectStore>> opened = open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::unique_ptr<SubjectStore> store = *std::move(opened);
    absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
    ASSERT_TRUE(all.ok()) << all.status();
    if (*all == Values(without_in_flight)) {
      state = std::move(without_in_flight);
      next += acked;
    } else if (*all == Values(with_in_flight)) {
      state = std::move(with_in_flight);
      next += acked + 1;
      ++in_flight_committed;
    } else {
      FAIL() << "after " << acked << " acknowledged ops the store holds neither state: "
             << FirstDifference(*all, Values(without_in_flight));
    }
    // The store takes new writes after the crash.
    ASSERT_OK(store->Put(MakeRecord("probe", trial), Precondition::Any()));
    EXPECT_EQ(*store->Count(), static_cast<int64_t>(state.size()) + 1);
    ASSERT_OK(store->Delete("probe"));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[ stats    ] %d trials in %.2f s: %lld acknowledged ops, %zu subjects stored, "
      "%d in-flight ops found committed\n",
      kTrials, seconds, static_cast<long long>(acknowledged_total), state.size(),
      in_flight_committed);
  EXPECT_GE(acknowledged_total, kTrials);
}

TEST_F(SqliteSubjectStoreTest, KilledWriterNeverLosesAcknowledgedChanges) {
  const std::string path = dir_.File("subjects.db");
  ExpectKilledWritersLoseNothing([&] { return OpenSqliteSubjectStore(path); }, 40);
}

// The same against PostgreSQL, 100 times: a killed writer's connection drops, and its open
// transaction with it, unless its COMMIT had already reached the server, which may then commit
// it after the writer died: the store is read only once the writer's connection is gone.
TEST_F(PostgresSubjectStoreTest, KilledWriterNeverLosesAcknowledgedChanges) {
  ExpectKilledWritersLoseNothing([&] { return OpenPostgresSubjectStore(uri_); }, 100, [&] {
    std::string why;
    ASSERT_TRUE(postgres_->WaitForNoClients(&why)) << why;
  });
}

// Simulates a crash that tore the last write to the WAL, by truncating a copy of the WAL or
// damaging its bytes at many points: the store must open, hold exactly the transactions that
// were entirely before the damage, and accept new writes.
TEST_F(SqliteSubjectStoreTest, ATornWalTailLosesOnlyTheUnfinishedTransactions) {
  const std::string path = dir_.File("subjects.db");
  const std::string wal_path = path + "-wal";
  std::vector<SubjectRecord> records;
  std::vector<int64_t> commit_end;  // WAL size once record i was acknowledged
  std::string db_image, wal_image;
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 24; ++i) {
      records.push_back(
          MakeRecord(absl::StrCat("w", absl::Dec(i, absl::kZeroPad2)), i, 1 + i % 5, 64));
      ASSERT_OK(store->Put(records.back(), Precondition::Any()));
      commit_end.push_back(static_cast<int64_t>(std::filesystem::file_size(wal_path)));
      if (i > 0) {
        ASSERT_GT(commit_end[i], commit_end[i - 1]) << "a checkpoint restarted the WAL";
      }
    }
    // The files as a crash right now would leave them (the WAL is fsynced at each commit).
    db_image = ReadFileBytes(path);
    wal_image = ReadFileBytes(wal_path);
  }
  ASSERT_EQ(static_cast<int64_t>(wal_image.size()), commit_end.back());
  ASSERT_GE(wal_image.size(), 32u);
  const int64_t page_size =
      (static_cast<uint8_t>(wal_image[8]) << 24) | (static_cast<uint8_t>(wal_image[9]) << 16) |
      (static_cast<uint8_t>(wal_image[10]) << 8) | static_cast<uint8_t>(wal_image[11]);
  const int64_t frame_size = 24 + page_size;
  ASSERT_EQ((commit_end.back() - 32) % frame_size, 0);

  // Cut points: around every commit boundary, inside the WAL header, and random ones.
  std::vector<int64_t> cuts = {0, 31, 32, 33};
  for (const int64_t end : commit_end) {
    for (const int64_t delta : {-1, 0, 1})
      cuts.push_back(std::min<int64_t>(end + delta, commit_end.back()));
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> anywhere(0, commit_end.back() - 1);
  for (int i = 0; i < 20; ++i) cuts.push_back(anywhere(rng));

  auto check_image = [&](const std::string& wal, int64_t intact_bytes, const std::string& label) {
    SCOPED_TRACE(label);
    TempDir scratch;
    const std::string copy = scratch.File("subjects.db");
    WriteFileBytes(copy, db_image);
    WriteFileBytes(copy + "-wal", wal);
    // SQLite recovers only whole transactions whose frames all check out.
    std::vector<SubjectRecord> expected;
    for (size_t i = 0; i < records.size(); ++i) {
      if (commit_end[i] <= intact_bytes) expected.push_back(records[i]);
    }
    {
      std::unique_ptr<SubjectStore> store = OpenOrDie(copy);
      ASSERT_NE(store, nullptr);
      absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
      ASSERT_TRUE(all.ok()) << all.status();
      EXPECT_TRUE(*all == expected) << FirstDifference(*all, expected);
      ASSERT_OK(store->Put(MakeRecord("after", 1), Precondition::Any()));
    }
    std::unique_ptr<SubjectStore> store = OpenOrDie(copy);
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
    ASSERT_TRUE(all.ok()) << all.status();
    expected.insert(expected.begin(), MakeRecord("after", 1));  // "after" < "w..."
    EXPECT_TRUE(*all == expected) << FirstDifference(*all, expected);
  };

  for (const int64_t cut : cuts) {
    check_image(wal_image.substr(0, static_cast<size_t>(cut)), cut,
                absl::StrCat("WAL cut at ", cut));
  }
  // Garbage instead of the tail: the damaged frame and everything after it is ignored.
  std::uniform_int_distribution<int> length(1, 64);
  std::uniform_int_distribution<int> flip(1, 255);
  for (int i = 0; i < 20; ++i) {
    const int64_t at = anywhere(rng);
    std::string wal = wal_image;
    const int64_t end = std::min<int64_t>(at + length(rng), static_cast<int64_t>(wal.size()));
    for (int64_t b = at; b < end; ++b) wal[b] = static_cast<char>(wal[b] ^ flip(rng));
    const int64_t frame_start = at < 32 ? 0 : 32 + (at - 32) / frame_size * frame_size;
    check_image(wal, frame_start, absl::StrCat("WAL bytes ", at, "..", end, " damaged"));
  }
}

// Put latency of a typical enrollment (5 references of 64 floats, ~1 KB inputs), fsync included.
TEST_F(SqliteSubjectStoreTest, PutLatency) {
  constexpr int kPuts = 300;
  std::unique_ptr<SubjectStore> store = OpenOrDie(dir_.File("subjects.db"));
  ASSERT_NE(store, nullptr);
  std::vector<SubjectRecord> records;
  for (int i = 0; i < kPuts; ++i) {
    records.push_back(MakeRecord(absl::StrCat("p", absl::Dec(i, absl::kZeroPad4)), i, 5, 64));
    for (StoredReference& reference : records.back().references) reference.input.resize(1000, 'x');
  }
  std::vector<double> micros;
  for (const SubjectRecord& record : records) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_OK(store->Put(record, Precondition::Any()));
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  absl::StatusOr<std::vector<SubjectRecord>> all = ReadAll(*store);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(*all == records) << FirstDifference(*all, records);
  std::sort(micros.begin(), micros.end());
  std::printf(
      "[ stats    ] Put of 5 x 64 floats: p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n",
      micros[kPuts / 2], micros[kPuts * 9 / 10], micros[kPuts * 99 / 100], micros.back());
}

// Recovery at server start-up reads every subject: 100,000 subjects of 5 references of 64
// floats (the scale the service is sized for) must come back in a few seconds.
TEST_F(SqliteSubjectStoreTest, ForEachStreamsALargeStoreQuickly) {
  constexpr int kSubjects = 100000;
  const std::string path = dir_.File("subjects.db");
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::unique_ptr<SubjectStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    std::vector<SubjectRecord> batch;
    for (int i = 0; i < kSubjects; ++i) {
      batch.push_back(
          MakeRecord(absl::StrCat("subject-", absl::Dec(i, absl::kZeroPad6)), i, 5, 64));
      if (batch.size() == 10000) {
        ASSERT_OK(store->PutAll(batch, {}).status());
        batch.clear();
      }
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::unique_ptr<SubjectStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  int64_t seen = 0;
  ASSERT_OK(store->ForEach([&](SubjectRecord record) {
    // Spot-check content without keeping it: the record of index `seen` comes back whole.
    if (record.id != absl::StrCat("subject-", absl::Dec(seen, absl::kZeroPad6)) ||
        record.references.size() != 5 || record.references[4].embedding.size() != 64 ||
        record.references[4].embedding[0] != static_cast<float>(seen) + 1.0f) {
      return absl::InternalError(absl::StrCat("unexpected record ", record.id, " at ", seen));
    }
    ++seen;
    return absl::OkStatus();
  }));
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(seen, kSubjects);
  // Generous (sanitizer builds, a busy machine), yet far below what a per-subject query or a
  // sort of the whole table would take.
  EXPECT_LT(std::chrono::duration<double>(t2 - t1).count(), 20.0);
  EXPECT_EQ(*store->Count(), kSubjects);
  const auto t3 = std::chrono::steady_clock::now();
  std::printf(
      "[ stats    ] %d subjects: PutAll %.2f s, ForEach %.2f s, Count %.3f s, file %.0f MB\n",
      kSubjects, std::chrono::duration<double>(t1 - t0).count(),
      std::chrono::duration<double>(t2 - t1).count(),
      std::chrono::duration<double>(t3 - t2).count(),
      static_cast<double>(std::filesystem::file_size(path)) / 1e6);
}

}  // namespace
}  // namespace srn
