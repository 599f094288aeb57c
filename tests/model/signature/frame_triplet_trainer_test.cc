#include "model/signature/frame_states.h"
#include "model/signature/frame_triplet_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/data/svc2004.h"
#include "model/nn/parameters.h"
#include "model/signature/signature_protocol.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

std::vector<Series> RandomSeries(const std::vector<int>& lengths, int dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Series> out;
  for (int len : lengths) {
    Series s(len, dims);
    for (int i = 0; i < s.mutable_frames().size(); ++i) s.mutable_frames().data()[i] = normal(rng);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<const Series*> Pointers(const std::vector<Series>& v) {
  std::vector<const Series*> p;
  for (const Series& s : v) p.push_back(&s);
  return p;
}

Architecture Gru(int in, int hidden, int layers = 1) {
  Architecture arch = *ParseFamily("gru-a");
  arch.input_dims = in;
  arch.hidden = hidden;
  arch.layers = layers;
  return arch;
}

// The loss's gradient (soft-DTW, the frame normalization and BackwardFrames chained) against
// finite differences, in double, for both normalizations, with and without a band, for both
// frame costs. The margin
// keeps every triplet active, so the loss is smooth where it is probed.
TEST(FrameTripletLossTest, GradientMatchesFiniteDifferences) {
  const std::vector<Series> series = RandomSeries({6, 9, 4, 7, 5}, 3, 31);
  // Plain triplets, and one mined group (its hardest candidates are what the loss sees).
  const std::vector<TripletGroup> triplets = {
      {0, {1}, {2}}, {3, {0}, {4}}, {1, {3}, {3}}, {2, {0, 4}, {1, 3}}};
  for (const std::string family : {"gru-a", "lstm-a"}) {
    for (FrameNormalization norm : {FrameNormalization::kNone, FrameNormalization::kL2}) {
      for (double band : {-1.0, 0.3, 0.4}) {
        const bool euclidean = band == 0.4;  // the third case: a band and the Euclidean cost
        Architecture arch = *ParseFamily(family);
        arch.input_dims = 3;
        arch.hidden = 4;
        ParameterLayout layout(arch);
        Network<double> net(arch, layout);
        VectorT<double> params = InitParameters(arch, 0.5f, 7).cast<double>();
        FrameTripletLossOptions options;
        options.margin = 10.0;
        options.soft_dtw.gamma = 0.3;
        options.soft_dtw.dtw = DtwOptions::Fraction(band);
        if (euclidean) options.soft_dtw.dtw.local_cost = DtwLocalCost::kEuclidean;
        options.normalization = norm;
        const std::string where = family + " " + std::string(FrameNormalizationName(norm)) +
                                  " band " + std::to_string(band) +
                                  (euclidean ? " euclidean" : " squared");
        FrameTripletWorkspace<double> ws;
        auto loss_at = [&](const VectorT<double>& p, VectorT<double>* grad) {
          absl::StatusOr<FrameTripletLossStats> r =
              FrameTripletLoss<double>(net, p.data(), Pointers(series), triplets, options, 1.0, &ws,
                                       grad != nullptr ? grad->data() : nullptr);
          EXPECT_TRUE(r.ok()) << r.status();
          return r.ok() ? r->loss : 0.0;
        };
        VectorT<double> analytic = VectorT<double>::Zero(params.size());
        loss_at(params, &analytic);
        ASSERT_GT(analytic.norm(), 1e-4) << where;
        const double eps = 1e-6;
        for (Eigen::Index i = 0; i < params.size(); ++i) {
          VectorT<double> plus = params, minus = params;
          plus[i] += eps;
          minus[i] -= eps;
          const double numeric = (loss_at(plus, nullptr) - loss_at(minus, nullptr)) / (2 * eps);
          const double scale = std::max({std::abs(analytic[i]), std::abs(numeric), 1e-3});
          EXPECT_LT(std::abs(analytic[i] - numeric) / scale, 1e-4)
              << where << " parameter " << i << ": " << analytic[i] << " vs " << numeric;
        }
      }
    }
  }
}

TEST(FrameTripletLossTest, InactiveTripletsHaveNoGradientAndStatsAddUp) {
  const std::vector<Series> series = RandomSeries({6, 9, 4}, 3, 32);
  const Architecture arch = Gru(3, 4);
  ParameterLayout layout(arch);
  Network<float> net(arch, layout);
  const Vector params = InitParameters(arch, 0.5f, 3);
  FrameTripletLossOptions options;
  options.soft_dtw.gamma = 0.1;
  FrameTripletWorkspace<float> ws;
  // A triplet whose negative is its positive: the loss is exactly the margin, and every
  // gradient cancels.
  options.margin = 0.25;
  Vector grad = Vector::Zero(params.size());
  absl::StatusOr<FrameTripletLossStats> r = FrameTripletLoss<float>(
      net, params.data(), Pointers(series), std::vector<TripletGroup>{{0, {1}, {1}}}, options, 1.0f,
      &ws, grad.data());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->active, 1);
  EXPECT_NEAR(r->loss, 0.25, 1e-6);
  EXPECT_NEAR(r->d_positive, r->d_negative, 1e-7);
  EXPECT_LT(grad.norm(), 1e-5);
  // A margin of 0 on that triplet: inactive, nothing added.
  options.margin = 0.0;
  grad.setZero();
  r = FrameTripletLoss<float>(net, params.data(), Pointers(series),
                              std::vector<TripletGroup>{{0, {1}, {1}}}, options, 1.0f, &ws,
                              grad.data());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->active, 0);
  EXPECT_EQ(r->loss, 0.0);
  EXPECT_EQ(grad.norm(), 0.0f);
}

