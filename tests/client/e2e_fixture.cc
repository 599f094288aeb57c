#include "tests/client/e2e_fixture.h"

#include "absl/strings/str_cat.h"

namespace srn::testing {

void EndToEndTest::SetUp() {
  ASSERT_FALSE(dir_.path().empty()) << "cannot create a temp dir";
  // Shapes 0, 0, 1, 1, 2, 3: two subjects with two similar copies each, and two loners.
  const int shapes[kSignatures] = {0, 0, 1, 1, 2, 3};
  for (int i = 0; i < kSignatures; ++i) {
    svc_.push_back(dir_.File(absl::StrCat("U", shapes[i], "S", i, ".TXT")));
    ASSERT_TRUE(WriteSvcFile(svc_.back(), SyntheticSignature(shapes[i], /*seed=*/i + 1)));
    absl::StatusOr<Series> features = SignatureFeaturesOfFile(svc_.back());
    ASSERT_TRUE(features.ok()) << features.status();
    features_.push_back(*std::move(features));
    csv_.push_back(dir_.File(absl::StrCat("sig", i, ".csv")));
    ASSERT_TRUE(WriteCsvFile(csv_.back(), features_.back()));
  }
  model_path_ = dir_.File("model.srnw");
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
      WriteSignatureModel(model_path_, features_, /*seed=*/7);
  ASSERT_TRUE(model.ok()) << model.status();
  model_ = *std::move(model);
}

std::unique_ptr<ServerProcess> EndToEndTest::StartServer(const std::string& store,
                                                         std::vector<std::string> extra,
                                                         const std::vector<std::string>& env) {
  static int started = 0;
  std::vector<std::string> flags = {absl::StrCat("--weights=", model_path_),
                                    absl::StrCat("--store=", store), "--threads=1"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(flags, dir_.File(absl::StrCat("server", ++started, ".log")), env);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

ProcessResult EndToEndTest::Ctl(const ServerProcess& server, std::vector<std::string> args,
                                const std::vector<std::string>& env) {
  args.insert(args.begin(), absl::StrCat("--server=", server.address()));
  return RunSrnctl(args, env);
}

double EndToEndTest::Similarity(int i, int j) const {
  absl::StatusOr<float> s = model_->Similarity(features_[i], features_[j]);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : -1;
}

}  // namespace srn::testing
