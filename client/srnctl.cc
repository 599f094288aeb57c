// srnctl: a command-line client of srn-server (see proto/srn/v1/similarity.proto and
// client/README.md).
//
//   srnctl [flags] <command> [files...]
//
// Exit codes: 0 success; 1 the call failed (or health is not SERVING); 2 bad usage or an input
// file that cannot be read; 3 verify rejected the query and --fail_on_reject was given.
// Errors are printed to stderr as "srnctl: <CODE>: <message>".

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/flags_help.h"
#include "base/status_macros.h"
#include "client/durations.h"
#include "client/series_files.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "model/data/csv_dataset.h"
#include "model/train/train_config.h"
#include "srn/v1/similarity.grpc.pb.h"
#include "srn/v1/training.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "server address (host:port)");
ABSL_FLAG(bool, json, false, "print responses as JSON (proto field names) instead of text");
ABSL_FLAG(double, timeout, 30, "deadline of each call, in seconds");
ABSL_FLAG(bool, tls, false, "use TLS (implied by any other --tls_* flag)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle to verify the server with (default: system roots)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain, for servers that require one");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name to expect in the server certificate (default: the host)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token (default: $SRN_TOKEN); tokens are never taken from the "
          "command line");
ABSL_FLAG(std::string, format, "auto",
          "input files: csv, svc (SVC2004 signature), hwr (SigComp2009 signature) or auto (by "
          "content)");
ABSL_FLAG(std::string, subject, "", "subject id (enroll, verify, get, delete)");
ABSL_FLAG(std::string, mode, "add", "enroll: add to the subject's references, or replace them");
ABSL_FLAG(std::optional<double>, threshold, std::nullopt,
          "enroll: the subject's own threshold; verify, identify: the threshold of this call");
ABSL_FLAG(std::optional<double>, threshold_shift, std::nullopt,
          "enroll: derive the subject's threshold as its references' mean mutual similarity plus "
          "this shift (see docs/DEFAULT_MODEL.md)");
ABSL_FLAG(std::string, fusion, "",
          "verify, identify: max, mean or top-k-mean (default: the server's)");
ABSL_FLAG(int, top_k, 0, "identify: candidates to return (0: 5); verify: k of top-k-mean (0: 3)");
ABSL_FLAG(int, page_size, 0, "list: subjects per page (0: the server's default of 100)");
ABSL_FLAG(std::string, page_token, "", "list: continue from this page token");
ABSL_FLAG(bool, all, false,
          "list: fetch every page; jobs: every recorded job, not only active ones");
ABSL_FLAG(bool, fail_on_reject, false, "verify: exit with 3 when the query is rejected");
ABSL_FLAG(std::string, service, "", "health: the service to ask about (default: the whole server)");
// Training (admin). Zero or empty values leave the server's documented default.
ABSL_FLAG(std::string, dataset, "", "train: dataset path under the server's --data_dir");
ABSL_FLAG(std::string, dataset_format, "", "train: arabic-digit, arabic-voice, svc2004 or csv");
ABSL_FLAG(std::vector<std::string>, svc2004_users, {},
          "train: SVC2004 signers to load (e.g. 1,2,3)");
ABSL_FLAG(std::string, upload, "",
          "train: a local manifest (header 'path,label[,forgery]', series files relative to it) "
          "whose series are uploaded instead of naming a server-side dataset");
ABSL_FLAG(std::string, family, "",
          "train: srn-a (default); srn, sn, gru or lstm with -a, -l or -s; or logistic");
ABSL_FLAG(int, hidden, 0, "train: hidden units (default 64)");
ABSL_FLAG(int, layers, 0, "train: recurrent layers (default 1)");
ABSL_FLAG(int, window, 0, "train: frames per input window (default 1)");
ABSL_FLAG(bool, center_series, false, "train: centre each series on its own mean");
ABSL_FLAG(double, lr, 0, "train: learning rate (default 1e-3)");
ABSL_FLAG(double, dropout, 0, "train: dropout (default 0)");
ABSL_FLAG(int, batch_pairs, 0, "train: pairs per mini-batch (default 50)");
ABSL_FLAG(int, pairs_per_epoch, 0, "train: pairs per epoch (default 10 x series, at least 5000)");
ABSL_FLAG(int, epochs, 0, "train: maximum epochs (default 20)");
ABSL_FLAG(int, patience, 0, "train: epochs without improvement before stopping (default 5)");
ABSL_FLAG(double, hard_negatives, 0,
          "train: share of negatives chosen by hard-negative mining (default 0)");
ABSL_FLAG(
    double, weight_average, 0,
    "train: keep a moving average of the parameters with this decay per step (default 0: off)");
ABSL_FLAG(uint64_t, seed, 0, "train: random seed (default 1)");
ABSL_FLAG(std::string, validation, "", "train: auto (default), classes or examples");
ABSL_FLAG(std::string, activate, "manual", "train: manual, if-better or always");
ABSL_FLAG(std::string, description, "", "train: free text kept with the job");
ABSL_FLAG(bool, watch, false, "train: watch the job until it ends");

