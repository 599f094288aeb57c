#ifndef SRN_SERVER_SERVER_H_
#define SRN_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/cancellation.h"
#include "base/mutex.h"
#include "grpcpp/server.h"
#include "prometheus/exposer.h"
#include "server/auth.h"
#include "server/http_gateway.h"
#include "server/job_store.h"
#include "server/model_manager.h"
#include "server/model_registry.h"
#include "server/model_registry_service.h"
#include "server/server_metrics.h"
#include "server/serving_model.h"
#include "server/similarity_core.h"
#include "server/similarity_service.h"
#include "server/store_lock.h"
#include "server/subject_store.h"
#include "server/training_service.h"
#include "server/training_worker.h"

namespace srn {

class PostgresJobStore;
class SharedTrainingJobs;

// Everything that configures a server; main.cc only fills this from flags.
struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";  // port 0 picks a free port
  std::string metrics_address = "127.0.0.1:9464";  // empty: no metrics endpoint; port 0: free port
  // The HTTP/JSON API and the signature pad page (server/http_gateway.h); empty: none; port 0:
  // a free port. Same tokens and limits as gRPC (JSON bodies up to 4x max_message_bytes, since
  // numbers take about that much more room as text); no TLS of its own.
  std::string http_address;
  double http_request_timeout_seconds = 30;  // for a client to send a request's headers and body
  std::string weights_path;                        // empty: the bundled default model
  // SQLite file, a postgresql:// URI (servers may share it), or ":memory:" (not durable).
  std::string store_path = "srn-store.db";
  PostgresStoreOptions postgres;  // for a postgresql:// store
  CoreOptions core;
  // Replaces parts of the served models' recorded verification calibration (--dtw_fusion,
  // --dtw_spread).
  CalibrationOverride calibration;
  int max_message_bytes = 16 << 20;

  // TLS: server certificate chain and key (PEM files); optional client-certificate verification.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;  // when set, clients must present a certificate it signed
  // Bearer tokens ("<role> <token>" lines); $SRN_ADMIN_TOKEN / $SRN_READER_TOKEN are added.
  std::string tokens_file;
  // Without tokens the server refuses non-loopback addresses unless this is set.
  bool allow_unauthenticated_remote = false;
  // Without tokens the server refuses a non-loopback metrics address unless this is set (the
  // metrics endpoint itself never asks for a token).
  bool metrics_public = false;

  // Training and the model registry (proto/srn/v1/training.proto). Without a model directory
  // both services answer FAILED_PRECONDITION. With one, the registry's active version is served
  // (weights_path only seeds an empty registry, as version 1).
  std::string model_dir;
  double model_poll_seconds = 30;  // look for dropped weights files this often; 0: never
  TrainingOptions training;        // data_dir, threads, max_jobs, ...
  // On a PostgreSQL store, a trainer also runs the training jobs that any server on the store
  // recorded (a server records them only), as `trainer_name` (default: <host>-<pid>).
  bool trainer = false;
  std::string trainer_name;
};

// The path of the bundled default model, or "" when no copy is found next to the binary
// (share/srn/models) or in the source tree it was built from.
std::string DefaultModelPath();

// A running srn server: the similarity service, health, reflection and the metrics endpoint.
// Start-up refuses (with the reason) a missing or corrupt weights file, an unusable store, bad
// TLS files or an unsafe address; health is NOT_SERVING until the store is recovered.
// Thread-safe.
class Server final {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> BuildAndStart(const ServerOptions& options);
  ~Server();

  // Blocks until Shutdown has stopped the server.
  void Wait();
  // Health goes NOT_SERVING while the server keeps answering for `drain_seconds` (so that load
  // balancers stop sending); then new calls are refused and those in flight get
  // `grace_seconds` to finish before the server stops. Returns once the server no longer takes
  // calls; Wait() returns when those in flight are done. Only the first call has an effect.
  void Shutdown(double drain_seconds, double grace_seconds) ABSL_LOCKS_EXCLUDED(shutdown_mu_);

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  SimilarityCore& core() { return *core_; }
  // Null without a model directory.
  ModelRegistry* model_registry() { return model_registry_.get(); }
  ModelManager& model_manager() { return *model_manager_; }
  TrainingWorker* training_worker() { return worker_.get(); }

 private:
  Server() = default;

  std::unique_ptr<StoreLock> store_lock_;  // held while the store is open
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<ServerMetrics> metrics_;
  TokenAuth auth_;
  std::unique_ptr<SimilarityCore> core_;
  std::unique_ptr<SimilarityService> service_;
  std::unique_ptr<JobStore> job_store_;
  std::unique_ptr<ModelRegistry> model_registry_;
  std::unique_ptr<ModelManager> model_manager_;
  std::unique_ptr<TrainingWorker> worker_;  // runs jobs: SQLite store, or a trainer
  std::unique_ptr<PostgresJobStore> shared_jobs_store_;
  std::unique_ptr<SharedTrainingJobs> shared_jobs_;  // what a server on PostgreSQL answers from
  std::unique_ptr<TrainingService> training_service_;
  std::unique_ptr<ModelRegistryService> registry_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<HttpGateway> http_;  // calls grpc_server_ in process
  int port_ = 0;
  int metrics_port_ = 0;
  std::thread metrics_stopper_;
  // Background work once serving: deriving the spreads the store lacked
  // (SimilarityCore::DeriveMissingSpreads) and following a shared store's changes
  // (SimilarityCore::FollowStore). Shutdown stops both, the destructor joins them.
  CancellationFlag stop_background_;
  std::thread deriver_;
  std::thread follower_;           // of a shared store's changes
  std::thread registry_follower_;  // of the model registry's changes
  Mutex shutdown_mu_;
  bool shutting_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace srn

#endif  // SRN_SERVER_SERVER_H_
