#ifndef SRN_TESTS_CLIENT_E2E_FIXTURE_H_
#define SRN_TESTS_CLIENT_E2E_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/data/series.h"
#include "model/nn/similarity_model.h"
#include "tests/client/e2e_harness.h"

namespace srn::testing {

// A temp dir holding a small signature model and synthetic signature files (as SVC2004 files
// and, for some, as CSV files of their features), plus in-process expectations computed with
// the same model. Each test starts its own server(s).
class EndToEndTest : public ::testing::Test {
 protected:
  // Signature files: name -> (shape, seed). Copies of one shape differ by a little jitter.
  static constexpr int kSignatures = 6;
  void SetUp() override;

  // Starts srn-server on this test's model and `store`, with `extra` flags.
  std::unique_ptr<ServerProcess> StartServer(
      const std::string& store, std::vector<std::string> extra = {},
      const std::vector<std::string>& env = CleanEnvironment());

  // srnctl --server=<server> args...
  ProcessResult Ctl(const ServerProcess& server, std::vector<std::string> args,
                    const std::vector<std::string>& env = CleanEnvironment());

  // The in-process similarity of signatures i and j (as the server should compute it).
  double Similarity(int i, int j) const;

  std::string Svc(int i) const { return svc_[i]; }
  std::string Csv(int i) const { return csv_[i]; }

  TempDir dir_;
  std::string model_path_;
  std::shared_ptr<const SimilarityModel> model_;
  std::vector<std::string> svc_;
  std::vector<std::string> csv_;
  std::vector<Series> features_;
};

}  // namespace srn::testing

#endif  // SRN_TESTS_CLIENT_E2E_FIXTURE_H_