namespace srn {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRejected = 3;

constexpr char kUsage[] = R"(a command-line client of srn-server.

Usage: srnctl [flags] <command> [files...]

Commands:
  health                        exit 0 iff the server reports SERVING
  model-info                    the served model
  embed FILE...                 embeddings of each series
  similarity FILE_A FILE_B      similarity of two series
  enroll --subject=ID [--mode=add|replace] [--threshold=T | --threshold_shift=S] FILE...
  verify --subject=ID [--threshold=T] [--fusion=F] [--fail_on_reject] FILE
  identify [--top_k=K] [--threshold=T] [--fusion=F] FILE
  get --subject=ID              one enrolled subject
  list [--page_size=N] [--page_token=TOKEN] [--all]
  delete --subject=ID

Training and models (admin; the server needs --model_dir):
  train --dataset=PATH --dataset_format=F [--svc2004_users=1,2] [hyperparameters] [--watch]
  train --upload=MANIFEST [hyperparameters] [--watch]
                                queue a training job; hyperparameters: --family --hidden --layers
                                --window --center_series --lr --dropout --batch_pairs
                                --pairs_per_epoch --epochs --patience --hard_negatives
                                --weight_average --seed --validation
                                --activate=manual|if-better|always --description
  jobs [--all]                  active jobs (--all: every recorded job)
  watch JOB                     live progress until the job ends (exit 0 iff it succeeded)
  cancel JOB
  models                        model versions (* marks the active one)
  activate VERSION              switch the service to a version (re-embeds enrolled subjects)
  rollback                      back to the version active before the current one
  import-model FILE             register a weights file (.srnw) as the next version

Input files are CSV series (one frame per line, comma-separated values), SVC2004 signature
files (a sample count line, then "X Y T Button [Azimuth Altitude Pressure]" lines) or SigComp2009
.hwr signature files; --format chooses, by default by content. The bearer token comes from
--token_file or $SRN_TOKEN. Exit codes: 0 ok, 1 call failed or not SERVING, 2 bad usage or input,
3 rejected (--fail_on_reject).)";

int Fail(const absl::Status& status, int exit_code) {
  std::cerr << "srnctl: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return exit_code;
}

int UsageError(const std::string& message) {
  return Fail(absl::InvalidArgumentError(absl::StrCat(message, " (srnctl --help for usage)")),
              kExitUsage);
}

// gRPC and absl share the canonical code numbering.
int RpcFailed(const grpc::Status& status) {
  return Fail(
      absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message()),
      kExitFailed);
}

void Print(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) json = absl::StrCat("{\"error\": \"cannot print as JSON\"}");
  std::cout << json << "\n";
}

std::string FormatMillis(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

absl::StatusOr<std::string> ReadToken() {
  std::string token;
  std::string where;
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    SRN_ASSIGN_OR_RETURN(token, ReadFileToString(path));
    where = absl::StrCat("token file ", path);
  } else if (const char* env = std::getenv("SRN_TOKEN"); env != nullptr) {
    token = env;
    where = "$SRN_TOKEN";
  } else {
    return std::string();
  }
  absl::StripAsciiWhitespace(&token);
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(where, " is empty"));
  for (char c : token) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " must hold one token (printable characters, no spaces)"));
    }
  }
  return token;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials() {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const bool tls = absl::GetFlag(FLAGS_tls) || !ca.empty() || !cert.empty() || !key.empty() ||
                   !absl::GetFlag(FLAGS_tls_server_name).empty();
  if (!tls) return grpc::InsecureChannelCredentials();
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!ca.empty()) {
    SRN_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFileToString(ca));
  }
  if (!cert.empty()) {
    SRN_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFileToString(cert));
    SRN_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFileToString(key));
  }
  return grpc::SslCredentials(ssl);
}

// The connection and what every call carries. Not thread-safe (a CLI makes one call at a time).
class Client final {
 public:
  static absl::StatusOr<Client> Connect() {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                         ChannelCredentials());
    Client client;
    SRN_ASSIGN_OR_RETURN(client.token_, ReadToken());
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    if (const std::string name = absl::GetFlag(FLAGS_tls_server_name); !name.empty()) {
      args.SetSslTargetNameOverride(name);
    }
    client.channel_ = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), credentials, args);
    client.stub_ = v1::SimilarityService::NewStub(client.channel_);
    client.health_ = grpc::health::v1::Health::NewStub(client.channel_);
    client.training_ = v1::TrainingService::NewStub(client.channel_);
    client.registry_ = v1::ModelRegistry::NewStub(client.channel_);
    return client;
  }

  // Sets the deadline and the token on a fresh context.
  void Prepare(grpc::ClientContext* context) const {
    const double timeout = absl::GetFlag(FLAGS_timeout);
    if (timeout > 0) {
      context->set_deadline(std::chrono::system_clock::now() +
                            std::chrono::microseconds(static_cast<int64_t>(timeout * 1e6)));
    }
    if (!token_.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }

  v1::SimilarityService::Stub& stub() const { return *stub_; }
  grpc::health::v1::Health::Stub& health() const { return *health_; }
  v1::TrainingService::Stub& training() const { return *training_; }
  v1::ModelRegistry::Stub& registry() const { return *registry_; }

 private:
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SimilarityService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<v1::TrainingService::Stub> training_;
  std::unique_ptr<v1::ModelRegistry::Stub> registry_;
};

