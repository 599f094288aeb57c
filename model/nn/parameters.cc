#include "model/nn/parameters.h"

#include <random>

#include "absl/strings/str_cat.h"

namespace srn {

ParameterLayout::ParameterLayout(const Architecture& arch) {
  if (!arch.is_logistic()) {
    const int g = arch.gates();
    const int h = arch.hidden;
    for (int l = 0; l < arch.layers; ++l) {
      LayerOffsets off;
      off.in = l == 0 ? arch.input_dims : h;
      off.w = Add(absl::StrCat("l", l, ".W"), g * h, off.in);
      if (arch.recurrent) off.a = Add(absl::StrCat("l", l, ".A"), g * h, h);
      off.b = Add(absl::StrCat("l", l, ".b"), g * h, 1);
      if (arch.cell == CellType::kGru) off.b_hh = Add(absl::StrCat("l", l, ".b_hh"), g * h, 1);
      layers_.push_back(off);
    }
  }
  v_offset_ = Add("v", arch.embedding_dims(), 1);
  c_offset_ = Add("c", 1, 1);
}

int64_t ParameterLayout::Add(std::string name, int rows, int cols) {
  TensorSpec spec{std::move(name), rows, cols, total_};
  total_ += spec.size();
  tensors_.push_back(std::move(spec));
  return tensors_.back().offset;
}

const TensorSpec* ParameterLayout::Find(const std::string& name) const {
  for (const TensorSpec& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Vector InitParameters(const Architecture& arch, float scale, uint64_t seed) {
  ParameterLayout layout(arch);
  Vector params = Vector::Zero(layout.total_size());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  for (const TensorSpec& t : layout.tensors()) {
    const bool is_bias = t.cols == 1 && t.name != "v";
    if (t.name == "c") continue;
    if (is_bias) continue;
    for (int64_t i = 0; i < t.size(); ++i) params[t.offset + i] = uniform(rng);
  }
  if (arch.cell == CellType::kLstm && !arch.is_logistic()) {
    for (int l = 0; l < arch.layers; ++l) {
      const int64_t b = layout.layer(l).b;
      for (int i = 0; i < arch.hidden; ++i) params[b + arch.hidden + i] = 1.0f;
    }
  }
  return params;
}

}  // namespace srn
