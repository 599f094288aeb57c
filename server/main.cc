// srn-server: serves a trained model over gRPC (see proto/srn/v1/similarity.proto).
// With no arguments it serves the bundled default signature model on 127.0.0.1:50051, with
// Prometheus metrics on 127.0.0.1:9464/metrics and enrolled subjects in ./srn-store.db.

#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/flags_help.h"
#include "model/nn/parallel.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address (host:port; port 0 picks one)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics address (empty: off)");
ABSL_FLAG(std::string, http_listen, "",
          "host:port of the HTTP/JSON API and the signature pad page at / (empty: none)");
ABSL_FLAG(std::string, weights, "", "weights file to serve (default: the bundled signature model)");
ABSL_FLAG(std::string, store, "srn-store.db",
          "where enrolled subjects are stored: an SQLite file, a PostgreSQL database shared by "
          "several servers (postgresql://user@host:port/db, a libpq URI; the password in "
          "$PGPASSWORD or ~/.pgpass), or ':memory:' (keeps nothing)");
ABSL_FLAG(double, change_log_retention_seconds, 3600,
          "PostgreSQL store: how long the change log keeps each write for the servers following "
          "it; a server cut off from the database for longer reads the whole store again");
ABSL_FLAG(std::optional<double>, default_threshold, std::nullopt,
          "accept a verification whose score reaches this, for every model served (default: "
          "the served model's calibrated threshold, recorded by srn-eval --calibrate; 0.5 for a "
          "model whose Verify score is calibrated, like the bundled one, or has no calibration)");
ABSL_FLAG(std::string, dtw_fusion, "",
          "signature models: fuse Verify's SRN score with the DTW signature verifier, calibrated "
          "as W1:O1,WN:ON (weight and offset with one reference, then with several; srn-eval "
          "--protocol=svc2004-cv --fuse_dtw prints them), or off (default: the calibration "
          "recorded in the served model's weights file)");
ABSL_FLAG(std::string, dtw_spread, "",
          "signature models with the DTW fusion: with one reference, divide the DTW distance by "
          "the spread predicted from the reference's shape, by the model c0,c1,c2,c3,lo,hi that "
          "srn-eval --protocol=svc2004-cv prints; off: do not (default: the spread model "
          "recorded in the served model's weights file)");
ABSL_FLAG(std::string, default_fusion, "mean",
          "how reference scores fuse by default: max, mean or top-k-mean");
ABSL_FLAG(int, fusion_k, 3, "k of top-k-mean fusion when a request does not say");
ABSL_FLAG(int, max_series_length, 20000,
          "frames per series (pen samples, and the frames they resample to)");
ABSL_FLAG(int, max_batch, 256, "series per Embed call");
ABSL_FLAG(int, max_references, 64, "references per subject");
ABSL_FLAG(int, max_message_bytes, 16 << 20, "largest request or response message");
ABSL_FLAG(int, threads, 0, "threads for batch embedding and Identify scans (0: all cores)");
ABSL_FLAG(int64_t, max_dtw_cells_per_call, 300'000'000,
          "DTW cells one Verify (query against the references) or Enroll (the references' mutual "
          "distances) may compute; calls above are refused with RESOURCE_EXHAUSTED (3e8: about "
          "a second of one core)");
ABSL_FLAG(int, identify_rerank, 50,
          "for a model that verifies by its per-frame states: Identify ranks this many subjects, "
          "those nearest by pooled-embedding distance (at least top_k), by Verify's score, so that "
          "scores and thresholds mean what they mean for Verify (each costs about a Verify); 0: "
          "rank by the pooled similarity alone");
ABSL_FLAG(int, prepared_cache_mb, 1024,
          "memory for the references prepared for Verify (DTW series and per-frame states) of the "
          "subjects verified most recently; others are prepared again when verified");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: require client certificates it signed");
ABSL_FLAG(std::string, tokens_file, "",
          "file of '<role> <token>' lines (roles reader, admin); $SRN_ADMIN_TOKEN and "
          "$SRN_READER_TOKEN add more. Tokens are never taken from the command line");
ABSL_FLAG(bool, allow_unauthenticated_remote, false,
          "allow a non-loopback listen address without tokens");
ABSL_FLAG(bool, metrics_public, false,
          "allow a non-loopback --metrics_listen address without tokens (the metrics endpoint "
          "never asks for a token; without tokens a non-loopback one is refused)");
ABSL_FLAG(std::string, model_dir, "",
          "model registry directory (versions v<N>.srnw, MANIFEST): enables training and model "
          "management (srn.v1.TrainingService, srn.v1.ModelRegistry); its active version is served "
          "and --weights only seeds an empty registry");