absl::StatusOr<std::vector<v1::SeriesInput>> ReadInputs(const std::vector<std::string>& files) {
  SRN_ASSIGN_OR_RETURN(const SeriesFormat format, ParseSeriesFormat(absl::GetFlag(FLAGS_format)));
  std::vector<v1::SeriesInput> inputs;
  for (const std::string& file : files) {
    SRN_ASSIGN_OR_RETURN(v1::SeriesInput input, ReadSeriesInput(file, format));
    inputs.push_back(std::move(input));
  }
  return inputs;
}

absl::StatusOr<v1::Fusion> FusionFromFlag() {
  const std::string name = absl::GetFlag(FLAGS_fusion);
  if (name.empty()) return v1::FUSION_UNSPECIFIED;
  if (name == "max") return v1::FUSION_MAX;
  if (name == "mean") return v1::FUSION_MEAN;
  if (name == "top-k-mean") return v1::FUSION_TOP_K_MEAN;
  return absl::InvalidArgumentError(
      absl::StrCat("--fusion must be max, mean or top-k-mean, not '", name, "'"));
}

std::string FusionName(v1::Fusion fusion) {
  switch (fusion) {
    case v1::FUSION_MAX:
      return "max";
    case v1::FUSION_MEAN:
      return "mean";
    case v1::FUSION_TOP_K_MEAN:
      return "top-k-mean";
    default:
      return "unspecified";
  }
}

std::string SubjectLine(const v1::Subject& s) {
  return absl::StrFormat("%s\t%d references\tthreshold %s\tupdated %s\tmodel %s", s.subject_id(),
                         s.reference_count(),
                         s.has_threshold() ? absl::StrFormat("%.6f", s.threshold()) : "default",
                         FormatMillis(s.updated_unix_ms()), s.model_id());
}

std::string Floats(const float* begin, const float* end) {
  return absl::StrJoin(begin, end, " ", [](std::string* out, float v) {
    absl::StrAppend(out, absl::StrFormat("%.6g", v));
  });
}

// Each command: the positional arguments after the command name; returns the exit code.

int Health(const Client& client, const std::vector<std::string>&) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.health().Check(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitFailed;
}

int ModelInfo(const Client& client, const std::vector<std::string>&) {
  v1::ModelInfo info;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
      !s.ok()) {
    return RpcFailed(s);
  }
  if (absl::GetFlag(FLAGS_json)) {
    Print(info);
    return kExitOk;
  }
  std::cout << "model_id: " << info.model_id() << "\n"
            << "family: " << info.family() << " (cell " << info.cell() << ", pooling "
            << info.pooling() << ", hidden " << info.hidden() << ", layers " << info.layers()
            << ")\n"
            << "embedding_dims: " << info.embedding_dims() << "\n"
            << "input: " << v1::ModelInfo::InputKind_Name(info.input_kind()) << ", "
            << info.input_features() << " features per frame, window " << info.window() << "\n"
            << "default_threshold: " << absl::StrFormat("%.6f", info.default_threshold())
            << (info.default_threshold_source().empty()
                    ? ""
                    : absl::StrCat(" (", info.default_threshold_source(), ")"))
            << "\n"
            << "default_fusion: " << FusionName(info.default_fusion()) << "\n"
            << "source: " << info.source() << "\n";
  const bool states = info.verification_score() == "states-dtw";
  if (!info.verification_score().empty()) {
    std::cout << "verification score: " << info.verification_score();
    if (states) std::cout << " (DTW over the per-frame states, " << info.states_dtw() << ")";
    std::cout << "\n";
  }
  if (states && !info.states_single_reference_spread().empty()) {
    std::cout << "one reference: states distance divided by the predicted spread "
              << info.states_single_reference_spread() << "\n";
  }
  if (info.has_dtw_fusion()) {
    const v1::DtwFusion& f = info.dtw_fusion();
    std::cout << absl::StrFormat(
        "verify fused with DTW: %g:%g,%g:%g (weight:offset, one reference, several)\n",
        f.weight_one(), f.offset_one(), f.weight_many(), f.offset_many());
    if (!f.single_reference_spread().empty()) {
      std::cout << "one reference: DTW distance divided by the predicted spread "
                << f.single_reference_spread() << "\n";
    }
  }
  if (info.has_threshold_calibration()) {
    const v1::ThresholdCalibration& t = info.threshold_calibration();
    for (const v1::ThresholdCalibration::Point& p : t.points()) {
      std::cout << absl::StrFormat("calibrated threshold %.6f for FAR <= %g (FAR %.4f, FRR %.4f)\n",
                                   p.threshold(), p.target_far(), p.far(), p.frr());
    }
    std::cout << absl::StrFormat(
        "calibrated equal-error point: threshold %.6f, EER %.4f\n"
        "calibrated on %s: %d genuine and %d impostor trials, %d reference(s) each\n",
        t.eer_threshold(), t.eer(), t.measured_on(), t.genuine_trials(), t.impostor_trials(),
        t.references());
  }
  if (!info.training_data().empty()) std::cout << "training_data: " << info.training_data() << "\n";
  if (info.trained_classes_size() > 0) {
    std::cout << "trained_classes (" << info.trained_classes_size()
              << "): " << absl::StrJoin(info.trained_classes(), ", ") << "\n";
  }
  if (!info.command().empty()) std::cout << "command: " << info.command() << "\n";
  if (!info.created().empty()) std::cout << "created: " << info.created() << "\n";
  std::cout << "seed: " << info.seed() << "\n";
  // Protobuf maps iterate in no particular order; sort for stable output.
  const std::map<std::string, std::string> hyper(info.hyperparameters().begin(),
                                                 info.hyperparameters().end());
  for (const auto& [name, value] : hyper)
    std::cout << "hyperparameter " << name << ": " << value << "\n";
  const std::map<std::string, double> metrics(info.metrics().begin(), info.metrics().end());
  for (const auto& [name, value] : metrics) std::cout << "metric " << name << ": " << value << "\n";
  return kExitOk;
}

