#ifndef SRN_SERVER_PREPARED_REFERENCES_H_
#define SRN_SERVER_PREPARED_REFERENCES_H_

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "model/data/series.h"
#include "model/signature/signature_dtw.h"
#include "server/serving_model.h"

namespace srn {

// What Verify compares a query with, beyond the embeddings, derived from a subject's references by
// one model: each reference prepared for the DTW signature verifier (models that fuse it) and its
// per-frame states (models that verify by them). Tens of floats per frame, so the server keeps
// them only for the subjects verified recently (PreparedReferenceCache) and derives them again
// from the stored inputs when needed.
struct PreparedReferences {
  std::vector<Series> dtw;     // one per reference, with DTW fusion; else empty
  std::vector<Series> states;  // one per reference, for a states model; else empty
  // With exactly one reference: the spreads predicted from its shape (the calibration's spread
  // models; 1 without one), since there are no mutual distances.
  double one_reference_dtw_spread = 1;
  double one_reference_states_spread = 1;

  // Bytes of the series' values.
  size_t bytes() const;
};

// How far a subject's references lie from each other, which divides a query's distances to them:
// the mean distance over the reference pairs, or with one reference the predicted spread. Costs
// r(r-1)/2 DTWs, so it is derived once per subject and model and stored with the subject.
struct ReferenceSpreads {
  double dtw = 1;     // of the DTW verifier's prepared references (1 without DTW fusion)
  double states = 1;  // of the per-frame states (1 unless the model verifies by states)

  bool operator==(const ReferenceSpreads& other) const {
    return dtw == other.dtw && states == other.states;
  }
};

// What the spreads depend on besides the references: the model's fingerprint, its verification
// calibration (as served, overrides included) and the DTW verifier's options. Spreads stored under
// another tag are derived again.
std::string DerivationTag(const ServingModel& model, const SignatureDtwOptions& dtw);

// The spreads as SubjectRecord::derived keeps them, tagged; and back: nullopt when `stored` is
// empty, unreadable, or has another tag (then they are derived again, so nothing is lost).
std::string EncodeSpreads(const std::string& tag, const ReferenceSpreads& spreads);
std::optional<ReferenceSpreads> DecodeSpreads(const std::string& stored, const std::string& tag);

struct SubjectEntry;  // server/subject_index.h

// A bounded cache of subjects' prepared references, the least recently used evicted first once
// their bytes exceed the capacity. A subject entry is immutable and identified by its address; an
// entry replaced or removed is never confused with a new one at the same address, because the
// cache holds a weak pointer to it, which keeps the address from being reused. Thread-safe; Find
// and Insert are short critical sections (preparing happens outside, by the caller).
class PreparedReferenceCache final {
 public:
  explicit PreparedReferenceCache(size_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  // What was kept for `entry`, or null.
  std::shared_ptr<const PreparedReferences> Find(const std::shared_ptr<const SubjectEntry>& entry)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Keeps `prepared` for `entry` (replacing what was kept for it), then evicts the least recently
  // used until within capacity. A value larger than the whole capacity is not kept.
  void Insert(const std::shared_ptr<const SubjectEntry>& entry,
              std::shared_ptr<const PreparedReferences> prepared) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops what was kept for `entry` (replaced or removed from the index).
  void Erase(const std::shared_ptr<const SubjectEntry>& entry) ABSL_LOCKS_EXCLUDED(mu_);
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);

  size_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Slot {
    const SubjectEntry* key;
    std::weak_ptr<const SubjectEntry> owner;
    std::shared_ptr<const PreparedReferences> prepared;
    size_t bytes;
  };
  using Lru = std::list<Slot>;
  using Slots = absl::flat_hash_map<const SubjectEntry*, Lru::iterator>;

  void Erase(Slots::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_bytes_;
  mutable Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  Slots slots_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace srn

#endif  // SRN_SERVER_PREPARED_REFERENCES_H_
