// The HTTP/JSON API against the gRPC API of the same server: every RPC of the similarity service
// answers the same over both, errors carry the same message under the standard HTTP status, and
// tokens, roles and limits hold over HTTP as over gRPC.
#include "server/http_gateway.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "server/server.h"
#include "server/web_assets.h"
#include "srn/v1/http.pb.h"
#include "srn/v1/similarity.grpc.pb.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kReaderToken[] = "reader-token-0123456789abcdef";
constexpr char kAdminToken[] = "admin-token-0123456789abcdef";

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string allow;
};

// One HTTP/1.1 request over a fresh connection, with civetweb's client.
HttpResponse Fetch(int port, const std::string& method, const std::string& path,
                   const std::string& body = "", const std::string& token = "") {
  char error[256] = "";
  const std::string auth =
      token.empty() ? "" : absl::StrCat("Authorization: Bearer ", token, "\r\n");
  mg_connection* conn =
      mg_download("127.0.0.1", port, 0, error, sizeof(error),
                  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Type: "
                  "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                  method.c_str(), path.c_str(), auth.c_str(), body.size(), body.c_str());
  HttpResponse response;
  if (conn == nullptr) {
    ADD_FAILURE() << method << " " << path << ": " << error;
    return response;
  }
  response.status = mg_get_response_info(conn)->status_code;
  if (const char* h = mg_get_header(conn, "Content-Type")) response.content_type = h;
  if (const char* h = mg_get_header(conn, "Allow")) response.allow = h;
  char buffer[1 << 14];
  for (int n; (n = mg_read(conn, buffer, sizeof(buffer))) > 0;) response.body.append(buffer, n);
  mg_close_connection(conn);
  return response;
}

template <typename Message>
Message FromJson(const std::string& json) {
  Message message;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

template <typename Message>
std::string ToJson(const Message& message) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json).ok());
  return json;
}

// A frames series of the test model (3 features), varied by `seed`.
v1::SeriesInput Frames(int seed, int length = 30) {
  v1::SeriesInput input;
  input.mutable_frames()->set_num_features(3);
  for (int t = 0; t < length; ++t) {
    for (int f = 0; f < 3; ++f) {
      input.mutable_frames()->add_values(
          static_cast<float>(std::sin(0.3 * t * (f + 1) + seed) + 0.1 * seed));
    }
  }
  return input;
}

class HttpGatewayTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    weights_ = absl::StrCat(dir(), "/model.srnw");
    ASSERT_TRUE(SaveModel(*srn::testing::RandomModel("srn-a", 3, 8, 1), weights_).ok());
    tokens_ = Write("tokens", absl::StrCat("reader ", kReaderToken, "\nadmin ", kAdminToken, "\n"));
    ASSERT_EQ(::chmod(tokens_.c_str(), 0600), 0);
  }

  ServerOptions Options() const {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.http_address = "127.0.0.1:0";
    options.weights_path = weights_;
    options.store_path = ":memory:";
    return options;
  }

  void Start(const ServerOptions& options) {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->http_port(), 0);
    stub_ = v1::SimilarityService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  }

  HttpResponse Http(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& token = "") {
    return Fetch(server_->http_port(), method, path, body, token);
  }

  std::string weights_, tokens_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::SimilarityService::Stub> stub_;
};