int Embed(const Client& client, const std::vector<std::string>& files) {
  if (files.empty()) return UsageError("embed needs at least one input file");
  absl::StatusOr<std::vector<v1::SeriesInput>> inputs = ReadInputs(files);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  v1::EmbedRequest request;
  for (auto& input : *inputs) *request.add_series() = std::move(input);
  v1::EmbedResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().Embed(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
    return kExitOk;
  }
  for (int i = 0; i < response.embeddings_size(); ++i) {
    const auto& values = response.embeddings(i).values();
    std::cout << (i < static_cast<int>(files.size()) ? files[i] : "?") << ": "
              << Floats(values.data(), values.data() + values.size()) << "\n";
  }
  std::cout << "model: " << response.model_id() << "\n";
  return kExitOk;
}

int Similarity(const Client& client, const std::vector<std::string>& files) {
  if (files.size() != 2) return UsageError("similarity needs exactly two input files");
  absl::StatusOr<std::vector<v1::SeriesInput>> inputs = ReadInputs(files);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  v1::SimilarityRequest request;
  *request.mutable_a() = std::move((*inputs)[0]);
  *request.mutable_b() = std::move((*inputs)[1]);
  v1::SimilarityResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().Similarity(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << absl::StrFormat("similarity: %.6f\tmodel: %s\n", response.similarity(),
                                 response.model_id());
  }
  return kExitOk;
}

int Enroll(const Client& client, const std::vector<std::string>& files) {
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) return UsageError("enroll needs --subject");
  if (files.empty()) return UsageError("enroll needs at least one reference file");
  v1::EnrollRequest request;
  request.set_subject_id(subject);
  if (const std::string mode = absl::GetFlag(FLAGS_mode); mode == "add") {
    request.set_mode(v1::ENROLL_MODE_ADD);
  } else if (mode == "replace") {
    request.set_mode(v1::ENROLL_MODE_REPLACE);
  } else {
    return UsageError(absl::StrCat("--mode must be add or replace, not '", mode, "'"));
  }
  if (const std::optional<double> t = absl::GetFlag(FLAGS_threshold))
    request.set_threshold(static_cast<float>(*t));
  if (const std::optional<double> t = absl::GetFlag(FLAGS_threshold_shift)) {
    request.set_threshold_shift(static_cast<float>(*t));
  }
  absl::StatusOr<std::vector<v1::SeriesInput>> inputs = ReadInputs(files);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  for (auto& input : *inputs) *request.add_references() = std::move(input);
  v1::EnrollResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().Enroll(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << "enrolled " << SubjectLine(response.subject()) << "\n";
  }
  return kExitOk;
}

int Verify(const Client& client, const std::vector<std::string>& files) {
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) return UsageError("verify needs --subject");
  if (files.size() != 1) return UsageError("verify needs exactly one query file");
  absl::StatusOr<v1::Fusion> fusion = FusionFromFlag();
  if (!fusion.ok()) return Fail(fusion.status(), kExitUsage);
  absl::StatusOr<std::vector<v1::SeriesInput>> inputs = ReadInputs(files);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  v1::VerifyRequest request;
  request.set_subject_id(subject);
  *request.mutable_query() = std::move((*inputs)[0]);
  if (const std::optional<double> t = absl::GetFlag(FLAGS_threshold))
    request.set_threshold(static_cast<float>(*t));
  request.set_fusion(*fusion);
  request.set_top_k(absl::GetFlag(FLAGS_top_k));
  v1::VerifyResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().Verify(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << absl::StrFormat("%s %s: score %.6f %s threshold %.6f (fusion %s)\n",
                                 response.accepted() ? "ACCEPTED" : "REJECTED", subject,
                                 response.score(), response.accepted() ? ">=" : "<",
                                 response.threshold(), FusionName(response.fusion()))
              << "reference scores: "
              << Floats(response.reference_scores().data(),
                        response.reference_scores().data() + response.reference_scores_size())
              << "\n";
    if (!response.threshold_source().empty()) {
      std::cout << "threshold from " << response.threshold_source() << "\n";
    }
    if (response.has_srn_score() && !response.has_dtw_distance_ratio()) {
      // A states model with the DTW verifier's weight 0 for this many references.
      std::cout << absl::StrFormat("learned score %.6f\n", response.srn_score());
    } else if (response.has_srn_score()) {
      std::cout << absl::StrFormat("fused with DTW: srn score %.6f, dtw distance ratio %.4f\n",
                                   response.srn_score(), response.dtw_distance_ratio());
    }
  }
  return !response.accepted() && absl::GetFlag(FLAGS_fail_on_reject) ? kExitRejected : kExitOk;
}

