#ifndef SRN_SERVER_SIMILARITY_CORE_H_
#define SRN_SERVER_SIMILARITY_CORE_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/cancellation.h"
#include "base/mutex.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/verification.h"
#include "server/prepared_references.h"
#include "server/series_input.h"
#include "server/server_metrics.h"
#include "server/subject_index.h"
#include "server/subject_store.h"
#include "srn/v1/similarity.pb.h"

namespace srn {

struct CoreOptions {
  RequestLimits limits;
  // Accept when Verify's score reaches it, for every model (srn-server --default_threshold);
  // unset: each model's own (DefaultThreshold).
  std::optional<float> default_threshold;
  ReferenceFusion default_fusion = ReferenceFusion::kMean;
  int default_fusion_k = 3;  // for top-k mean
  int threads = 0;           // for batch embedding and Identify scans; 0: all cores
  // The DTW signature verifier that Verify fuses with signature models whose calibration enables
  // it (ServingModel::calibration, see model/signature/verification.h). Verify's score is then
  // the calibrated fused score, 0.5 at the equal-error point, and a threshold derived from the
  // references (threshold_shift) is 0.5 + shift, since the fused score is already normalized by
  // the references.
  SignatureDtwOptions dtw;
  // Memory for the references prepared for Verify (the DTW verifier's series and the per-frame
  // states: tens of floats per frame), kept for the subjects verified most recently; others are
  // prepared again from their stored inputs when verified (srn-server --prepared_cache_mb).
  size_t prepared_cache_bytes = size_t{1} << 30;
  // The DTW cells (DtwCells) one call may compute: Verify's query against every reference, and
  // Enroll's mutual distances of the subject's references. A call over it is refused with
  // RESOURCE_EXHAUSTED before any of that work (srn-server --max_dtw_cells_per_call). 3e8 cells
  // take about a second of one core; 5 signatures of 2,000 frames need about 2.4e7 to verify.
  int64_t max_dtw_cells = 300'000'000;
  // For a model that verifies by its per-frame states (whose similarity head ranks unseen signers
  // far worse than its states do): Identify takes this many subjects (at least top_k), those
  // nearest by pooled-embedding distance, and ranks them by Verify's score (srn-server
  // --identify_rerank); 0 ranks by the pooled similarity alone. Each costs about what a Verify
  // costs.
  int identify_rerank = 50;
};

// The threshold Verify accepts at when neither the request nor the subject sets one, and why.
struct DefaultThreshold {
  float value = 0.5f;
  std::string source;  // e.g. "the model's calibration (far=0.01, measured on ...)"
};

// The server's --default_threshold when set; else, for a model whose Verify score is calibrated
// (DTW fusion, states), 0.5, its equal-error point; else the threshold the model's weights file
// records (srn-eval --calibrate); else 0.5, with a source that says how to calibrate.
DefaultThreshold ResolveDefaultThreshold(const ServingModel& model,
                                         const std::optional<float>& server_threshold);

// What SimilarityCore::AdoptModel did with the stored subjects.
struct ServingModelAdoption {
  int64_t as_stored = 0;   // served with the embeddings stored for the model
  int64_t reembedded = 0;  // stored under another model, re-embedded in memory
};

// The logic of the similarity service, independent of gRPC: validates each request, embeds with
// the model snapshot the request started with, and keeps the durable store and the in-memory
// index in step (a change is published to readers only after the store made it durable).
//
// Thread-safe. Reads (Embed, Similarity, Verify, Identify, Get/List) run concurrently without
// waiting for each other; writes (Enroll, Delete, model swaps) are serialized among themselves
// but never block reads while they do slow work.
class SimilarityCore final {
 public:
  // `metrics` may be null; it must outlive the core otherwise.
  SimilarityCore(std::shared_ptr<const ServingModel> model, std::unique_ptr<SubjectStore> store,
                 const CoreOptions& options, ServerMetrics* metrics);