TEST_F(HttpGatewayTest, EveryRpcAnswersOverHttpAsOverGrpc) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));

  // Enroll over HTTP; the subject is then seen by gRPC exactly as HTTP returned it.
  v1::EnrollRequest enroll;
  for (int i = 0; i < 3; ++i) *enroll.add_references() = Frames(i);
  HttpResponse r = Http("POST", "/v1/subjects/alice:enroll", ToJson(enroll));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const auto enrolled = FromJson<v1::EnrollResponse>(r.body);
  EXPECT_EQ(enrolled.subject().subject_id(), "alice");
  EXPECT_EQ(enrolled.subject().reference_count(), 3);
  {
    grpc::ClientContext context;
    v1::GetSubjectRequest request;
    request.set_subject_id("alice");
    v1::Subject subject;
    ASSERT_TRUE(stub_->GetSubject(&context, request, &subject).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(subject, enrolled.subject()))
        << subject.DebugString() << " vs " << enrolled.subject().DebugString();
    r = Http("GET", "/v1/subjects/alice");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::Subject>(r.body), subject));
  }
  // Enroll over gRPC, seen over HTTP.
  {
    grpc::ClientContext context;
    v1::EnrollRequest request;
    request.set_subject_id("bob");
    *request.add_references() = Frames(7);
    v1::EnrollResponse response;
    ASSERT_TRUE(stub_->Enroll(&context, request, &response).ok());
  }

  // Verify: the same score, decision, threshold and reference scores, for several queries.
  for (int seed : {0, 1, 5, 9}) {
    v1::VerifyRequest request;
    request.set_subject_id("alice");
    *request.mutable_query() = Frames(seed, 25);
    v1::VerifyRequest body = request;
    body.clear_subject_id();  // the path names the subject
    r = Http("POST", "/v1/subjects/alice:verify", ToJson(body));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"accepted\""), std::string::npos)
        << "every primitive field is written, false ones too: " << r.body;
    grpc::ClientContext context;
    v1::VerifyResponse expected;
    ASSERT_TRUE(stub_->Verify(&context, request, &expected).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::VerifyResponse>(r.body), expected))
        << r.body << "\nvs gRPC: " << expected.DebugString();
  }
  // Identify, Embed, Similarity.
  {
    v1::IdentifyRequest request;
    *request.mutable_query() = Frames(2);
    request.set_top_k(2);
    r = Http("POST", "/v1/subjects:identify", ToJson(request));
    ASSERT_EQ(r.status, 200) << r.body;
    grpc::ClientContext context;
    v1::IdentifyResponse expected;
    ASSERT_TRUE(stub_->Identify(&context, request, &expected).ok());
    ASSERT_EQ(expected.candidates_size(), 2);
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::IdentifyResponse>(r.body), expected))
        << r.body;
  }
  {
    v1::EmbedRequest request;
    *request.add_series() = Frames(3);
    *request.add_series() = Frames(4, 12);
    r = Http("POST", "/v1:embed", ToJson(request));
    ASSERT_EQ(r.status, 200) << r.body;
    grpc::ClientContext context;
    v1::EmbedResponse expected;
    ASSERT_TRUE(stub_->Embed(&context, request, &expected).ok());
    ASSERT_EQ(expected.embeddings_size(), 2);
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::EmbedResponse>(r.body), expected));
  }
  {
    v1::SimilarityRequest request;
    *request.mutable_a() = Frames(3);
    *request.mutable_b() = Frames(6);
    r = Http("POST", "/v1:similarity", ToJson(request));
    ASSERT_EQ(r.status, 200) << r.body;
    grpc::ClientContext context;
    v1::SimilarityResponse expected;
    ASSERT_TRUE(stub_->Similarity(&context, request, &expected).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::SimilarityResponse>(r.body), expected));
  }
  // ListSubjects, with paging through the query string.
  {
    r = Http("GET", "/v1/subjects?pageSize=1");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto first = FromJson<v1::ListSubjectsResponse>(r.body);
    ASSERT_EQ(first.subjects_size(), 1);
    EXPECT_EQ(first.subjects(0).subject_id(), "alice");
    ASSERT_FALSE(first.next_page_token().empty());
    r = Http("GET", absl::StrCat("/v1/subjects?page_size=1&pageToken=", first.next_page_token()));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto second = FromJson<v1::ListSubjectsResponse>(r.body);
    ASSERT_EQ(second.subjects_size(), 1);
    EXPECT_EQ(second.subjects(0).subject_id(), "bob");
    grpc::ClientContext context;
    v1::ListSubjectsResponse expected;
    ASSERT_TRUE(stub_->ListSubjects(&context, v1::ListSubjectsRequest(), &expected).ok());
    r = Http("GET", "/v1/subjects");
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::ListSubjectsResponse>(r.body), expected));
  }
  // GetModelInfo.
  {
    grpc::ClientContext context;
    v1::ModelInfo expected;
    ASSERT_TRUE(stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &expected).ok());
    r = Http("GET", "/v1/model");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(MessageDifferencer::Equals(FromJson<v1::ModelInfo>(r.body), expected));
  }
  // DeleteSubject over HTTP: gone for gRPC too.
  r = Http("DELETE", "/v1/subjects/bob");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  grpc::ClientContext context;
  v1::GetSubjectRequest request;
  request.set_subject_id("bob");
  v1::Subject subject;
  EXPECT_EQ(stub_->GetSubject(&context, request, &subject).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// The error body's status name and message, checked against the HTTP status.
v1::HttpError::Body ErrorOf(const HttpResponse& r) {
  const auto error = FromJson<v1::HttpError>(r.body).error();
  EXPECT_EQ(error.code(), r.status) << r.body;
  return error;
}

TEST_F(HttpGatewayTest, ErrorsHaveTheStandardStatusAndGrpcsMessage) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  v1::VerifyRequest verify;
  *verify.mutable_query() = Frames(1);
  HttpResponse r = Http("POST", "/v1/subjects/nobody:verify", ToJson(verify));
  EXPECT_EQ(r.status, 404);
  v1::HttpError::Body error = ErrorOf(r);
  EXPECT_EQ(error.status(), "NOT_FOUND");
  {
    grpc::ClientContext context;
    verify.set_subject_id("nobody");
    v1::VerifyResponse response;
    const grpc::Status status = stub_->Verify(&context, verify, &response);
    EXPECT_EQ(error.message(), status.error_message());
  }

  // A field the message does not have, and JSON that is not JSON: 400 naming what is wrong.
  r = Http("POST", "/v1/subjects/alice:enroll", R"({"refrences": []})");
  EXPECT_EQ(r.status, 400);
  error = ErrorOf(r);
  EXPECT_EQ(error.status(), "INVALID_ARGUMENT");
  EXPECT_NE(error.message().find("srn.v1.EnrollRequest"), std::string::npos) << error.message();
  EXPECT_NE(error.message().find("refrences"), std::string::npos) << error.message();
  r = Http("POST", "/v1:embed", "{\"series\": [");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorOf(r).status(), "INVALID_ARGUMENT");

  // The service's own checks come back with their message.
  v1::EnrollRequest enroll;
  r = Http("POST", "/v1/subjects/alice:enroll", ToJson(enroll));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r).message().find("reference"), std::string::npos) << r.body;
  r = Http("GET", "/v1/subjects/bad%20id");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r).message().find("subject_id may only contain"), std::string::npos);
  // The path names the subject; a body that names another is refused.
  enroll.set_subject_id("mallory");
  *enroll.add_references() = Frames(1);
  r = Http("POST", "/v1/subjects/alice:enroll", ToJson(enroll));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r).message().find("differs from the path"), std::string::npos) << r.body;

  // Routes and methods.
  r = Http("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(ErrorOf(r).message().find("no route /v1/nothing"), std::string::npos);
  r = Http("GET", "/v1/subjects/alice:verify");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  EXPECT_EQ(ErrorOf(r).status(), "UNIMPLEMENTED");
  r = Http("PUT", "/v1/subjects/alice");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, DELETE");
  r = Http("GET", "/v1/subjects?pageSize=ten");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r).message().find("pageSize"), std::string::npos);
  r = Http("GET", "/v1/subjects?colour=red");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r).message().find("colour"), std::string::npos);
}

