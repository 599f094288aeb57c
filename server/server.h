#ifndef SRN_SERVER_SERVER_H_
#define SRN_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "prometheus/exposer.h"
#include "server/auth.h"
#include "server/server_metrics.h"
#include "server/similarity_core.h"
#include "server/similarity_service.h"
#include "server/job_store.h"
#include "server/model_registry.h"
#include "server/store_lock.h"
#include "server/training_service.h"
#include "server/training_worker.h"

namespace srn {

// Everything that configures a server; main.cc only fills this from flags.
struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";  // port 0 picks a free port
  std::string metrics_address = "127.0.0.1:9464";  // empty: no metrics endpoint; port 0: free port
  std::string weights_path;                        // empty: the bundled default model
  std::string store_path = "srn-store.db";         // SQLite file, or ":memory:" (not durable)
  CoreOptions core;
  int max_message_bytes = 16 << 20;

  // TLS: server certificate chain and key (PEM files); optional client-certificate verification.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;  // when set, clients must present a certificate it signed
  // Bearer tokens ("<role> <token>" lines); $SRN_ADMIN_TOKEN / $SRN_READER_TOKEN are added.
  std::string tokens_file;
  // Without tokens the server refuses non-loopback addresses unless this is set.
  bool allow_unauthenticated_remote = false;

  // Training and the model registry (proto/srn/v1/training.proto). Without a model directory
  // both services answer FAILED_PRECONDITION. With one, the registry's active version is served
  // (weights_path only seeds an empty registry, as version 1).
  std::string model_dir;
  double model_poll_seconds = 30;  // look for dropped weights files this often; 0: never
  TrainingOptions training;        // data_dir, threads, max_jobs, ...
};

// The path of the bundled default model, or "" when no copy is found next to the binary
// (share/srn/models) or in the source tree it was built from.
std::string DefaultModelPath();

// The DTW fusion calibration of the bundled model's recipe (a1), cross-validated on SVC2004:
// `srn-eval --protocol=svc2004-cv --fuse_dtw=...` on its fold models, "to deploy" lines
// (docs/RESULTS.md, docs/DEFAULT_MODEL.md). srn-server applies it whenever it serves the model
// with this fingerprint, unless told otherwise (--dtw_fusion). Retraining the bundled model
// means measuring these again (a test checks that the fingerprint is still the bundled one's).
inline constexpr DtwFusionCalibration kBundledModelDtwFusion = {2.0, -2.00308, 4.0, -4.95391};
// The DTW verifier's single-reference spread model fitted on all 40 SVC2004 signers (srn-eval
// --protocol=svc2004-cv, "to deploy: --dtw_spread="), which kBundledModelDtwFusion's one-reference
// weight and offset were measured with. It belongs to the DTW verifier and the pen features, not
// to one SRN, so srn-server uses it with any fusion calibration unless told otherwise.
inline constexpr DtwSpreadModel kBundledDtwSpread = {
    {-0.423193, -0.255644, -0.693426, 0.0868051}, -1.27963, -0.0237914};
inline constexpr char kBundledModelId[] = "977f9a8c377c410b";

// A running srn server: the similarity service, health, reflection and the metrics endpoint.
// Start-up refuses (with the reason) a missing or corrupt weights file, an unusable store, bad
// TLS files or an unsafe address; health is NOT_SERVING until the store is recovered.
// Thread-safe.
class Server {
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
  SimilarityCore& core() { return *core_; }
  // Null without a model directory.
  ModelRegistry* model_registry() { return model_registry_.get(); }
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
  std::unique_ptr<TrainingWorker> worker_;
  std::unique_ptr<TrainingService> training_service_;
  std::unique_ptr<ModelRegistryService> registry_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::thread metrics_stopper_;
  absl::Mutex shutdown_mu_;
  bool shutting_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace srn

#endif  // SRN_SERVER_SERVER_H_
