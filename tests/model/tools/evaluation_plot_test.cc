#include "model/tools/evaluation_plot.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

TEST(NormalQuantileTest, MatchesTheNormalTable) {
  EXPECT_NEAR(NormalQuantile(0.5), 0.0, 1e-9);
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963985, 1e-8);
  EXPECT_NEAR(NormalQuantile(0.025), -1.959963985, 1e-8);
  EXPECT_NEAR(NormalQuantile(0.001), -3.090232306, 1e-8);  // the lower region
  EXPECT_NEAR(NormalQuantile(0.999), 3.090232306, 1e-8);
}

class EvaluationPlotTest : public testing::ScratchDirTest {
 protected:
  static EvaluationPlot Plot() {
    EvaluationPlot p;
    p.title = "srn-a on <mine> & co";
    p.score_name = "similarity";
    p.scores = {0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.6};
    p.labels = {1, 1, 1, 0, 0, 0, 0};
    p.curve = *OperatingPoints(p.scores, p.labels);
    p.eer = *Eer(p.scores, p.labels);
    p.marks.push_back({"FAR<=0.25", 0.65, 0.25, 0.0});
    return p;
  }
  std::string Read(const std::string& path) const {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

TEST_F(EvaluationPlotTest, DrawsThreePanelsWithTheMarkedPoints) {
  const std::string path = dir() + "/plot.svg";
  ASSERT_TRUE(WriteEvaluationSvg(Plot(), path).ok());
  const std::string svg = Read(path);
  EXPECT_THAT(svg, HasSubstr("<svg xmlns='http://www.w3.org/2000/svg'"));
  EXPECT_THAT(svg, HasSubstr("&lt;mine&gt; &amp; co"));  // text escaped
  for (const char* title : {">ROC<", ">DET<", ">scores<", ">genuine<", ">impostor<"}) {
    EXPECT_THAT(svg, HasSubstr(title));
  }
  EXPECT_THAT(svg, HasSubstr("EER"));
  EXPECT_THAT(svg, HasSubstr("FAR&lt;=0.25"));
  EXPECT_THAT(svg, HasSubstr("</svg>"));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);  // the accept-nothing point is clipped
}

TEST_F(EvaluationPlotTest, RefusesWhatItCannotDraw) {
  EvaluationPlot p = Plot();
  p.labels.assign(p.labels.size(), 1);
  EXPECT_EQ(WriteEvaluationSvg(p, dir() + "/a.svg").code(), absl::StatusCode::kInvalidArgument);
  p = Plot();
  p.curve.clear();
  EXPECT_EQ(WriteEvaluationSvg(p, dir() + "/b.svg").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteEvaluationSvg(Plot(), dir() + "/no/such/dir/c.svg").code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace srn