TEST_F(HttpGatewayTest, BodiesAreBoundedLikeMessages) {
  ServerOptions options = Options();
  options.max_message_bytes = 64 << 10;  // JSON bodies up to 256 KiB
  ASSERT_NO_FATAL_FAILURE(Start(options));
  // Over the HTTP bound: refused before it is parsed.
  v1::EmbedRequest big;
  *big.add_series() = Frames(1, 12000);
  std::string body = ToJson(big);
  ASSERT_GT(body.size(), 256u << 10);
  HttpResponse r = Http("POST", "/v1:embed", body);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(ErrorOf(r).message().find("--max_message_bytes"), std::string::npos) << r.body;
  // Within the HTTP bound but over the message bound: the service's own limit.
  v1::EmbedRequest medium;
  *medium.add_series() = Frames(1, 6000);
  body = ToJson(medium);
  ASSERT_LT(body.size(), 256u << 10);
  ASSERT_GT(medium.ByteSizeLong(), 64u << 10);
  r = Http("POST", "/v1:embed", body);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(ErrorOf(r).status(), "RESOURCE_EXHAUSTED");
  // And the server still answers.
  EXPECT_EQ(Http("GET", "/v1/model").status, 200);
}

// Connects to 127.0.0.1:port with a plain socket; -1 on failure.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(HttpGatewayTest, ClientsThatStallAreCutOffAndHoldNoOneElseUp) {
  ServerOptions options = Options();
  options.http_request_timeout_seconds = 1;
  ASSERT_NO_FATAL_FAILURE(Start(options));
  // More stalled clients than the gateway has threads (16): each promises a body it never sends,
  // or never finishes its headers.
  std::vector<int> stalled;
  for (int i = 0; i < 20; ++i) {
    const int fd = Connect(server_->http_port());
    ASSERT_GE(fd, 0);
    const std::string partial =
        i % 2 == 0 ? "POST /v1:embed HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"ser"
                   : "GET /v1/model HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(partial.size()));
    stalled.push_back(fd);
  }
  // Others are still served once the stalled ones time out.
  EXPECT_EQ(Http("GET", "/v1/model").status, 200);
  // And each stalled connection is closed by the server (read returns 0 or an error, after any
  // error response), within a generous bound.
  for (int fd : stalled) {
    timeval wait{20, 0};
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)), 0);
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    }
    EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "still open after 20 s: " << std::strerror(errno);
    ::close(fd);
  }
}