int Identify(const Client& client, const std::vector<std::string>& files) {
  if (files.size() != 1) return UsageError("identify needs exactly one query file");
  absl::StatusOr<v1::Fusion> fusion = FusionFromFlag();
  if (!fusion.ok()) return Fail(fusion.status(), kExitUsage);
  absl::StatusOr<std::vector<v1::SeriesInput>> inputs = ReadInputs(files);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  v1::IdentifyRequest request;
  *request.mutable_query() = std::move((*inputs)[0]);
  request.set_top_k(absl::GetFlag(FLAGS_top_k));
  if (const std::optional<double> t = absl::GetFlag(FLAGS_threshold))
    request.set_threshold(static_cast<float>(*t));
  request.set_fusion(*fusion);
  v1::IdentifyResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().Identify(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
    return kExitOk;
  }
  if (response.candidates().empty()) std::cout << "no candidates\n";
  for (int i = 0; i < response.candidates_size(); ++i) {
    std::cout << absl::StrFormat("%d\t%s\t%.6f\n", i + 1, response.candidates(i).subject_id(),
                                 response.candidates(i).score());
  }
  return kExitOk;
}

int Get(const Client& client, const std::vector<std::string>& files) {
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) return UsageError("get needs --subject");
  if (!files.empty()) return UsageError("get takes no files");
  v1::GetSubjectRequest request;
  request.set_subject_id(subject);
  v1::Subject response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().GetSubject(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << SubjectLine(response) << "\tcreated " << FormatMillis(response.created_unix_ms())
              << "\n";
  }
  return kExitOk;
}

int List(const Client& client, const std::vector<std::string>& files) {
  if (!files.empty()) return UsageError("list takes no files");
  const bool all = absl::GetFlag(FLAGS_all);
  v1::ListSubjectsRequest request;
  request.set_page_size(absl::GetFlag(FLAGS_page_size));
  request.set_page_token(absl::GetFlag(FLAGS_page_token));
  v1::ListSubjectsResponse merged;
  while (true) {
    v1::ListSubjectsResponse page;
    grpc::ClientContext context;
    client.Prepare(&context);
    if (grpc::Status s = client.stub().ListSubjects(&context, request, &page); !s.ok())
      return RpcFailed(s);
    for (auto& subject : *page.mutable_subjects()) *merged.add_subjects() = std::move(subject);
    merged.set_next_page_token(page.next_page_token());
    if (!all || page.next_page_token().empty()) break;
    if (page.next_page_token() == request.page_token()) {
      return Fail(absl::InternalError("the server returned the same page token twice"),
                  kExitFailed);
    }
    request.set_page_token(page.next_page_token());
  }
  if (absl::GetFlag(FLAGS_json)) {
    Print(merged);
    return kExitOk;
  }
  if (merged.subjects().empty()) std::cout << "no subjects\n";
  for (const v1::Subject& subject : merged.subjects()) std::cout << SubjectLine(subject) << "\n";
  if (!merged.next_page_token().empty())
    std::cout << "next page: --page_token=" << merged.next_page_token() << "\n";
  return kExitOk;
}

int Delete(const Client& client, const std::vector<std::string>& files) {
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) return UsageError("delete needs --subject");
  if (!files.empty()) return UsageError("delete takes no files");
  v1::DeleteSubjectRequest request;
  request.set_subject_id(subject);
  v1::DeleteSubjectResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.stub().DeleteSubject(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << "deleted " << subject << "\n";
  }
  return kExitOk;
}

// --- Training and models ---

std::string JobStateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  return absl::AsciiStrToLower(absl::StripPrefix(name, "JOB_STATE_"));
}

std::string JobLine(const v1::Job& job) {
  std::string line = absl::StrFormat("%s\t%s\t%s\t%s", job.job_id(), JobStateName(job.state()),
                                     job.spec().family(), job.dataset());
  const v1::JobProgress& p = job.progress();
  if (job.state() == v1::JOB_STATE_RUNNING) {
    absl::StrAppend(&line, absl::StrFormat("\tepoch %d/%d, %.0f%%", p.epoch(), p.max_epochs(),
                                           100 * p.fraction()));
  }
  if (p.best_val_auc() > 0)
    absl::StrAppend(&line, absl::StrFormat("\tbest val_auc %.4f", p.best_val_auc()));
  if (job.model_version() > 0) {
    absl::StrAppend(&line, "\tversion ", job.model_version(),
                    job.activated() ? " (activated)" : "");
  }
  if (!job.reason().empty()) absl::StrAppend(&line, "\treason: ", job.reason());
  if (!job.activation_error().empty())
    absl::StrAppend(&line, "\tactivation failed: ", job.activation_error());
  return line;
}

