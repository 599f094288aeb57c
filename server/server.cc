#include "server/server.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "model/weights/weights_file.h"
#include "server/grpc_auth.h"
#include "server/postgres_job_store.h"
#include "server/shared_training_jobs.h"
#include "server/tls_files.h"

namespace srn {
namespace {

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "trainer";
  return name;
}

// True for addresses only this machine can reach.
bool IsLoopback(const std::string& address) {
  std::string host = address;
  if (absl::StartsWith(host, "ipv4:")) host = host.substr(5);
  if (absl::StartsWith(host, "ipv6:")) host = host.substr(5);
  if (absl::StartsWith(host, "[")) return absl::StartsWith(host, "[::1]");
  host = host.substr(0, host.rfind(':'));
  return host == "localhost" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("a client CA needs TLS: set the certificate and key too");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  TlsFiles files;
  files.cert_path = options.tls_cert_file;
  files.key_path = options.tls_key_file;
  files.client_ca_path = options.tls_client_ca_file;
  SRN_ASSIGN_OR_RETURN(files.cert_pem, ReadFileToString(files.cert_path));
  SRN_ASSIGN_OR_RETURN(files.key_pem, ReadFileToString(files.key_path));
  if (!files.client_ca_path.empty()) {
    SRN_ASSIGN_OR_RETURN(files.client_ca_pem, ReadFileToString(files.client_ca_path));
  }
  SRN_RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!files.client_ca_path.empty()) {
    ssl.pem_root_certs = files.client_ca_pem;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  ssl.pem_key_cert_pairs.push_back({files.key_pem, files.cert_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

std::string DefaultModelPath() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / ".." / "share" / "srn" / "models" / "default.srnw");
  }
#ifdef SRN_SOURCE_DEFAULT_MODEL
  candidates.push_back(SRN_SOURCE_DEFAULT_MODEL);
#endif
  for (const auto& path : candidates) {
    if (std::filesystem::is_regular_file(path, ec))
      return std::filesystem::weakly_canonical(path, ec).string();
  }
  return "";
}

Server::~Server() {
  Shutdown(0, 0);
  http_.reset();  // its calls in flight end with the gRPC server's grace period
  if (grpc_server_ != nullptr) grpc_server_->Wait();
  if (metrics_stopper_.joinable()) metrics_stopper_.join();
  stop_background_.Cancel();
  if (deriver_.joinable()) deriver_.join();
  if (follower_.joinable()) follower_.join();
  if (registry_follower_.joinable()) registry_follower_.join();
}

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server());

  if (!options.tokens_file.empty()) {
    std::string warning;
    SRN_ASSIGN_OR_RETURN(server->auth_, TokenAuth::FromFile(options.tokens_file, &warning));
    if (!warning.empty()) std::cerr << "srn-server: " << warning << "\n";
  }
  SRN_RETURN_IF_ERROR(server->auth_.AddFromEnvironment());
  if (!server->auth_.enabled() && !IsLoopback(options.listen_address) &&
      !options.allow_unauthenticated_remote) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to listen on ", options.listen_address,
                     " without authentication: give tokens (--tokens_file, $SRN_ADMIN_TOKEN, "
                     "$SRN_READER_TOKEN), "
                     "listen on a loopback address, or pass --allow_unauthenticated_remote"));
  }
  if (!server->auth_.enabled() && !options.http_address.empty() &&
      !IsLoopback(options.http_address) && !options.allow_unauthenticated_remote) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to serve HTTP on ", options.http_address,
                     " without authentication: give tokens (--tokens_file, $SRN_ADMIN_TOKEN, "
                     "$SRN_READER_TOKEN), listen on a loopback address, or pass "
                     "--allow_unauthenticated_remote"));
  }
  // The HTTP listener speaks no TLS: where gRPC is asked for TLS, HTTP stays on this machine
  // (behind a TLS-terminating proxy), never a plain-text way around it.
  if (!options.tls_cert_file.empty() && !options.http_address.empty() &&
      !IsLoopback(options.http_address)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve plain HTTP on ", options.http_address,
        " beside gRPC over TLS: the HTTP listener has no TLS of its own; serve it on a loopback "
        "address behind a TLS-terminating proxy (an Ingress), or leave --http_listen out"));
  }
  // The metrics say what the server serves and how much; without tokens, exposing them beyond
  // this machine must be asked for as explicitly as for the API.
  if (!server->auth_.enabled() && !options.metrics_address.empty() &&
      !IsLoopback(options.metrics_address) && !options.metrics_public) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve metrics on ", options.metrics_address,
        " without authentication: serve them on a loopback address (--metrics_listen="
        "127.0.0.1:9464), give tokens (--tokens_file, $SRN_ADMIN_TOKEN, $SRN_READER_TOKEN), or "
        "pass --metrics_public to say they may be public"));
  }
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));

  server->registry_ = std::make_shared<prometheus::Registry>();
  server->metrics_ = std::make_unique<ServerMetrics>(
      server->registry_,
      std::vector<RpcService>{
          {SimilarityService::kServiceName, SimilarityService::Methods()},
          {TrainingService::kServiceName, TrainingService::Methods()},
          {ModelRegistryService::kServiceName, ModelRegistryService::Methods()}});
  if (!options.metrics_address.empty()) {
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(options.metrics_address);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", options.metrics_address, ": ", e.what()));
    }
    server->exposer_->RegisterCollectable(server->registry_);
    const std::vector<int> ports = server->exposer_->GetListeningPorts();
    server->metrics_port_ = ports.empty() ? 0 : ports.front();
  }

  const bool postgres = IsPostgresUri(options.store_path);
  if (!(options.postgres.change_retention_seconds >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--change_log_retention_seconds must be at least 0, not ",
                     options.postgres.change_retention_seconds));
  }
  if (postgres && !options.model_dir.empty()) {
    return absl::FailedPreconditionError(
        "--model_dir is for a SQLite store: with a PostgreSQL store, the model registry lives in "
        "the database, shared by every server on it (add versions with srnctl import-model); "
        "drop --model_dir");
  }
  // One server per store file: the lock is taken before the model directory or the store is
  // touched. (A PostgreSQL store is shared by design.)
  if (options.store_path != ":memory:" && !postgres) {
    SRN_ASSIGN_OR_RETURN(StoreLock lock, StoreLock::Acquire(options.store_path));
    server->store_lock_ = std::make_unique<StoreLock>(std::move(lock));
  }
  if (postgres) {
    // The message names the database without the URI's password.
    SRN_ASSIGN_OR_RETURN(server->model_registry_,
                         OpenPostgresModelRegistry(options.store_path, options.calibration));
  } else if (!options.model_dir.empty()) {
    absl::StatusOr<std::unique_ptr<ModelRegistry>> registry =
        OpenDirectoryModelRegistry(options.model_dir, options.calibration);
    if (!registry.ok()) {
      return absl::Status(
          registry.status().code(),
          absl::StrCat("cannot open the model directory: ", registry.status().message()));
    }
    server->model_registry_ = *std::move(registry);
  }
  if (server->model_registry_ != nullptr && server->model_registry_->active_version() > 0 &&
      !options.weights_path.empty()) {
    std::cerr << "srn-server: serving version " << server->model_registry_->active_version()
              << " of the model registry " << server->model_registry_->location()
              << " (--weights only seeds an empty registry)\n";
  }
  SRN_ASSIGN_OR_RETURN(
      const std::shared_ptr<const ServingModel> serving_model,
      ModelManager::ChooseInitial(
          options.weights_path.empty() ? DefaultModelPath() : options.weights_path,
          server->model_registry_.get(), options.calibration));
  if (server->model_registry_ != nullptr && server->model_registry_->active_version() > 0 &&
      serving_model->version != absl::StrCat(server->model_registry_->active_version())) {
    server->metrics_->SetModelFallback(true);  // ChooseInitial said why on stderr
  }
  // Weights files dropped while the server was down (after the import, so that a new registry's
  // version 1 is the model it started with).
  if (server->model_registry_ != nullptr) server->model_registry_->Poll();

  std::unique_ptr<SubjectStore> store;
  if (options.store_path == ":memory:") {
    store = NewInMemorySubjectStore();
  } else if (postgres) {
    // The message names the database without the URI's password.
    SRN_ASSIGN_OR_RETURN(store, OpenPostgresSubjectStore(options.store_path, options.postgres));
  } else {
    absl::StatusOr<std::unique_ptr<SubjectStore>> opened =
        OpenSqliteSubjectStore(options.store_path);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(), absl::StrCat("cannot use the store ",
                                                               options.store_path, ": ",
                                                               opened.status().message()));
    }
    store = *std::move(opened);
  }

  if (options.trainer && !postgres) {
    return absl::InvalidArgumentError(
        "--role=trainer is for a PostgreSQL store (--store=postgresql://...): on a SQLite store "
        "the server runs its training jobs itself (--model_dir)");
  }
  // Training jobs are recorded next to a SQLite store (and run by this server), or in the
  // PostgreSQL database (and run by trainers).
  const bool trains = (server->model_registry_ != nullptr && !postgres) || options.trainer;
  if (postgres) {
    SRN_ASSIGN_OR_RETURN(server->shared_jobs_store_, PostgresJobStore::Open(options.store_path));
    server->shared_jobs_ = std::make_unique<SharedTrainingJobs>(
        server->shared_jobs_store_.get(), options.training, server->metrics_.get());
  }
  const std::string trainer_name = options.trainer_name.empty()
                                       ? absl::StrCat(HostName(), "-", ::getpid())
                                       : options.trainer_name;
  if (options.trainer) {
    server->job_store_ = server->shared_jobs_store_->RecorderFor(trainer_name);
  } else if (trains) {
    absl::StatusOr<std::unique_ptr<JobStore>> jobs = JobStore::Open(options.store_path);
    if (!jobs.ok()) {
      return absl::Status(jobs.status().code(), absl::StrCat("cannot record training jobs in ",
                                                             options.store_path, ": ",
                                                             jobs.status().message()));
    }
    server->job_store_ = *std::move(jobs);
  }
  server->core_ = std::make_unique<SimilarityCore>(serving_model, std::move(store), options.core,
                                                   server->metrics_.get());
  server->model_manager_ = std::make_unique<ModelManager>(
      server->model_registry_.get(), server->core_.get(), server->metrics_.get());
  if (trains) {
    server->worker_ =
        std::make_unique<TrainingWorker>(server->job_store_.get(), server->model_manager_.get(),
                                         options.training, server->metrics_.get());
    if (absl::Status s = server->worker_->Start(); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("cannot start the training worker: ", s.message()));
    }
    if (options.trainer) {
      server->worker_->StartClaiming(server->shared_jobs_store_.get(), trainer_name);
      std::cerr << "srn-server: trainer '" << trainer_name << "' runs the training jobs of "
                << server->shared_jobs_store_->who() << "\n";
    }
  }
  TrainingJobs* jobs = server->shared_jobs_ != nullptr
                           ? static_cast<TrainingJobs*>(server->shared_jobs_.get())
                           : server->worker_.get();
  server->training_service_ = std::make_unique<TrainingService>(
      jobs, &server->auth_, options.training, server->metrics_.get());
  server->registry_service_ = std::make_unique<ModelRegistryService>(
      server->model_manager_.get(), &server->auth_, server->metrics_.get());
  server->service_ = std::make_unique<SimilarityService>(server->core_.get(), &server->auth_,
                                                         server->metrics_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->training_service_.get());
  builder.RegisterService(server->registry_service_.get());
  if (server->auth_.enabled()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> roles;
    roles.push_back(NewMethodRoleInterceptor(&server->auth_));
    builder.experimental().SetInterceptorCreators(std::move(roles));
  }
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->grpc_server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address,
                                               " (address in use or invalid?)"));
  }
  if (!options.http_address.empty()) {
    HttpGatewayOptions http;
    http.listen_address = options.http_address;
    http.max_body_bytes = 4 * static_cast<int64_t>(options.max_message_bytes);
    http.request_timeout_seconds = options.http_request_timeout_seconds;
    grpc::ChannelArguments channel;
    channel.SetMaxReceiveMessageSize(-1);  // the server's own limit applies
    channel.SetMaxSendMessageSize(-1);
    absl::StatusOr<std::unique_ptr<HttpGateway>> gateway = HttpGateway::Start(
        http, server->grpc_server_->InProcessChannel(channel), server->metrics_.get());
    if (!gateway.ok()) {
      server->Shutdown(0, 0);
      return gateway.status();
    }
    server->http_ = *std::move(gateway);
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus(SimilarityService::kServiceName, false);

  // Serve only once everything acknowledged before is back in memory.
  if (absl::Status s = server->core_->Recover(); !s.ok()) {
    server->Shutdown(0, 0);
    return absl::Status(s.code(), absl::StrCat("cannot recover the store: ", s.message()));
  }
  server->service_->SetReady(true);
  server->training_service_->SetReady(true);
  server->registry_service_->SetReady(true);
  // Weights files dropped into the model directory, or versions and activations other servers
  // recorded in a shared registry (notified; read again every 5 s in case a notification was
  // missed).
  if (server->model_registry_ != nullptr && (postgres || options.model_poll_seconds > 0)) {
    ModelManager* manager = server->model_manager_.get();
    const Cancellation* stop = &server->stop_background_;
    const double poll_seconds = postgres ? 5.0 : options.model_poll_seconds;
    server->registry_follower_ = std::thread(
        [manager, stop, poll_seconds] { manager->FollowRegistry(*stop, poll_seconds); });
  }
  health->SetServingStatus(true);
  health->SetServingStatus(SimilarityService::kServiceName, true);
  // Other servers' writes to a shared store, from the snapshot recovered on.
  if (server->core_->follows_store()) {
    SimilarityCore* core = server->core_.get();
    const Cancellation* stop = &server->stop_background_;
    server->follower_ = std::thread([core, stop] { core->FollowStore(*stop).IgnoreError(); });
  }
  // What the store lacked (spreads from before they were stored, or under other options) is
  // derived once serving; Verify derives it for itself meanwhile.
  if (const int64_t missing = server->core_->subjects_missing_spreads(); missing > 0) {
    std::cerr << "srn-server: " << missing << " subjects have no stored reference spreads for "
              << "this model and these options; deriving them in the background\n";
    SimilarityCore* core = server->core_.get();
    const Cancellation* stop = &server->stop_background_;
    server->deriver_ = std::thread([core, stop] {
      const auto start = std::chrono::steady_clock::now();
      const absl::StatusOr<int64_t> derived = core->DeriveMissingSpreads(*stop);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (derived.ok()) {
        std::cerr << "srn-server: derived and stored the spreads of " << *derived
                  << " subjects in " << seconds << " s\n";
      } else if (!absl::IsCancelled(derived.status())) {
        std::cerr << "srn-server: deriving the reference spreads stopped after " << seconds
                  << " s: " << derived.status().message()
                  << " (Verify derives them for itself; the next start tries again)\n";
      }
    });
  }
  return server;
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

void Server::Shutdown(double drain_seconds, double grace_seconds) {
  {
    MutexLock lock(&shutdown_mu_);
    if (shutting_down_ || grpc_server_ == nullptr) return;
    shutting_down_ = true;
  }
  // First tell health checkers, and keep serving while load balancers take notice.
  if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
    health->SetServingStatus(SimilarityService::kServiceName, false);
  }
  // The metrics endpoint takes up to two seconds to stop (its HTTP server polls with that
  // timeout), so it stops in the background; the destructor waits for it.
  metrics_stopper_ = std::thread([this] { exposer_.reset(); });
  if (drain_seconds > 0) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int64_t>(drain_seconds * 1000)));
  }
  // Then stop taking calls; those in flight get the grace period to finish. Wait() returns once
  // they have.
  service_->StartDraining();
  training_service_->StartDraining();
  registry_service_->StartDraining();
  stop_background_.Cancel();
  // Running jobs end as interrupted (they would be after a restart anyway).
  if (worker_ != nullptr) worker_->Stop();
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
  // The HTTP gateway's calls go through the in-process channel, which must see none after the
  // server shuts down (gRPC crashes creating one): they end first, within the same grace.
  if (http_ != nullptr) http_->StopCalls(deadline);
  grpc_server_->Shutdown(deadline);
}

}  // namespace srn