// Requests keep coming while the server shuts down: each is answered, none crashes the server
// (gRPC crashed creating an in-process call after its server shut down, before the gateway
// stopped its calls first).
TEST_F(HttpGatewayTest, ShuttingDownUnderHttpLoadAnswersEachCall) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  v1::EmbedRequest embed;
  *embed.add_series() = Frames(1);
  const std::string body = ToJson(embed);
  const int port = server_->http_port();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        char error[256];
        mg_connection* conn = mg_download(
            "127.0.0.1", port, 0, error, sizeof(error),
            "POST /v1:embed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
            "%zu\r\n\r\n%s",
            body.size(), body.c_str());
        if (conn == nullptr) continue;  // refused: the listener is gone
        const int status = mg_get_response_info(conn)->status_code;
        mg_close_connection(conn);
        (status == 200 ? ok : status == 503 ? unavailable : other)++;
      }
    });
  }
  while (ok.load() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->Shutdown(/*drain_seconds=*/0.2, /*grace_seconds=*/1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // requests after the shutdown
  stop = true;
  for (std::thread& client : clients) client.join();
  server_.reset();
  EXPECT_GE(ok.load(), 20);
  EXPECT_GE(unavailable.load(), 1) << "no request was answered 'shutting down'";
  EXPECT_EQ(other.load(), 0);
}

TEST_F(HttpGatewayTest, TokensAndRolesHoldOverHttp) {
  ServerOptions options = Options();
  options.tokens_file = tokens_;
  ASSERT_NO_FATAL_FAILURE(Start(options));
  v1::EnrollRequest enroll;
  *enroll.add_references() = Frames(1);
  const std::string body = ToJson(enroll);

  HttpResponse r = Http("POST", "/v1/subjects/alice:enroll", body);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ErrorOf(r).status(), "UNAUTHENTICATED");
  r = Http("POST", "/v1/subjects/alice:enroll", body, "not-a-token-0123456789abcdef");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body.find("not-a-token"), std::string::npos) << "a token is never echoed";
  r = Http("POST", "/v1/subjects/alice:enroll", body, kReaderToken);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorOf(r).status(), "PERMISSION_DENIED");
  r = Http("DELETE", "/v1/subjects/alice", "", kReaderToken);
  EXPECT_EQ(r.status, 403);
  r = Http("POST", "/v1/subjects/alice:enroll", body, kAdminToken);
  EXPECT_EQ(r.status, 200) << r.body;
  v1::VerifyRequest verify;
  *verify.mutable_query() = Frames(1);
  r = Http("POST", "/v1/subjects/alice:verify", ToJson(verify), kReaderToken);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Http("GET", "/v1/model").status, 401);
  // The page itself needs no token (it holds nothing); the API behind it does.
  EXPECT_EQ(Http("GET", "/").status, 200);
}

TEST_F(HttpGatewayTest, ServesTheSignaturePadPage) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  HttpResponse r = Http("GET", "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<canvas"), std::string::npos) << r.body.substr(0, 400);
  bool has_script = false;
  for (const WebAsset& asset : WebAssets()) {
    r = Http("GET", std::string(asset.path));
    EXPECT_EQ(r.status, 200) << asset.path;
    EXPECT_EQ(r.body, asset.data) << asset.path;
    if (absl::EndsWith(std::string(asset.path), ".js")) {
      has_script = true;
      EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
    }
  }
  EXPECT_TRUE(has_script);
  r = Http("GET", "/nothing.html");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Http("POST", "/", "{}").status, 405);
}

TEST_F(HttpGatewayTest, NonLoopbackHttpWithoutTokensIsRefused) {
  ServerOptions options = Options();
  options.http_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("refusing to serve HTTP on 0.0.0.0:0"),
            std::string::npos)
      << server.status();
  options.tokens_file = tokens_;
  server = Server::BuildAndStart(options);
  EXPECT_TRUE(server.ok()) << server.status();
}

TEST_F(HttpGatewayTest, PlainHttpBesideTlsStaysOnLoopback) {
  ServerOptions options = Options();
  options.tokens_file = tokens_;
  options.tls_cert_file = Write("cert.pem", "not read before the address is checked");
  options.tls_key_file = Write("key.pem", "not read before the address is checked");
  options.http_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("refusing to serve plain HTTP on 0.0.0.0:0 beside "
                                           "gRPC over TLS"),
            std::string::npos)
      << server.status();
}

TEST_F(HttpGatewayTest, ABusyPortIsAClearError) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  ServerOptions options = Options();
  options.http_address = absl::StrCat("127.0.0.1:", server_->http_port());
  absl::StatusOr<std::unique_ptr<Server>> second = Server::BuildAndStart(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot serve HTTP on"), std::string::npos)
      << second.status();
}

TEST(HttpStatusForTest, FollowsGoogleRpcCode) {
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::OUT_OF_RANGE), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::ALREADY_EXISTS), 409);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::ABORTED), 409);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::CANCELLED), 499);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNKNOWN), 500);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INTERNAL), 500);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::DATA_LOSS), 500);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNIMPLEMENTED), 501);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
}

}  // namespace
}  // namespace srn
