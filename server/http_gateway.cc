#include "server/http_gateway.h"

#include <civetweb.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "server/web_assets.h"
#include "srn/v1/http.pb.h"
#include "srn/v1/similarity.grpc.pb.h"

namespace srn {
namespace {

constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

std::string CodeName(int code) {
  return code >= 0 && code <= 16 ? kCodeNames[code] : absl::StrCat("CODE_", code);
}

// {"error": {"code": <HTTP status>, "message": "...", "status": "<gRPC code name>"}}.
HttpGateway::Reply ErrorReply(int grpc_code, const std::string& message, int http_status = 0) {
  HttpGateway::Reply reply;
  reply.status = http_status != 0 ? http_status : HttpStatusFor(grpc_code);
  v1::HttpError error;
  error.mutable_error()->set_code(reply.status);
  error.mutable_error()->set_message(message);
  error.mutable_error()->set_status(CodeName(grpc_code));
  (void)google::protobuf::util::MessageToJsonString(error, &reply.body);
  return reply;
}

HttpGateway::Reply InvalidArgument(const std::string& message) {
  return ErrorReply(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// One mapped RPC: fills the request from the path, query and body, calls the stub.
using Call = std::function<HttpGateway::Reply(
    v1::SimilarityService::Stub& stub, grpc::ClientContext& context,
    const HttpGateway::Request& request, const std::string& subject_id)>;

template <typename Message>
bool ParseBody(const std::string& body, Message* message, HttpGateway::Reply* error) {
  if (body.empty()) return true;  // an empty body is the empty message
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (status.ok()) return true;
  *error = InvalidArgument(absl::StrCat("the body is not the JSON of a ",
                                        Message::descriptor()->full_name(), ": ",
                                        std::string(status.message()),
                                        " (field names as in the .proto or in lowerCamelCase; "
                                        "see client/README.md)"));
  return false;
}

template <typename Response>
HttpGateway::Reply OkReply(const Response& response) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  HttpGateway::Reply reply;
  const auto status = google::protobuf::util::MessageToJsonString(response, &reply.body, options);
  if (!status.ok()) {
    return ErrorReply(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("cannot write the response as JSON: ", std::string(status.message())));
  }
  return reply;
}

// The reply to a call: its response as JSON, or its error.
template <typename Response>
HttpGateway::Reply Answer(const grpc::Status& status, const Response& response) {
  if (!status.ok()) return ErrorReply(status.error_code(), status.error_message());
  return OkReply(response);
}

template <typename Request, typename Response>
using StubMethod = grpc::Status (v1::SimilarityService::Stub::*)(grpc::ClientContext*,
                                                                 const Request&, Response*);

// A call whose request is the body, with subject_id from the path when the route has one.
template <typename Request, typename Response>
Call BodyCall(StubMethod<Request, Response> method) {
  return [method](v1::SimilarityService::Stub& stub, grpc::ClientContext& context,
                  const HttpGateway::Request& http, const std::string& subject_id) {
    Request request;
    HttpGateway::Reply error;
    if (!ParseBody(http.body, &request, &error)) return error;
    if constexpr (std::is_same_v<Request, v1::EnrollRequest> ||
                  std::is_same_v<Request, v1::VerifyRequest>) {
      if (!request.subject_id().empty() && request.subject_id() != subject_id) {
        return InvalidArgument(absl::StrCat("the body's subject_id \"", request.subject_id(),
                                            "\" differs from the path's \"", subject_id,
                                            "\": leave it out of the body"));
      }
      request.set_subject_id(subject_id);
    }
    Response response;
    return Answer((stub.*method)(&context, request, &response), response);
  };
}

// GET and DELETE of one subject: no body.
template <typename Request, typename Response>
Call SubjectCall(StubMethod<Request, Response> method) {
  return [method](v1::SimilarityService::Stub& stub, grpc::ClientContext& context,
                  const HttpGateway::Request& http, const std::string& subject_id) {
    if (!http.body.empty()) return InvalidArgument("this route takes no body");
    Request request;
    request.set_subject_id(subject_id);
    Response response;
    return Answer((stub.*method)(&context, request, &response), response);
  };
}

HttpGateway::Reply ListSubjects(v1::SimilarityService::Stub& stub, grpc::ClientContext& context,
                                const HttpGateway::Request& http, const std::string&) {
  if (!http.body.empty()) return InvalidArgument("this route takes no body");
  v1::ListSubjectsRequest request;
  for (absl::string_view pair : absl::StrSplit(http.query, '&', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    std::string value(kv.second.size() + 1, '\0');
    const int n = mg_url_decode(kv.second.data(), static_cast<int>(kv.second.size()), value.data(),
                                static_cast<int>(value.size()), 1);
    if (n < 0) return InvalidArgument(absl::StrCat("cannot decode the query parameter ", kv.first));
    value.resize(n);
    if (kv.first == "pageSize" || kv.first == "page_size") {
      int size = 0;
      if (!absl::SimpleAtoi(value, &size)) {
        return InvalidArgument(
            absl::StrCat("pageSize must be a whole number, not \"", value, "\""));
      }
      request.set_page_size(size);
    } else if (kv.first == "pageToken" || kv.first == "page_token") {
      request.set_page_token(value);
    } else {
      return InvalidArgument(absl::StrCat("unknown query parameter \"", kv.first,
                                          "\": this route takes pageSize and pageToken"));
    }
  }
  v1::ListSubjectsResponse response;
  return Answer(stub.ListSubjects(&context, request, &response), response);
}

HttpGateway::Reply GetModelInfo(v1::SimilarityService::Stub& stub, grpc::ClientContext& context,
                                const HttpGateway::Request& http, const std::string&) {
  if (!http.body.empty()) return InvalidArgument("this route takes no body");
  v1::ModelInfo response;
  return Answer(stub.GetModelInfo(&context, v1::GetModelInfoRequest(), &response), response);
}

const char* ContentType(absl::string_view path) {
  if (absl::EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(path, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(path, ".png")) return "image/png";
  return "application/octet-stream";
}

}  // namespace

int HttpStatusFor(int grpc_code) {
  switch (grpc_code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 400;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

// The route table and the stub the routes call.
class HttpGateway::Routes {
 public:
  explicit Routes(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::SimilarityService::NewStub(std::move(channel))) {}

  // Finds the route of (method, path): its call and the subject id in the path. Fills *reply
  // with 404 or 405 when there is none.
  const Call* Find(const std::string& method, const std::string& path, std::string* subject_id,
                   Reply* reply) const {
    struct Route {
      const char* method;
      const Call* call;
    };
    std::vector<Route> routes;
    constexpr absl::string_view kSubjects = "/v1/subjects/";
    if (path == "/v1:embed") {
      routes = {{"POST", &embed_}};
    } else if (path == "/v1:similarity") {
      routes = {{"POST", &similarity_}};
    } else if (path == "/v1/model") {
      routes = {{"GET", &model_}};
    } else if (path == "/v1/subjects") {
      routes = {{"GET", &list_}};
    } else if (path == "/v1/subjects:identify") {
      routes = {{"POST", &identify_}};
    } else if (absl::StartsWith(path, kSubjects) && path.size() > kSubjects.size()) {
      // Subject ids hold no '/', and a ':' before a verb belongs to the verb (Google's rule).
      std::string rest = path.substr(kSubjects.size());
      const size_t colon = rest.rfind(':');
      const std::string verb = colon == std::string::npos ? "" : rest.substr(colon + 1);
      if (verb == "enroll") {
        routes = {{"POST", &enroll_}};
        rest.resize(colon);
      } else if (verb == "verify") {
        routes = {{"POST", &verify_}};
        rest.resize(colon);
      } else {
        routes = {{"GET", &get_}, {"DELETE", &delete_}};
      }
      *subject_id = rest;
    }
    if (routes.empty()) {
      *reply = ErrorReply(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no route ", path,
                                       ": the API is under /v1 (see "
                                       "client/README.md), the signature pad page at /"));
      return nullptr;
    }
    std::string allow;
    for (const Route& route : routes) {
      if (method == route.method) return route.call;
      absl::StrAppend(&allow, allow.empty() ? "" : ", ", route.method);
    }
    *reply = ErrorReply(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat(path, " takes ", allow, ", not ", method), 405);
    reply->allow = allow;
    return nullptr;
  }

  v1::SimilarityService::Stub& stub() const { return *stub_; }

 private:
  const std::unique_ptr<v1::SimilarityService::Stub> stub_;
  const Call embed_ = BodyCall(&v1::SimilarityService::Stub::Embed);
  const Call similarity_ = BodyCall(&v1::SimilarityService::Stub::Similarity);
  const Call enroll_ = BodyCall(&v1::SimilarityService::Stub::Enroll);
  const Call verify_ = BodyCall(&v1::SimilarityService::Stub::Verify);
  const Call identify_ = BodyCall(&v1::SimilarityService::Stub::Identify);
  const Call get_ = SubjectCall(&v1::SimilarityService::Stub::GetSubject);
  const Call delete_ = SubjectCall(&v1::SimilarityService::Stub::DeleteSubject);
  const Call list_ = ListSubjects;
  const Call model_ = GetModelInfo;
};

// Threads with the default stack size that run the requests' work for civetweb's threads,
// whose stacks are small (100 KiB in Debian's build): parsing JSON (protobuf may build
// descriptors on first use) and the call itself (which the in-process transport may run on the
// calling thread) need more. Each civetweb thread waits for its task, so at most as many tasks
// as civetweb has threads are queued.
HttpGateway::Reply HttpGateway::Handle(const Request& request) const {
  if (!absl::StartsWith(request.path, "/v1")) {
    if (request.method != "GET" && request.method != "HEAD") {
      Reply reply = ErrorReply(grpc::StatusCode::UNIMPLEMENTED,
                               absl::StrCat(request.path, " takes GET, not ", request.method), 405);
      reply.allow = "GET";
      return reply;
    }
    const std::string path = request.path == "/" ? "/index.html" : request.path;
    for (const WebAsset& asset : WebAssets()) {
      if (path == asset.path) {
        Reply reply;
        reply.content_type = ContentType(path);
        reply.body = std::string(asset.data);
        return reply;
      }
    }
    return ErrorReply(grpc::StatusCode::NOT_FOUND, absl::StrCat("no page ", request.path,
                                                                ": the signature pad is at /, the "
                                                                "API under /v1"));
  }
  std::string subject_id;
  Reply reply;
  const Call* call = routes_->Find(request.method, request.path, &subject_id, &reply);
  if (call == nullptr) return reply;

  double timeout = options_.default_deadline_seconds;
  if (!request.timeout.empty() &&
      !(absl::SimpleAtod(request.timeout, &timeout) && timeout > 0 && timeout < 1e6)) {
    return InvalidArgument(
        absl::StrCat("X-Server-Timeout must be seconds above 0, not \"", request.timeout, "\""));
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(timeout * 1e6)));
  if (!request.authorization.empty()) {
    context.AddMetadata("authorization", request.authorization);
  }
  if (!BeginCall(&context)) {
    return ErrorReply(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  }
  Reply answer = (*call)(routes_->stub(), context, request, subject_id);
  EndCall(&context);
  return answer;
}

bool HttpGateway::BeginCall(grpc::ClientContext* context) const {
  MutexLock lock(&mu_);
  if (stopping_) return false;
  calls_.insert(context);
  return true;
}

void HttpGateway::EndCall(grpc::ClientContext* context) const {
  MutexLock lock(&mu_);
  calls_.erase(context);
}

void HttpGateway::StopCalls(std::chrono::system_clock::time_point deadline) {
  MutexLock lock(&mu_);
  stopping_ = true;
  const auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); };
  const auto left = deadline - std::chrono::system_clock::now();
  if (mu_.AwaitWithTimeout(none, absl::FromChrono(std::max(left, left.zero())))) return;
  for (grpc::ClientContext* context : calls_) context->TryCancel();
  mu_.Await(none);
}

namespace {

// `close`: the client is told to close the connection (the rest of its body is not read).
void WriteReply(mg_connection* conn, const HttpGateway::Reply& reply, bool head, bool close) {
  std::string headers = absl::StrCat(
      "HTTP/1.1 ", reply.status, " ", mg_get_response_code_text(conn, reply.status), "\r\n",
      "Content-Type: ", reply.content_type, "\r\n", "Content-Length: ", reply.body.size(), "\r\n",
      "Cache-Control: no-store\r\n", "X-Content-Type-Options: nosniff\r\n",
      "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
      "frame-ancestors 'none'\r\n");
  if (!reply.allow.empty()) absl::StrAppend(&headers, "Allow: ", reply.allow, "\r\n");
  if (close) absl::StrAppend(&headers, "Connection: close\r\n");
  absl::StrAppend(&headers, "\r\n");
  // One write: headers and body in separate segments would wait on the client's delayed ACK.
  if (!head) absl::StrAppend(&headers, reply.body);
  mg_write(conn, headers.data(), headers.size());
}

}  // namespace

int HttpGateway::Serve(mg_connection* conn, void* data) {
  const auto* gateway = static_cast<const HttpGateway*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  const auto start = std::chrono::steady_clock::now();
  HttpGateway::Request request;
  request.method = info->request_method;
  request.path = info->local_uri != nullptr ? info->local_uri : "";
  request.query = info->query_string != nullptr ? info->query_string : "";
  if (const char* h = mg_get_header(conn, "Authorization")) request.authorization = h;
  if (const char* h = mg_get_header(conn, "X-Server-Timeout")) request.timeout = h;

  const int64_t limit = gateway->options_.max_body_bytes;
  HttpGateway::Reply reply;
  bool read_ok = true;
  if (info->content_length > limit) {
    reply = ErrorReply(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("the body has ", info->content_length, " bytes; the limit is ",
                                    limit, " (--max_message_bytes x 4)"),
                       413);
    read_ok = false;
  } else {
    const auto deadline = start + std::chrono::milliseconds(static_cast<int64_t>(
                                      gateway->options_.request_timeout_seconds * 1000));
    std::vector<char> buffer(1 << 16);
    for (;;) {
      const int n = mg_read(conn, buffer.data(), buffer.size());
      if (n <= 0) break;
      request.body.append(buffer.data(), n);
      if (static_cast<int64_t>(request.body.size()) > limit) {
        reply = ErrorReply(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           absl::StrCat("the body is over the limit of ", limit,
                                        " bytes (--max_message_bytes x 4)"),
                           413);
        read_ok = false;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        reply = ErrorReply(grpc::StatusCode::DEADLINE_EXCEEDED,
                           "the request's body was not sent in time", 408);
        read_ok = false;
        break;
      }
    }
  }
  if (read_ok) gateway->workers_->Run([&] { reply = gateway->Handle(request); });
  WriteReply(conn, reply, request.method == "HEAD", /*close=*/!read_ok);
  if (gateway->metrics_ != nullptr) {
    gateway->metrics_->HttpResponded(reply.status);
  }
  return reply.status;
}

namespace {

int LogMessage(const mg_connection*, const char* message) {
  // civetweb's own errors (a port in use, TLS set-up) reach the caller through mg_start's error
  // text; per-connection noise is dropped.
  (void)message;
  return 1;
}

}  // namespace

HttpGateway::HttpGateway(const HttpGatewayOptions& options, std::unique_ptr<Routes> routes,
                         ServerMetrics* metrics)
    : options_(options),
      routes_(std::move(routes)),
      workers_(std::make_unique<TaskThreads>(options.threads)),
      metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const HttpGatewayOptions& options, std::shared_ptr<grpc::Channel> channel,
    ServerMetrics* metrics) {
  const size_t colon = options.listen_address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen must be host:port (for example 127.0.0.1:8080), not \"",
                     options.listen_address, "\""));
  }
  std::unique_ptr<HttpGateway> gateway(
      new HttpGateway(options, std::make_unique<Routes>(std::move(channel)), metrics));
  const std::string& ports = options.listen_address;  // "[::1]:port" for IPv6
  const std::string threads = absl::StrCat(options.threads);
  const std::string timeout_ms =
      absl::StrCat(static_cast<int64_t>(options.request_timeout_seconds * 1000));
  const char* civet_options[] = {"listening_ports",
                                 ports.c_str(),
                                 "num_threads",
                                 threads.c_str(),
                                 "request_timeout_ms",
                                 timeout_ms.c_str(),
                                 "enable_keep_alive",
                                 "yes",
                                 "keep_alive_timeout_ms",
                                 "5000",
                                 "tcp_nodelay",
                                 "1",
                                 nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = LogMessage;
  mg_init_library(0);
  char error_text[256] = "";
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.configuration_options = civet_options;
  mg_error_data error;
  std::memset(&error, 0, sizeof(error));
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  gateway->context_ = mg_start2(&init, &error);
  if (gateway->context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve HTTP on ", options.listen_address,
                                               ": ", error_text[0] ? error_text : "unknown error",
                                               " (address in use or invalid?)"));
  }
  mg_set_request_handler(gateway->context_, "/", &HttpGateway::Serve, gateway.get());
  mg_server_port ports_info[4];
  const int n = mg_get_server_ports(gateway->context_, 4, ports_info);
  gateway->port_ = n > 0 ? ports_info[0].port : 0;
  return gateway;
}

HttpGateway::~HttpGateway() {
  if (context_ != nullptr) mg_stop(context_);  // before the workers it waits on go
  mg_exit_library();
}

}  // namespace srn
