#include "server/postgres_connection.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace srn::pg {

std::string Redacted(const std::string& uri) {
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), nullptr);
  if (options == nullptr) return "(an unparsable connection URI)";
  std::string host, port, db;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "host") == 0 || std::strcmp(o->keyword, "hostaddr") == 0) {
      host = o->val;
    }
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "dbname") == 0) db = o->val;
  }
  PQconninfoFree(options);
  return absl::StrCat("postgresql://", host, port.empty() ? "" : ":", port, "/", db);
}

absl::StatusCode CodeOf(const PGresult* result) {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (state == nullptr) return absl::StatusCode::kUnavailable;  // no result: the connection
  const absl::string_view s(state);
  if (absl::StartsWith(s, "08") || absl::StartsWith(s, "57")) {
    return absl::StatusCode::kUnavailable;  // connection exception, operator intervention
  }
  if (s == "40001" || s == "40P01") return absl::StatusCode::kAborted;  // retry
  if (absl::StartsWith(s, "53")) return absl::StatusCode::kResourceExhausted;
  if (absl::StartsWith(s, "28")) return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

std::string Message(PGconn* conn, const PGresult* result) {
  const char* m = result != nullptr ? PQresultErrorMessage(result) : "";
  if (m == nullptr || *m == '\0') m = PQerrorMessage(conn);
  std::string message(m == nullptr ? "" : m);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

uint64_t ReadBigEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

void Params::Double(std::optional<float> value) {
  if (!value.has_value()) return Null();
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.17g", static_cast<double>(*value));
  Text(buffer);
}

const char* const* Params::values() {
  pointers_.clear();
  for (size_t i = 0; i < values_.size(); ++i) {
    pointers_.push_back(null_[i] ? nullptr : values_[i].data());
  }
  return pointers_.data();
}

void Params::Add(std::string value, int format, bool null) {
  lengths_.push_back(static_cast<int>(value.size()));
  values_.push_back(std::move(value));
  formats_.push_back(format);
  null_.push_back(null);
}

absl::StatusOr<Conn> Connect(const std::string& uri, absl::string_view who) {
  Conn conn(PQconnectdb(uri.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", who, ": ", Message(conn.get(), nullptr)));
  }
  // Notices ("relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

absl::Status Exec(PGconn* c, const char* sql, absl::string_view who) {
  Result r(PQexec(c, sql));
  const ExecStatusType s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r.get());
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return absl::OkStatus();
  return absl::Status(CodeOf(r.get()), absl::StrCat(who, ": ", Message(c, r.get())));
}

absl::StatusOr<Result> Query(PGconn* c, const char* sql, Params params, absl::string_view who,
                             absl::string_view what) {
  Result r(PQexecParams(c, sql, params.size(), nullptr, params.values(), params.lengths(),
                        params.formats(), /*resultFormat=*/1));
  const ExecStatusType s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r.get());
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return r;
  return absl::Status(CodeOf(r.get()),
                      absl::StrCat(who, ": cannot ", what, ": ", Message(c, r.get())));
}

std::pair<std::string, bool> PreparedStatements::NameOf(const std::string& sql) {
  auto it = names_.find(sql);
  if (it != names_.end()) return {it->second, false};
  return {names_.emplace(sql, absl::StrCat("srn_", next_++)).first->second, true};
}

absl::StatusOr<std::vector<Result>> QueryPipelined(PGconn* c, std::vector<Statement> statements,
                                                   absl::string_view who,
                                                   PreparedStatements* prepared) {
  const auto lost = [&](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat(who, ": cannot ", what, ": ", Message(c, nullptr)));
  };
  if (PQenterPipelineMode(c) != 1) return lost("send statements together");
  // What each result read back answers: a statement (its index), or the preparation of one (-1).
  std::vector<int> sent;
  std::vector<std::string> newly_prepared;
  for (size_t i = 0; i < statements.size(); ++i) {
    Statement& s = statements[i];
    int ok = 1;
    if (prepared == nullptr) {
      ok = PQsendQueryParams(c, s.sql.c_str(), s.params.size(), nullptr, s.params.values(),
                             s.params.lengths(), s.params.formats(), /*resultFormat=*/1);
    } else {
      const auto [name, fresh] = prepared->NameOf(s.sql);
      if (fresh) {
        newly_prepared.push_back(s.sql);
        ok = PQsendPrepare(c, name.c_str(), s.sql.c_str(), s.params.size(), nullptr);
        if (ok == 1) sent.push_back(-1);
      }
      if (ok == 1) {
        ok = PQsendQueryPrepared(c, name.c_str(), s.params.size(), s.params.values(),
                                 s.params.lengths(), s.params.formats(), /*resultFormat=*/1);
      }
    }
    if (ok != 1) break;
    sent.push_back(static_cast<int>(i));
  }
  if (PQpipelineSync(c) != 1) return lost("send statements together");
  absl::Status status;
  const size_t statements_sent =
      static_cast<size_t>(std::count_if(sent.begin(), sent.end(), [](int i) { return i >= 0; }));
  if (statements_sent < statements.size()) status = lost(statements[statements_sent].what);
  std::vector<Result> results;
  for (const int i : sent) {
    const std::string& what = i >= 0 ? statements[i].what : "prepare a statement";
    Result r(PQgetResult(c));
    if (r == nullptr) {
      if (status.ok()) status = lost(what);
      break;
    }
    const ExecStatusType s = PQresultStatus(r.get());
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
      if (i >= 0) results.push_back(std::move(r));
    } else if (s != PGRES_PIPELINE_ABORTED && status.ok()) {
      status = absl::Status(CodeOf(r.get()),
                            absl::StrCat(who, ": cannot ", what, ": ", Message(c, r.get())));
    }
    Result end(PQgetResult(c));  // null: the end of this statement's results
  }
  // The sync's own result, then back to one statement at a time.
  for (Result r(PQgetResult(c)); r != nullptr && PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC;
       r.reset(PQgetResult(c))) {
  }
  if (PQexitPipelineMode(c) != 1 && status.ok()) status = lost("end the statements sent together");
  // A preparation that failed or did not run is not there: prepare everything again next time.
  if (!status.ok() && prepared != nullptr && !newly_prepared.empty()) prepared->Clear();
  if (!status.ok()) return status;
  return results;
}

}  // namespace srn::pg
