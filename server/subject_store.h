#ifndef SRN_SERVER_SUBJECT_STORE_H_
#define SRN_SERVER_SUBJECT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace srn {

// One reference series of an enrolled subject: the input exactly as the client sent it, so that
// a new model can re-embed it, and its embedding by the model that the record names.
struct StoredReference {
  std::string input;             // a serialized srn.v1.SeriesInput (opaque to the store)
  std::vector<float> embedding;  // by SubjectRecord::model_id
};

// Everything stored about one subject.
struct SubjectRecord {
  std::string id;
  std::optional<float> threshold;  // the subject's own acceptance threshold, if set
  // When set, `threshold` was derived from the references' mutual similarities plus this shift.
  std::optional<float> threshold_shift;
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  std::string model_id;            // fingerprint of the model that made the embeddings
  std::vector<StoredReference> references;
  // What the server derived from the references and keeps so that a restart need not derive it
  // again (opaque to the store; empty when nothing is kept).
  std::string derived;
};

bool operator==(const SubjectRecord& a, const SubjectRecord& b);
inline bool operator!=(const SubjectRecord& a, const SubjectRecord& b) { return !(a == b); }

// What a write expects to find stored for its subject (compare-and-set), so that servers sharing
// a store never overwrite a change they have not seen (no lost update): a write that started from
// the record stored as of updated_unix_ms T expects T; one that started from no record expects
// none. Writers keep a subject's updated_unix_ms increasing, so T names one stored state.
class Precondition {
 public:
  static Precondition Any() { return Precondition(Kind::kAny, 0); }
  static Precondition Absent() { return Precondition(Kind::kAbsent, 0); }
  static Precondition UpdatedAt(int64_t unix_ms) { return Precondition(Kind::kUpdatedAt, unix_ms); }

  // Whether a subject stored as of `stored` (its updated_unix_ms; nullopt when not stored)
  // satisfies it.
  bool HoldsFor(const std::optional<int64_t>& stored) const;
  // Aborted, naming the subject, what was expected and what is stored (call when !HoldsFor).
  absl::Status Conflict(const std::string& id, const std::optional<int64_t>& stored) const;

 private:
  enum class Kind { kAny, kAbsent, kUpdatedAt };
  Precondition(Kind kind, int64_t unix_ms) : kind_(kind), unix_ms_(unix_ms) {}
  Kind kind_;
  int64_t unix_ms_;
};

// Longest subject id the stores accept, in bytes.
inline constexpr size_t kMaxSubjectIdBytes = 1024;

// What every store accepts (InvalidArgument naming the subject and the problem otherwise): a
// non-empty id of at most kMaxSubjectIdBytes bytes without NUL bytes; a finite threshold if set;
// finite embeddings that all have the same length (one model made them all). Put and PutAll
// check this before changing anything.
absl::Status ValidateSubjectRecord(const SubjectRecord& record);
// What PutAll checks before changing anything: every record valid, and one precondition per
// record or none.
absl::Status CheckPreconditions(const std::vector<SubjectRecord>& records,
                                const std::vector<Precondition>& expected);

// The durable system of record for enrolled subjects, behind the server's in-memory index.
// Every mutating call returns OK only once its change is durable (it survives the process being
// killed, and with fsync a crash of the machine); a call that fails changed nothing, and a write
// torn by a crash never damages what was stored before it. Thread-safe: any thread may call any
// method; writes are serialized inside.
class SubjectStore {
 public:
  virtual ~SubjectStore() = default;

  // Creates the subject `record.id`, or replaces everything stored for it, when it is stored as
  // `expected` says; Aborted (Precondition::Conflict), changing nothing, when it is not.
  virtual absl::Status Put(const SubjectRecord& record, const Precondition& expected) = 0;

  // Puts many records in one atomic transaction (used to store what a server derived from the
  // subjects it serves: re-embedded references after a model change, spreads). `expected` holds
  // one precondition per record, or none for Any: a record whose precondition does not hold is
  // left out (its subject changed since the server read it) and its id returned; all the others
  // become durable, or none (an error).
  virtual absl::StatusOr<std::vector<std::string>> PutAll(
      const std::vector<SubjectRecord>& records, const std::vector<Precondition>& expected) = 0;

