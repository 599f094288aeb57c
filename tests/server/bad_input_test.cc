// Every kind of bad request, sent to a real in-process server over gRPC: each gets its specific
// status code and a message saying what was wrong, and the server keeps answering afterwards.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "model/data/signature_features.h"
#include "model/weights/weights_file.h"
#include "server/server.h"
#include "srn/v1/similarity.grpc.pb.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr int kDims = 4;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ctest runs each test in its own process, several at once: one set of files per process.
    const std::string dir = absl::StrCat(::testing::TempDir(), "/bad_input_", getpid());
    frames_model_ = dir + "_frames.srnw";
    signature_model_ = dir + "_signature.srnw";
    ASSERT_TRUE(SaveModel(*testing::RandomModel("srn-a", kDims, 8, 1), frames_model_).ok());
    ASSERT_TRUE(SaveModel(*testing::RandomModel("gru-a", kSignatureFeatureDims, 8, 2, true),
                          signature_model_).ok());
  }

  std::unique_ptr<Server> Start(const std::string& weights) {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.weights_path = weights;
    options.store_path = ":memory:";
    options.max_message_bytes = 1 << 20;
    options.core.limits.max_series_length = 1000;
    options.core.limits.max_batch = 8;
    options.core.limits.max_references = 4;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  static std::unique_ptr<v1::SimilarityService::Stub> Connect(const Server& server) {
    return v1::SimilarityService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server.port()), grpc::InsecureChannelCredentials()));
  }

  static std::string frames_model_;
  static std::string signature_model_;
};

std::string BadInputTest::frames_model_;
std::string BadInputTest::signature_model_;

v1::SeriesInput Frames(int frames, int dims = kDims, float fill = 0.5f) {
  v1::SeriesInput in;
  in.mutable_frames()->set_num_features(dims);
  for (int i = 0; i < frames * dims; ++i) in.mutable_frames()->add_values(fill + 0.01f * i);
  return in;
}

struct Case {
  std::string name;
  grpc::StatusCode code;
  std::string message_part;  // the message must say what was wrong
  std::function<grpc::Status(v1::SimilarityService::Stub*, grpc::ClientContext*)> call;
};

template <typename Req, typename Resp>
auto Call(grpc::Status (v1::SimilarityService::Stub::*method)(grpc::ClientContext*, const Req&,
                                                              Resp*),
          Req request) {
  return [method, request](v1::SimilarityService::Stub* stub, grpc::ClientContext* ctx) {
    Resp response;
    return (stub->*method)(ctx, request, &response);
  };
}

v1::EmbedRequest EmbedOf(std::vector<v1::SeriesInput> series) {
  v1::EmbedRequest r;
  for (auto& s : series) *r.add_series() = s;
  return r;
}

v1::VerifyRequest VerifyOf(const std::string& id, v1::SeriesInput q) {
  v1::VerifyRequest r;
  r.set_subject_id(id);
  *r.mutable_query() = q;
  return r;
}

v1::EnrollRequest EnrollOf(const std::string& id, int refs) {
  v1::EnrollRequest r;
  r.set_subject_id(id);
  for (int i = 0; i < refs; ++i) *r.add_references() = Frames(5 + i);
  return r;
}