// The flag that sets a TrainSettings field, for errors.
std::string TrainFlagName(absl::string_view field) {
  if (field == "learning_rate") return "--lr";
  if (field == "max_epochs") return "--epochs";
  return absl::StrCat("--", field);
}

// The training spec the flags ask for, checked here as the server checks it
// (CompleteTrainSettings), so that a bad value is a usage error naming its flag. Zero and empty
// values are sent as they are: the server fills its documented defaults.
absl::StatusOr<v1::TrainingSpec> SpecFromFlags() {
  TrainSettings settings;
  settings.family = absl::GetFlag(FLAGS_family);
  settings.hidden = absl::GetFlag(FLAGS_hidden);
  settings.layers = absl::GetFlag(FLAGS_layers);
  settings.window = absl::GetFlag(FLAGS_window);
  settings.center_series = absl::GetFlag(FLAGS_center_series);
  settings.validation = absl::GetFlag(FLAGS_validation);
  settings.learning_rate = absl::GetFlag(FLAGS_lr);
  settings.dropout = absl::GetFlag(FLAGS_dropout);
  settings.batch_pairs = absl::GetFlag(FLAGS_batch_pairs);
  settings.pairs_per_epoch = absl::GetFlag(FLAGS_pairs_per_epoch);
  settings.max_epochs = absl::GetFlag(FLAGS_epochs);
  settings.patience = absl::GetFlag(FLAGS_patience);
  settings.lr_decay = 0;  // no flag: the server's default
  settings.hard_negatives = absl::GetFlag(FLAGS_hard_negatives);
  settings.weight_average = absl::GetFlag(FLAGS_weight_average);
  settings.seed = absl::GetFlag(FLAGS_seed);
  SRN_RETURN_IF_ERROR(
      CompleteTrainSettings(settings, ZeroMeans::kDefault, TrainFlagName).status());
  v1::TrainingSpec spec;
  spec.set_family(settings.family);
  spec.set_hidden(settings.hidden);
  spec.set_layers(settings.layers);
  spec.set_window(settings.window);
  spec.set_center_series(settings.center_series);
  spec.set_validation(settings.validation);
  spec.set_learning_rate(settings.learning_rate);
  spec.set_dropout(settings.dropout);
  spec.set_batch_pairs(settings.batch_pairs);
  spec.set_pairs_per_epoch(settings.pairs_per_epoch);
  spec.set_max_epochs(settings.max_epochs);
  spec.set_patience(settings.patience);
  spec.set_hard_negatives(settings.hard_negatives);
  spec.set_weight_average(settings.weight_average);
  spec.set_seed(settings.seed);
  spec.set_description(absl::GetFlag(FLAGS_description));
  const std::string activate = absl::GetFlag(FLAGS_activate);
  if (activate == "manual") {
    spec.set_activation(v1::ACTIVATION_POLICY_MANUAL);
  } else if (activate == "if-better") {
    spec.set_activation(v1::ACTIVATION_POLICY_IF_BETTER);
  } else if (activate == "always") {
    spec.set_activation(v1::ACTIVATION_POLICY_ALWAYS);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--activate must be manual, if-better or always, not '", activate, "'"));
  }
  return spec;
}

// Reads a local manifest (ReadCsvManifest: "path,label[,forgery]") and the series it names, each
// in --format.
absl::StatusOr<std::vector<v1::LabelledSeries>> ReadUploadManifest(const std::string& manifest) {
  SRN_ASSIGN_OR_RETURN(const SeriesFormat format, ParseSeriesFormat(absl::GetFlag(FLAGS_format)));
  SRN_ASSIGN_OR_RETURN(const std::vector<CsvManifestRow> rows, ReadCsvManifest(manifest));
  std::vector<v1::LabelledSeries> out;
  for (const CsvManifestRow& row : rows) {
    absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(row.path, format);
    if (!input.ok()) {
      return absl::Status(input.status().code(),
                          absl::StrCat(manifest, ":", row.line, ": ", input.status().message()));
    }
    v1::LabelledSeries series;
    *series.mutable_series() = *std::move(input);
    series.set_label(row.label);
    series.set_forgery(row.forgery);
    out.push_back(std::move(series));
  }
  return out;
}

int WatchJob(const Client& client, const std::string& job_id);