ABSL_FLAG(
    std::string, data_dir, "",
    "datasets training jobs may read (job paths must resolve inside it); empty: uploads only");
ABSL_FLAG(int, training_threads, 1, "compute threads of each running training job");
ABSL_FLAG(int, max_training_jobs, 1, "training jobs that run at once; further jobs queue");
ABSL_FLAG(
    bool, training_sched_idle, true,
    "run training threads in Linux's SCHED_IDLE class too (on top of nice +10): they get only "
    "cycles that serving and everything else leave idle (false: nice +10 only)");
ABSL_FLAG(double, model_poll_seconds, 30,
          "how often to look for weights files dropped into --model_dir (0: never)");
ABSL_FLAG(int, max_upload_series, 20000, "series per uploaded training set");
ABSL_FLAG(std::string, role, "server",
          "server: serve, and (on a SQLite store with --model_dir) run training jobs in this "
          "process; trainer (PostgreSQL store only): also run the training jobs any server on the "
          "store recorded");
ABSL_FLAG(std::string, trainer_name, "",
          "a trainer's name in the jobs it runs (default: <host name>-<process id>)");
ABSL_FLAG(double, job_heartbeat_seconds, 5,
          "a trainer records each job it runs this often (its heartbeat)");
ABSL_FLAG(double, job_heartbeat_timeout_seconds, 60,
          "a trainer's running job ends as interrupted when it sent no heartbeat for this long");
ABSL_FLAG(double, drain_seconds, 5,
          "on SIGTERM, seconds to report NOT_SERVING while still serving");
ABSL_FLAG(double, grace_seconds, 10, "then, seconds for calls in flight to finish");

