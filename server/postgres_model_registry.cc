// The model registry in the PostgreSQL database that servers sharing a subject store share
// (issue 19): every server sees the same versions and the same active one, and follows an
// activation another server made (ModelManager::Follow).
//
// Schema (created if missing, next to the subject store's tables):
//   srn_model_versions(version INT8 PRIMARY KEY, origin TEXT, weights BYTEA, added_ms INT8)
//   srn_model_activations(seq BIGSERIAL PRIMARY KEY, version INT8 REFERENCES
//                         srn_model_versions, activated_ms INT8)
// The activation history is the activations in seq order (a rollback deletes the last one).
// Every change is one transaction that first takes a registry-wide advisory lock (version numbers
// and the history are read-modify-write) and notifies srn_model_changes on commit.
//
// This process's view (versions described once, the history) is read again by Poll and after
// each of its own changes, all through one connection, so that it never goes back in time.

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "model/weights/weights_file.h"
#include "server/model_registry.h"
#include "server/postgres_connection.h"

namespace srn {
namespace {

using pg::Conn;
using pg::Params;
using pg::ReadBigEndian;
using pg::Result;

constexpr char kCreateSchemaSql[] =
    "CREATE TABLE IF NOT EXISTS srn_model_versions("
    "  version INT8 PRIMARY KEY,"
    "  origin TEXT NOT NULL,"
    "  weights BYTEA NOT NULL,"
    "  added_ms INT8 NOT NULL"
    "    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::int8);"
    "CREATE TABLE IF NOT EXISTS srn_model_activations("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  version INT8 NOT NULL REFERENCES srn_model_versions(version),"
    "  activated_ms INT8 NOT NULL"
    "    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::int8);";
// Serializes changes to the registry across servers (and schema creation).
constexpr char kLockSql[] = "SELECT pg_advisory_xact_lock(7393628720)";
constexpr char kNotifySql[] = "NOTIFY srn_model_changes";

class PostgresModelRegistry final : public ModelRegistry {
 public:
  PostgresModelRegistry(std::string uri, Conn conn, CalibrationOverride calibration)
      : uri_(std::move(uri)),
        who_(absl::StrCat("model registry ", pg::Redacted(uri_))),
        calibration_(std::move(calibration)),
        conn_(std::move(conn)) {}

  absl::Status Initialize() ABSL_LOCKS_EXCLUDED(db_mu_) {
    MutexLock db(&db_mu_);
    SRN_RETURN_IF_ERROR(InTransaction([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
      SRN_RETURN_IF_ERROR(pg::Exec(conn_.get(), kLockSql, who_));
      return pg::Exec(conn_.get(), kCreateSchemaSql, who_);
    }));
    return RefreshLocked(nullptr);
  }

  std::string location() const override { return pg::Redacted(uri_); }
  bool shared() const override { return true; }

  int64_t active_version() const override {
    MutexLock lock(&mu_);
    return contents_.active();
  }

  int64_t PreviousVersion() const override {
    MutexLock lock(&mu_);
    return contents_.previous();
  }

  absl::StatusOr<std::shared_ptr<const ServingModel>> LoadVersion(int64_t version) const override {
    std::shared_ptr<const SimilarityModel> model;
    {
      MutexLock lock(&mu_);
      auto it = contents_.versions.find(version);
      if (it == contents_.versions.end()) {
        return absl::NotFoundError(absl::StrCat("no model version ", version));
      }
      if (!it->second.error.empty()) {
        return absl::DataLossError(absl::StrCat("model version ", version, " in ", location(),
                                                " does not load: ", it->second.error));
      }
      model = it->second.model;
    }
    return MakeServingModel(std::move(model), absl::StrCat(location(), " version ", version),
                            absl::StrCat(version), calibration_);
  }

  std::vector<int64_t> LoadableVersions() const override {
    MutexLock lock(&mu_);
    return contents_.Loadable();
  }

  absl::StatusOr<v1::ModelVersion> Find(int64_t version) const override {
    MutexLock lock(&mu_);
    return contents_.Find(version);
  }

  v1::ListModelsResponse List() const override {
    MutexLock lock(&mu_);
    return contents_.List();
  }

