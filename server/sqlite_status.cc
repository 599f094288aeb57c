#include "server/sqlite_status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace srn {

absl::StatusCode SqliteStatusCode(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_TOOBIG:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what, absl::string_view store) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = absl::StrCat(store, ": ", what, ": ", detail, " (SQLite code ", rc, ")");
  if ((rc & 0xff) == SQLITE_NOTADB) {
    absl::StrAppend(&message, "; the file is not an SQLite database or its header is damaged");
  } else if ((rc & 0xff) == SQLITE_CORRUPT) {
    absl::StrAppend(&message, "; the database file is corrupt");
  }
  return absl::Status(SqliteStatusCode(rc), message);
}

}  // namespace srn
