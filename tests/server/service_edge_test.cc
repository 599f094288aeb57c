#include "server/service_edge.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "grpcpp/server_context.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "server/model_registry_service.h"
#include "server/similarity_service.h"
#include "server/training_service.h"

namespace srn {
namespace {

// The exposition of `registry`, for reading metric values in assertions.
std::string Exposition(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

class ServiceEdgeTest : public ::testing::Test {
 protected:
  ServiceEdgeTest()
      : registry_(std::make_shared<prometheus::Registry>()),
        metrics_(registry_, {{"test.Service", {{"Get"}, {"Watch", "server_stream"}}}}),
        edge_("test.Service", {{"Get"}, {"Watch", "server_stream"}}, &auth_, &metrics_) {}

  std::shared_ptr<prometheus::Registry> registry_;
  ServerMetrics metrics_;
  TokenAuth auth_;  // no tokens: every caller is an admin
  ServiceEdge edge_;
  grpc::ServerContext ctx_;
};

TEST_F(ServiceEdgeTest, RefusesUntilReadyAndWhileDrainingWithoutRunningTheCall) {
  int calls = 0;
  auto fn = [&]() -> absl::Status {
    ++calls;
    return absl::OkStatus();
  };
  grpc::Status s = edge_.Call(ctx_, 0, Role::kAdmin, fn);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is starting");
  edge_.SetReady(true);
  EXPECT_TRUE(edge_.Call(ctx_, 0, Role::kAdmin, fn).ok());
  edge_.StartDraining();
  s = edge_.Call(ctx_, 0, Role::kAdmin, fn);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down");
  EXPECT_EQ(calls, 1);
}

TEST_F(ServiceEdgeTest, ConvertsStatusesMovesResponsesAndCountsEachCallByCode) {
  edge_.SetReady(true);
  std::string response;
  grpc::Status s = edge_.Call(ctx_, 0, Role::kReader, &response,
                              []() -> absl::StatusOr<std::string> { return std::string("yes"); });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(response, "yes");
  s = edge_.Call(ctx_, 1, Role::kAdmin, []() { return absl::NotFoundError("no job 7"); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no job 7");
  const std::string text = Exposition(*registry_);
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Get\","
                      "grpc_service=\"test.Service\",grpc_type=\"unary\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"Watch\","
                      "grpc_service=\"test.Service\",grpc_type=\"server_stream\"} 1"),
            std::string::npos)
      << text;
}

TEST(ServiceMethodsTest, EveryServiceHasMetricsForEachOfItsMethods) {
  auto registry = std::make_shared<prometheus::Registry>();
  const std::vector<RpcService> services = {
      {SimilarityService::kServiceName, SimilarityService::Methods()},
      {TrainingService::kServiceName, TrainingService::Methods()},
      {ModelRegistryService::kServiceName, ModelRegistryService::Methods()}};
  ServerMetrics metrics(registry, services);
  for (const RpcService& service : services) {
    for (const RpcMethod& method : service.methods) {
      EXPECT_GE(metrics.MethodIndex(service.name, method.name), 0)
          << service.name << "/" << method.name;
    }
  }
  EXPECT_EQ(metrics.MethodIndex("srn.v1.TrainingService", "Verify"), -1);
  EXPECT_NE(Exposition(*registry).find("grpc_method=\"WatchJob\",grpc_service=\"srn.v1."
                                       "TrainingService\",grpc_type=\"server_stream\""),
            std::string::npos);
}

}  // namespace
}  // namespace srn