  // Loads every stored subject into memory, re-embedding (and durably rewriting) those stored
  // under another model first. It derives nothing costly: the references' spreads come from the
  // store, and those it lacks (a store written before, or under other options) are left to
  // DeriveMissingSpreads; the references are prepared for Verify when first verified. Call once
  // before serving.
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(write_mu_);

  // Derives and durably stores the spreads of the subjects that lack them (see Recover), a batch
  // at a time with the write lock taken only to store and publish each batch, until none is left
  // or `stop` says stop (returning its status). Verify derives a missing spread for itself
  // meanwhile. Returns how many subjects it completed. The server runs it in the background once
  // serving.
  absl::StatusOr<int64_t> DeriveMissingSpreads(const Cancellation& stop)
      ABSL_LOCKS_EXCLUDED(write_mu_);
  // How many served subjects lack their spreads (0 when the model needs none).
  int64_t subjects_missing_spreads() const;

  // Whether Recover found a store that other servers share (SubjectStore::ChangePosition).
  bool follows_store() ABSL_LOCKS_EXCLUDED(write_mu_);
  // For such a store: applies every change committed after Recover's snapshot to the index, the
  // other servers' writes as this server's own (whose echo changes nothing), until `stop` says
  // stop (returning its status). Each changed subject is read and published under the write
  // lock, so that it never overtakes a newer local write; a subject stored under another model
  // is re-embedded with this server's (in memory; its writer stores its own). A store that cannot
  // be reached is retried every second, the error on stderr once. The server runs it on a
  // thread of its own once serving.
  absl::Status FollowStore(const Cancellation& stop) ABSL_LOCKS_EXCLUDED(write_mu_);

  // Makes `model` the active one: re-embeds every enrolled reference with it off to the side,
  // stores the new embeddings in one transaction, then switches model and subjects together.
  // On any failure the active model stays and the error is returned. `reembedded` (optional)
  // receives the number of subjects re-embedded. Called by ModelManager.
  absl::Status SwapModel(std::shared_ptr<const ServingModel> model, int64_t* reembedded = nullptr)
      ABSL_LOCKS_EXCLUDED(write_mu_);

  // Makes `model` the active one with the subjects as stored now: those stored with its
  // embeddings (written by the server that activated it, SwapModel) are served as stored, the
  // others re-embedded in memory only (their writers store their own). Writes nothing. For a
  // server following an activation in a shared registry (ModelManager::Follow).
  absl::Status AdoptModel(std::shared_ptr<const ServingModel> model,
                          ServingModelAdoption* adoption = nullptr) ABSL_LOCKS_EXCLUDED(write_mu_);

  std::shared_ptr<const ServingModel> model() const { return index_.model(); }
  const CoreOptions& options() const { return options_; }
  int64_t enrolled_subjects() const { return index_.subjects(); }

  absl::StatusOr<v1::EmbedResponse> Embed(const v1::EmbedRequest& request) const;
  absl::StatusOr<v1::SimilarityResponse> Similarity(const v1::SimilarityRequest& request) const;
  // Enroll and Verify check `cancel` between units of bounded work (one reference's DTW or
  // states), and stop with its status when the call was abandoned (nothing is stored then).
  absl::StatusOr<v1::EnrollResponse> Enroll(const v1::EnrollRequest& request,
                                            const Cancellation& cancel = NeverCancelled())
      ABSL_LOCKS_EXCLUDED(write_mu_);
  absl::StatusOr<v1::VerifyResponse> Verify(const v1::VerifyRequest& request,
                                            const Cancellation& cancel = NeverCancelled()) const;
  // Identify ranks by the model's pooled similarity; for a model that verifies by its per-frame
  // states, the CoreOptions::identify_rerank subjects nearest by embedding distance are ranked by
  // the score Verify would give each instead (so a candidate's score and the threshold mean what
  // they mean for Verify), checking `cancel` as Verify does.
  absl::StatusOr<v1::IdentifyResponse> Identify(
      const v1::IdentifyRequest& request, const Cancellation& cancel = NeverCancelled()) const;
  absl::StatusOr<v1::Subject> GetSubject(const v1::GetSubjectRequest& request) const;
  absl::StatusOr<v1::ListSubjectsResponse> ListSubjects(
      const v1::ListSubjectsRequest& request) const;
  absl::StatusOr<v1::DeleteSubjectResponse> DeleteSubject(const v1::DeleteSubjectRequest& request)
      ABSL_LOCKS_EXCLUDED(write_mu_);
  absl::StatusOr<v1::ModelInfo> GetModelInfo() const;

