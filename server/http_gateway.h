#ifndef SRN_SERVER_HTTP_GATEWAY_H_
#define SRN_SERVER_HTTP_GATEWAY_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "base/task_threads.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "server/server_metrics.h"

struct mg_connection;
struct mg_context;

namespace srn {

struct HttpGatewayOptions {
  std::string listen_address;  // host:port; port 0 picks a free port
  int64_t max_body_bytes = 64 << 20;
  int threads = 16;                      // requests served at once
  double request_timeout_seconds = 30;   // to send the request's headers and body
  double default_deadline_seconds = 30;  // of a call without X-Server-Timeout
};

// The HTTP/JSON face of the similarity service, beside gRPC, as Google's HTTP mapping for gRPC
// (google.api.http) lays it out:
//
//   POST   /v1:embed                         Embed           (body: EmbedRequest)
//   POST   /v1:similarity                    Similarity      (body: SimilarityRequest)
//   POST   /v1/subjects/{subject_id}:enroll  Enroll          (body: EnrollRequest)
//   POST   /v1/subjects/{subject_id}:verify  Verify          (body: VerifyRequest)
//   POST   /v1/subjects:identify             Identify        (body: IdentifyRequest)
//   GET    /v1/subjects/{subject_id}         GetSubject
//   GET    /v1/subjects?pageSize=&pageToken= ListSubjects
//   DELETE /v1/subjects/{subject_id}         DeleteSubject
//   GET    /v1/model                         GetModelInfo
//
// Bodies are the proto3 JSON mapping of the messages (protobuf's own JSON utilities); an error
// is the HTTP status of its gRPC code with {"error": {"code", "status", "message"}}. Each call
// is made on the server's in-process channel, so it passes the same edge as a gRPC call (start-up
// and draining, roles and tokens from the Authorization header, message limits, deadlines,
// metrics) and gets the same answer. GET / and the files of web/ (compiled in) are the signature
// pad page. civetweb serves it: already linked through prometheus-cpp's metrics endpoint and
// packaged by Debian, a small C API with a bounded worker pool and per-request timeouts, which
// is all a JSON gateway in front of an in-process channel needs (libmicrohttpd would add a
// second HTTP server to the binary; Boost.Beast an async stack for no gain here). Plain HTTP
// only: TLS is the job of a proxy in front (an Ingress), and the server keeps the listener on
// loopback when it serves gRPC over TLS. Thread-safe; stops when destroyed.
class HttpGateway final {
 public:
  // `channel` (the server's in-process channel) must outlive the gateway's calls; `metrics` may
  // be null.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpGatewayOptions& options,
                                                            std::shared_ptr<grpc::Channel> channel,
                                                            ServerMetrics* metrics);
  ~HttpGateway();

  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  int port() const { return port_; }

  // Stops making calls on the channel (which must not see a call after its server shut down):
  // later API requests get 503 UNAVAILABLE ("shutting down"), and calls in flight get until
  // `deadline` to finish before they are cancelled. Returns once none is in flight. Call it
  // before shutting the gRPC server down; the page is still served until destruction.
  void StopCalls(std::chrono::system_clock::time_point deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // Answers one request; called by civetweb's threads.
  struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string allow;  // for 405
  };
  struct Request {
    std::string method;
    std::string path;
    std::string query;
    std::string authorization;  // the Authorization header, or empty
    std::string timeout;        // the X-Server-Timeout header (seconds), or empty
    std::string body;
  };
  Reply Handle(const Request& request) const;

 private:
  class Routes;

  HttpGateway(const HttpGatewayOptions& options, std::unique_ptr<Routes> routes,
              ServerMetrics* metrics);

  // civetweb's request handler: reads the body (bounded in size and time), answers, records.
  static int Serve(mg_connection* conn, void* gateway);

  // Registers a call about to be made with `context`; false once StopCalls has begun.
  bool BeginCall(grpc::ClientContext* context) const ABSL_LOCKS_EXCLUDED(mu_);
  void EndCall(grpc::ClientContext* context) const ABSL_LOCKS_EXCLUDED(mu_);

  const HttpGatewayOptions options_;
  const std::unique_ptr<Routes> routes_;
  const std::unique_ptr<TaskThreads> workers_;  // run Handle with full stacks (see Serve)
  ServerMetrics* const metrics_;
  mutable Mutex mu_;
  mutable bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);  // in flight
  mg_context* context_ = nullptr;
  int port_ = 0;
};

// The HTTP status that Google's APIs give a gRPC code (google/rpc/code.proto).
int HttpStatusFor(int grpc_code);

}  // namespace srn

#endif  // SRN_SERVER_HTTP_GATEWAY_H_