// A group is the triplet of its hardest candidates: the farthest positive and the closest
// negative, with exactly that triplet's loss and gradient.
TEST(FrameTripletLossTest, GroupsTakeTheHardestCandidates) {
  const std::vector<Series> series = RandomSeries({6, 9, 4, 7, 5, 8}, 3, 34);
  const Architecture arch = Gru(3, 4);
  ParameterLayout layout(arch);
  Network<double> net(arch, layout);
  const VectorT<double> params = InitParameters(arch, 0.5f, 5).cast<double>();
  FrameTripletLossOptions options;
  options.margin = 10.0;
  options.soft_dtw.gamma = 0.2;
  FrameTripletWorkspace<double> ws;
  auto run = [&](const TripletGroup& g, VectorT<double>* grad) {
    *grad = VectorT<double>::Zero(params.size());
    absl::StatusOr<FrameTripletLossStats> r =
        FrameTripletLoss<double>(net, params.data(), Pointers(series), std::vector<TripletGroup>{g},
                                 options, 1.0, &ws, grad->data());
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  };
  VectorT<double> grad;
  const int positives[3] = {1, 2, 3};
  const int negatives[3] = {4, 5, 1};
  double d_p[3], d_n[3];
  for (int k = 0; k < 3; ++k) {
    d_p[k] = run({0, {positives[k]}, {4}}, &grad).d_positive;
    d_n[k] = run({0, {1}, {negatives[k]}}, &grad).d_negative;
  }
  const int hardest_p = static_cast<int>(std::max_element(d_p, d_p + 3) - d_p);
  const int hardest_n = static_cast<int>(std::min_element(d_n, d_n + 3) - d_n);
  ASSERT_NE(d_p[0], d_p[1]);
  VectorT<double> group_grad, single_grad;
  const FrameTripletLossStats group =
      run({0, {1, 2, 3}, {negatives[0], negatives[1], negatives[2]}}, &group_grad);
  const FrameTripletLossStats single =
      run({0, {positives[hardest_p]}, {negatives[hardest_n]}}, &single_grad);
  EXPECT_DOUBLE_EQ(group.d_positive, d_p[hardest_p]);
  EXPECT_DOUBLE_EQ(group.d_negative, d_n[hardest_n]);
  EXPECT_DOUBLE_EQ(group.loss, single.loss);
  EXPECT_LT((group_grad - single_grad).norm(), 1e-12 * single_grad.norm());
  // A group without candidates is an error.
  absl::StatusOr<FrameTripletLossStats> bad =
      FrameTripletLoss<double>(net, params.data(), Pointers(series),
                               std::vector<TripletGroup>{{0, {}, {1}}}, options, 1.0, &ws, nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
}

TEST(FrameTripletLossTest, RejectsWhatItCannotTrain) {
  const std::vector<Series> series = RandomSeries({6, 9, 4}, 3, 33);
  FrameTripletLossOptions options;
  {
    const Architecture arch = Gru(3, 4);
    ParameterLayout layout(arch);
    Network<float> net(arch, layout);
    const Vector params = InitParameters(arch, 0.5f, 3);
    FrameTripletWorkspace<float> ws;
    absl::StatusOr<FrameTripletLossStats> r = FrameTripletLoss<float>(
        net, params.data(), Pointers(series), std::vector<TripletGroup>{{0, {1}, {3}}}, options,
        1.0f, &ws, nullptr);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_NE(r.status().message().find("series 3 of 3"), absl::string_view::npos);
    options.soft_dtw.gamma = 0;
    r = FrameTripletLoss<float>(net, params.data(), Pointers(series),
                                std::vector<TripletGroup>{{0, {1}, {2}}}, options, 1.0f, &ws,
                                nullptr);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
  Architecture relu = *ParseFamily("srn-a");
  relu.input_dims = 3;
  relu.hidden = 64;
  ParameterLayout layout(relu);
  Network<float> net(relu, layout);
  if (!net.TrainsSeriesAlone()) GTEST_SKIP() << "this CPU has no AVX2 kernel";
  const Vector params = InitParameters(relu, 0.5f, 3);
  FrameTripletWorkspace<float> ws;
  options.soft_dtw.gamma = 1;
  const absl::StatusOr<FrameTripletLossStats> r = FrameTripletLoss<float>(
      net, params.data(), Pointers(series), std::vector<TripletGroup>{{0, {1}, {2}}}, options, 1.0f,
      &ws, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

// Three signers with 4 genuine signatures and 2 forgeries each, plus one augmented copy of every
// example (origins i % 18).
Dataset SamplerData(std::vector<int>* origin) {
  Dataset d;
  d.label_names = {"a", "b", "c"};
  for (int copy = 0; copy < 2; ++copy) {
    for (int signer = 0; signer < 3; ++signer) {
      for (int k = 0; k < 6; ++k) {
        Example e;
        e.series = Series(3, 2);
        e.label = signer;
        e.forgery = k >= 4;
        d.examples.push_back(e);
      }
    }
  }
  for (int i = 0; i < 36; ++i) origin->push_back(i % 18);
  return d;
}

TEST(TripletSamplerTest, DrawsValidTripletsWithTheAskedShareOfForgeries) {
  std::vector<int> origin;
  const Dataset d = SamplerData(&origin);
  for (double fraction : {0.0, 0.3, 1.0}) {
    absl::StatusOr<TripletSampler> sampler = TripletSampler::Create(d, fraction, origin);
    ASSERT_TRUE(sampler.ok()) << sampler.status();
    std::mt19937_64 rng(5);
    int forgeries = 0;
    const int n = 3000;
    std::set<int> anchors;
    for (int i = 0; i < n; ++i) {
      const Triplet t = sampler->Sample(&rng);
      const Example& a = d.examples[t.anchor];
      const Example& p = d.examples[t.positive];
      const Example& g = d.examples[t.negative];
      anchors.insert(t.anchor);
      ASSERT_FALSE(a.forgery);
      ASSERT_FALSE(p.forgery);
      ASSERT_EQ(a.label, p.label);
      ASSERT_NE(origin[t.anchor], origin[t.positive]) << "never a copy of the anchor itself";
      if (g.forgery) {
        ASSERT_EQ(g.label, a.label) << "a forgery negative is a forgery of the anchor's signer";
        ++forgeries;
      } else {
        ASSERT_NE(g.label, a.label);
      }
    }
    EXPECT_NEAR(static_cast<double>(forgeries) / n, fraction, 0.03) << fraction;
    EXPECT_EQ(anchors.size(), 24u) << "every genuine example, copies included, is an anchor";
    // Groups: as many candidates of each kind as asked, each valid for the group's anchor.
    for (int i = 0; i < 200; ++i) {
      const TripletGroup g = sampler->SampleGroup(4, &rng);
      ASSERT_EQ(g.positives.size(), 4u);
      ASSERT_EQ(g.negatives.size(), 4u);
      const Example& a = d.examples[g.anchor];
      ASSERT_FALSE(a.forgery);
      for (int p : g.positives) {
        ASSERT_FALSE(d.examples[p].forgery);
        ASSERT_EQ(d.examples[p].label, a.label);
        ASSERT_NE(origin[p], origin[g.anchor]);
      }
      for (int q : g.negatives) {
        ASSERT_TRUE(d.examples[q].forgery ? d.examples[q].label == a.label
                                          : d.examples[q].label != a.label);
      }
    }
  }
}

TEST(TripletSamplerTest, RejectsDataWithoutTriplets) {
  std::vector<int> origin;
  const Dataset d = SamplerData(&origin);
  EXPECT_EQ(TripletSampler::Create(d, 1.5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TripletSampler::Create(d, 0.5, {1, 2}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // One genuine signature per signer (each with its copy): no positive of another origin.
  Dataset one_each;
  one_each.label_names = d.label_names;
  std::vector<int> one_origin;
  for (size_t i = 0; i < d.examples.size(); ++i) {
    if (origin[i] % 6 == 0) {
      one_each.examples.push_back(d.examples[i]);
      one_origin.push_back(origin[i]);
    }
  }
  absl::Status s = TripletSampler::Create(one_each, 0.5, one_origin).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // One signer and no forgeries: no negative.
  const Dataset alone = d.Filter([](const Example& e) { return e.label == 0 && !e.forgery; });
  s = TripletSampler::Create(alone, 0.5).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("no negatives"), absl::string_view::npos) << s;
}

FrameTripletConfig SmallConfig() {
  FrameTripletConfig config;
  config.arch = Gru(0, 8);
  config.kind = FeatureKind::kFrames;
  FrameTripletOptions& o = config.options;
  o.loss.margin = 0.5;
  o.loss.soft_dtw.gamma = 0.1;
  o.loss.soft_dtw.dtw = DtwOptions::Fraction(0.3);
  o.learning_rate = 5e-3;
  o.batch_triplets = 8;
  o.triplets_per_epoch = 64;
  o.max_epochs = 4;
  o.patience = 4;
  o.validation_refs = 2;
  o.validation_draws = 2;
  o.threads = 2;
  return config;
}

// On toy signers (sinusoids, with forgeries at a shifted frequency) a few epochs bring the
// positives closer than the negatives; the run is reproducible to the bit and the model it
// writes records the objective and gives states that HiddenStates reads back.
TEST(TrainFrameTripletModelTest, LearnsToyDataReproduciblyAndRecordsTheObjective) {
  const Dataset all = testing::MakeSineDataset(6, 6, 2, 15, 25, 3, /*forgeries=*/4);
  const Dataset train = all.Filter([](const Example& e) { return e.label < 4; });
  const Dataset validation = all.Filter([](const Example& e) { return e.label >= 4; });
  FrameTripletConfig config = SmallConfig();
  config.options.loss.normalization = FrameNormalization::kL2;
  config.options.loss.soft_dtw.dtw.local_cost = DtwLocalCost::kEuclidean;
  absl::StatusOr<FrameTripletResult> a = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->history.size(), 4u);
  EXPECT_LT(a->history.back().train_loss, a->history.front().train_loss);
  EXPECT_LT(a->history.back().mean_d_positive, a->history.back().mean_d_negative);
  EXPECT_GE(a->best_epoch, 1);
  const ModelMetadata& meta = a->model->metadata();
  EXPECT_EQ(meta.hyperparameters.at("objective"), "frame-triplet");
  EXPECT_EQ(meta.hyperparameters.at("frame_normalization"), "l2");
  EXPECT_EQ(meta.hyperparameters.at("gamma"), "0.1");
  EXPECT_EQ(meta.metrics.at("best_epoch"), a->best_epoch);
  EXPECT_EQ(*FrameNormalizationOf(*a->model), FrameNormalization::kL2);
  EXPECT_EQ(meta.hyperparameters.at("frame_cost"), "euclidean");
  EXPECT_EQ(*FrameCostOf(*a->model), DtwLocalCost::kEuclidean);
  // The states srn-eval aligns are L2-normalized like the trained ones.
  const absl::StatusOr<Series> pre = a->model->preprocessor().Apply(validation.examples[0].series);
  ASSERT_TRUE(pre.ok()) << pre.status();
  const Series states = HiddenStates(*a->model, *pre);
  ASSERT_EQ(states.length(), pre->length());
  ASSERT_EQ(states.dims(), 8);
  for (int t = 0; t < states.length(); ++t) {
    EXPECT_NEAR(states.frames().row(t).norm(), 1.0, 1e-4);
  }
  absl::StatusOr<FrameTripletResult> b = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->model->params(), b->model->params()) << "a seed gives one model";
}

// Fitting the head changes v and c only: the encoder, and so the per-frame states, are those of
// a run without the fit, bit for bit. The fitted head tells the validation signers' genuine pairs
// from impostor pairs better than the random one, and the metadata says how it was fitted.
TEST(TrainFrameTripletModelTest, FittingTheHeadLeavesTheEncoderBitForBit) {
  const Dataset all = testing::MakeSineDataset(8, 6, 2, 15, 25, 3, /*forgeries=*/4);
  const Dataset train = all.Filter([](const Example& e) { return e.label < 5; });
  const Dataset validation = all.Filter([](const Example& e) { return e.label >= 5; });
  FrameTripletConfig config = SmallConfig();
  config.options.loss.normalization = FrameNormalization::kL2;
  config.options.max_epochs = 2;
  config.options.head_pairs = 1000;
  config.augment.copies = 1;  // the head fits on the originals, the encoder on both
  config.options.fit_head = false;
  absl::StatusOr<FrameTripletResult> plain = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(plain.ok()) << plain.status();
  config.options.fit_head = true;
  absl::StatusOr<FrameTripletResult> fitted = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(fitted.ok()) << fitted.status();

  const SimilarityModel& a = *plain->model;
  const SimilarityModel& b = *fitted->model;
  ASSERT_EQ(a.params().size(), b.params().size());
  const int64_t v = a.layout().v_offset();
  const int64_t c = a.layout().c_offset();
  for (const TensorSpec& t : a.layout().tensors()) {
    const bool head = t.offset == v || t.offset == c;
    const bool same = std::memcmp(a.params().data() + t.offset, b.params().data() + t.offset,
                                  sizeof(float) * t.size()) == 0;
    EXPECT_EQ(same, !head) << t.name;
  }
  for (const Example& e : validation.examples) {
    const absl::StatusOr<Series> pre = a.preprocessor().Apply(e.series);
    ASSERT_TRUE(pre.ok()) << pre.status();
    const Series sa = HiddenStates(a, *pre);
    const Series sb = HiddenStates(b, *pre);
    ASSERT_EQ(sa.frames().size(), sb.frames().size());
    ASSERT_EQ(std::memcmp(sa.frames().data(), sb.frames().data(),
                          sizeof(float) * sa.frames().size()),
              0)
        << e.source;
  }
  EXPECT_EQ(plain->history.size(), fitted->history.size());
  EXPECT_EQ(plain->best_val_eer, fitted->best_val_eer);

  EXPECT_EQ(plain->head_val_auc, -1);
  EXPECT_EQ(a.metadata().hyperparameters.at("head"), "not trained: as initialized");
  EXPECT_EQ(a.metadata().metrics.count("val_auc"), 0u);
  // A tiny encoder of two short epochs, 3 validation signers and half the impostors forgeries:
  // measured 0.63 (0.54 with the random head); head_fit_test checks the fit itself.
  EXPECT_GT(fitted->head_val_auc, 0.6);
  EXPECT_GT(fitted->head_val_auc, fitted->head_val_auc_before);
  EXPECT_EQ(fitted->head_pairs, 1000);
  EXPECT_NE(b.metadata().hyperparameters.at("head").find("logistic regression on 1000"),
            std::string::npos);
  EXPECT_EQ(b.metadata().metrics.at("val_auc"), fitted->head_val_auc);

  absl::StatusOr<FrameTripletResult> again = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->model->params(), b.params()) << "a seed gives one head";
}

TEST(TrainFrameTripletModelTest, RejectsBadOptionsAndEncodersWithoutFrames) {
  const Dataset all = testing::MakeSineDataset(6, 6, 2, 15, 25, 3, /*forgeries=*/4);
  const Dataset train = all.Filter([](const Example& e) { return e.label < 4; });
  const Dataset validation = all.Filter([](const Example& e) { return e.label >= 4; });
  FrameTripletConfig config = SmallConfig();
  config.options.loss.soft_dtw.gamma = -1;
  absl::Status s = TrainFrameTripletModel(train, validation, config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("gamma"), absl::string_view::npos) << s;
  config = SmallConfig();
  config.options.head_l2 = -1;
  s = TrainFrameTripletModel(train, validation, config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("head_l2"), absl::string_view::npos) << s;
  config = SmallConfig();
  config.options.validation_refs = 10;  // validation signers have 6 genuine signatures
  s = TrainFrameTripletModel(train, validation, config).status();
  EXPECT_FALSE(s.ok());
  config = SmallConfig();
  config.arch = *ParseFamily("logistic");
  s = TrainFrameTripletModel(train, validation, config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("per-frame states"), absl::string_view::npos) << s;
}

// Real data: a small encoder trained on frame triplets of 6 SVC2004 signers (2 more validate)
// verifies 4 signers it never saw through srn-eval's own scorer (DTW over its states); and the
// one-reference spread models fit the states' distances as they fit the DTW verifier's.
TEST(FrameTripletRealDataTest, TrainsOnSomeSignersAndVerifiesOthers) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  absl::StatusOr<Dataset> data = LoadSvc2004Users(dir, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  ASSERT_TRUE(data.ok()) << data.status();
  const Dataset train = data->Filter([](const Example& e) { return e.label >= 4 && e.label < 10; });
  const Dataset validation = data->Filter([](const Example& e) { return e.label >= 10; });
  FrameTripletConfig config;
  config.arch = Gru(0, 16);
  config.center_series = true;
  FrameTripletOptions& o = config.options;
  o.loss.margin = 0.2;
  o.loss.soft_dtw.gamma = 0.02;
  o.loss.soft_dtw.dtw = DtwOptions::Fraction(0.3);
  o.loss.normalization = FrameNormalization::kL2;
  o.triplets_per_epoch = 96;
  o.max_epochs = 2;
  o.validation_draws = 1;
  o.threads = 2;
  absl::StatusOr<FrameTripletResult> trained = TrainFrameTripletModel(train, validation, config);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::shared_ptr<const SimilarityModel> model = trained->model;
  const FoldScorerFactory factory = SrnFoldScorer(
      [&](int) -> absl::StatusOr<std::shared_ptr<const SimilarityModel>> { return model; },
      SrnScore::kStatesDtw, DtwOptions::Fraction(0.3));

  Split split;
  split.test = data->Filter([](const Example& e) { return e.label < 4; });
  absl::StatusOr<TrialScorer> scorer = factory(0, split);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const std::vector<double> sim = SimilarityMatrix(split.test, *scorer, 2);
  SignatureCvOptions options;
  options.draws = 2;
  options.normalization = ScoreNormalization::kRatio;
  absl::StatusOr<SignatureTrials> trials = MakeSignatureTrials(split.test, sim, 5, options);
  ASSERT_TRUE(trials.ok()) << trials.status();
  absl::StatusOr<VerificationErrors> errors = ComputeVerificationErrors(*trials, -1);
  ASSERT_TRUE(errors.ok()) << errors.status();
  EXPECT_LT(errors->eer_random, 0.05);
  EXPECT_LT(errors->eer_skilled, 0.2);  // measured 9%

  // Spread models on the states' distances: 8 signers in 4 folds.
  const Dataset eight = data->Filter([](const Example& e) { return e.label < 8; });
  SignatureCvOptions cv;
  cv.folds = 4;
  cv.normalization = ScoreNormalization::kRatio;
  absl::StatusOr<std::vector<FoldMatrix>> folds = ScoreSignatureFolds(eight, factory, cv);
  ASSERT_TRUE(folds.ok()) << folds.status();
  absl::StatusOr<std::vector<DtwSpreadModel>> spreads = PredictFoldSpreads(&*folds, nullptr);
  ASSERT_TRUE(spreads.ok()) << spreads.status();
  for (const FoldMatrix& m : *folds) {
    ASSERT_EQ(m.single_reference_spread.size(), m.test.examples.size());
    for (double spread : m.single_reference_spread) EXPECT_GT(spread, 0);
  }
  EXPECT_TRUE(FoldTrials(*folds, 1, cv).ok());
}

TEST(FrameNormalizationTest, ParsesNamesAndReadsModels) {
  EXPECT_EQ(*ParseFrameNormalization("none"), FrameNormalization::kNone);
  EXPECT_EQ(*ParseFrameNormalization("l2"), FrameNormalization::kL2);
  EXPECT_EQ(ParseFrameNormalization("L2").status().code(), absl::StatusCode::kInvalidArgument);
  RowMatrix m(2, 2);
  m << 3, 4, 0, 0;
  NormalizeFrames(FrameNormalization::kL2, &m);
  EXPECT_NEAR(m(0, 0), 0.6, 1e-6);
  EXPECT_NEAR(m(0, 1), 0.8, 1e-6);
  EXPECT_EQ(m(1, 0), 0.0f) << "a zero state stays zero";
  Architecture arch = Gru(2, 3);
  Preprocessor pre;
  pre.raw_dims = 2;
  pre.mean = Vector::Zero(2);
  pre.scale = Vector::Ones(2);
  ModelMetadata meta;
  meta.hyperparameters["frame_normalization"] = "cosine";
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
      SimilarityModel::Create(arch, pre, InitParameters(arch, 0.1f, 1), meta);
  ASSERT_TRUE(model.ok()) << model.status();
  const absl::Status s = FrameNormalizationOf(**model).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cosine"), absl::string_view::npos) << s;
  // A model trained on pairs records neither: raw states, squared cost.
  meta.hyperparameters.clear();
  meta.hyperparameters["frame_cost"] = "manhattan";
  model = SimilarityModel::Create(arch, pre, InitParameters(arch, 0.1f, 1), meta);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*FrameNormalizationOf(**model), FrameNormalization::kNone);
  EXPECT_EQ(FrameCostOf(**model).status().code(), absl::StatusCode::kInvalidArgument);
  model = SimilarityModel::Create(arch, pre, InitParameters(arch, 0.1f, 1), {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*FrameCostOf(**model), DtwLocalCost::kSquaredEuclidean);
}

}  // namespace
}  // namespace srn