 private:
  // Converts and embeds inputs with `model`; `what` names them in errors ("series",
  // "references"). `raw`, when given, receives the converted series.
  absl::StatusOr<RowMatrix> EmbedInputs(
      const ServingModel& model, const google::protobuf::RepeatedPtrField<v1::SeriesInput>& inputs,
      const std::string& what, std::vector<Series>* raw = nullptr) const;
  absl::StatusOr<RowMatrix> EmbedOne(const ServingModel& model, const v1::SeriesInput& input,
                                     const std::string& what) const;
  // A Verify query, converted once and prepared for `model`: its per-frame states (states
  // models) or its embedding (others), and its DTW series when the model fuses DTW.
  struct Query {
    Series raw;
    std::optional<Series> states;
    std::optional<RowMatrix> embedding;
    std::optional<Series> dtw;
  };
  absl::StatusOr<Query> PrepareQuery(const ServingModel& model, const v1::SeriesInput& input) const;
  // Verify's score of `query` against `subject` (by `model`) and its parts; `fusion` and
  // `fusion_k` apply to embedding models (states models always average).
  struct SubjectVerification {
    VerificationScore verification;
    std::vector<double> similarities;  // one per reference
    ReferenceFusion fusion = ReferenceFusion::kMean;
  };
  absl::StatusOr<SubjectVerification> VerifySubject(
      const ServingModel& model, const std::shared_ptr<const SubjectEntry>& subject,
      const Query& query, ReferenceFusion fusion, int fusion_k, const Cancellation& cancel) const;
  // Records in the metrics how one call's durable write (Enroll's Put, Delete's), begun at
  // `start`, ended: its commit time or its failure. Returns its `status`.
  absl::Status Committed(absl::Status status, std::chrono::steady_clock::time_point start);
  // Publishes the stored state of subject `id` (or withdraws it when it is no longer stored), as
  // FollowStore applies a change.
  absl::Status ApplyStoredSubject(const std::string& id) ABSL_LOCKS_EXCLUDED(write_mu_);
  absl::Status ApplyStoredSubjectLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Reads every stored subject into `out` for `model`: as stored when `model` made its
  // embeddings, else re-embedded (and its record added to `rewritten`, when given). `counts`
  // (optional) counts both.
  absl::Status LoadStoredLocked(const ServingModel& model,
                                std::vector<std::shared_ptr<const SubjectEntry>>* out,
                                std::vector<SubjectRecord>* rewritten, ServingModelAdoption* counts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Re-embeds a subject's stored inputs with `model` and derives its spreads.
  absl::StatusOr<std::shared_ptr<const SubjectEntry>> Reembed(const SubjectEntry& entry,
                                                              const ServingModel& model) const;
  // Sets what the entry derives cheaply from its embeddings: the mutual similarity and a derived
  // threshold.
  absl::Status DeriveFromEmbeddings(const ServingModel& model, SubjectEntry* entry) const;
  // Prepares the entry's references from `first` on into `prepared` (which holds the first
  // `first`) for `model`: `raw`, when given, holds their converted series (one per reference from
  // `first` on), else their stored inputs are parsed. Checks `cancel` between references.
  absl::Status PrepareReferences(const ServingModel& model, const SubjectEntry& entry,
                                 const std::vector<Series>* raw, int first,
                                 const Cancellation& cancel, PreparedReferences* prepared) const;
  // The entry's prepared references by `model` (the entry's model): from the cache, or prepared
  // now (and cached when `keep`). Null when the model compares no prepared references.
  absl::StatusOr<std::shared_ptr<const PreparedReferences>> Prepared(
      const ServingModel& model, const std::shared_ptr<const SubjectEntry>& entry,
      const Cancellation& cancel, bool keep = true) const;
  // The DTW cells of the prepared references' mutual distances (DeriveSpreads's work).
  int64_t MutualDtwCells(const ServingModel& model, const PreparedReferences& prepared) const;
  // ResourceExhausted, saying `what` would cost how much, when `cells` exceed the budget.
  absl::Status CheckDtwBudget(int64_t cells, const std::string& what) const;
  // The spreads of `references` prepared references (the mean distance over their pairs, checking
  // `cancel` between pairs).
  absl::StatusOr<ReferenceSpreads> DeriveSpreads(const ServingModel& model,
                                                 const PreparedReferences& prepared, int references,
                                                 const Cancellation& cancel) const;
  ReferenceFusion Fusion(v1::Fusion requested) const;
  // Sets the gauges of enrolled subjects and references, and of the prepared-reference cache.
  void UpdateEnrolledMetrics() const;
  void UpdatePreparedMetrics() const;

  const CoreOptions options_;
  ServerMetrics* const metrics_;
  // Orders writers: "make durable, then publish" must not interleave for one subject. Enroll
  // holds it shared, with its subject's lock (SubjectMutex), so that enrollments of different
  // subjects are written at once (and a store with group commit commits them together); every
  // other writer (Delete, threshold changes, model swaps, following other servers, recovery)
  // holds it exclusively, so the store is only used under it.
  Mutex write_mu_;
  const std::unique_ptr<SubjectStore> store_ ABSL_PT_GUARDED_BY(write_mu_);
  // The same store, for the calls that hold the write lock shared (Enroll's Put, under its
  // subject's lock) or not at all (FollowStore's wait for changes): the store is thread-safe;
  // the lock only orders "durable, then publish".
  SubjectStore* const concurrent_store_;
  // Enroll's per-subject order under the shared write lock: one of these, by the id's hash.
  Mutex& SubjectMutex(const std::string& id) const {
    return subject_mu_[std::hash<std::string>()(id) % subject_mu_.size()];
  }
  mutable std::array<Mutex, 64> subject_mu_;
  bool shared_store_ ABSL_GUARDED_BY(write_mu_) = false;
  int64_t follow_from_ ABSL_GUARDED_BY(write_mu_) = 0;  // the change position Recover read at
  SubjectIndex index_;
  mutable PreparedReferenceCache prepared_;
};

// Conversions between the index's entries and the store's records. The entry's spreads are stored
// under `derivation_tag` (DerivationTag of its model and the server's options).
SubjectRecord ToRecord(const SubjectEntry& entry, const std::string& derivation_tag);
// What a write expects stored for its subject: the record the served entry came from (none when
// the subject is not served). For records that rewrite what a server derived from the served
// entries (re-embeddings, spreads), which keep the entries' updated_unix_ms: those entries.
Precondition ExpectedInStore(const std::shared_ptr<const SubjectEntry>& served);
std::vector<Precondition> ExpectedInStore(const std::vector<SubjectRecord>& rewrites);
// The entry of a stored record, without the derived state (SimilarityCore fills that in).
absl::StatusOr<std::shared_ptr<SubjectEntry>> FromRecord(SubjectRecord record);
v1::Subject ToProto(const SubjectEntry& entry);

}  // namespace srn

#endif  // SRN_SERVER_SIMILARITY_CORE_H_
