// The SQLite SubjectStore: one file in WAL mode with synchronous=FULL, so that a commit is in the
// fsynced WAL before Put/PutAll/Delete return, and WAL checksums make recovery ignore a torn tail.
//
// Schema (version 3; PRAGMA application_id marks the file as ours, PRAGMA user_version is the
// schema version; a file of an older version is upgraded in place when opened):
//   subjects(id TEXT PRIMARY KEY, threshold REAL NULL, created_ms INTEGER, updated_ms INTEGER,
//            model_id TEXT, threshold_shift REAL NULL,   -- threshold_shift: since version 2
//            derived BLOB NULL)                          -- derived: since version 3
//   subject_references(subject_id TEXT REFERENCES subjects(id) ON DELETE CASCADE,
//                      position INTEGER, input BLOB, embedding BLOB,
//                      PRIMARY KEY(subject_id, position))
// Embeddings are little-endian float32 blobs. Both tables are WITHOUT ROWID so that rows are
// clustered by id: ForEach is then two sequential scans merged, with no sort and no lookups.

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "server/group_commit.h"
#include "server/sqlite_status.h"
#include "server/subject_store.h"

namespace srn {
namespace {

constexpr int32_t kApplicationId = 0x73726E73;  // "srns"
constexpr int64_t kSchemaVersion = 3;
// How long a write waits for another process holding the write lock before giving up.
constexpr int kBusyTimeoutMs = 5000;
// The most writes, and records, one transaction of group commit takes (WriteQueue).
constexpr size_t kMaxBatchWrites = 64;
constexpr size_t kMaxBatchRecords = 256;

constexpr char kCreateSchemaSql[] =
    "CREATE TABLE subjects("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  threshold REAL NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  model_id TEXT NOT NULL,"
    "  threshold_shift REAL NULL,"
    "  derived BLOB NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE subject_references("
    "  subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  input BLOB NOT NULL,"
    "  embedding BLOB NOT NULL,"
    "  PRIMARY KEY(subject_id, position)"
    ") WITHOUT ROWID;";

constexpr char kUpsertSubjectSql[] =
    "INSERT INTO subjects(id, threshold, created_ms, updated_ms, model_id, threshold_shift, "
    "derived) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT(id) DO UPDATE SET threshold = excluded.threshold, "
    "created_ms = excluded.created_ms, updated_ms = excluded.updated_ms, "
    "model_id = excluded.model_id, threshold_shift = excluded.threshold_shift, "
    "derived = excluded.derived";
constexpr char kDeleteReferencesSql[] = "DELETE FROM subject_references WHERE subject_id = ?1";
constexpr char kInsertReferenceSql[] =
    "INSERT INTO subject_references(subject_id, position, input, embedding) "
    "VALUES(?1, ?2, ?3, ?4)";
constexpr char kDeleteSubjectSql[] = "DELETE FROM subjects WHERE id = ?1";
constexpr char kCountSql[] = "SELECT count(*) FROM subjects";
constexpr char kUpdatedSql[] = "SELECT updated_ms FROM subjects WHERE id = ?1";
constexpr char kScanSubjectsSql[] =
    "SELECT id, threshold, created_ms, updated_ms, model_id, threshold_shift, derived "
    "FROM subjects ORDER BY id";
constexpr char kScanReferencesSql[] =
    "SELECT subject_id, position, input, embedding FROM subject_references "
    "ORDER BY subject_id, position";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Resets a reused statement and drops its bindings when one use of it ends, however it ends, so
// that no statement stays active (holding a read snapshot) between calls and no bound pointer
// outlives the data it points to.
class StmtUse final {
 public:
  explicit StmtUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  ~StmtUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_;
};

// The status for SQLite result code `rc` from `what` on the store at `path`.
absl::Status StoreError(sqlite3* db, int rc, absl::string_view what, absl::string_view path) {
  return SqliteError(db, rc, what, absl::StrCat("subject store ", path));
}

std::string Errno(int error) { return std::strerror(error); }

// Clearer than SQLite's "unable to open database file" for the usual mistakes.
absl::Status CheckStorePath(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("subject store ", path, " is a directory, not a database file"));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("subject store ", path, " is not a regular file"));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT && errno != ENOTDIR) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot access subject store ", path, ": ", Errno(errno)));
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (stat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create subject store ", path,
                                                      ": directory ", dir, ": ", Errno(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create subject store ", path, ": ", dir, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Db> OpenConnection(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_FULLMUTEX, nullptr);
  Db db(raw);  // SQLite allocates a handle even when the open fails; it must still be closed.
  if (rc != SQLITE_OK) return StoreError(db.get(), rc, "open", path);
  sqlite3_extended_result_codes(db.get(), 1);
  const int busy_rc = sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  if (busy_rc != SQLITE_OK) return StoreError(db.get(), busy_rc, "set busy timeout", path);
  return db;
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql, unsigned flags, absl::string_view path) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql, -1, flags, &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return StoreError(db, rc, absl::StrCat("prepare \"", sql, "\""), path);
  return stmt;
}