int main(int argc, char** argv) {
  srn::ShowOwnFlagsInHelp();
  absl::SetProgramUsageMessage("serves Siamese Recurrent Network similarity over gRPC");
  // Debian builds Abseil with deadlock detection on, which puts every lock through a global
  // graph; the thread-safety annotations and the TSan build in CI do that job instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  srn::ParseCommandLineWithHelp(argc, argv);

  srn::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_listen);
  options.http_address = absl::GetFlag(FLAGS_http_listen);
  options.weights_path = absl::GetFlag(FLAGS_weights);
  options.store_path = absl::GetFlag(FLAGS_store);
  options.postgres.change_retention_seconds = absl::GetFlag(FLAGS_change_log_retention_seconds);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.allow_unauthenticated_remote = absl::GetFlag(FLAGS_allow_unauthenticated_remote);
  options.metrics_public = absl::GetFlag(FLAGS_metrics_public);
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.model_poll_seconds = absl::GetFlag(FLAGS_model_poll_seconds);
  options.training.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.training.threads = absl::GetFlag(FLAGS_training_threads);
  options.training.max_jobs = absl::GetFlag(FLAGS_max_training_jobs);
  options.training.max_upload_series = absl::GetFlag(FLAGS_max_upload_series);
  options.training.sched_idle = absl::GetFlag(FLAGS_training_sched_idle);
  options.training.heartbeat_seconds = absl::GetFlag(FLAGS_job_heartbeat_seconds);
  options.training.heartbeat_timeout_seconds = absl::GetFlag(FLAGS_job_heartbeat_timeout_seconds);
  options.trainer_name = absl::GetFlag(FLAGS_trainer_name);
  const std::string role = absl::GetFlag(FLAGS_role);
  if (role != "server" && role != "trainer") {
    std::cerr << "srn-server: --role must be server or trainer, not '" << role << "'\n";
    return 2;
  }
  options.trainer = role == "trainer";
  if (options.training.threads < 1 || options.training.max_jobs < 1 ||
      options.training.max_upload_series < 1 || !(options.model_poll_seconds >= 0) ||
      !(options.training.heartbeat_seconds > 0) ||
      !(options.training.heartbeat_timeout_seconds > options.training.heartbeat_seconds)) {
    std::cerr << "srn-server: need --training_threads >= 1, --max_training_jobs >= 1, "
                 "--max_upload_series >= 1, --model_poll_seconds >= 0, "
                 "--job_heartbeat_seconds > 0 and --job_heartbeat_timeout_seconds > "
                 "--job_heartbeat_seconds\n";
    return 2;
  }
  srn::CoreOptions& core = options.core;
  srn::CalibrationOverride& calibration = options.calibration;
  const std::string dtw_fusion = absl::GetFlag(FLAGS_dtw_fusion);
  if (dtw_fusion == "off") {
    calibration.dtw_fusion_off = true;
  } else if (!dtw_fusion.empty()) {
    absl::StatusOr<srn::DtwFusionCalibration> parsed = srn::ParseDtwFusionCalibration(dtw_fusion);
    if (!parsed.ok()) {
      std::cerr << "srn-server: --dtw_fusion: " << parsed.status().message() << "\n";
      return 2;
    }
    calibration.dtw_fusion = *parsed;
  }
  const std::string dtw_spread = absl::GetFlag(FLAGS_dtw_spread);
  if (!dtw_spread.empty()) {
    calibration.dtw_spread_set = true;
    if (dtw_spread != "off") {
      absl::StatusOr<srn::DtwSpreadModel> spread = srn::ParseDtwSpreadModel(dtw_spread);
      if (!spread.ok()) {
        std::cerr << "srn-server: --dtw_spread: " << spread.status().message() << "\n";
        return 2;
      }
      calibration.dtw_spread = *spread;
    }
  }
  if (const std::optional<double> t = absl::GetFlag(FLAGS_default_threshold); t.has_value()) {
    if (!(*t >= 0 && *t <= 1)) {
      std::cerr << "srn-server: --default_threshold must be a similarity in [0, 1], got " << *t
                << " (or leave it out to use the served model's calibrated threshold)\n";
      return 2;
    }
    core.default_threshold = static_cast<float>(*t);
  }
  core.default_fusion_k = absl::GetFlag(FLAGS_fusion_k);
  core.threads = absl::GetFlag(FLAGS_threads);
  const int prepared_cache_mb = absl::GetFlag(FLAGS_prepared_cache_mb);
  if (prepared_cache_mb < 0) {
    std::cerr << "srn-server: --prepared_cache_mb must not be negative (0 keeps nothing)\n";
    return 2;
  }
  core.prepared_cache_bytes = static_cast<size_t>(prepared_cache_mb) << 20;
  core.max_dtw_cells = absl::GetFlag(FLAGS_max_dtw_cells_per_call);
  if (core.max_dtw_cells < 1) {
    std::cerr << "srn-server: --max_dtw_cells_per_call must be positive\n";
    return 2;
  }
  core.identify_rerank = absl::GetFlag(FLAGS_identify_rerank);
  if (core.identify_rerank < 0 || core.identify_rerank > 1000) {
    std::cerr << "srn-server: --identify_rerank must be in [0, 1000] (0 turns re-ranking off), "
              << "got " << core.identify_rerank << "\n";
    return 2;
  }
  core.limits.max_series_length = absl::GetFlag(FLAGS_max_series_length);
  core.limits.max_batch = absl::GetFlag(FLAGS_max_batch);
  core.limits.max_references = absl::GetFlag(FLAGS_max_references);
  options.training.limits = core.limits;
  const std::string fusion = absl::GetFlag(FLAGS_default_fusion);
  if (fusion == "max") {
    core.default_fusion = srn::ReferenceFusion::kMax;
  } else if (fusion == "mean") {
    core.default_fusion = srn::ReferenceFusion::kMean;
  } else if (fusion == "top-k-mean") {
    core.default_fusion = srn::ReferenceFusion::kTopKMean;
  } else {
    std::cerr << "srn-server: --default_fusion must be max, mean or top-k-mean\n";
    return 2;
  }
  if (core.default_fusion_k < 1 || core.limits.max_series_length < 1 || core.limits.max_batch < 1 ||
      core.limits.max_references < 1) {
    std::cerr << "srn-server: need positive --fusion_k, --max_series_length, --max_batch and "
                 "--max_references\n";
    return 2;
  }

  // Signals are taken by a waiting thread, not a handler, so shutdown can do real work.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<srn::Server>> server = srn::Server::BuildAndStart(options);
  if (!server.ok()) {
    std::cerr << "srn-server: " << server.status().message() << "\n";
    return 1;
  }
  const auto info = (*server)->core().GetModelInfo();
  std::cerr << absl::StrFormat(
      "srn-server: serving model %s (%s) from %s on port %d; metrics on port %d; %d subjects%s\n",
      info->model_id(), info->family(), info->source(), (*server)->port(),
      (*server)->metrics_port(), (*server)->core().enrolled_subjects(),
      (*server)->http_port() > 0 ? absl::StrCat("; HTTP on port ", (*server)->http_port()) : "");

  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "srn-server: signal " << signal << ", draining\n";
    (*server)->Shutdown(absl::GetFlag(FLAGS_drain_seconds), absl::GetFlag(FLAGS_grace_seconds));
  });
  (*server)->Wait();
  waiter.join();
  std::cerr << "srn-server: stopped\n";
  server->reset();  // waits for the metrics endpoint to close
  return 0;
}
