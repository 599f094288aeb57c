// End-to-end runs of training and model swaps on the real srn-server: train on uploaded SVC2004
// signatures and switch to the result; and swap models back and forth under continuous Verify and
// Embed load, checking that no call fails and that every response's scores are those of the model
// it names.

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/series_files.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "srn/v1/similarity.grpc.pb.h"
#include "srn/v1/training.grpc.pb.h"
#include "tests/client/e2e_fixture.h"
#include "tests/testing/test_data.h"

namespace srn::testing {
namespace {

// The string value of "key" in srnctl's one-line JSON output ("" when absent).
std::string JsonString(const std::string& json, const std::string& key) {
  const std::string prefix = absl::StrCat("\"", key, "\":\"");
  const size_t at = json.find(prefix);
  if (at == std::string::npos) return "";
  const size_t begin = at + prefix.size();
  return json.substr(begin, json.find('"', begin) - begin);
}

class TrainingEndToEndTest : public EndToEndTest {
 protected:
  std::unique_ptr<ServerProcess> StartTrainingServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {absl::StrCat("--model_dir=", dir_.File("models")),
                                      "--model_poll_seconds=0", "--training_threads=1",
                                      "--drain_seconds=0", "--grace_seconds=1"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return StartServer(dir_.File("store.db"), flags);
  }
};

TEST_F(TrainingEndToEndTest, TrainsOnUploadedSignaturesActivatesAndStillVerifies) {
  SRN_REQUIRE_DATA(u1s1, "svc2004/Task2/U1S1.TXT");
  const std::filesystem::path task2 = std::filesystem::path(u1s1).parent_path();
  // Five real signers: all 20 genuine signatures and 4 skilled forgeries each.
  // The header in any letter case, as the server's CSV datasets take it (one manifest reader).
  std::string manifest = "Path,Label,Forgery\n";
  for (int u = 1; u <= 5; ++u) {
    for (int s = 1; s <= 20; ++s)
      absl::StrAppend(&manifest, (task2 / absl::StrCat("U", u, "S", s, ".TXT")).string(), ",U", u,
                      ",0\n");
    for (int s = 21; s <= 24; ++s)
      absl::StrAppend(&manifest, (task2 / absl::StrCat("U", u, "S", s, ".TXT")).string(), ",U", u,
                      ",1\n");
  }
  ASSERT_TRUE(WriteFile(dir_.File("upload.csv"), manifest));

  std::unique_ptr<ServerProcess> server = StartTrainingServer();
  ASSERT_NE(server, nullptr);
  ProcessResult r = Ctl(*server, {"--subject=alice", "enroll", Svc(0), Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Ctl(*server, {"--format=svc", absl::StrCat("--upload=", dir_.File("upload.csv")),
                    "--hidden=8", "--epochs=2", "--pairs_per_epoch=300", "--batch_pairs=30",
                    "--validation=examples", "--watch", "train"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("queued job-1 (upload of 120 series in 5 classes)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("succeeded"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("version 2"), std::string::npos) << r.out;

  r = Ctl(*server, {"models"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("* v1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  v2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("job-1"), std::string::npos) << r.out;

  absl::StatusOr<std::shared_ptr<const SimilarityModel>> trained =
      LoadModel(dir_.File("models/v2.srnw"));
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::string trained_id = ModelFingerprint(**trained);
  r = Ctl(*server, {"activate", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(absl::StrCat("active: v2 ", trained_id)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("re-embedded 1 subjects"), std::string::npos) << r.out;

  r = Ctl(*server, {"--json", "embed", Svc(2)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(JsonString(r.out, "model_id"), trained_id) << r.out;

  // alice was re-embedded by the new model: her verification scores are the new model's.
  r = Ctl(*server, {"--json", "--subject=alice", "verify", Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(JsonString(r.out, "model_id"), trained_id) << r.out;
  const std::vector<double> refs = NumbersAfter(r.out, "\"reference_scores\":[");
  absl::StatusOr<float> s0 = (*trained)->Similarity(features_[1], features_[0]);
  absl::StatusOr<float> s1 = (*trained)->Similarity(features_[1], features_[1]);
  ASSERT_TRUE(s0.ok() && s1.ok());
  const std::optional<double> score = NumberAfter(r.out, "\"score\":");
  ASSERT_TRUE(score.has_value()) << r.out;
  EXPECT_NEAR(*score, (*s0 + *s1) / 2, 1e-4) << r.out;

  // Rollback brings back version 1 and its scores; the job list shows the finished job.
  r = Ctl(*server, {"rollback"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("active: v1 "), std::string::npos) << r.out;
  r = Ctl(*server, {"--json", "--subject=alice", "verify", Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(JsonString(r.out, "model_id"), ModelFingerprint(*model_)) << r.out;
  EXPECT_NEAR(NumberAfter(r.out, "\"score\":").value_or(-1),
              (Similarity(1, 0) + Similarity(1, 1)) / 2, 1e-4)
      << r.out;
  r = Ctl(*server, {"--all", "jobs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("job-1\tsucceeded"), std::string::npos) << r.out;
  (void)refs;
}

TEST_F(TrainingEndToEndTest, FailuresAndRestartLeaveClearStatesAndServingGoesOn) {
  std::filesystem::create_directories(dir_.File("data/bad"));
  ASSERT_TRUE(WriteFile(dir_.File("data/bad/manifest.csv"), "path,label\na.csv,x\nb.csv,y\n"));
  ASSERT_TRUE(WriteFile(dir_.File("data/bad/a.csv"), "1,2\n3,4\n"));
  ASSERT_TRUE(WriteFile(dir_.File("data/bad/b.csv"), "1,2\n3,oops\n"));
  // Synthetic signatures: 4 shapes x 20 copies.
  std::string manifest = "path,label\n";
  for (int shape = 0; shape < 4; ++shape) {
    for (int copy = 0; copy < 20; ++copy) {
      const std::string file = dir_.File(absl::StrCat("syn", shape, "_", copy, ".TXT"));
      ASSERT_TRUE(WriteSvcFile(file, SyntheticSignature(shape, 100 + copy)));
      absl::StrAppend(&manifest, file, ",shape", shape, "\n");
    }
  }
  ASSERT_TRUE(WriteFile(dir_.File("upload.csv"), manifest));
  std::unique_ptr<ServerProcess> server =
      StartTrainingServer({absl::StrCat("--data_dir=", dir_.File("data"))});
  ASSERT_NE(server, nullptr);

  ProcessResult r =
      Ctl(*server, {"--dataset=bad/manifest.csv", "--dataset_format=csv", "--watch", "train"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("job-1\tfailed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b.csv:2"), std::string::npos) << r.out;

  r = Ctl(*server, {"--dataset=../upload.csv", "--dataset_format=csv", "train"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("PERMISSION_DENIED"), std::string::npos) << r.err;

  // An absurd learning rate diverges.
  r = Ctl(*server, {"--format=svc", absl::StrCat("--upload=", dir_.File("upload.csv")), "--lr=1e6",
                    "--hidden=8", "--epochs=3", "--pairs_per_epoch=200", "--validation=examples",
                    "--watch", "train"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("diverged"), std::string::npos) << r.out;

  // A long job, cancelled; then another, interrupted by a restart.
  for (int job = 3; job <= 4; ++job) {
    r = Ctl(*server,
            {"--format=svc", absl::StrCat("--upload=", dir_.File("upload.csv")), "--hidden=8",
             "--epochs=1000", "--pairs_per_epoch=100000", "--validation=examples", "train"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(absl::StrCat("queued job-", job)), std::string::npos) << r.out;
  }
  r = Ctl(*server, {"cancel", "job-3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctl(*server, {"watch", "job-3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("job-3\tcancelled"), std::string::npos) << r.out;
  r = Ctl(*server, {"--format=svc", "embed", Svc(0)});  // serving is unaffected throughout
  EXPECT_EQ(r.exit_code, 0) << r.err;

  double seconds = 0;
  server->Terminate(10, &seconds);
  server = StartTrainingServer({absl::StrCat("--data_dir=", dir_.File("data"))});
  ASSERT_NE(server, nullptr);
  r = Ctl(*server, {"--all", "jobs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("job-4\tinterrupted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("job-3\tcancelled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("job-2\tfailed"), std::string::npos) << r.out;
  const absl::StatusOr<std::string> metrics = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricValue(*metrics, "srn_training_jobs", {{"state", "interrupted"}}), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_training_jobs", {{"state", "failed"}}), 2.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_training_jobs", {{"state", "running"}}), 0.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_training_progress_ratio", {}), 0.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_model_swaps_total", {{"outcome", "failure"}}), 0.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_model_info", {{"version", "1"}}), 1.0);
}

TEST_F(TrainingEndToEndTest, AdminOnlyAndNeedsAModelDirectory) {
  const std::string tokens = dir_.File("tokens");
  ASSERT_TRUE(WriteFile(
      tokens, "admin admin-token-0123456789abcdef\nreader reader-token-0123456789abcdef\n"));
  ASSERT_EQ(::chmod(tokens.c_str(), 0600), 0);  // the server refuses a file others may read
  std::unique_ptr<ServerProcess> server =
      StartTrainingServer({absl::StrCat("--tokens_file=", tokens)});
  ASSERT_NE(server, nullptr);
  std::vector<std::string> reader = CleanEnvironment();
  reader.push_back("SRN_TOKEN=reader-token-0123456789abcdef");
  std::vector<std::string> admin = CleanEnvironment();
  admin.push_back("SRN_TOKEN=admin-token-0123456789abcdef");
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"jobs"}, {"models"}, {"rollback"}, {"cancel", "job-1"}}) {
    ProcessResult r = Ctl(*server, command, reader);
    EXPECT_EQ(r.exit_code, 1) << command[0];
    EXPECT_NE(r.err.find("PERMISSION_DENIED"), std::string::npos) << command[0] << ": " << r.err;
  }
  ProcessResult r = Ctl(*server, {"models"}, admin);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("* v1"), std::string::npos) << r.out;
  r = Ctl(*server, {"rollback"}, admin);
  EXPECT_NE(r.err.find("FAILED_PRECONDITION: no earlier activation"), std::string::npos) << r.err;

  // Without --model_dir the services exist but refuse.
  std::unique_ptr<ServerProcess> plain = StartServer(":memory:");
  ASSERT_NE(plain, nullptr);
  r = Ctl(*plain, {"models"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--model_dir"), std::string::npos) << r.err;
}

// Several clients Verify and Embed without pause while the test activates and rolls back models.
TEST_F(TrainingEndToEndTest, SwapsUnderLoadFailNothingAndNeverMixModels) {
  // Two more signature models, dropped into the model directory like srn-train output.
  std::filesystem::create_directories(dir_.File("models"));
  std::map<std::string, std::shared_ptr<const SimilarityModel>> models;
  models[ModelFingerprint(*model_)] = model_;
  for (uint64_t seed : {11, 12}) {
    auto m = WriteSignatureModel(dir_.File(absl::StrCat("models/offline", seed, ".srnw")),
                                 features_, seed);
    ASSERT_TRUE(m.ok()) << m.status();
    models[ModelFingerprint(**m)] = *m;
  }
  ASSERT_EQ(models.size(), 3u);
  std::unique_ptr<ServerProcess> server = StartTrainingServer({"--threads=2"});
  ASSERT_NE(server, nullptr);
  for (const char* subject : {"alice", "bob"}) {
    const int first = subject[0] == 'a' ? 0 : 2;
    ProcessResult r =
        Ctl(*server, {absl::StrCat("--subject=", subject), "enroll", Svc(first), Svc(first + 1)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<v1::SeriesInput> inputs;
  for (int i = 0; i < kSignatures; ++i) {
    absl::StatusOr<v1::SeriesInput> in = ReadSeriesInput(Svc(i), SeriesFormat::kSvc);
    ASSERT_TRUE(in.ok()) << in.status();
    inputs.push_back(*in);
  }

  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  struct Observed {
    int query;
    bool alice;
    std::string model_id;
    std::vector<float> values;  // reference scores (Verify) or the embedding (Embed)
    bool embed;
  };
  std::mutex mu;
  std::vector<Observed> observed;
  std::vector<std::string> failures;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::SimilarityService::NewStub(channel);
      std::mt19937 rng(c);
      while (!stop.load()) {
        const int q = static_cast<int>(rng() % kSignatures);
        const bool alice = rng() % 2 == 0;
        Observed o{q, alice, "", {}, c % 2 == 1};
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        grpc::Status status;
        if (o.embed) {
          v1::EmbedRequest request;
          *request.add_series() = inputs[q];
          v1::EmbedResponse response;
          status = stub->Embed(&ctx, request, &response);
          o.model_id = response.model_id();
          if (status.ok())
            o.values.assign(response.embeddings(0).values().begin(),
                            response.embeddings(0).values().end());
        } else {
          v1::VerifyRequest request;
          request.set_subject_id(alice ? "alice" : "bob");
          *request.mutable_query() = inputs[q];
          v1::VerifyResponse response;
          status = stub->Verify(&ctx, request, &response);
          o.model_id = response.model_id();
          o.values.assign(response.reference_scores().begin(), response.reference_scores().end());
        }
        std::lock_guard<std::mutex> lock(mu);
        if (!status.ok()) {
          failures.push_back(absl::StrCat(status.error_code(), ": ", status.error_message()));
        } else {
          observed.push_back(std::move(o));
        }
      }
    });
  }
  // Health must say SERVING throughout.
  std::atomic<int> not_serving{0};
  std::atomic<int> health_checks{0};
  clients.emplace_back([&] {
    auto health = grpc::health::v1::Health::NewStub(channel);
    while (!stop.load()) {
      grpc::ClientContext ctx;
      grpc::health::v1::HealthCheckResponse response;
      const grpc::Status status =
          health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
      if (!status.ok() || response.status() != grpc::health::v1::HealthCheckResponse::SERVING)
        ++not_serving;
      ++health_checks;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // Versions: 1 = the fixture's model, 2 and 3 = the dropped files.
  const std::vector<std::vector<std::string>> steps = {
      {"activate", "2"}, {"activate", "3"}, {"rollback"}, {"rollback"}, {"activate", "3"},
      {"activate", "1"}, {"rollback"},      {"activate", "2"}};
  // Each step names the version it made active, which is the one expected (a rollback returns to
  // the activation before), its model is one of the three, and Verify then answers with it.
  std::vector<int> history = {1};
  std::map<int, std::string> version_ids = {{1, ModelFingerprint(*model_)}};
  for (const auto& step : steps) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    const std::string what = absl::StrJoin(step, " ");
    ProcessResult r = Ctl(*server, step);
    ASSERT_EQ(r.exit_code, 0) << what << ": " << r.err;
    if (step[0] == "rollback") {
      history.pop_back();
    } else {
      history.push_back(std::stoi(step[1]));
    }
    const std::string prefix = absl::StrCat("active: v", history.back(), " ");
    ASSERT_THAT(r.out, ::testing::StartsWith(prefix)) << what;
    const std::string id =
        r.out.substr(prefix.size(), r.out.find(' ', prefix.size()) - prefix.size());
    EXPECT_TRUE(models.count(id)) << what << ": unknown model " << id;
    // A version keeps its model: the same id whenever it comes back.
    if (auto [it, added] = version_ids.emplace(history.back(), id); !added) {
      EXPECT_EQ(it->second, id) << what;
    }
    r = Ctl(*server, {"--json", "--subject=alice", "verify", Svc(0)});
    ASSERT_EQ(r.exit_code, 0) << what << ": " << r.err;
    EXPECT_EQ(JsonString(r.out, "model_id"), id) << what;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  stop.store(true);
  for (std::thread& t : clients) t.join();

  EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls, e.g. " << failures.front();
  EXPECT_EQ(not_serving.load(), 0) << "of " << health_checks.load() << " health checks";
  EXPECT_GT(health_checks.load(), 10);
  ASSERT_GT(observed.size(), 50u);
  std::set<std::string> seen_models;
  // Recompute a sample offline with the model each response names.
  for (size_t i = 0; i < observed.size(); i += std::max<size_t>(1, observed.size() / 200)) {
    const Observed& o = observed[i];
    seen_models.insert(o.model_id);
    auto it = models.find(o.model_id);
    ASSERT_NE(it, models.end()) << "unknown model id " << o.model_id;
    const SimilarityModel& m = *it->second;
    if (o.embed) {
      absl::StatusOr<RowMatrix> emb = m.Embed({&features_[o.query]});
      ASSERT_TRUE(emb.ok());
      ASSERT_EQ(static_cast<int>(o.values.size()), emb->cols());
      for (int d = 0; d < emb->cols(); ++d)
        ASSERT_NEAR(o.values[d], (*emb)(0, d), 1e-4) << "response " << i;
    } else {
      const int first = o.alice ? 0 : 2;
      ASSERT_EQ(o.values.size(), 2u);
      for (int r = 0; r < 2; ++r) {
        absl::StatusOr<float> s = m.Similarity(features_[o.query], features_[first + r]);
        ASSERT_TRUE(s.ok());
        ASSERT_NEAR(o.values[r], *s, 1e-4)
            << "response " << i << " reference " << r << " model " << o.model_id;
      }
    }
  }
  EXPECT_GE(seen_models.size(), 2u);  // the sample spans swaps
  const absl::StatusOr<std::string> metrics = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricValue(*metrics, "srn_model_swaps_total", {{"outcome", "success"}}), 8.0);
  EXPECT_EQ(MetricValue(*metrics, "srn_model_info", {{"version", "2"}}), 1.0);
}

}  // namespace
}  // namespace srn::testing
