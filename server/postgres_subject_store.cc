// The PostgreSQL SubjectStore: the same records as the SQLite store, in two tables of a database
// that several servers may share (issue 19). A write is acknowledged only once its transaction
// committed (synchronous_commit as the server has it; PostgreSQL's default waits for the WAL to
// be flushed).
//
// Servers sharing the database follow each other's writes: every write also appends the ids it
// changed to srn_changes(seq, subject_id, written_ms) in its transaction and notifies
// srn_subject_changes on commit; WaitForChanges listens and reads the rows after a position.
//
// Schema (created if missing; srn_store_meta.schema_version says which):
//   srn_subjects(id BYTEA PRIMARY KEY, threshold FLOAT8 NULL, threshold_shift FLOAT8 NULL,
//                created_ms INT8, updated_ms INT8, model_id TEXT, derived BYTEA NULL)
//   srn_subject_references(subject_id BYTEA REFERENCES srn_subjects ON DELETE CASCADE,
//                          position INT4, input BYTEA, embedding BYTEA,
//                          PRIMARY KEY(subject_id, position))
//   srn_changes(seq BIGSERIAL PRIMARY KEY, subject_id BYTEA, written_ms INT8 by the database's
//               clock, updated_ms INT8 NULL, model_id TEXT NULL: what a write stored)
// Ids are BYTEA so that any id the API accepts is stored as sent and ordered bytewise (TEXT
// would need valid UTF-8 and order by collation). Embeddings are little-endian float32 blobs, as
// in SQLite. Results are read in binary (network byte order for numbers).

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "server/group_commit.h"
#include "server/postgres_connection.h"
#include "server/subject_store.h"

namespace srn {
namespace {

using pg::Conn;
using pg::Message;
using pg::Params;
using pg::ReadBigEndian;
using pg::Redacted;
using pg::Result;

constexpr int kSchemaVersion = 1;
// Rows fetched per round trip while ForEach reads.
constexpr int kFetchRows = 1000;
// The most writes, and records, one transaction of group commit takes (Write).
constexpr size_t kMaxBatchWrites = 64;
constexpr size_t kMaxBatchRecords = 256;

constexpr char kCreateSchemaSql[] =
    "CREATE TABLE IF NOT EXISTS srn_store_meta("
    "  schema_version INT4 NOT NULL,"
    "  pruned_through INT8 NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS srn_subjects("
    "  id BYTEA PRIMARY KEY,"
    "  threshold FLOAT8 NULL,"
    "  threshold_shift FLOAT8 NULL,"
    "  created_ms INT8 NOT NULL,"
    "  updated_ms INT8 NOT NULL,"
    "  model_id TEXT NOT NULL,"
    "  derived BYTEA NULL);"
    "CREATE TABLE IF NOT EXISTS srn_subject_references("
    "  subject_id BYTEA NOT NULL REFERENCES srn_subjects(id) ON DELETE CASCADE,"
    "  position INT4 NOT NULL,"
    "  input BYTEA NOT NULL,"
    "  embedding BYTEA NOT NULL,"
    "  PRIMARY KEY(subject_id, position));"
    "CREATE TABLE IF NOT EXISTS srn_changes("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  subject_id BYTEA NOT NULL,"
    "  written_ms INT8 NOT NULL"
    "    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::int8);"
    // What the write stored (NULL for a deletion, and in stores from before these columns).
    "ALTER TABLE srn_changes ADD COLUMN IF NOT EXISTS updated_ms INT8 NULL,"
    "  ADD COLUMN IF NOT EXISTS model_id TEXT NULL;";
// Every write takes this transaction-scoped lock first, so that changes commit in the order of
// their sequence numbers and a follower that has seen change n has seen every change before it.
constexpr char kWriteLockSql[] = "SELECT pg_advisory_xact_lock(7393628717)";
constexpr char kRecordChangeSql[] = "INSERT INTO srn_changes(subject_id) VALUES($1)";
// Delivered to listeners when the transaction commits.
constexpr char kNotifySql[] = "NOTIFY srn_subject_changes";
// Drops the changes written before $1 (unix ms) and remembers the last one dropped, so that a
// follower from before it learns it missed changes (in a write's transaction, under the lock).
constexpr char kPruneChangesSql[] =
    "WITH gone AS (DELETE FROM srn_changes WHERE written_ms < $1::int8 RETURNING seq) "
    "UPDATE srn_store_meta SET pruned_through = GREATEST(pruned_through, "
    "(SELECT max(seq) FROM gone)) WHERE EXISTS (SELECT 1 FROM gone)";

void EncodeFloats(const std::vector<float>& values, std::string* out) {
  out->resize(values.size() * 4);
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) (*out)[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
}

void DecodeFloats(absl::string_view bytes, std::vector<float>* out) {
  out->resize(bytes.size() / 4);
  for (size_t i = 0; i < out->size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) {
      bits |= uint32_t{static_cast<unsigned char>(bytes[4 * i + b])} << (8 * b);
    }
    std::memcpy(&(*out)[i], &bits, 4);
  }
}

class PostgresSubjectStore final : public SubjectStore {
 public:
  PostgresSubjectStore(std::string uri, Conn conn, const PostgresStoreOptions& options)
      : uri_(std::move(uri)), name_(Redacted(uri_)), options_(options), conn_(std::move(conn)) {}