absl::Status ExecSql(sqlite3* db, const char* sql, absl::string_view path) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return StoreError(db, rc, absl::StrCat("execute \"", sql, "\""), path);
  return absl::OkStatus();
}

// The first column of the single row that `sql` returns.
absl::StatusOr<sqlite3_value*> QueryValue(sqlite3* db, sqlite3_stmt* stmt, const char* sql,
                                          absl::string_view path) {
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    if (rc == SQLITE_DONE) {
      return absl::InternalError(
          absl::StrCat("subject store ", path, ": \"", sql, "\" returned no row"));
    }
    return StoreError(db, rc, absl::StrCat("query \"", sql, "\""), path);
  }
  return sqlite3_column_value(stmt, 0);
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql, absl::string_view path) {
  SRN_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, sql, 0, path));
  SRN_ASSIGN_OR_RETURN(sqlite3_value * value, QueryValue(db, stmt.get(), sql, path));
  return sqlite3_value_int64(value);
}

absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql, absl::string_view path) {
  SRN_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, sql, 0, path));
  SRN_ASSIGN_OR_RETURN(sqlite3_value * value, QueryValue(db, stmt.get(), sql, path));
  const unsigned char* text = sqlite3_value_text(value);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

// Creates the schema in an empty database, unless another process did so first.
absl::Status InitializeSchema(sqlite3* db, absl::string_view path) {
  SRN_RETURN_IF_ERROR(ExecSql(db, "BEGIN IMMEDIATE", path));
  absl::Status status = [&]() -> absl::Status {
    // Checked again under the write lock: another opener may have won the race.
    SRN_ASSIGN_OR_RETURN(const int64_t application_id, QueryInt(db, "PRAGMA application_id", path));
    if (application_id == kApplicationId) return absl::OkStatus();
    SRN_ASSIGN_OR_RETURN(const int64_t objects,
                         QueryInt(db, "SELECT count(*) FROM sqlite_master", path));
    if (application_id != 0 || objects != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "subject store ", path, ": another program wrote to the file while it was created"));
    }
    SRN_RETURN_IF_ERROR(ExecSql(db, kCreateSchemaSql, path));
    SRN_RETURN_IF_ERROR(
        ExecSql(db, absl::StrCat("PRAGMA application_id = ", kApplicationId).c_str(), path));
    SRN_RETURN_IF_ERROR(
        ExecSql(db, absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str(), path));
    return absl::OkStatus();
  }();
  if (status.ok()) status = ExecSql(db, "COMMIT", path);
  if (!status.ok() && !sqlite3_get_autocommit(db)) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

