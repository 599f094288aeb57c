#include "server/group_commit.h"

namespace srn {

absl::Status WriteQueue::Write(
    absl::Span<const SubjectRecord> records, absl::Span<const Precondition> expected,
    std::vector<std::string>* skipped,
    absl::FunctionRef<absl::Status(absl::Span<PendingWrite* const>)> write_batch) {
  PendingWrite mine;
  mine.records = records;
  mine.expected = expected;
  mine.skipped = skipped;
  PendingWrite* const write = &mine;
  std::vector<PendingWrite*> batch;
  {
    MutexLock lock(&mu_);
    queue_.push_back(write);
    mu_.Await([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return write->done || queue_.front() == write;
    });
    if (write->done) return write->status;
    size_t records = 0;
    for (PendingWrite* w : queue_) {
      if (!batch.empty() &&
          (batch.size() >= max_writes_ || records + w->records.size() > max_records_)) {
        break;
      }
      batch.push_back(w);
      records += w->records.size();
    }
  }
  const absl::Status status = write_batch(batch);
  MutexLock lock(&mu_);
  for (PendingWrite* w : batch) {
    if (!status.ok()) w->status = status;
    w->done = true;
    queue_.pop_front();
  }
  return write->status;
}

void AcceptInOrder(absl::Span<PendingWrite* const> batch,
                   std::map<std::string, std::optional<int64_t>>* stored,
                   absl::FunctionRef<void(const SubjectRecord&)> accept) {
  for (PendingWrite* w : batch) {
    std::vector<bool> accepted(w->records.size(), true);
    for (size_t i = 0; i < w->expected.size(); ++i) {
      const std::optional<int64_t>& now = (*stored)[w->records[i].id];
      if (w->expected[i].HoldsFor(now)) continue;
      accepted[i] = false;
      if (w->skipped == nullptr) {
        w->status = w->expected[i].Conflict(w->records[i].id, now);
        break;
      }
      w->skipped->push_back(w->records[i].id);
    }
    if (!w->status.ok()) continue;  // none of its records
    for (size_t i = 0; i < w->records.size(); ++i) {
      if (!accepted[i]) continue;
      (*stored)[w->records[i].id] = w->records[i].updated_unix_ms;
      accept(w->records[i]);
    }
  }
}

}  // namespace srn