  absl::Status Initialize() {
    MutexLock lock(&mu_);
    return InTransaction("BEGIN", [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return CreateSchema();
    });
  }

  absl::Status Put(const SubjectRecord& record, const Precondition& expected) override {
    SRN_RETURN_IF_ERROR(ValidateSubjectRecord(record));
    return Write(absl::MakeConstSpan(&record, 1), absl::MakeConstSpan(&expected, 1), nullptr);
  }

  absl::StatusOr<std::vector<std::string>> PutAll(
      const std::vector<SubjectRecord>& records,
      const std::vector<Precondition>& expected) override {
    SRN_RETURN_IF_ERROR(CheckPreconditions(records, expected));
    std::vector<std::string> skipped;
    if (records.empty()) return skipped;
    SRN_RETURN_IF_ERROR(Write(records, expected, &skipped));
    return skipped;
  }

  absl::Status Delete(const std::string& id) override {
    MutexLock lock(&mu_);
    SRN_RETURN_IF_ERROR(Reconnect());
    return InTransaction("BEGIN", [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return DeleteSubject(id);
    });
  }

  absl::StatusOr<int64_t> ChangePosition() override {
    MutexLock lock(&mu_);
    SRN_RETURN_IF_ERROR(Reconnect());
    // Past the pruned changes even when none is left.
    SRN_ASSIGN_OR_RETURN(Result r, Query(conn_.get(),
                                         "SELECT GREATEST(coalesce((SELECT max(seq) FROM "
                                         "srn_changes), 0), (SELECT pruned_through FROM "
                                         "srn_store_meta))",
                                         Params(), "read the change position"));
    return static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
  }

  absl::StatusOr<Changes> WaitForChanges(int64_t after, double wait_seconds) override {
    MutexLock lock(&listen_mu_);
    if (listen_ == nullptr || PQstatus(listen_.get()) != CONNECTION_OK) {
      listen_.reset();
      SRN_ASSIGN_OR_RETURN(Conn conn, Connect(uri_, name_));
      // Listening before reading: a change committed after the read still wakes the wait.
      SRN_RETURN_IF_ERROR(Exec(conn.get(), "LISTEN srn_subject_changes"));
      listen_ = std::move(conn);
    }
    SRN_ASSIGN_OR_RETURN(Changes changes, ReadChanges(after));
    if (!changes.ids.empty() || wait_seconds <= 0) return changes;
    pollfd fd = {PQsocket(listen_.get()), POLLIN, 0};
    const int ready = poll(&fd, 1, static_cast<int>(wait_seconds * 1000));
    if (ready > 0) {
      if (PQconsumeInput(listen_.get()) != 1) {
        return absl::UnavailableError(absl::StrCat("subject store ", name_, ": ",
                                                   Message(listen_.get(), nullptr)));
      }
      while (PGnotify* n = PQnotifies(listen_.get())) PQfreemem(n);
    }
    return ReadChanges(after);
  }

