#ifndef SRN_SERVER_POSTGRES_CONNECTION_H_
#define SRN_SERVER_POSTGRES_CONNECTION_H_

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"

// What the PostgreSQL subject store and model registry share: libpq handles, statements with
// binary parameters and results, and errors mapped to absl codes with a message that names the
// database but never the password.
namespace srn::pg {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultClearer>;

// The database as errors name it: the URI without its password.
std::string Redacted(const std::string& uri);

// The absl code for a failed statement, by SQLSTATE class: connection trouble and serialization
// failures are retryable (Unavailable, Aborted), a full disk ResourceExhausted, the rest Internal.
absl::StatusCode CodeOf(const PGresult* result);

// libpq's message for `result` (or the connection's), without the trailing newline.
std::string Message(PGconn* conn, const PGresult* result);

// A number in a binary result (network byte order).
uint64_t ReadBigEndian(const char* p, int bytes);

// Parameters of one statement, all text except BYTEA ones, which are binary.
class Params final {
 public:
  void Text(std::string value) { Add(std::move(value), 0, false); }
  void Bytes(std::string value) { Add(std::move(value), 1, false); }
  void Null() { Add("", 0, true); }
  void Double(std::optional<float> value);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values();
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(std::string value, int format, bool null);
  std::vector<std::string> values_;
  std::vector<int> lengths_, formats_;
  std::vector<bool> null_;
  std::vector<const char*> pointers_;
};

// Connects to `uri`; Unavailable "cannot connect to <who>: ..." otherwise. Notices are dropped.
absl::StatusOr<Conn> Connect(const std::string& uri, absl::string_view who);
// One statement (or several, without parameters), no rows wanted; errors "<who>: ...".
absl::Status Exec(PGconn* c, const char* sql, absl::string_view who);
// One parameterized statement, results in binary; errors "<who>: cannot <what>: ...".
absl::StatusOr<Result> Query(PGconn* c, const char* sql, Params params, absl::string_view who,
                             absl::string_view what);

// One statement of a pipeline (QueryPipelined): its SQL, parameters, and what it does, for errors.
struct Statement {
  std::string sql;
  Params params;
  std::string what;
};

// The statements a connection has prepared (parsed and planned once, then run by name), by SQL.
// Belongs to one connection: clear it when the connection is reset.
class PreparedStatements final {
 public:
  // The name `sql` is prepared under, and whether it is new (to be prepared first).
  std::pair<std::string, bool> NameOf(const std::string& sql);
  // Forgets them all (after a reset, or a failure that may have left some unprepared); new
  // names never reuse old ones.
  void Clear() { names_.clear(); }

 private:
  std::map<std::string, std::string> names_;
  int64_t next_ = 1;
};

// Sends `statements` at once (libpq's pipeline mode) and reads their results, in order: one round
// trip for all of them. With `prepared`, each statement runs as a prepared one (prepared in the
// same round trip the first time). Stops at the first failure, which it returns ("<who>: cannot
// <what>: ..."); the statements after it do not run, and a transaction they were in is aborted.
absl::StatusOr<std::vector<Result>> QueryPipelined(PGconn* c, std::vector<Statement> statements,
                                                   absl::string_view who,
                                                   PreparedStatements* prepared = nullptr);

// Runs `body` (returning absl::Status) between `begin` and COMMIT, rolling back when either fails.
// Resets the connection first when the database went away (restarted, or the network).
// (`body` may require the caller's lock on the connection: the analysis cannot see through the
// template, so it is off here.)
template <typename Body>
absl::Status InTransaction(PGconn* c, absl::string_view who, Body body,
                           const char* begin = "BEGIN") ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (PQstatus(c) != CONNECTION_OK) PQreset(c);
  SRN_RETURN_IF_ERROR(Exec(c, begin, who));
  absl::Status status = body();
  if (status.ok()) status = Exec(c, "COMMIT", who);
  if (!status.ok() && PQtransactionStatus(c) != PQTRANS_IDLE) {
    Exec(c, "ROLLBACK", who).IgnoreError();
  }
  return status;
}

}  // namespace srn::pg

#endif  // SRN_SERVER_POSTGRES_CONNECTION_H_