// Brings an older store to the current version in one transaction, unless another process did so
// first: version 2 added subjects.threshold_shift (existing rows keep no shift), version 3
// subjects.derived (existing rows have none; the server derives it again).
absl::Status UpgradeSchema(sqlite3* db, absl::string_view path) {
  SRN_RETURN_IF_ERROR(ExecSql(db, "BEGIN IMMEDIATE", path));
  absl::Status status = [&]() -> absl::Status {
    SRN_ASSIGN_OR_RETURN(const int64_t version, QueryInt(db, "PRAGMA user_version", path));
    if (version >= kSchemaVersion) return absl::OkStatus();
    if (version < 2) {
      SRN_RETURN_IF_ERROR(
          ExecSql(db, "ALTER TABLE subjects ADD COLUMN threshold_shift REAL NULL", path));
    }
    SRN_RETURN_IF_ERROR(ExecSql(db, "ALTER TABLE subjects ADD COLUMN derived BLOB NULL", path));
    return ExecSql(db, absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str(), path);
  }();
  if (status.ok()) status = ExecSql(db, "COMMIT", path);
  if (!status.ok() && !sqlite3_get_autocommit(db)) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

// Refuses foreign and future files before changing anything in them (switching to WAL writes the
// header), then configures the connection and creates the schema in a new file.
absl::Status PrepareDatabase(sqlite3* db, absl::string_view path) {
  // The first read of the header is where a non-database or truncated file shows up.
  SRN_ASSIGN_OR_RETURN(const int64_t application_id, QueryInt(db, "PRAGMA application_id", path));
  SRN_ASSIGN_OR_RETURN(const int64_t version, QueryInt(db, "PRAGMA user_version", path));
  bool is_new = false;
  if (application_id == kApplicationId) {
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("subject store ", path, " has schema version ", version,
                       ", which is newer than the version ", kSchemaVersion,
                       " this build understands; it was written by a newer srn-server"));
    }
    if (version < 1) {
      return absl::DataLossError(absl::StrCat("subject store ", path, " has schema version ",
                                              version, "; its header is damaged"));
    }
  } else if (application_id == 0 && version == 0) {
    SRN_ASSIGN_OR_RETURN(const int64_t objects,
                         QueryInt(db, "SELECT count(*) FROM sqlite_master", path));
    if (objects != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is an SQLite database but not an srn subject store (it holds ",
                       objects, " schema objects and no srn application_id)"));
    }
    is_new = true;
  } else {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is an SQLite database but not an srn subject store (application_id 0x%08x, "
        "user_version %d; an srn store has application_id 0x%08x)",
        path, static_cast<uint32_t>(application_id), version,
        static_cast<uint32_t>(kApplicationId)));
  }

  SRN_ASSIGN_OR_RETURN(const std::string mode, QueryText(db, "PRAGMA journal_mode = WAL", path));
  if (mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "subject store ", path, ": cannot use write-ahead logging (journal mode is '", mode,
        "'); the file system may not support the shared memory SQLite's WAL needs"));
  }
  SRN_RETURN_IF_ERROR(ExecSql(db, "PRAGMA synchronous = FULL", path));
  SRN_RETURN_IF_ERROR(ExecSql(db, "PRAGMA foreign_keys = ON", path));
  SRN_ASSIGN_OR_RETURN(const int64_t synchronous, QueryInt(db, "PRAGMA synchronous", path));
  SRN_ASSIGN_OR_RETURN(const int64_t foreign_keys, QueryInt(db, "PRAGMA foreign_keys", path));
  if (synchronous != 2 || foreign_keys != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "subject store ", path, ": SQLite refused synchronous=FULL or foreign_keys=ON (got ",
        synchronous, " and ", foreign_keys, ")"));
  }

  if (is_new) SRN_RETURN_IF_ERROR(InitializeSchema(db, path));
  if (!is_new && version < kSchemaVersion) SRN_RETURN_IF_ERROR(UpgradeSchema(db, path));
  SRN_ASSIGN_OR_RETURN(const int64_t tables,
                       QueryInt(db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name IN ('subjects', 'subject_references')",
                                path));
  if (tables != 2) {
    return absl::DataLossError(
        absl::StrCat("subject store ", path, " lacks its tables (found ", tables, " of 2)"));
  }
  return absl::OkStatus();
}

