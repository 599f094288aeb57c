#ifndef SRN_SERVER_SQLITE_STATUS_H_
#define SRN_SERVER_SQLITE_STATUS_H_

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace srn {

// The absl status code for an SQLite result code (primary or extended): corruption is DataLoss,
// a full disk or memory ResourceExhausted, I/O errors and lock contention Unavailable, files
// that cannot be opened or written FailedPrecondition, and anything unexpected Internal.
absl::StatusCode SqliteStatusCode(int rc);

// The status for result code `rc` from `what` on the store `store` (e.g. "subject store
// /var/lib/srn/store.db"). `db`, when given, supplies SQLite's own message for the most recent
// failure on that connection; corrupt and non-database files say so in plain words.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what, absl::string_view store);

}  // namespace srn

#endif  // SRN_SERVER_SQLITE_STATUS_H_