  absl::StatusOr<int64_t> ImportInitial(const std::string& path) override {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
    const std::string weights = SerializeModel(*model);
    MutexLock db(&db_mu_);
    SRN_RETURN_IF_ERROR(InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
      SRN_RETURN_IF_ERROR(pg::Exec(conn_.get(), kLockSql, who_));
      SRN_ASSIGN_OR_RETURN(
          Result r, pg::Query(conn_.get(), "SELECT count(*) FROM srn_model_activations", Params(),
                              who_, "read the activations"));
      if (ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8) > 0) return absl::OkStatus();  // seeded
      SRN_ASSIGN_OR_RETURN(const int64_t version,
                           InsertVersion(weights, absl::StrCat("imported ", path)));
      return InsertActivation(version);
    }));
    SRN_RETURN_IF_ERROR(RefreshLocked(nullptr));
    return active_version();
  }

  absl::StatusOr<int64_t> AddModel(const SimilarityModel& model,
                                   const std::string& origin) override {
    const std::string weights = SerializeModel(model);
    MutexLock db(&db_mu_);
    int64_t version = 0;
    SRN_RETURN_IF_ERROR(InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
      SRN_RETURN_IF_ERROR(pg::Exec(conn_.get(), kLockSql, who_));
      SRN_ASSIGN_OR_RETURN(version, InsertVersion(weights, origin));
      return absl::OkStatus();
    }));
    SRN_RETURN_IF_ERROR(RefreshLocked(nullptr));
    return version;
  }

  absl::Status RecordActivation(int64_t version, bool rollback) override {
    MutexLock db(&db_mu_);
    SRN_RETURN_IF_ERROR(InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
      SRN_RETURN_IF_ERROR(pg::Exec(conn_.get(), kLockSql, who_));
      if (!rollback) return InsertActivation(version);
      return pg::Query(conn_.get(),
                       "DELETE FROM srn_model_activations WHERE seq = (SELECT max(seq) FROM "
                       "srn_model_activations)",
                       Params(), who_, "record the rollback")
          .status();
    }));
    return RefreshLocked(nullptr);
  }

  std::vector<int64_t> Poll() override {
    MutexLock db(&db_mu_);
    std::vector<int64_t> added;
    if (absl::Status s = RefreshLocked(&added); !s.ok()) {
      std::cerr << "srn-server: cannot read the " << who_ << ": " << s.message() << "\n";
    }
    return added;
  }

  bool WaitForChange(double seconds) override {
    MutexLock lock(&listen_mu_);
    if (listen_ == nullptr || PQstatus(listen_.get()) != CONNECTION_OK) {
      listen_.reset();
      absl::StatusOr<Conn> conn = pg::Connect(uri_, who_);
      if (!conn.ok() || !pg::Exec(conn->get(), "LISTEN srn_model_changes", who_).ok()) {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        return false;
      }
      listen_ = *std::move(conn);
      return true;  // notifications before this connection listened may have been missed
    }
    pollfd fd = {PQsocket(listen_.get()), POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(seconds * 1000)) <= 0) return false;
    if (PQconsumeInput(listen_.get()) != 1) return true;  // reconnect and read again
    bool notified = false;
    while (PGnotify* n = PQnotifies(listen_.get())) {
      notified = true;
      PQfreemem(n);
    }
    return notified;
  }

 private:
  template <typename Body>
  absl::Status InTransaction(Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    return pg::InTransaction(conn_.get(), who_, std::move(body));
  }

  // In a transaction holding the lock: registers `weights` as the next version.
  absl::StatusOr<int64_t> InsertVersion(const std::string& weights, const std::string& origin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    Params p;
    p.Text(origin);
    p.Bytes(weights);
    SRN_ASSIGN_OR_RETURN(Result r,
                         pg::Query(conn_.get(),
                                   "INSERT INTO srn_model_versions(version, origin, weights) "
                                   "SELECT coalesce(max(version), 0) + 1, $1, $2 FROM "
                                   "srn_model_versions RETURNING version",
                                   std::move(p), who_, "register the version"));
    SRN_RETURN_IF_ERROR(pg::Exec(conn_.get(), kNotifySql, who_));
    return static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
  }

  absl::Status InsertActivation(int64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    Params p;
    p.Text(absl::StrCat(version));
    SRN_RETURN_IF_ERROR(pg::Query(conn_.get(),
                                  "INSERT INTO srn_model_activations(version) VALUES($1::int8)",
                                  std::move(p), who_, "record the activation")
                            .status());
    return pg::Exec(conn_.get(), kNotifySql, who_);
  }

  // Reads the versions (describing the new ones once) and the history, in one snapshot, and
  // installs them; `added` (optional) receives the versions new to this process.
  absl::Status RefreshLocked(std::vector<int64_t>* added) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    RegistryContents fresh;
    {
      MutexLock lock(&mu_);
      fresh.versions = contents_.versions;
    }
    SRN_RETURN_IF_ERROR(InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
      SRN_RETURN_IF_ERROR(
          pg::Exec(conn_.get(), "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", who_));
      SRN_ASSIGN_OR_RETURN(Result versions,
                           pg::Query(conn_.get(),
                                     "SELECT version, origin FROM srn_model_versions ORDER BY "
                                     "version",
                                     Params(), who_, "read the versions"));
      for (int row = 0; row < PQntuples(versions.get()); ++row) {
        const int64_t version =
            static_cast<int64_t>(ReadBigEndian(PQgetvalue(versions.get(), row, 0), 8));
        if (fresh.versions.count(version) > 0) continue;
        const std::string origin(PQgetvalue(versions.get(), row, 1),
                                 PQgetlength(versions.get(), row, 1));
        SRN_ASSIGN_OR_RETURN(fresh.versions[version], Describe(version, origin));
        if (added != nullptr) added->push_back(version);
      }
      SRN_ASSIGN_OR_RETURN(
          Result activations,
          pg::Query(conn_.get(), "SELECT version FROM srn_model_activations ORDER BY seq", Params(),
                    who_, "read the activations"));
      for (int row = 0; row < PQntuples(activations.get()); ++row) {
        fresh.history.push_back(
            static_cast<int64_t>(ReadBigEndian(PQgetvalue(activations.get(), row, 0), 8)));
      }
      return absl::OkStatus();
    }));
    MutexLock lock(&mu_);
    contents_ = std::move(fresh);
    return absl::OkStatus();
  }

  // Reads and describes the weights of `version` (an error only when they cannot be read; weights
  // that do not load are described with their error).
  absl::StatusOr<RegisteredVersion> Describe(int64_t version, const std::string& origin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    Params p;
    p.Text(absl::StrCat(version));
    SRN_ASSIGN_OR_RETURN(Result r, pg::Query(conn_.get(),
                                             "SELECT weights FROM srn_model_versions WHERE "
                                             "version = $1::int8",
                                             std::move(p), who_, "read a version's weights"));
    RegisteredVersion v;
    v.info.set_version(version);
    v.info.set_origin(origin);
    absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
        ParseModel(absl::string_view(PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0)),
                   absl::StrCat(location(), " version ", version));
    if (!model.ok()) {
      v.error = std::string(model.status().message());
      return v;
    }
    v.info = DescribeModel(**model, version, origin);
    v.model = *std::move(model);
    return v;
  }

  const std::string uri_;
  const std::string who_;  // "model registry postgresql://host:port/db", for messages
  const CalibrationOverride calibration_;

  Mutex db_mu_;  // the connection, and the order in which views are installed
  Conn conn_ ABSL_GUARDED_BY(db_mu_);

  mutable Mutex mu_;
  RegistryContents contents_ ABSL_GUARDED_BY(mu_);

  Mutex listen_mu_;
  Conn listen_ ABSL_GUARDED_BY(listen_mu_);  // LISTENs srn_model_changes
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRegistry>> OpenPostgresModelRegistry(
    const std::string& uri, const CalibrationOverride& calibration) {
  const std::string who = absl::StrCat("the model registry ", pg::Redacted(uri));
  SRN_ASSIGN_OR_RETURN(Conn conn, pg::Connect(uri, who));
  auto registry = std::make_unique<PostgresModelRegistry>(uri, std::move(conn), calibration);
  SRN_RETURN_IF_ERROR(registry->Initialize());
  return registry;
}

}  // namespace srn