TEST_F(BadInputTest, EveryBadRequestGetsItsCodeAndTheServerKeepsServing) {
  std::unique_ptr<Server> server = Start(frames_model_);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(*server);
  {
    grpc::ClientContext ctx;
    v1::EnrollResponse r;
    ASSERT_TRUE(stub->Enroll(&ctx, EnrollOf("known", 1), &r).ok());
  }
  using S = v1::SimilarityService::Stub;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  v1::SeriesInput with_nan = Frames(3);
  with_nan.mutable_frames()->set_values(5, nan);
  v1::SeriesInput with_inf = Frames(3);
  with_inf.mutable_frames()->set_values(0, -inf);
  v1::SeriesInput ragged = Frames(3);
  ragged.mutable_frames()->add_values(1.0f);
  v1::SeriesInput zero_features = Frames(3);
  zero_features.mutable_frames()->set_num_features(0);
  v1::SeriesInput pen;
  pen.mutable_pen()->add_x(1);
  pen.mutable_pen()->add_y(1);
  pen.mutable_pen()->add_t_ms(0);
  v1::VerifyRequest bad_threshold = VerifyOf("known", Frames(4));
  bad_threshold.set_threshold(1.5f);
  v1::VerifyRequest nan_threshold = VerifyOf("known", Frames(4));
  nan_threshold.set_threshold(nan);
  v1::IdentifyRequest negative_k;
  *negative_k.mutable_query() = Frames(4);
  negative_k.set_top_k(-1);
  v1::IdentifyRequest huge_k;
  *huge_k.mutable_query() = Frames(4);
  huge_k.set_top_k(1000000);
  v1::ListSubjectsRequest negative_page;
  negative_page.set_page_size(-5);
  v1::SimilarityRequest one_sided;
  *one_sided.mutable_a() = Frames(4);
  v1::EmbedRequest oversized;
  *oversized.add_series() = Frames(1);
  for (int i = 0; i < 400000; ++i) oversized.mutable_series(0)->mutable_frames()->add_values(0.0f);
  v1::GetSubjectRequest get_unknown;
  get_unknown.set_subject_id("nobody");
  v1::DeleteSubjectRequest delete_unknown;
  delete_unknown.set_subject_id("nobody");
  v1::GetSubjectRequest get_bad_id;
  get_bad_id.set_subject_id("../etc/passwd");

  const std::vector<Case> cases = {
      {"NaN value", grpc::StatusCode::INVALID_ARGUMENT, "not finite",
       Call(&S::Embed, EmbedOf({with_nan}))},
      {"infinite value", grpc::StatusCode::INVALID_ARGUMENT, "not finite",
       Call(&S::Embed, EmbedOf({with_inf}))},
      {"empty series", grpc::StatusCode::INVALID_ARGUMENT, "empty",
       Call(&S::Embed, EmbedOf({Frames(0)}))},
      {"no series set", grpc::StatusCode::INVALID_ARGUMENT, "no series",
       Call(&S::Embed, EmbedOf({v1::SeriesInput()}))},
      {"not a multiple", grpc::StatusCode::INVALID_ARGUMENT, "multiple",
       Call(&S::Embed, EmbedOf({ragged}))},
      {"zero features", grpc::StatusCode::INVALID_ARGUMENT, "num_features",
       Call(&S::Embed, EmbedOf({zero_features}))},
      {"wrong feature count", grpc::StatusCode::INVALID_ARGUMENT, "takes 4 features",
       Call(&S::Embed, EmbedOf({Frames(3, 5)}))},
      {"pen input to a frames model", grpc::StatusCode::INVALID_ARGUMENT, "signature models",
       Call(&S::Embed, EmbedOf({pen}))},
      {"series too long", grpc::StatusCode::RESOURCE_EXHAUSTED, "limit",
       Call(&S::Embed, EmbedOf({Frames(1001)}))},
      {"too many series", grpc::StatusCode::RESOURCE_EXHAUSTED, "limit",
       Call(&S::Embed, EmbedOf(std::vector<v1::SeriesInput>(9, Frames(2))))},
      {"no series at all", grpc::StatusCode::INVALID_ARGUMENT, "no series",
       Call(&S::Embed, v1::EmbedRequest())},
      {"oversized message", grpc::StatusCode::RESOURCE_EXHAUSTED, "", Call(&S::Embed, oversized)},
      {"similarity missing b", grpc::StatusCode::INVALID_ARGUMENT,
       "b:", Call(&S::Similarity, one_sided)},
      {"malformed subject id", grpc::StatusCode::INVALID_ARGUMENT, "subject_id",
       Call(&S::Verify, VerifyOf("bad id!", Frames(4)))},
      {"path-like subject id", grpc::StatusCode::INVALID_ARGUMENT, "subject_id",
       Call(&S::GetSubject, get_bad_id)},
      {"overlong subject id", grpc::StatusCode::INVALID_ARGUMENT, "limit",
       Call(&S::Verify, VerifyOf(std::string(129, 'a'), Frames(4)))},
      {"empty subject id", grpc::StatusCode::INVALID_ARGUMENT, "empty",
       Call(&S::Enroll, EnrollOf("", 1))},
      {"no references", grpc::StatusCode::INVALID_ARGUMENT, "no references",
       Call(&S::Enroll, EnrollOf("new", 0))},
      {"too many references", grpc::StatusCode::RESOURCE_EXHAUSTED, "limit",
       Call(&S::Enroll, EnrollOf("new", 5))},
      {"adding past the reference limit", grpc::StatusCode::RESOURCE_EXHAUSTED, "would have",
       Call(&S::Enroll, EnrollOf("known", 4))},
      {"unknown subject (verify)", grpc::StatusCode::NOT_FOUND, "not enrolled",
       Call(&S::Verify, VerifyOf("nobody", Frames(4)))},
      {"unknown subject (get)", grpc::StatusCode::NOT_FOUND, "not enrolled",
       Call(&S::GetSubject, get_unknown)},
      {"unknown subject (delete)", grpc::StatusCode::NOT_FOUND, "not enrolled",
       Call(&S::DeleteSubject, delete_unknown)},
      {"threshold above 1", grpc::StatusCode::INVALID_ARGUMENT, "[0, 1]",
       Call(&S::Verify, bad_threshold)},
      {"NaN threshold", grpc::StatusCode::INVALID_ARGUMENT, "[0, 1]",
       Call(&S::Verify, nan_threshold)},
      {"negative top_k", grpc::StatusCode::INVALID_ARGUMENT, "top_k",
       Call(&S::Identify, negative_k)},
      {"huge top_k", grpc::StatusCode::INVALID_ARGUMENT, "top_k", Call(&S::Identify, huge_k)},
      {"negative page size", grpc::StatusCode::INVALID_ARGUMENT, "page_size",
       Call(&S::ListSubjects, negative_page)},
  };
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    const grpc::Status status = c.call(stub.get(), &ctx);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_NE(status.error_message().find(c.message_part), std::string::npos)
        << c.name << ": '" << status.error_message() << "' does not mention '" << c.message_part
        << "'";
    // The server still answers.
    grpc::ClientContext ok_ctx;
    v1::ModelInfo info;
    ASSERT_TRUE(stub->GetModelInfo(&ok_ctx, v1::GetModelInfoRequest(), &info).ok())
        << "after " << c.name;
  }
  // A failed enrollment changed nothing.
  grpc::ClientContext ctx;
  v1::Subject subject;
  v1::GetSubjectRequest get;
  get.set_subject_id("known");
  ASSERT_TRUE(stub->GetSubject(&ctx, get, &subject).ok());
  EXPECT_EQ(subject.reference_count(), 1);
}

