// What Server::BuildAndStart exposes, and to whom: the metrics listener and server reflection.
#include "server/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/impl/codegen/rpc_method.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr char kReaderToken[] = "reader-token-0123456789abcdef";
constexpr char kAdminToken[] = "admin-token-0123456789abcdef";

class ServerExposureTest : public testing::ScratchDirTest {
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
    options.weights_path = weights_;
    options.store_path = ":memory:";
    return options;
  }

  std::string weights_, tokens_;
};

TEST_F(ServerExposureTest, NonLoopbackMetricsWithoutTokensNeedMetricsPublic) {
  ServerOptions options = Options();
  options.metrics_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("refusing to serve metrics on 0.0.0.0:0 without "
                                           "authentication"),
            std::string::npos)
      << server.status();
  EXPECT_NE(server.status().message().find("--metrics_public"), std::string::npos);

  for (const std::string address : {"127.0.0.1:0", "localhost:0", "[::1]:0"}) {
    options.metrics_address = address;
    server = Server::BuildAndStart(options);
    EXPECT_TRUE(server.ok() || server.status().code() != absl::StatusCode::kFailedPrecondition)
        << address << ": " << server.status();
  }
  // Said to be public, or with tokens: served.
  options.metrics_address = "0.0.0.0:0";
  options.metrics_public = true;
  server = Server::BuildAndStart(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->metrics_port(), 0);
  server->reset();
  options.metrics_public = false;
  options.tokens_file = tokens_;
  server = Server::BuildAndStart(options);
  ASSERT_TRUE(server.ok()) << server.status();
}

// One server-reflection exchange (list_services) with `token` (none when empty): the response
// bytes and the final status.
std::pair<std::string, grpc::Status> ListServices(int port, const std::string& token) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &ctx));
  // ServerReflectionRequest { list_services: "" } (field 7, length-delimited).
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  std::string response;
  if (stream->Write(out)) {
    grpc::ByteBuffer in;
    if (stream->Read(&in)) {
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(in.Dump(&slices).ok());
      for (const grpc::Slice& s : slices) {
        response.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  stream->WritesDone();
  return {response, stream->Finish()};
}

TEST_F(ServerExposureTest, ReflectionNeedsTheReaderRoleWhenTokensAreOn) {
  ServerOptions options = Options();
  options.tokens_file = tokens_;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  auto [response, status] = ListServices(port, "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(response.find("srn.v1"), std::string::npos) << "the schema leaked without a token";
  std::tie(response, status) = ListServices(port, "not-a-token-0123456789abcdef");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(response.find("srn.v1"), std::string::npos);

  for (const std::string token : {kReaderToken, kAdminToken}) {
    std::tie(response, status) = ListServices(port, token);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_NE(response.find("srn.v1.ModelRegistry"), std::string::npos);
  }
}

TEST_F(ServerExposureTest, ReflectionIsOpenWithoutTokens) {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(Options());
  ASSERT_TRUE(server.ok()) << server.status();
  auto [response, status] = ListServices((*server)->port(), "");
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(response.find("srn.v1.SimilarityService"), std::string::npos);
}

}  // namespace
}  // namespace srn