void EncodeFloats(const std::vector<float>& values, std::string* out) {
  out->resize(values.size() * 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (!values.empty()) std::memcpy(out->data(), values.data(), out->size());
#else
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) (*out)[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
#endif
}

void DecodeFloats(const void* data, size_t bytes, std::vector<float>* out) {
  out->resize(bytes / 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (bytes > 0) std::memcpy(out->data(), data, out->size() * 4);
#else
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < out->size(); ++i) {
    const uint32_t bits = uint32_t{p[4 * i]} | uint32_t{p[4 * i + 1]} << 8 |
                          uint32_t{p[4 * i + 2]} << 16 | uint32_t{p[4 * i + 3]} << 24;
    std::memcpy(&(*out)[i], &bits, 4);
  }
#endif
}

// Binds bytes as a BLOB; an empty one stays a zero-length BLOB rather than becoming NULL.
int BindBlob(sqlite3_stmt* stmt, int index, const std::string& bytes) {
  if (bytes.empty()) return sqlite3_bind_zeroblob(stmt, index, 0);
  return sqlite3_bind_blob64(stmt, index, bytes.data(), bytes.size(), SQLITE_STATIC);
}

int BindText(sqlite3_stmt* stmt, int index, const std::string& text) {
  return sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

absl::string_view ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  return data == nullptr
             ? absl::string_view()
             : absl::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

absl::Status CorruptRow(absl::string_view path, absl::string_view id, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("subject store ", path, ": subject '", id, "': ", what));
}

// Reads the subject row at the cursor of kScanSubjectsSql, checking every column's type.
absl::Status ReadSubjectRow(sqlite3_stmt* stmt, absl::string_view path, SubjectRecord* record) {
  const absl::string_view id = ColumnBytes(stmt, 0);
  if (sqlite3_column_type(stmt, 0) != SQLITE_TEXT || id.empty()) {
    return CorruptRow(path, id, "the id is not a non-empty TEXT value");
  }
  record->id = std::string(id);
  switch (sqlite3_column_type(stmt, 1)) {
    case SQLITE_NULL:
      record->threshold.reset();
      break;
    case SQLITE_FLOAT:
    case SQLITE_INTEGER:
      record->threshold = static_cast<float>(sqlite3_column_double(stmt, 1));
      break;
    default:
      return CorruptRow(path, id, "the threshold is not a number");
  }
  if (sqlite3_column_type(stmt, 2) != SQLITE_INTEGER ||
      sqlite3_column_type(stmt, 3) != SQLITE_INTEGER) {
    return CorruptRow(path, id, "created_ms or updated_ms is not an INTEGER");
  }
  record->created_unix_ms = sqlite3_column_int64(stmt, 2);
  record->updated_unix_ms = sqlite3_column_int64(stmt, 3);
  if (sqlite3_column_type(stmt, 4) != SQLITE_TEXT) {
    return CorruptRow(path, id, "the model id is not TEXT");
  }
  record->model_id = std::string(ColumnBytes(stmt, 4));
  switch (sqlite3_column_type(stmt, 5)) {
    case SQLITE_NULL:
      record->threshold_shift.reset();
      break;
    case SQLITE_FLOAT:
    case SQLITE_INTEGER:
      record->threshold_shift = static_cast<float>(sqlite3_column_double(stmt, 5));
      break;
    default:
      return CorruptRow(path, id, "the threshold shift is not a number");
  }
  switch (sqlite3_column_type(stmt, 6)) {
    case SQLITE_NULL:
      record->derived.clear();
      break;
    case SQLITE_BLOB:
      record->derived = std::string(ColumnBytes(stmt, 6));
      break;
    default:
      return CorruptRow(path, id, "the derived state is not a BLOB");
  }
  return absl::OkStatus();
}

// Appends the reference row at the cursor of kScanReferencesSql to `record`.
absl::Status ReadReferenceRow(sqlite3_stmt* stmt, absl::string_view path, SubjectRecord* record) {
  const size_t expected_position = record->references.size();
  if (sqlite3_column_type(stmt, 1) != SQLITE_INTEGER ||
      sqlite3_column_int64(stmt, 1) != static_cast<int64_t>(expected_position)) {
    return CorruptRow(path, record->id,
                      absl::StrCat("reference at position ", sqlite3_column_int64(stmt, 1),
                                   " where position ", expected_position, " was expected"));
  }
  if (sqlite3_column_type(stmt, 2) != SQLITE_BLOB || sqlite3_column_type(stmt, 3) != SQLITE_BLOB) {
    return CorruptRow(path, record->id,
                      absl::StrCat("reference ", expected_position,
                                   ": the input or the embedding is not a BLOB"));
  }
  StoredReference reference;
  reference.input = std::string(ColumnBytes(stmt, 2));
  const absl::string_view embedding = ColumnBytes(stmt, 3);
  if (embedding.size() % 4 != 0) {
    return CorruptRow(path, record->id,
                      absl::StrCat("reference ", expected_position, ": embedding blob of ",
                                   embedding.size(), " bytes is not a whole number of float32s"));
  }
  DecodeFloats(embedding.data(), embedding.size(), &reference.embedding);
  if (!record->references.empty() &&
      reference.embedding.size() != record->references[0].embedding.size()) {
    return CorruptRow(
        path, record->id,
        absl::StrCat("reference ", expected_position, " has dimension ", reference.embedding.size(),
                     " but reference 0 has dimension ", record->references[0].embedding.size()));
  }
  for (const float value : reference.embedding) {
    if (!std::isfinite(value)) {
      return CorruptRow(path, record->id,
                        absl::StrCat("reference ", expected_position, ": embedding holds ", value));
    }
  }
  record->references.push_back(std::move(reference));
  return absl::OkStatus();
}

class SqliteSubjectStore final : public SubjectStore {
 public:
  SqliteSubjectStore(std::string path, Db db) : path_(std::move(path)), db_(std::move(db)) {}

  absl::Status PrepareStatements() {
    MutexLock lock(&mu_);
    sqlite3* db = db_.get();
    SRN_ASSIGN_OR_RETURN(begin_, Prepare(db, "BEGIN IMMEDIATE", SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(commit_, Prepare(db, "COMMIT", SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(rollback_, Prepare(db, "ROLLBACK", SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(upsert_subject_,
                         Prepare(db, kUpsertSubjectSql, SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(delete_references_,
                         Prepare(db, kDeleteReferencesSql, SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(insert_reference_,
                         Prepare(db, kInsertReferenceSql, SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(delete_subject_,
                         Prepare(db, kDeleteSubjectSql, SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(count_, Prepare(db, kCountSql, SQLITE_PREPARE_PERSISTENT, path_));
    SRN_ASSIGN_OR_RETURN(updated_, Prepare(db, kUpdatedSql, SQLITE_PREPARE_PERSISTENT, path_));
    return absl::OkStatus();
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
    // One statement is its own transaction; the cascade removes the references with it.
    StmtUse use(delete_subject_.get());
    SRN_RETURN_IF_ERROR(Bound(BindText(delete_subject_.get(), 1, id), "bind id"));
    SRN_RETURN_IF_ERROR(StepDone(delete_subject_.get(), "delete subject"));
    if (sqlite3_changes(db_.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("subject '", id, "' is not stored"));
    }
    return absl::OkStatus();
  }

  absl::Status ForEach(const std::function<absl::Status(SubjectRecord)>& fn) override {
    // A connection of its own, so that writers are not blocked while `fn` runs and `fn` may call
    // back into the store; its read transaction is the snapshot both cursors see.
    SRN_ASSIGN_OR_RETURN(Db db, OpenConnection(path_, SQLITE_OPEN_READONLY));
    SRN_RETURN_IF_ERROR(ExecSql(db.get(), "BEGIN", path_));
    SRN_ASSIGN_OR_RETURN(Stmt subjects, Prepare(db.get(), kScanSubjectsSql, 0, path_));
    SRN_ASSIGN_OR_RETURN(Stmt references, Prepare(db.get(), kScanReferencesSql, 0, path_));
    int ref_rc = sqlite3_step(references.get());
    int rc;
    while ((rc = sqlite3_step(subjects.get())) == SQLITE_ROW) {
      SubjectRecord record;
      SRN_RETURN_IF_ERROR(ReadSubjectRow(subjects.get(), path_, &record));
      for (; ref_rc == SQLITE_ROW; ref_rc = sqlite3_step(references.get())) {
        const absl::string_view owner = ColumnBytes(references.get(), 0);
        if (owner > record.id) break;
        if (owner < record.id) {
          return CorruptRow(path_, owner, "has references but no subject row");
        }
        SRN_RETURN_IF_ERROR(ReadReferenceRow(references.get(), path_, &record));
      }
      if (ref_rc != SQLITE_ROW && ref_rc != SQLITE_DONE) {
        return StoreError(db.get(), ref_rc, "read references", path_);
      }
      SRN_RETURN_IF_ERROR(fn(std::move(record)));
    }
    if (rc != SQLITE_DONE) return StoreError(db.get(), rc, "read subjects", path_);
    if (ref_rc == SQLITE_ROW) {
      return CorruptRow(path_, ColumnBytes(references.get(), 0),
                        "has references but no subject row");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Count() override {
    MutexLock lock(&mu_);
    StmtUse use(count_.get());
    const int rc = sqlite3_step(count_.get());
    if (rc != SQLITE_ROW) return StoreError(db_.get(), rc, "count subjects", path_);
    return sqlite3_column_int64(count_.get(), 0);
  }

 private:
  absl::Status Bound(int rc, absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (rc != SQLITE_OK) return StoreError(db_.get(), rc, what, path_);
    return absl::OkStatus();
  }

  absl::Status StepDone(sqlite3_stmt* stmt, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return StoreError(db_.get(), rc, what, path_);
    return absl::OkStatus();
  }

  // Stores the records (checked), each when its subject is stored as `expected` says (see
  // PendingWrite), committing concurrent writes in one transaction (group_commit.h): one fsync
  // for all of them. A failed transaction fails every write in it, rolled back, so none of them
  // changed anything.
  absl::Status Write(absl::Span<const SubjectRecord> records,
                     absl::Span<const Precondition> expected, std::vector<std::string>* skipped)
      ABSL_LOCKS_EXCLUDED(mu_) {
    return writes_.Write(records, expected, skipped, [this](absl::Span<PendingWrite* const> batch) {
      MutexLock lock(&mu_);
      return WriteBatch(batch);
    });
  }

  absl::Status WriteBatch(absl::Span<PendingWrite* const> batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    {
      StmtUse use(begin_.get());
      SRN_RETURN_IF_ERROR(StepDone(begin_.get(), "begin transaction"));
    }
    absl::Status status;
    std::map<std::string, std::optional<int64_t>> stored;
    for (const PendingWrite* w : batch) {
      for (size_t i = 0; i < w->expected.size() && status.ok(); ++i) {
        const std::string& id = w->records[i].id;
        if (stored.count(id) > 0) continue;
        absl::StatusOr<std::optional<int64_t>> now = UpdatedLocked(id);
        status = now.status();
        if (status.ok()) stored[id] = *now;
      }
    }
    if (status.ok()) {
      AcceptInOrder(batch, &stored,
                    [&](const SubjectRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                      if (status.ok()) status = WriteRecord(record);
                    });
    }
    if (status.ok()) {
      StmtUse use(commit_.get());
      status = StepDone(commit_.get(), "commit");
    }
    if (!status.ok() && !sqlite3_get_autocommit(db_.get())) {
      StmtUse use(rollback_.get());
      const int rc = sqlite3_step(rollback_.get());
      if (rc != SQLITE_DONE) {
        status = absl::Status(
            status.code(), absl::StrCat(status.message(),
                                        "; and the rollback failed: ", sqlite3_errmsg(db_.get())));
      }
    }
    return status;
  }

  // The updated_ms of subject `id` as stored (nullopt when it is not).
  absl::StatusOr<std::optional<int64_t>> UpdatedLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    StmtUse use(updated_.get());
    SRN_RETURN_IF_ERROR(Bound(BindText(updated_.get(), 1, id), "bind id"));
    const int rc = sqlite3_step(updated_.get());
    if (rc == SQLITE_ROW) return std::optional<int64_t>(sqlite3_column_int64(updated_.get(), 0));
    if (rc == SQLITE_DONE) return std::optional<int64_t>();
    return StoreError(db_.get(), rc, absl::StrCat("read subject '", id, "'"), path_);
  }

  absl::Status WriteRecord(const SubjectRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    {
      sqlite3_stmt* stmt = upsert_subject_.get();
      StmtUse use(stmt);
      SRN_RETURN_IF_ERROR(Bound(BindText(stmt, 1, record.id), "bind id"));
      SRN_RETURN_IF_ERROR(Bound(record.threshold.has_value()
                                    ? sqlite3_bind_double(stmt, 2, *record.threshold)
                                    : sqlite3_bind_null(stmt, 2),
                                "bind threshold"));
      SRN_RETURN_IF_ERROR(Bound(sqlite3_bind_int64(stmt, 3, record.created_unix_ms), "bind time"));
      SRN_RETURN_IF_ERROR(Bound(sqlite3_bind_int64(stmt, 4, record.updated_unix_ms), "bind time"));
      SRN_RETURN_IF_ERROR(Bound(BindText(stmt, 5, record.model_id), "bind model id"));
      SRN_RETURN_IF_ERROR(Bound(record.threshold_shift.has_value()
                                    ? sqlite3_bind_double(stmt, 6, *record.threshold_shift)
                                    : sqlite3_bind_null(stmt, 6),
                                "bind threshold shift"));
      SRN_RETURN_IF_ERROR(Bound(record.derived.empty() ? sqlite3_bind_null(stmt, 7)
                                                       : BindBlob(stmt, 7, record.derived),
                                "bind derived state"));
      SRN_RETURN_IF_ERROR(StepDone(stmt, absl::StrCat("store subject '", record.id, "'")));
    }
    {
      sqlite3_stmt* stmt = delete_references_.get();
      StmtUse use(stmt);
      SRN_RETURN_IF_ERROR(Bound(BindText(stmt, 1, record.id), "bind id"));
      SRN_RETURN_IF_ERROR(StepDone(stmt, absl::StrCat("replace references of '", record.id, "'")));
    }
    sqlite3_stmt* stmt = insert_reference_.get();
    for (size_t i = 0; i < record.references.size(); ++i) {
      const StoredReference& reference = record.references[i];
      EncodeFloats(reference.embedding, &scratch_);
      StmtUse use(stmt);
      SRN_RETURN_IF_ERROR(Bound(BindText(stmt, 1, record.id), "bind id"));
      SRN_RETURN_IF_ERROR(
          Bound(sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(i)), "bind position"));
      SRN_RETURN_IF_ERROR(Bound(BindBlob(stmt, 3, reference.input), "bind input"));
      SRN_RETURN_IF_ERROR(Bound(BindBlob(stmt, 4, scratch_), "bind embedding"));
      SRN_RETURN_IF_ERROR(
          StepDone(stmt, absl::StrCat("store reference ", i, " of '", record.id, "'")));
    }
    return absl::OkStatus();
  }

  const std::string path_;  // absolute, so that ForEach's connections find the same file
  Mutex mu_;
  // Declared before the statements, so destroyed after them.
  Db db_ ABSL_GUARDED_BY(mu_);
  Stmt begin_ ABSL_GUARDED_BY(mu_);
  Stmt commit_ ABSL_GUARDED_BY(mu_);
  WriteQueue writes_{kMaxBatchWrites, kMaxBatchRecords};  // group commit of Put and PutAll
  Stmt rollback_ ABSL_GUARDED_BY(mu_);
  Stmt upsert_subject_ ABSL_GUARDED_BY(mu_);
  Stmt delete_references_ ABSL_GUARDED_BY(mu_);
  Stmt insert_reference_ ABSL_GUARDED_BY(mu_);
  Stmt delete_subject_ ABSL_GUARDED_BY(mu_);
  Stmt count_ ABSL_GUARDED_BY(mu_);
  Stmt updated_ ABSL_GUARDED_BY(mu_);
  std::string scratch_ ABSL_GUARDED_BY(mu_);  // the encoded embedding being written
};

}  // namespace

absl::StatusOr<std::unique_ptr<SubjectStore>> OpenSqliteSubjectStore(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("subject store path is empty");
  // SQLite gives these names special meanings (a private in-memory or temporary database).
  if (path[0] == ':') {
    return absl::InvalidArgumentError(absl::StrCat(
        "subject store path '", path, "' is not a file; use the in-memory store instead"));
  }
  if (sqlite3_threadsafe() == 0) {
    return absl::FailedPreconditionError("the SQLite library was built without thread support");
  }
  SRN_RETURN_IF_ERROR(CheckStorePath(path));
  SRN_ASSIGN_OR_RETURN(Db db, OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  SRN_RETURN_IF_ERROR(PrepareDatabase(db.get(), path));
  char* resolved = realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot resolve subject store path ", path, ": ", Errno(errno)));
  }
  std::string absolute(resolved);
  std::free(resolved);
  auto store = std::make_unique<SqliteSubjectStore>(std::move(absolute), std::move(db));
  SRN_RETURN_IF_ERROR(store->PrepareStatements());
  return std::unique_ptr<SubjectStore>(std::move(store));
}

}  // namespace srn