int Train(const Client& client, const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("train takes no positional arguments");
  absl::StatusOr<v1::TrainingSpec> spec = SpecFromFlags();
  if (!spec.ok()) return Fail(spec.status(), kExitUsage);
  const std::string upload = absl::GetFlag(FLAGS_upload);
  const std::string dataset = absl::GetFlag(FLAGS_dataset);
  if (upload.empty() == dataset.empty())
    return UsageError("train needs exactly one of --dataset and --upload");
  v1::Job job;
  if (!upload.empty()) {
    absl::StatusOr<std::vector<v1::LabelledSeries>> series = ReadUploadManifest(upload);
    if (!series.ok()) return Fail(series.status(), kExitUsage);
    grpc::ClientContext context;
    client.Prepare(&context);
    std::unique_ptr<grpc::ClientWriter<v1::UploadAndTrainRequest>> writer =
        client.training().UploadAndTrain(&context, &job);
    v1::UploadAndTrainRequest message;
    *message.mutable_spec() = *spec;
    // Chunks of 64 series keep each message far below the size limit.
    for (size_t i = 0; i < series->size(); ++i) {
      *message.add_series() = std::move((*series)[i]);
      if (message.series_size() == 64 || i + 1 == series->size()) {
        if (!writer->Write(message)) break;
        message.Clear();
      }
    }
    writer->WritesDone();
    if (grpc::Status s = writer->Finish(); !s.ok()) return RpcFailed(s);
  } else {
    v1::StartJobRequest request;
    *request.mutable_spec() = *spec;
    request.mutable_dataset()->set_path(dataset);
    const std::string format = absl::GetFlag(FLAGS_dataset_format);
    if (format == "arabic-digit" || format == "arabic-voice") {
      request.mutable_dataset()->set_format(v1::DATASET_FORMAT_ARABIC_DIGIT);
      request.mutable_dataset()->set_arabic_label_speaker(format == "arabic-voice");
    } else if (format == "svc2004") {
      request.mutable_dataset()->set_format(v1::DATASET_FORMAT_SVC2004);
    } else if (format == "csv") {
      request.mutable_dataset()->set_format(v1::DATASET_FORMAT_CSV);
    } else {
      return UsageError("--dataset_format must be arabic-digit, arabic-voice, svc2004 or csv");
    }
    for (const std::string& user : absl::GetFlag(FLAGS_svc2004_users)) {
      int n = 0;
      if (!absl::SimpleAtoi(user, &n))
        return UsageError(absl::StrCat("--svc2004_users: '", user, "' is not a number"));
      request.mutable_dataset()->add_svc2004_users(n);
    }
    grpc::ClientContext context;
    client.Prepare(&context);
    if (grpc::Status s = client.training().StartJob(&context, request, &job); !s.ok())
      return RpcFailed(s);
  }
  if (absl::GetFlag(FLAGS_json)) {
    Print(job);
  } else {
    std::cout << "queued " << job.job_id() << " (" << job.dataset() << ")\n";
  }
  if (absl::GetFlag(FLAGS_watch)) return WatchJob(client, job.job_id());
  return kExitOk;
}

int Jobs(const Client& client, const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("jobs takes no positional arguments");
  v1::ListJobsRequest request;
  request.set_active_only(!absl::GetFlag(FLAGS_all));
  v1::ListJobsResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.training().ListJobs(&context, request, &response); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
    return kExitOk;
  }
  if (response.jobs().empty())
    std::cout << (request.active_only() ? "no active jobs\n" : "no jobs\n");
  for (const v1::Job& job : response.jobs()) std::cout << JobLine(job) << "\n";
  return kExitOk;
}

std::string ProgressLine(const v1::Job& job) {
  const v1::JobProgress& p = job.progress();
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * std::min(1.0, std::max(0.0, p.fraction())));
  return absl::StrFormat(
      "%s %s [%s%s] %3.0f%% epoch %d/%d step %d/%d loss %.4f val_auc %.4f lr %.2e elapsed %s eta "
      "%s",
      job.job_id(), JobStateName(job.state()), std::string(filled, '='),
      std::string(kWidth - filled, ' '), 100 * p.fraction(), p.epoch(), p.max_epochs(), p.step(),
      p.steps_per_epoch(), p.loss(), p.val_auc(), p.learning_rate(),
      FormatSeconds(p.elapsed_seconds()),
      // No step done yet: no estimate (the server reports 0).
      p.fraction() > 0 ? FormatSeconds(p.estimated_remaining_seconds()) : "-");
}

int WatchJob(const Client& client, const std::string& job_id) {
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  grpc::ClientContext context;
  client.Prepare(&context);
  context.set_deadline(
      std::chrono::system_clock::time_point::max());  // jobs take as long as they take
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader =
      client.training().WatchJob(&context, request);
  const bool tty = isatty(STDOUT_FILENO) != 0 && !absl::GetFlag(FLAGS_json);
  v1::Job job;
  v1::Job last;
  bool drawn = false;
  while (reader->Read(&job)) {
    if (absl::GetFlag(FLAGS_json)) {
      Print(job);
    } else if (tty) {
      std::cout << "\r" << ProgressLine(job) << "\x1b[K" << std::flush;
      drawn = true;
    } else if (job.state() != last.state() || job.progress().epoch() != last.progress().epoch() ||
               job.progress().val_auc() != last.progress().val_auc()) {
      std::cout << ProgressLine(job) << "\n";  // logs get one line per epoch, not per update
    }
    last = job;
  }
  if (drawn) std::cout << "\n";
  if (grpc::Status s = reader->Finish(); !s.ok()) return RpcFailed(s);
  if (!absl::GetFlag(FLAGS_json)) std::cout << JobLine(last) << "\n";
  return last.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitFailed;
}

