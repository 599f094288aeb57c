#include "model/nn/architecture.h"

#include "gtest/gtest.h"
#include "model/nn/parameters.h"

namespace srn {
namespace {

TEST(ArchitectureTest, ParsesEveryFamilyAndNamesItBack) {
  for (const char* name : {"srn-a", "srn-l", "srn-s", "sn-a", "sn-l", "sn-s", "gru-a", "gru-l",
                           "gru-s", "lstm-a", "lstm-l", "lstm-s", "logistic"}) {
    absl::StatusOr<Architecture> arch = ParseFamily(name);
    ASSERT_TRUE(arch.ok()) << name << ": " << arch.status();
    EXPECT_EQ(arch->FamilyName(), name);
  }
}

TEST(ArchitectureTest, StatisticsPoolingDoublesTheEmbedding) {
  Architecture arch = *ParseFamily("gru-s");
  arch.input_dims = 5;
  arch.hidden = 6;
  EXPECT_EQ(arch.pooling, Pooling::kStats);
  EXPECT_EQ(arch.embedding_dims(), 12);
  EXPECT_EQ(PoolingName(arch.pooling), "stats");
  // The head weighs each of the 12 values: v has 12 entries.
  EXPECT_EQ(ParameterLayout(arch).Find("v")->size(), 12);
  arch.hidden = 0;  // the logistic model only averages
  EXPECT_FALSE(arch.Validate().ok());
}

TEST(ArchitectureTest, RejectsUnknownFamilies) {
  for (const char* name : {"", "srn", "srn-x", "rnn-a", "gru-", "-a", "srn-ab"}) {
    EXPECT_EQ(ParseFamily(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

TEST(ArchitectureTest, ValidateRejectsImpossibleShapes) {
  Architecture arch;
  arch.input_dims = 0;
  EXPECT_FALSE(arch.Validate().ok());
  arch.input_dims = 13;
  EXPECT_TRUE(arch.Validate().ok());
  arch.layers = 0;
  EXPECT_FALSE(arch.Validate().ok());
  arch.layers = 1;
  arch.cell = CellType::kGru;
  arch.recurrent = false;
  EXPECT_FALSE(arch.Validate().ok());
}

TEST(ParameterLayoutTest, CountsMatchTheCellEquations) {
  Architecture arch = *ParseFamily("gru-a");
  arch.input_dims = 5;
  arch.hidden = 4;
  arch.layers = 2;
  ParameterLayout layout(arch);
  // Per layer: W (12 x in), A (12 x 4), b (12), b_hh (12); head: v (4), c (1).
  EXPECT_EQ(layout.total_size(), (12 * 5 + 48 + 24) + (12 * 4 + 48 + 24) + 4 + 1);
  ASSERT_NE(layout.Find("l1.A"), nullptr);
  EXPECT_EQ(layout.Find("l1.A")->rows, 12);

  Architecture sn = *ParseFamily("sn-l");
  sn.input_dims = 3;
  sn.hidden = 2;
  EXPECT_EQ(ParameterLayout(sn).Find("l0.A"), nullptr);
  EXPECT_EQ(ParameterLayout(sn).total_size(), 2 * 3 + 2 + 2 + 1);

  Architecture logistic = *ParseFamily("logistic");
  logistic.input_dims = 7;
  EXPECT_EQ(ParameterLayout(logistic).total_size(), 7 + 1);
}

TEST(ParameterLayoutTest, InitIsUniformInRangeAndDeterministic) {
  Architecture arch = *ParseFamily("srn-a");
  arch.input_dims = 10;
  arch.hidden = 32;
  const Vector a = InitParameters(arch, 0.1f, 7);
  const Vector b = InitParameters(arch, 0.1f, 7);
  const Vector c = InitParameters(arch, 0.1f, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_LE(a.cwiseAbs().maxCoeff(), 0.1f);
  EXPECT_GT(a.cwiseAbs().maxCoeff(), 0.09f);
}

}  // namespace
}  // namespace srn
