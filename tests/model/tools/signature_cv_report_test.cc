#include "model/tools/signature_cv_report.h"

#include <filesystem>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

TEST(SignatureCvReportTest, FailsWithoutTheData) {
  SignatureCvRequest request;
  request.data_dir = "/nonexistent";
  request.model = "dtw";
  std::ostringstream log;
  EXPECT_FALSE(RunSignatureCvReport(request, log).ok());
}

TEST(SignatureCvReportTest, ServedTrialsNeedAModel) {
  SRN_REQUIRE_DATA(task2, "svc2004/Task2");
  SignatureCvRequest request;
  request.data_dir = std::filesystem::path(task2).parent_path().parent_path().string();
  request.model = "dtw";
  request.served_trials_csv = "/dev/null";
  std::ostringstream log;
  const absl::StatusOr<std::vector<std::string>> lines = RunSignatureCvReport(request, log);
  EXPECT_EQ(lines.status().code(), absl::StatusCode::kInvalidArgument) << lines.status();
}

}  // namespace
}  // namespace srn