int Watch(const Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("watch needs one job id");
  return WatchJob(client, args[0]);
}

int Cancel(const Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("cancel needs one job id");
  v1::CancelJobRequest request;
  request.set_job_id(args[0]);
  v1::Job job;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.training().CancelJob(&context, request, &job); !s.ok())
    return RpcFailed(s);
  if (absl::GetFlag(FLAGS_json)) {
    Print(job);
  } else {
    std::cout << (job.state() == v1::JOB_STATE_RUNNING ? "cancelling " : "") << JobLine(job)
              << "\n";
  }
  return kExitOk;
}

int Models(const Client& client, const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("models takes no positional arguments");
  v1::ListModelsResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.registry().ListModels(&context, v1::ListModelsRequest(), &response);
      !s.ok()) {
    return RpcFailed(s);
  }
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
    return kExitOk;
  }
  for (const v1::ModelVersion& m : response.models()) {
    std::cout << absl::StrFormat("%s v%d\t%s\t%s\t%s %d\tval_auc %.4f\t%s\t%s\n",
                                 m.active() ? "*" : " ", m.version(), m.model_id(), m.family(),
                                 m.signature() ? "signature" : "frames", m.input_features(),
                                 m.val_auc(), m.origin(), m.created());
    if (!m.error().empty()) std::cout << "    unusable: " << m.error() << "\n";
    if (m.served() && !m.active()) {
      std::cout << "    served instead of the active version, which did not load at start-up\n";
    }
  }
  return kExitOk;
}

int PrintActivation(const v1::ActivateModelResponse& response) {
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << absl::StrFormat("active: v%d %s (%s); re-embedded %d subjects in %.3fs\n",
                                 response.model().version(), response.model().model_id(),
                                 response.model().family(), response.reembedded_subjects(),
                                 response.reembed_seconds());
  }
  return kExitOk;
}

int Activate(const Client& client, const std::vector<std::string>& args) {
  int64_t version = 0;
  if (args.size() != 1 || !absl::SimpleAtoi(absl::StripPrefix(args[0], "v"), &version)) {
    return UsageError("activate needs one version number");
  }
  v1::ActivateModelRequest request;
  request.set_version(version);
  v1::ActivateModelResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.registry().ActivateModel(&context, request, &response); !s.ok()) {
    return RpcFailed(s);
  }
  return PrintActivation(response);
}

int Rollback(const Client& client, const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("rollback takes no arguments");
  v1::ActivateModelResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s =
          client.registry().RollbackModel(&context, v1::RollbackModelRequest(), &response);
      !s.ok()) {
    return RpcFailed(s);
  }
  return PrintActivation(response);
}

int ImportModel(const Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("import-model needs one weights file (.srnw)");
  absl::StatusOr<std::string> weights = ReadFileToString(args[0]);
  if (!weights.ok()) {
    std::cerr << "srnctl: cannot read " << args[0] << ": " << weights.status().message() << "\n";
    return kExitUsage;
  }
  v1::ImportModelRequest request;
  request.set_weights(*std::move(weights));
  request.set_origin(absl::StrCat("imported ", args[0]));
  v1::ModelVersion response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (grpc::Status s = client.registry().ImportModel(&context, request, &response); !s.ok()) {
    return RpcFailed(s);
  }
  if (absl::GetFlag(FLAGS_json)) {
    Print(response);
  } else {
    std::cout << absl::StrFormat("registered v%d %s (%s); serve it with: srnctl activate %d\n",
                                 response.version(), response.model_id(), response.family(),
                                 response.version());
  }
  return kExitOk;
}

struct Command {
  const char* name;
  int (*run)(const Client&, const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"health", Health},     {"model-info", ModelInfo}, {"embed", Embed}, {"similarity", Similarity},
    {"enroll", Enroll},     {"verify", Verify},        {"identify", Identify}, {"get", Get},
    {"list", List},         {"delete", Delete},
    {"train", Train},       {"jobs", Jobs},
    {"watch", Watch},       {"cancel", Cancel},
    {"models", Models},     {"activate", Activate},
    {"rollback", Rollback}, {"import-model", ImportModel},
};

int Main(int argc, char** argv) {
  srn::ShowOwnFlagsInHelp();
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = srn::ParseCommandLineWithHelp(argc, argv);
  if (positional.size() < 2) {
    std::cerr << "srnctl: " << kUsage << "\n";
    return kExitUsage;
  }
  const std::string name = positional[1];
  const std::vector<std::string> files(positional.begin() + 2, positional.end());
  for (const Command& command : kCommands) {
    if (name != command.name) continue;
    absl::StatusOr<Client> client = Client::Connect();
    if (!client.ok()) return Fail(client.status(), kExitUsage);
    return command.run(*client, files);
  }
  return UsageError(absl::StrCat("unknown command '", name, "'"));
}

}  // namespace
}  // namespace srn

int main(int argc, char** argv) { return srn::Main(argc, argv); }
