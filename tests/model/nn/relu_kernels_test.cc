#include "model/nn/relu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace srn {
namespace relu_kernels {
namespace {

std::string Name(Isa isa) {
  switch (isa) {
    case Isa::kNone:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::vector<float> Uniform(size_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// A layer's inputs and weights as the kernels take them (x: steps x in, W^T: in x h, b, A^T:
// h x h), drawn from seeds seed .. seed + 3. The recurrent weights are small enough to keep the
// state bounded, so the tolerances are fair, and the bias lets about half of the states be zero.
struct RandomLayer {
  RandomLayer(int steps, int in, int h, uint64_t seed)
      : x(Uniform(static_cast<size_t>(steps) * in, -1, 1, seed)),
        wt(Uniform(static_cast<size_t>(in) * h, -0.5, 0.5, seed + 1)),
        b(Uniform(h, -0.2, 0.2, seed + 2)),
        at(Uniform(static_cast<size_t>(h) * h, -1.5f / h, 1.5f / h, seed + 3)) {}
  std::vector<float> x, wt, b, at;
};

// z_t = relu(b + x_t W^T + z_{t-1} A^T), in double, from W^T and A^T as the kernel takes them.
std::vector<double> Reference(const std::vector<float>& x, int steps, int in,
                              const std::vector<float>& wt, const std::vector<float>& b,
                              const std::vector<float>& at, int h, const float* init) {
  std::vector<double> z(static_cast<size_t>(steps) * h);
  std::vector<double> prev(h, 0.0);
  if (init != nullptr) prev.assign(init, init + h);
  for (int t = 0; t < steps; ++t) {
    for (int i = 0; i < h; ++i) {
      double s = b[i];
      for (int k = 0; k < in; ++k) s += double{x[t * in + k]} * wt[k * h + i];
      for (int j = 0; j < h; ++j) s += prev[j] * at[j * h + i];
      z[static_cast<size_t>(t) * h + i] = std::max(s, 0.0);
    }
    std::copy(z.begin() + static_cast<size_t>(t) * h, z.begin() + static_cast<size_t>(t + 1) * h,
              prev.begin());
  }
  return z;
}

std::vector<Isa> Variants() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (Supported(isa, 64)) isas.push_back(isa);
  }
  return isas;
}

TEST(ReluKernelsTest, BestIsaIsSupported) {
  const Isa best = BestIsa();
  if (best == Isa::kNone) GTEST_SKIP() << "this CPU has no AVX2: the kernels are never used";
  EXPECT_TRUE(Supported(best, 64));
  EXPECT_FALSE(Supported(best, 0));
  EXPECT_FALSE(Supported(best, 12)) << "not a multiple of the vector width";
  EXPECT_FALSE(Supported(Isa::kNone, 64));
}

// The cap (srn-train's and srn-eval's --kernels, SRN_KERNELS): avx2 keeps AVX-512 out, so that
// results are those of a CPU without it; portable keeps every kernel out; auto lifts it.
TEST(ReluKernelsTest, TheCapLimitsTheKernelsChosen) {
  EXPECT_EQ(*ParseKernels("auto"), Isa::kAvx512);
  EXPECT_EQ(*ParseKernels("avx2"), Isa::kAvx2);
  EXPECT_EQ(*ParseKernels("portable"), Isa::kNone);
  const absl::StatusOr<Isa> bad = ParseKernels("avx512");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("use auto, avx2 or portable"), std::string::npos);

  CapIsa(Isa::kAvx512);
  const Isa cpu = BestIsa();
  CapIsa(Isa::kAvx2);
  EXPECT_EQ(BestIsa(), cpu == Isa::kAvx512 ? Isa::kAvx2 : cpu);
  EXPECT_NE(BestIsaFor(64), Isa::kAvx512);
  EXPECT_FALSE(Supported(Isa::kAvx512, 64));
  CapIsa(Isa::kNone);
  EXPECT_EQ(BestIsa(), Isa::kNone);
  EXPECT_EQ(BestIsaFor(64), Isa::kNone);
  CapIsa(Isa::kAvx512);
  EXPECT_EQ(BestIsa(), cpu);
}

TEST(ReluKernelsTest, NonZerosListsEveryNonZeroInOrder) {
  std::vector<Isa> isas = Variants();
  isas.push_back(Isa::kNone);
  for (Isa isa : isas) {
    for (int h : {1, 7, 8, 9, 16, 63, 64, 97, 128}) {
      std::vector<float> z = Uniform(h, -1, 1, 100 + h);
      for (float& v : z) v = std::max(v, 0.0f);  // about half zero, as a ReLU state
      z[0] = 0.0f;
      z[h - 1] = 0.25f;  // the last entry, which tails handle
      std::vector<int> index(h, -1);
      std::vector<float> value(h, -1.0f);
      const int n = NonZeros(isa, z.data(), h, index.data(), value.data());
      std::vector<int> expected;
      for (int j = 0; j < h; ++j) {
        if (z[j] != 0.0f) expected.push_back(j);
      }
      ASSERT_EQ(n, static_cast<int>(expected.size())) << Name(isa) << " h=" << h;
      for (int k = 0; k < n; ++k) {
        EXPECT_EQ(index[k], expected[k]) << Name(isa) << " h=" << h << " k=" << k;
        EXPECT_EQ(value[k], z[expected[k]]) << Name(isa) << " h=" << h << " k=" << k;
      }
    }
  }
}

TEST(ReluKernelsTest, EveryVariantMatchesTheCellEquations) {
  const std::vector<Isa> isas = Variants();
  if (isas.empty()) GTEST_SKIP() << "this CPU has no AVX2: the kernels are never used";
  // Widths exercising every block size (64, then 32, 16, 8) and their combinations.
  for (Isa isa : isas) {
    for (int h : {16, 32, 48, 64, 80, 128, 144, 200}) {
      if (!Supported(isa, h)) continue;
      for (bool with_init : {false, true}) {
        const int in = 7, steps = 25;
        const RandomLayer l(steps, in, h, 1);
        std::vector<float> init = Uniform(h, -1, 1, 5);
        for (float& v : init) v = std::max(v, 0.0f);
        const float* init_ptr = with_init ? init.data() : nullptr;

        std::vector<float> z(static_cast<size_t>(steps) * h, -1.0f);
        std::vector<float> sum(h, 0.25f);  // added to, not overwritten
        ReluRecurrence(isa, l.x.data(), steps, in, l.wt.data(), l.b.data(), l.at.data(), h,
                       init_ptr, z.data(), sum.data());
        const std::vector<double> expected =
            Reference(l.x, steps, in, l.wt, l.b, l.at, h, init_ptr);
        int zeros = 0;
        for (size_t i = 0; i < z.size(); ++i) {
          ASSERT_NEAR(z[i], expected[i], 1e-5 * (1 + std::abs(expected[i])))
              << Name(isa) << " h=" << h << " init=" << with_init << " at " << i;
          zeros += expected[i] == 0.0;
        }
        for (int i = 0; i < h; ++i) {
          double total = 0.25;
          for (int t = 0; t < steps; ++t) total += expected[static_cast<size_t>(t) * h + i];
          ASSERT_NEAR(sum[i], total, 1e-5 * (1 + std::abs(total)))
              << Name(isa) << " h=" << h << " init=" << with_init << " sum " << i;
        }
        // Both zero and non-zero states occur, so skipping zeros is exercised.
        EXPECT_GT(zeros, 0);
        EXPECT_LT(zeros, static_cast<int>(z.size()));
      }
    }
  }
}

TEST(ReluKernelsTest, PooledVariantKeepsTheMeanOrTheLastState) {
  const std::vector<Isa> isas = Variants();
  if (isas.empty()) GTEST_SKIP() << "this CPU has no AVX2: the kernels are never used";
  for (Isa isa : isas) {
    for (int h : {16, 64, 80, 128}) {
      if (!Supported(isa, h)) continue;
      for (int steps : {1, 2, 31}) {
        const int in = 5;
        const RandomLayer l(steps, in, h, 11);
        const std::vector<double> z = Reference(l.x, steps, in, l.wt, l.b, l.at, h, nullptr);
        for (bool mean : {true, false}) {
          std::vector<float> out(h, -1.0f);
          ReluRecurrencePooled(isa, l.x.data(), steps, in, l.wt.data(), l.b.data(), l.at.data(), h,
                               mean, out.data());
          for (int i = 0; i < h; ++i) {
            double expected = 0;
            if (mean) {
              for (int t = 0; t < steps; ++t) expected += z[static_cast<size_t>(t) * h + i];
              expected /= steps;
            } else {
              expected = z[static_cast<size_t>(steps - 1) * h + i];
            }
            ASSERT_NEAR(out[i], expected, 1e-5 * (1 + std::abs(expected)))
                << Name(isa) << " h=" << h << " steps=" << steps << " mean=" << mean << " i=" << i;
          }
        }
      }
    }
  }
}

// d_pre_t = (z_t > 0) * (d_z_t + d_pre_(t+1) A), from the last step to the first, in double:
// the cell's chain rule written out, with A = (A^T)^T as the forward kernel takes it.
std::vector<double> ReferenceBackward(const std::vector<float>& z, int steps,
                                      const std::vector<float>& at, int h,
                                      const std::vector<float>& d_z, bool every_step) {
  std::vector<double> d_pre(static_cast<size_t>(steps) * h, 0.0);
  for (int t = steps - 1; t >= 0; --t) {
    for (int i = 0; i < h; ++i) {
      double g = every_step || t == steps - 1 ? d_z[i] : 0.0;
      if (t + 1 < steps) {
        // d(pre_(t+1), j) / d(z_t, i) = A[j][i] = A^T[i][j].
        for (int j = 0; j < h; ++j) g += d_pre[static_cast<size_t>(t + 1) * h + j] * at[i * h + j];
      }
      d_pre[static_cast<size_t>(t) * h + i] = z[static_cast<size_t>(t) * h + i] > 0 ? g : 0.0;
    }
  }
  return d_pre;
}

TEST(ReluKernelsTest, BackwardMatchesTheChainRule) {
  const std::vector<Isa> isas = Variants();
  if (isas.empty()) GTEST_SKIP() << "this CPU has no AVX2: the kernels are never used";
  for (Isa isa : isas) {
    for (int h : {16, 32, 48, 64, 80, 128, 144, 200}) {
      if (!Supported(isa, h)) continue;
      for (int steps : {1, 2, 30}) {
        for (bool every_step : {true, false}) {
          const int in = 6;
          const RandomLayer l(steps, in, h, 21);
          const std::vector<float>& at = l.at;
          std::vector<float> z(static_cast<size_t>(steps) * h);
          ReluRecurrence(isa, l.x.data(), steps, in, l.wt.data(), l.b.data(), at.data(), h, nullptr,
                         z.data());
          // The backward kernel takes A itself.
          std::vector<float> a(static_cast<size_t>(h) * h);
          for (int i = 0; i < h; ++i) {
            for (int j = 0; j < h; ++j) a[i * h + j] = at[j * h + i];
          }
          const std::vector<float> d_z = Uniform(h, -1, 1, 25);
          std::vector<float> d_pre(static_cast<size_t>(steps) * h, 7.0f);
          std::vector<float> d_bias(h, 0.5f);  // added to, not overwritten
          ReluRecurrenceBackward(isa, z.data(), steps, h, a.data(), d_z.data(), every_step,
                                 d_pre.data(), d_bias.data());
          const std::vector<double> expected = ReferenceBackward(z, steps, at, h, d_z, every_step);
          int zeros = 0;
          for (size_t i = 0; i < d_pre.size(); ++i) {
            ASSERT_NEAR(d_pre[i], expected[i], 1e-5 * (1 + std::abs(expected[i])))
                << Name(isa) << " h=" << h << " steps=" << steps << " every_step=" << every_step
                << " at " << i;
            zeros += expected[i] == 0.0;
          }
          for (int i = 0; i < h; ++i) {
            double sum = 0.5;
            for (int t = 0; t < steps; ++t) sum += expected[static_cast<size_t>(t) * h + i];
            ASSERT_NEAR(d_bias[i], sum, 1e-5 * (1 + std::abs(sum)))
                << Name(isa) << " h=" << h << " steps=" << steps << " bias " << i;
          }
          // Some gradients are blocked by zero states and some pass, at every length.
          EXPECT_GT(zeros, 0);
          EXPECT_LT(zeros, static_cast<int>(d_pre.size()));
        }
      }
    }
  }
}

TEST(ReluKernelsTest, TransposedProductAddsDTransposeTimesS) {
  const std::vector<Isa> isas = Variants();
  if (isas.empty()) GTEST_SKIP() << "this CPU has no AVX2: the kernels are never used";
  for (Isa isa : isas) {
    for (int m : {8, 16, 24, 32, 48, 64, 80, 128}) {
      if (!Supported(isa, m)) continue;
      // Column counts around every vector and tile edge; row counts across the cache chunks.
      for (int n : {1, 7, 8, 9, 15, 16, 17, 26, 33, 64, 128}) {
        for (int rows : {1, 255, 257, 600}) {
          const std::vector<float> d = Uniform(static_cast<size_t>(rows) * m, -1, 1, 31);
          const std::vector<float> sm = Uniform(static_cast<size_t>(rows) * n, -1, 1, 32);
          std::vector<float> c = Uniform(static_cast<size_t>(m) * n, -1, 1, 33);
          const std::vector<float> before = c;
          AddTransposedProduct(isa, d.data(), rows, m, sm.data(), n, c.data());
          for (int i = 0; i < m; ++i) {
            for (int j = 0; j < n; ++j) {
              double expected = before[static_cast<size_t>(i) * n + j];
              for (int r = 0; r < rows; ++r) {
                expected +=
                    double{d[static_cast<size_t>(r) * m + i]} * sm[static_cast<size_t>(r) * n + j];
              }
              ASSERT_NEAR(c[static_cast<size_t>(i) * n + j], expected, 1e-4 * (1 + std::sqrt(rows)))
                  << Name(isa) << " m=" << m << " n=" << n << " rows=" << rows << " at " << i << ","
                  << j;
            }
          }
        }
      }
    }
  }
}

// Every element of the product is one chain of FMAs over the rows in order, in both variants
// and whatever their tiles and chunks: the two agree bit for bit, so the trainer's results do
// not depend on the instruction set or on how the kernel is blocked.
TEST(ReluKernelsTest, TransposedProductVariantsAgreeBitForBit) {
  if (!Supported(Isa::kAvx512, 16)) GTEST_SKIP() << "this CPU has no AVX-512";
  for (int m : {16, 32, 48, 64, 80, 128}) {
    for (int n : {7, 15, 26, 64, 128}) {
      const int rows = 301;
      std::vector<float> d = Uniform(static_cast<size_t>(rows) * m, -1, 1, 41);
      for (size_t i = 0; i < d.size(); i += 3) d[i] = 0.0f;  // as d_pre: many zeros
      const std::vector<float> sm = Uniform(static_cast<size_t>(rows) * n, -1, 1, 42);
      std::vector<float> avx2 = Uniform(static_cast<size_t>(m) * n, -1, 1, 43);
      std::vector<float> avx512 = avx2;
      AddTransposedProduct(Isa::kAvx2, d.data(), rows, m, sm.data(), n, avx2.data());
      AddTransposedProduct(Isa::kAvx512, d.data(), rows, m, sm.data(), n, avx512.data());
      for (size_t i = 0; i < avx2.size(); ++i) {
        ASSERT_EQ(std::memcmp(&avx2[i], &avx512[i], sizeof(float)), 0)
            << "m=" << m << " n=" << n << " at " << i << ": " << avx2[i] << " vs " << avx512[i];
      }
    }
  }
}

}  // namespace
}  // namespace relu_kernels
}  // namespace srn
