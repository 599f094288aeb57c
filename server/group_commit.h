#ifndef SRN_SERVER_GROUP_COMMIT_H_
#define SRN_SERVER_GROUP_COMMIT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "server/subject_store.h"

namespace srn {

// Group commit for the subject stores, as leveldb's writers do it: writes that arrive while
// another is being made durable wait in a queue, and the first of them writes all of them in one
// transaction (one commit, one fsync or WAL flush), then tells each its outcome.

// One Put or PutAll: its records, what each expects stored (one per record, or none for Any),
// and where a PutAll lists the records it left out (null for a Put: a failed precondition fails
// the whole write, and none of its records is stored).
struct PendingWrite {
  absl::Span<const SubjectRecord> records;
  absl::Span<const Precondition> expected;
  std::vector<std::string>* skipped = nullptr;
  absl::Status status;  // the write's own outcome (a failed precondition)
  bool done = false;    // written, or failed, in another write's batch
};

class WriteQueue final {
 public:
  // At most this many writes, and records, go into one batch.
  WriteQueue(size_t max_writes, size_t max_records)
      : max_writes_(max_writes), max_records_(max_records) {}

  // Queues the write of `records` (see PendingWrite) and returns its outcome once it is
  // written. When it reaches the front of the queue, it takes the writes behind it (within the
  // limits) and calls `write_batch` with all of them, outside the queue's lock; a failure of
  // `write_batch` (the transaction's) is the outcome of every write in the batch, which must then
  // have changed nothing.
  absl::Status Write(absl::Span<const SubjectRecord> records,
                     absl::Span<const Precondition> expected, std::vector<std::string>* skipped,
                     absl::FunctionRef<absl::Status(absl::Span<PendingWrite* const>)> write_batch)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t max_writes_;
  const size_t max_records_;
  Mutex mu_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(mu_);
};

// Within one batch's transaction: decides, in queue order, which records are written. `stored`
// holds the update time each checked subject has in the store (nullopt: not stored) and is
// updated as records are accepted, so that a write sees the writes before it in the batch. A
// record whose precondition does not hold is left out and listed (PutAll) or fails its write
// with Aborted (Put). Calls `accept` for each record to write, in order.
void AcceptInOrder(absl::Span<PendingWrite* const> batch,
                   std::map<std::string, std::optional<int64_t>>* stored,
                   absl::FunctionRef<void(const SubjectRecord&)> accept);

}  // namespace srn

#endif  // SRN_SERVER_GROUP_COMMIT_H_
