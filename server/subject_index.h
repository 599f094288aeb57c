#ifndef SRN_SERVER_SUBJECT_INDEX_H_
#define SRN_SERVER_SUBJECT_INDEX_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "model/data/series.h"
#include "model/signature/verification.h"
#include "server/prepared_references.h"
#include "server/serving_model.h"

namespace srn {

// A subject as served. Immutable once published; shared by every request that looks at it.
struct SubjectEntry {
  std::string id;
  std::optional<float> threshold;
  std::optional<float> threshold_shift;  // threshold = mutual similarity + shift (see Enroll)
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  std::string model_id;  // the model that made `embeddings`
  RowMatrix embeddings;  // one row per reference
  // Each reference's serialized srn.v1.SeriesInput, shared (immutable) by the entries that
  // replace this one with the same references, so that a copy costs no copy of the inputs.
  std::vector<std::shared_ptr<const std::string>> inputs;
  // Derived from the above when the entry is built, never stored: the mean similarity among the
  // references' embeddings (0 for one; only set when the fused score or a derived threshold needs
  // it).
  double mutual_similarity = 0;
  // How far the references lie from each other (see ReferenceSpreads), by `model_id`'s model and
  // the server's options; stored with the subject. Unset when the store did not have them (a store
  // written before, or under other options): Verify then derives them for itself, and the server
  // derives and stores them in the background after start-up. Only a model that fuses DTW or
  // verifies by states uses them.
  std::optional<ReferenceSpreads> spreads;

  int references() const { return static_cast<int>(embeddings.rows()); }
};

// How Identify's scan compares a query with each reference embedding.
enum class ScanScore {
  kModel,     // the model's similarity (SimilarityModel::ScoreRows), what Identify returns
  kDistance,  // minus the Euclidean distance between the embeddings: a shortlist to re-rank, for
              // a model whose similarity head ranks unseen people poorly
};

struct IdentifyCandidate {
  std::shared_ptr<const SubjectEntry> subject;
  float score = 0;
};

// The in-memory view of every enrolled subject under one model: point lookups by id, ordered
// listing, and a contiguous scan of all reference embeddings for Identify. The model and the
// subjects change together (Reset), so a reader never pairs a subject with another model's
// embeddings.
//
// Thread safety: readers never wait for each other. They take the lock in shared mode only to copy
// pointers to immutable data, and do all arithmetic outside it; writers hold it exclusively only
// to swap pointers. Writers (Upsert, Remove, Reset) are serialized among themselves by a lock
// readers never take; the service still holds its own write lock around "make durable, then
// publish".
class SubjectIndex final {
 public:
  explicit SubjectIndex(std::shared_ptr<const ServingModel> model);

  std::shared_ptr<const ServingModel> model() const ABSL_LOCKS_EXCLUDED(mu_);

  // The current model and the subject `id` (null when not enrolled), read together.
  struct View {
    std::shared_ptr<const ServingModel> model;
    std::shared_ptr<const SubjectEntry> subject;
  };
  View Lookup(const std::string& id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Publishes a new or updated subject. Its embeddings must be by the current model.
  void Upsert(std::shared_ptr<const SubjectEntry> entry) ABSL_LOCKS_EXCLUDED(writer_mu_, mu_);
  // Withdraws a subject; false if it was not there.
  bool Remove(const std::string& id) ABSL_LOCKS_EXCLUDED(writer_mu_, mu_);
  // Replaces the model and every subject at once (start-up, and model swaps).
  void Reset(std::shared_ptr<const ServingModel> model,
             std::vector<std::shared_ptr<const SubjectEntry>> entries)
      ABSL_LOCKS_EXCLUDED(writer_mu_, mu_);

  // The `top_k` subjects whose fused score (`scan`) against `query` (an embedding by `model`) is
  // highest, best first, leaving out those below `threshold`. When `model` is no longer the
  // index's model (swapped since the query was embedded), sets `*stale` and returns nothing.
  std::vector<IdentifyCandidate> Identify(const ServingModel& model, const float* query, int top_k,
                                          ReferenceFusion rule, int fusion_k, float threshold,
                                          int threads, bool* stale,
                                          ScanScore scan = ScanScore::kModel) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Up to `limit` subjects with ids greater than `after`, in id order.
  std::vector<std::shared_ptr<const SubjectEntry>> List(const std::string& after, int limit) const
      ABSL_LOCKS_EXCLUDED(mu_);

  int64_t subjects() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t references() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Block;
  struct Scan;

  // Where a subject's rows are in the scan: block and run within it.
  struct Location {
    int block = -1;
    int run = -1;
  };

  // Rebuilds the scan without the rows of replaced and removed subjects.
  void Compact() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Builds a scan from scratch (Reset, compaction).
  static std::shared_ptr<const Scan> BuildScan(
      int dims, const absl::btree_map<std::string, std::shared_ptr<const SubjectEntry>>& subjects,
      absl::flat_hash_map<std::string, Location>* locations);

  // Serializes writers; readers never take it.
  Mutex writer_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  std::shared_ptr<const ServingModel> model_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, std::shared_ptr<const SubjectEntry>> subjects_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Scan> scan_ ABSL_GUARDED_BY(mu_);
  int64_t references_ ABSL_GUARDED_BY(mu_) = 0;

  // Only writers touch these.
  absl::flat_hash_map<std::string, Location> locations_ ABSL_GUARDED_BY(writer_mu_);
};

}  // namespace srn

#endif  // SRN_SERVER_SUBJECT_INDEX_H_