TEST_F(BadInputTest, ExpiredDeadlineIsDeadlineExceeded) {
  std::unique_ptr<Server> server = Start(frames_model_);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(*server);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::EmbedResponse response;
  EXPECT_EQ(stub->Embed(&ctx, EmbedOf({Frames(3)}), &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  grpc::ClientContext ok_ctx;
  EXPECT_TRUE(stub->Embed(&ok_ctx, EmbedOf({Frames(3)}), &response).ok());
}

TEST_F(BadInputTest, MalformedPenTrajectoriesForASignatureModel) {
  std::unique_ptr<Server> server = Start(signature_model_);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(*server);
  auto pen = [](int n) {
    v1::SeriesInput in;
    for (int i = 0; i < n; ++i) {
      in.mutable_pen()->add_x(100 + 3 * i);
      in.mutable_pen()->add_y(50 + (i % 7));
      in.mutable_pen()->add_t_ms(10 * i);
    }
    return in;
  };
  v1::SeriesInput short_y = pen(10);
  short_y.mutable_pen()->mutable_y()->RemoveLast();
  v1::SeriesInput short_pressure = pen(10);
  short_pressure.mutable_pen()->add_pressure(3);
  v1::SeriesInput nan_x = pen(10);
  nan_x.mutable_pen()->set_x(2, std::nan(""));
  v1::SeriesInput one_point = pen(1);
  v1::SeriesInput dot = pen(5);
  for (int i = 0; i < 5; ++i) {
    dot.mutable_pen()->set_x(i, 7);
    dot.mutable_pen()->set_y(i, 7);
  }
  const std::vector<std::pair<std::string, v1::SeriesInput>> cases = {
      {"mismatched arrays", short_y}, {"pressure count", short_pressure}, {"NaN coordinate", nan_x},
      {"a single sample", one_point}, {"all points identical", dot}, {"empty", pen(0)}};
  for (const auto& [name, input] : cases) {
    grpc::ClientContext ctx;
    v1::EmbedResponse r;
    const grpc::Status s = stub->Embed(&ctx, EmbedOf({input}), &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << name << ": " << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::EmbedResponse r;
  const grpc::Status s = stub->Embed(&ctx, EmbedOf({pen(30)}), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.embeddings(0).values_size(), 8);
}

}  // namespace
}  // namespace srn
