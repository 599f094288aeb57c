// The in-memory SubjectStore, plus what every store shares: record equality and validation.

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "server/subject_store.h"

namespace srn {

bool operator==(const SubjectRecord& a, const SubjectRecord& b) {
  if (a.id != b.id || a.threshold != b.threshold || a.threshold_shift != b.threshold_shift ||
      a.created_unix_ms != b.created_unix_ms ||
      a.updated_unix_ms != b.updated_unix_ms || a.model_id != b.model_id ||
      a.derived != b.derived || a.references.size() != b.references.size()) {
    return false;
  }
  for (size_t i = 0; i < a.references.size(); ++i) {
    if (a.references[i].input != b.references[i].input ||
        a.references[i].embedding != b.references[i].embedding) {
      return false;
    }
  }
  return true;
}

bool Precondition::HoldsFor(const std::optional<int64_t>& stored) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kAbsent:
      return !stored.has_value();
    case Kind::kUpdatedAt:
      return stored == unix_ms_;
  }
  return false;
}

absl::Status Precondition::Conflict(const std::string& id,
                                    const std::optional<int64_t>& stored) const {
  return absl::AbortedError(absl::StrCat(
      "subject '", id, "' changed since this write read it (another server wrote it): expected ",
      kind_ == Kind::kAbsent ? "no record"
                             : absl::StrCat("the record updated at ", unix_ms_, " ms"),
      ", found ", stored.has_value() ? absl::StrCat("one updated at ", *stored, " ms") : "none",
      "; read it again and retry"));
}

absl::Status CheckPreconditions(const std::vector<SubjectRecord>& records,
                                const std::vector<Precondition>& expected) {
  if (!expected.empty() && expected.size() != records.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PutAll got ", expected.size(),
                                                   " preconditions for ", records.size(),
                                                   " records (give one per record, or none)"));
  }
  for (const SubjectRecord& record : records) SRN_RETURN_IF_ERROR(ValidateSubjectRecord(record));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SubjectStore::ChangePosition() {
  return absl::UnimplementedError("this store is not shared: there are no changes to follow");
}

absl::StatusOr<SubjectStore::Changes> SubjectStore::WaitForChanges(int64_t, double) {
  return absl::UnimplementedError("this store is not shared: there are no changes to follow");
}

absl::StatusOr<SubjectRecord> SubjectStore::Get(const std::string&) {
  return absl::UnimplementedError("this store does not read single subjects");
}

absl::Status ValidateSubjectRecord(const SubjectRecord& record) {
  if (record.id.empty()) return absl::InvalidArgumentError("subject id is empty");
  if (record.id.size() > kMaxSubjectIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("subject id of ", record.id.size(),
                                                   " bytes is longer than the limit of ",
                                                   kMaxSubjectIdBytes));
  }
  if (record.id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("subject id contains a NUL byte");
  }
  // SQLite stores a NaN as NULL, which would silently turn the threshold into "unset".
  if (record.threshold.has_value() && !std::isfinite(*record.threshold)) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject '", record.id, "': threshold ", *record.threshold, " is not finite"));
  }
  if (record.threshold_shift.has_value() && !std::isfinite(*record.threshold_shift)) {
    return absl::InvalidArgumentError(absl::StrCat("subject '", record.id, "': threshold shift ",
                                                   *record.threshold_shift, " is not finite"));
  }
  for (size_t i = 0; i < record.references.size(); ++i) {
    const std::vector<float>& embedding = record.references[i].embedding;
    if (embedding.size() != record.references[0].embedding.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject '", record.id, "': reference ", i,
                       " has an embedding of dimension ", embedding.size(),
                       " but reference 0 has dimension ", record.references[0].embedding.size()));
    }
    for (size_t j = 0; j < embedding.size(); ++j) {
      if (!std::isfinite(embedding[j])) {
        return absl::InvalidArgumentError(absl::StrCat("subject '", record.id, "': reference ", i,
                                                       ", embedding component ", j, " is ",
                                                       embedding[j]));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// Records are immutable once stored and shared by pointer, so that ForEach can take a snapshot
// by copying only the index and call `fn` without holding the lock.
class MemorySubjectStore final : public SubjectStore {
 public:
  absl::Status Put(const SubjectRecord& record, const Precondition& expected) override {
    SRN_RETURN_IF_ERROR(ValidateSubjectRecord(record));
    auto stored = std::make_shared<const SubjectRecord>(record);
    MutexLock lock(&mu_);
    if (const std::optional<int64_t> now = UpdatedLocked(record.id); !expected.HoldsFor(now)) {
      return expected.Conflict(record.id, now);
    }
    records_[record.id] = std::move(stored);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> PutAll(
      const std::vector<SubjectRecord>& records,
      const std::vector<Precondition>& expected) override {
    SRN_RETURN_IF_ERROR(CheckPreconditions(records, expected));
    std::vector<std::shared_ptr<const SubjectRecord>> stored;
    stored.reserve(records.size());
    for (const SubjectRecord& record : records) {
      stored.push_back(std::make_shared<const SubjectRecord>(record));
    }
    std::vector<std::string> skipped;
    MutexLock lock(&mu_);
    for (size_t i = 0; i < stored.size(); ++i) {
      if (!expected.empty() && !expected[i].HoldsFor(UpdatedLocked(stored[i]->id))) {
        skipped.push_back(stored[i]->id);
        stored[i] = nullptr;
      }
    }
    for (std::shared_ptr<const SubjectRecord>& record : stored) {
      if (record != nullptr) records_[record->id] = std::move(record);
    }
    return skipped;
  }

  absl::StatusOr<SubjectRecord> Get(const std::string& id) override {
    MutexLock lock(&mu_);
    auto it = records_.find(id);
    if (it == records_.end())
      return absl::NotFoundError(absl::StrCat("subject '", id, "' is not stored"));
    return *it->second;
  }

  absl::Status Delete(const std::string& id) override {
    MutexLock lock(&mu_);
    if (records_.erase(id) == 0) {
      return absl::NotFoundError(absl::StrCat("subject '", id, "' is not stored"));
    }
    return absl::OkStatus();
  }

  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    Index snapshot;
    {
      MutexLock lock(&mu_);
      snapshot = records_;
    }
    for (const auto& [id, record] : snapshot) SRN_RETURN_IF_ERROR(fn(*record));
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Count() override {
    MutexLock lock(&mu_);
    return static_cast<int64_t>(records_.size());
  }

 private:
  using Index = std::map<std::string, std::shared_ptr<const SubjectRecord>>;

  std::optional<int64_t> UpdatedLocked(const std::string& id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = records_.find(id);
    if (it == records_.end()) return std::nullopt;
    return it->second->updated_unix_ms;
  }

  Mutex mu_;
  Index records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<SubjectStore> NewInMemorySubjectStore() {
  return std::make_unique<MemorySubjectStore>();
}

}  // namespace srn
