#include "tests/testing/synthetic_data.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace srn::testing {

Dataset MakeSineDataset(int classes, int per_class, int dims, int min_len, int max_len,
                        uint64_t seed, int forgeries) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> phase(0.0f, 6.2831853f);
  std::uniform_int_distribution<int> length(min_len, max_len);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  Dataset data;
  data.name = "sines";
  for (int c = 0; c < classes; ++c) {
    data.label_names.push_back(absl::StrCat("class ", c));
    for (int k = 0; k < per_class + forgeries; ++k) {
      const bool forgery = k >= per_class;
      const float freq = 0.2f + 0.25f * c + (forgery ? 0.12f : 0.0f);
      const int len = length(rng);
      Series s(len, dims);
      const float p = phase(rng);
      // Each class also has its own offset per feature, fixed by the class alone so that datasets
      // drawn with different seeds share their classes.
      std::mt19937_64 class_rng(1000 + c);
      std::uniform_real_distribution<float> offset(-1.0f, 1.0f);
      for (int d = 0; d < dims; ++d) {
        const float o = offset(class_rng) + (forgery ? 0.3f : 0.0f);
        for (int t = 0; t < len; ++t) {
          s.mutable_frames()(t, d) = std::sin(freq * t * (1.0f + 0.3f * d) + p) + o + noise(rng);
        }
      }
      Example e;
      e.series = std::move(s);
      e.label = c;
      e.forgery = forgery;
      e.source = absl::StrCat("sine class ", c, " #", k);
      data.examples.push_back(std::move(e));
    }
  }
  return data;
}

std::string WriteCsvManifest(const std::string& dir, const Dataset& data) {
  std::filesystem::create_directories(dir);
  std::string rows = "path,label,forgery\n";
  for (size_t i = 0; i < data.examples.size(); ++i) {
    const Example& e = data.examples[i];
    std::string text;
    for (int t = 0; t < e.series.length(); ++t) {
      for (int d = 0; d < e.series.dims(); ++d) {
        absl::StrAppend(&text, d ? "," : "", absl::StrFormat("%.6f", e.series.frames()(t, d)));
      }
      text += "\n";
    }
    const std::string name = absl::StrCat("s", i, ".csv");
    std::ofstream(absl::StrCat(dir, "/", name), std::ios::binary) << text;
    absl::StrAppend(&rows, name, ",", data.label_names[e.label], ",", e.forgery ? 1 : 0, "\n");
  }
  const std::string manifest = absl::StrCat(dir, "/manifest.csv");
  std::ofstream(manifest, std::ios::binary) << rows;
  return manifest;
}

GaussianHmm RandomHmm(int states, int dims, uint64_t seed, double mean_scale,
                      double min_variance) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.1, 1.0);
  std::normal_distribution<double> normal(0, 1);
  GaussianHmm h;
  h.initial.resize(states);
  h.transition.resize(states, states);
  h.means.resize(states, dims);
  h.variances.resize(states, dims);
  for (int i = 0; i < states; ++i) {
    h.initial[i] = unit(rng);
    for (int j = 0; j < states; ++j) h.transition(i, j) = unit(rng);
    h.transition.row(i) /= h.transition.row(i).sum();
    for (int d = 0; d < dims; ++d) {
      h.means(i, d) = mean_scale * normal(rng);
      h.variances(i, d) = min_variance + unit(rng);
    }
  }
  h.initial /= h.initial.sum();
  return h;
}

}  // namespace srn::testing