  // Removes a subject and its references; NotFound when it is not stored.
  virtual absl::Status Delete(const std::string& id) = 0;

  // Calls `fn` for every stored subject in id order (recovery at start-up); stops at and returns
  // the first error `fn` returns. Ids are ordered bytewise (std::string's operator<). `fn` sees
  // the subjects as they were when ForEach started, even when writes happen meanwhile, and may
  // itself call any method of the store (writes are not blocked while ForEach runs).
  virtual absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) = 0;

  // Number of stored subjects.
  virtual absl::StatusOr<int64_t> Count() = 0;

  // For a store that several servers share, so that each follows the others' writes. Stores
  // that one server owns answer Unimplemented (the defaults).
  //
  // The position of the latest committed change: take it before ForEach, then follow from it
  // (a change committed meanwhile is seen twice, which is harmless).
  virtual absl::StatusOr<int64_t> ChangePosition();
  // The subjects written or deleted by changes after position `after`, in commit order, and the
  // position to follow from next; waits up to `wait` for one when there is none yet (then
  // returns none and `after`). OutOfRange when changes after `after` are no longer kept: read
  // the whole store again (ForEach), then follow from the ChangePosition taken before it.
  struct Changes {
    std::vector<std::string> ids;
    std::vector<int64_t> written_unix_ms;  // when each was written, by the store's clock
    // What each write stored: the record's updated_unix_ms and model_id (0 and "" for a
    // deletion), so that a follower can tell its own writes echoed without reading them.
    std::vector<int64_t> updated_unix_ms;
    std::vector<std::string> model_ids;
    int64_t next = 0;
  };
  virtual absl::StatusOr<Changes> WaitForChanges(int64_t after, double wait_seconds);
  // One subject's record as stored now; NotFound when it is not stored.
  virtual absl::StatusOr<SubjectRecord> Get(const std::string& id);
};

// Opens (creating if needed) an SQLite database at `path` in WAL mode with synchronous=FULL, so
// that each commit is fsynced before Put/PutAll/Delete return. FailedPrecondition with the reason
// when the file cannot be opened or is not an srn store (or is of a newer schema version);
// DataLoss when SQLite reports corruption. Afterwards, every method maps SQLite's failures the same
// way, with SQLite's message and the path: DataLoss for a corrupt file (ForEach also for a row it
// cannot decode, naming the subject), ResourceExhausted for a full disk, Unavailable for I/O
// errors and for the write lock held by another process beyond a 5 s busy timeout, Internal for
// anything else. Each ForEach reads through a connection of its own (a snapshot), so that
// enrollments go on meanwhile; a ForEach that runs for long keeps the WAL from being recycled.
absl::StatusOr<std::unique_ptr<SubjectStore>> OpenSqliteSubjectStore(const std::string& path);

// Whether `store` (srn-server --store) names a PostgreSQL database: a postgresql:// (or
// postgres://) libpq connection URI.
bool IsPostgresUri(absl::string_view store);

// Connects to the PostgreSQL database at `uri` and creates the schema if it is missing (several
// servers may share one database; server/postgres_subject_store.cc). Every write returns once its
// transaction committed. InvalidArgument for a URI libpq cannot parse; Unavailable when the
// database cannot be reached (the message names host, port and database, never the password);
// afterwards Unavailable for connection failures (the next call reconnects), Aborted for
// serialization failures, ResourceExhausted for a full disk, Internal otherwise. ForEach reads
// one snapshot through a connection of its own.
struct PostgresStoreOptions {
  // How long the change log keeps a change for servers following it: a server further behind
  // (cut off from the database while others wrote) gets OutOfRange from WaitForChanges and must
  // read the whole store again. Pruned by the writers, at most once a minute each.
  double change_retention_seconds = 3600;
};
absl::StatusOr<std::unique_ptr<SubjectStore>> OpenPostgresSubjectStore(
    const std::string& uri, const PostgresStoreOptions& options = {});

// A store that keeps records in memory only (tests, and --store=memory for throwaway servers).
std::unique_ptr<SubjectStore> NewInMemorySubjectStore();

}  // namespace srn

#endif  // SRN_SERVER_SUBJECT_STORE_H_