  absl::StatusOr<SubjectRecord> Get(const std::string& id) override {
    MutexLock lock(&mu_);
    SRN_RETURN_IF_ERROR(Reconnect());
    SubjectRecord record;
    // One snapshot for both reads.
    SRN_RETURN_IF_ERROR(InTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                      [this, &id, &record]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                        return ReadOne(id, &record);
                                      }));
    return record;
  }

  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    // A connection of its own and one snapshot for both cursors, so that writers go on and `fn`
    // may call back into the store.
    SRN_ASSIGN_OR_RETURN(Conn conn, Connect(uri_, name_));
    PGconn* c = conn.get();
    SRN_RETURN_IF_ERROR(Exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    SRN_RETURN_IF_ERROR(Exec(c,
                             "DECLARE subjects NO SCROLL CURSOR FOR SELECT id, threshold, "
                             "threshold_shift, created_ms, updated_ms, model_id, derived FROM "
                             "srn_subjects ORDER BY id"));
    SRN_RETURN_IF_ERROR(Exec(c,
                             "DECLARE refs NO SCROLL CURSOR FOR SELECT subject_id, position, "
                             "input, embedding FROM srn_subject_references ORDER BY subject_id, "
                             "position"));
    const std::string fetch_subjects = absl::StrCat("FETCH ", kFetchRows, " FROM subjects");
    const std::string fetch_refs = absl::StrCat("FETCH ", kFetchRows, " FROM refs");
    Result refs;
    int ref_row = 0;
    // The next reference row, fetching more as needed; false at the end.
    const auto next_ref = [&]() -> absl::StatusOr<bool> {
      if (refs != nullptr && ref_row + 1 < PQntuples(refs.get())) {
        ++ref_row;
        return true;
      }
      SRN_ASSIGN_OR_RETURN(refs, Query(c, fetch_refs.c_str(), Params(), "read references"));
      ref_row = 0;
      return PQntuples(refs.get()) > 0;
    };
    SRN_ASSIGN_OR_RETURN(bool have_ref, next_ref());
    while (true) {
      SRN_ASSIGN_OR_RETURN(Result subjects,
                           Query(c, fetch_subjects.c_str(), Params(), "read subjects"));
      const int n = PQntuples(subjects.get());
      if (n == 0) break;
      for (int row = 0; row < n; ++row) {
        SubjectRecord record;
        SRN_RETURN_IF_ERROR(ReadSubject(subjects.get(), row, &record));
        while (have_ref) {
          const absl::string_view owner = Bytes(refs.get(), ref_row, 0);
          if (owner > record.id) break;
          if (owner < record.id) return Corrupt(owner, "has references but no subject row");
          SRN_RETURN_IF_ERROR(ReadReference(refs.get(), ref_row, &record));
          SRN_ASSIGN_OR_RETURN(have_ref, next_ref());
        }
        SRN_RETURN_IF_ERROR(fn(std::move(record)));
      }
    }
    if (have_ref) {
      return Corrupt(Bytes(refs.get(), ref_row, 0), "has references but no subject row");
    }
    return Exec(c, "COMMIT");
  }

  absl::StatusOr<int64_t> Count() override {
    MutexLock lock(&mu_);
    SRN_RETURN_IF_ERROR(Reconnect());
    SRN_ASSIGN_OR_RETURN(Result r, Query(conn_.get(), "SELECT count(*) FROM srn_subjects",
                                         Params(), "count subjects"));
    return static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
  }

  static absl::StatusOr<Conn> Connect(const std::string& uri, const std::string& name) {
    return pg::Connect(uri, absl::StrCat("the subject store ", name));
  }

 private:
  // One statement (or several, without parameters), no rows wanted.
  absl::Status Exec(PGconn* c, const char* sql) {
    return pg::Exec(c, sql, absl::StrCat("subject store ", name_));
  }

  // One parameterized statement; results in binary.
  absl::StatusOr<Result> Query(PGconn* c, const char* sql, Params params, absl::string_view what) {
    return pg::Query(c, sql, std::move(params), absl::StrCat("subject store ", name_), what);
  }

  // Runs `body` in a transaction begun by `begin`: commits when it succeeds, rolls back
  // otherwise (so a failed call changed nothing).
  template <typename Body>
  absl::Status InTransaction(const char* begin, Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SRN_RETURN_IF_ERROR(Exec(conn_.get(), begin));
    absl::Status status = body();
    if (status.ok()) status = Exec(conn_.get(), "COMMIT");
    if (!status.ok() && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
      Exec(conn_.get(), "ROLLBACK").IgnoreError();
    }
    return status;
  }

  // Creates the tables unless another server did; refuses a newer schema.
  absl::Status CreateSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Two servers creating the schema at once: the lock serializes them.
    SRN_RETURN_IF_ERROR(Exec(conn_.get(), "SELECT pg_advisory_xact_lock(7393628716)"));
    SRN_RETURN_IF_ERROR(Exec(conn_.get(), kCreateSchemaSql));
    SRN_ASSIGN_OR_RETURN(Result r, Query(conn_.get(), "SELECT schema_version FROM srn_store_meta",
                                         Params(), "read the schema version"));
    if (PQntuples(r.get()) == 0) {
      Params p;
      p.Text(absl::StrCat(kSchemaVersion));
      return Query(conn_.get(), "INSERT INTO srn_store_meta(schema_version) VALUES($1::int4)", p,
                   "record the schema version")
          .status();
    }
    const int version = static_cast<int>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 4));
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "subject store ", name_, " has schema version ", version, ", newer than the version ",
          kSchemaVersion, " this build understands"));
    }
    return absl::OkStatus();
  }

  absl::Status DeleteSubject(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SRN_RETURN_IF_ERROR(Exec(conn_.get(), kWriteLockSql));
    SRN_RETURN_IF_ERROR(PruneChanges());
    Params p;
    p.Bytes(id);
    SRN_ASSIGN_OR_RETURN(Result r, Query(conn_.get(), "DELETE FROM srn_subjects WHERE id = $1", p,
                                         absl::StrCat("delete subject '", id, "'")));
    if (std::strcmp(PQcmdTuples(r.get()), "0") == 0) {
      return absl::NotFoundError(absl::StrCat("subject '", id, "' is not stored"));
    }
    SRN_RETURN_IF_ERROR(
        Query(conn_.get(), kRecordChangeSql, std::move(p), "record the change").status());
    return Exec(conn_.get(), kNotifySql);
  }

  absl::Status ReadOne(const std::string& id, SubjectRecord* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Bytes(id);
    SRN_ASSIGN_OR_RETURN(Result s, Query(conn_.get(),
                                         "SELECT id, threshold, threshold_shift, created_ms, "
                                         "updated_ms, model_id, derived FROM srn_subjects "
                                         "WHERE id = $1",
                                         p, "read a subject"));
    if (PQntuples(s.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("subject '", id, "' is not stored"));
    }
    SRN_RETURN_IF_ERROR(ReadSubject(s.get(), 0, out));
    SRN_ASSIGN_OR_RETURN(Result refs,
                         Query(conn_.get(),
                               "SELECT subject_id, position, input, embedding FROM "
                               "srn_subject_references WHERE subject_id = $1 ORDER BY position",
                               std::move(p), "read a subject's references"));
    for (int row = 0; row < PQntuples(refs.get()); ++row) {
      SRN_RETURN_IF_ERROR(ReadReference(refs.get(), row, out));
    }
    return absl::OkStatus();
  }

  // At most once per minute (or per retention, when shorter) of this server's writes: drops the
  // changes older than the retention. Runs inside the write's transaction, so a failure fails
  // the write (and nothing is dropped).
  absl::Status PruneChanges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = absl::Now();
    const absl::Duration every =
        std::min(absl::Minutes(1), absl::Seconds(options_.change_retention_seconds));
    if (last_prune_.has_value() && now - *last_prune_ < every) return absl::OkStatus();
    Params p;
    p.Text(absl::StrCat(absl::ToUnixMillis(now) -
                        static_cast<int64_t>(options_.change_retention_seconds * 1000)));
    SRN_RETURN_IF_ERROR(Query(conn_.get(), kPruneChangesSql, std::move(p), "prune the change log")
                            .status());
    last_prune_ = now;
    return absl::OkStatus();
  }

  // After the database restarted or the network dropped, the next call reconnects.
  absl::Status Reconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (PQstatus(conn_.get()) == CONNECTION_OK) return absl::OkStatus();
    PQreset(conn_.get());
    prepared_.Clear();  // a new session has none
    if (PQstatus(conn_.get()) == CONNECTION_OK) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("subject store ", name_, " is unreachable: ",
                                               Message(conn_.get(), nullptr)));
  }

  // Stores the records (checked), each when its subject is stored as `expected` says (see
  // PendingWrite), committing concurrent writes together (group_commit.h). The write lock makes
  // the checks and the writes one step for every server on the database. A failed transaction
  // (the database's error) fails every write in it, and none of them changed anything.
  absl::Status Write(absl::Span<const SubjectRecord> records,
                     absl::Span<const Precondition> expected, std::vector<std::string>* skipped)
      ABSL_LOCKS_EXCLUDED(mu_) {
    return writes_.Write(records, expected, skipped, [this](absl::Span<PendingWrite* const> batch) {
      MutexLock lock(&mu_);
      SRN_RETURN_IF_ERROR(Reconnect());
      return WriteBatch(batch);
    });
  }

  // One transaction for `batch`, in two round trips: BEGIN, the write lock and what each
  // checked subject is stored as, sent together; then, once every write's preconditions are
  // checked in queue order (a write sees the writes before it in the batch), the accepted
  // records, the notification and COMMIT, sent together. A failure rolls it all back.
  absl::Status WriteBatch(absl::Span<PendingWrite* const> batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status status = WriteBatchUnlessFailed(batch);
    if (!status.ok() && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
      Exec(conn_.get(), "ROLLBACK").IgnoreError();
    }
    return status;
  }

  absl::Status WriteBatchUnlessFailed(absl::Span<PendingWrite* const> batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<pg::Statement> first;
    first.push_back({"BEGIN", Params(), "begin a transaction"});
    first.push_back({kWriteLockSql, Params(), "take the write lock"});
    // Each checked subject's update time as stored (nullopt: not stored).
    std::map<std::string, std::optional<int64_t>> stored;
    std::vector<std::string> ids;  // in the order read
    for (const PendingWrite* w : batch) {
      for (size_t i = 0; i < w->expected.size(); ++i) {
        if (!stored.emplace(w->records[i].id, std::nullopt).second) continue;
        ids.push_back(w->records[i].id);
        Params p;
        p.Bytes(w->records[i].id);
        first.push_back({"SELECT updated_ms FROM srn_subjects WHERE id = $1", std::move(p),
                         absl::StrCat("read subject '", w->records[i].id, "'")});
      }
    }
    SRN_ASSIGN_OR_RETURN(std::vector<Result> read, Pipelined(std::move(first)));
    for (size_t i = 0; i < ids.size(); ++i) {
      const PGresult* r = read[2 + i].get();
      if (PQntuples(r) > 0) {
        stored[ids[i]] = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r, 0, 0), 8));
      }
    }
    SRN_RETURN_IF_ERROR(PruneChanges());
    std::vector<pg::Statement> writes;
    AcceptInOrder(batch, &stored,
                  [&](const SubjectRecord& record) { AddRecordStatements(record, &writes); });
    writes.push_back({kNotifySql, Params(), "notify the other servers"});
    writes.push_back({"COMMIT", Params(), "commit"});
    return Pipelined(std::move(writes)).status();
  }

  // The statements that store `record` in place of what is stored under its id: the subject
  // (dropping its old references and logging the change in the same statement), then its
  // references in one statement.
  static void AddRecordStatements(const SubjectRecord& record, std::vector<pg::Statement>* out) {
    const std::string what = absl::StrCat("store subject '", record.id, "'");
    Params subject;
    subject.Bytes(record.id);
    subject.Double(record.threshold);
    subject.Double(record.threshold_shift);
    subject.Text(absl::StrCat(record.created_unix_ms));
    subject.Text(absl::StrCat(record.updated_unix_ms));
    subject.Text(record.model_id);
    if (record.derived.empty()) {
      subject.Null();
    } else {
      subject.Bytes(record.derived);
    }
    out->push_back(
        {"WITH dropped AS (DELETE FROM srn_subject_references WHERE subject_id = $1), "
         "logged AS (INSERT INTO srn_changes(subject_id, updated_ms, model_id) "
         "VALUES($1, $5::int8, $6)) "
         "INSERT INTO srn_subjects(id, threshold, threshold_shift, created_ms, updated_ms, "
         "model_id, derived) VALUES($1, $2::float8, $3::float8, $4::int8, $5::int8, $6, $7) "
         "ON CONFLICT(id) DO UPDATE SET threshold = excluded.threshold, "
         "threshold_shift = excluded.threshold_shift, created_ms = excluded.created_ms, "
         "updated_ms = excluded.updated_ms, model_id = excluded.model_id, "
         "derived = excluded.derived",
         std::move(subject), what});
    if (record.references.empty()) return;
    Params refs;
    refs.Bytes(record.id);
    std::string sql =
        "INSERT INTO srn_subject_references(subject_id, position, input, embedding) VALUES";
    for (size_t i = 0; i < record.references.size(); ++i) {
      absl::StrAppend(&sql, i == 0 ? "" : ",", "($1, ", i, ", $", 2 * i + 2, ", $", 2 * i + 3,
                      ")");
      refs.Bytes(record.references[i].input);
      std::string embedding;
      EncodeFloats(record.references[i].embedding, &embedding);
      refs.Bytes(std::move(embedding));
    }
    out->push_back({std::move(sql), std::move(refs), what});
  }

  absl::StatusOr<std::vector<Result>> Pipelined(std::vector<pg::Statement> statements)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pg::QueryPipelined(conn_.get(), std::move(statements),
                              absl::StrCat("subject store ", name_), &prepared_);
  }

  // The changes after `after` (at most a batch), read through the listening connection.
  absl::StatusOr<Changes> ReadChanges(int64_t after) ABSL_EXCLUSIVE_LOCKS_REQUIRED(listen_mu_) {
    Params p;
    p.Text(absl::StrCat(after));
    // One statement, so one snapshot: the changes and how far they were pruned agree.
    SRN_ASSIGN_OR_RETURN(Result r, Query(listen_.get(),
                                         "SELECT m.pruned_through, c.seq, c.subject_id, "
                                         "c.written_ms, c.updated_ms, c.model_id FROM "
                                         "srn_store_meta m LEFT JOIN LATERAL (SELECT seq, "
                                         "subject_id, written_ms, updated_ms, model_id FROM "
                                         "srn_changes WHERE seq > $1::int8 ORDER BY seq LIMIT "
                                         "10000) c ON true ORDER BY c.seq",
                                         std::move(p), "read changes"));
    if (PQntuples(r.get()) == 0) return Corrupt("", "srn_store_meta has no row");
    const int64_t pruned = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
    if (after < pruned) {
      return absl::OutOfRangeError(absl::StrCat(
          "subject store ", name_, ": the changes after position ", after,
          " are no longer kept (pruned through ", pruned, "): read the whole store again"));
    }
    Changes changes;
    changes.next = after;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      if (PQgetisnull(r.get(), row, 1)) continue;  // no change after `after`
      changes.next = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), row, 1), 8));
      changes.ids.emplace_back(Bytes(r.get(), row, 2));
      changes.written_unix_ms.push_back(
          static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), row, 3), 8)));
      const bool stored = !PQgetisnull(r.get(), row, 4) && !PQgetisnull(r.get(), row, 5);
      changes.updated_unix_ms.push_back(
          stored ? static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), row, 4), 8)) : 0);
      changes.model_ids.emplace_back(stored ? Bytes(r.get(), row, 5) : "");
    }
    return changes;
  }

  static absl::string_view Bytes(const PGresult* r, int row, int column) {
    return absl::string_view(PQgetvalue(r, row, column),
                             static_cast<size_t>(PQgetlength(r, row, column)));
  }

  absl::Status Corrupt(absl::string_view id, absl::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("subject store ", name_, ": subject '", id, "': ", what));
  }

  static std::optional<float> OptionalDouble(const PGresult* r, int row, int column) {
    if (PQgetisnull(r, row, column)) return std::nullopt;
    const uint64_t bits = ReadBigEndian(PQgetvalue(r, row, column), 8);
    double value;
    std::memcpy(&value, &bits, 8);
    return static_cast<float>(value);
  }

  absl::Status ReadSubject(const PGresult* r, int row, SubjectRecord* record) const {
    record->id = std::string(Bytes(r, row, 0));
    record->threshold = OptionalDouble(r, row, 1);
    record->threshold_shift = OptionalDouble(r, row, 2);
    record->created_unix_ms = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r, row, 3), 8));
    record->updated_unix_ms = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r, row, 4), 8));
    record->model_id = std::string(Bytes(r, row, 5));
    record->derived = PQgetisnull(r, row, 6) ? std::string() : std::string(Bytes(r, row, 6));
    return absl::OkStatus();
  }

  absl::Status ReadReference(const PGresult* r, int row, SubjectRecord* record) const {
    const size_t expected = record->references.size();
    const int64_t position = static_cast<int32_t>(ReadBigEndian(PQgetvalue(r, row, 1), 4));
    if (position != static_cast<int64_t>(expected)) {
      return Corrupt(record->id, absl::StrCat("reference at position ", position,
                                              " where position ", expected, " was expected"));
    }
    StoredReference reference;
    reference.input = std::string(Bytes(r, row, 2));
    const absl::string_view embedding = Bytes(r, row, 3);
    if (embedding.size() % 4 != 0) {
      return Corrupt(record->id, absl::StrCat("reference ", expected, ": embedding of ",
                                              embedding.size(), " bytes"));
    }
    DecodeFloats(embedding, &reference.embedding);
    for (const float v : reference.embedding) {
      if (!std::isfinite(v)) {
        return Corrupt(record->id, absl::StrCat("reference ", expected, ": embedding holds ", v));
      }
    }
    if (!record->references.empty() &&
        reference.embedding.size() != record->references[0].embedding.size()) {
      return Corrupt(record->id, absl::StrCat("reference ", expected, " has another dimension"));
    }
    record->references.push_back(std::move(reference));
    return absl::OkStatus();
  }

  const std::string uri_;
  const std::string name_;  // for messages: no password
  const PostgresStoreOptions options_;
  WriteQueue writes_{kMaxBatchWrites, kMaxBatchRecords};  // group commit of Put and PutAll
  Mutex mu_;
  Conn conn_ ABSL_GUARDED_BY(mu_);
  pg::PreparedStatements prepared_ ABSL_GUARDED_BY(mu_);  // on conn_
  std::optional<absl::Time> last_prune_ ABSL_GUARDED_BY(mu_);
  // The follower's connection, listening for notifications (WaitForChanges).
  Mutex listen_mu_;
  Conn listen_ ABSL_GUARDED_BY(listen_mu_);
};

}  // namespace

bool IsPostgresUri(absl::string_view store) {
  return absl::StartsWith(store, "postgresql://") || absl::StartsWith(store, "postgres://");
}

absl::StatusOr<std::unique_ptr<SubjectStore>> OpenPostgresSubjectStore(
    const std::string& uri, const PostgresStoreOptions& options) {
  if (!(options.change_retention_seconds >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the change log's retention must be at least 0 seconds, not ",
                     options.change_retention_seconds));
  }
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error == nullptr ? "out of memory" : error;
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return absl::InvalidArgumentError(
        absl::StrCat("the subject store URI is not a PostgreSQL connection URI: ", message));
  }
  PQconninfoFree(parsed);
  const std::string name = Redacted(uri);
  SRN_ASSIGN_OR_RETURN(Conn conn, PostgresSubjectStore::Connect(uri, name));
  auto store = std::make_unique<PostgresSubjectStore>(uri, std::move(conn), options);
  SRN_RETURN_IF_ERROR(store->Initialize());
  return std::unique_ptr<SubjectStore>(std::move(store));
}

}  // namespace srn
