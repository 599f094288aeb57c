#include "model/nn/similarity_model.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "model/nn/network.h"
#include "model/nn/parallel.h"
#include "base/status_macros.h"

namespace srn {
SimilarityModel::SimilarityModel(Architecture arch, Preprocessor preprocessor, Vector params,
                                 ModelMetadata metadata)
    : arch_(std::move(arch)),
      preprocessor_(std::move(preprocessor)),
      layout_(arch_),
      params_(std::move(params)),
      metadata_(std::move(metadata)),
      network_(std::make_unique<Network<float>>(arch_, layout_, /*inference_weights=*/true)),
      inference_params_(static_cast<float*>(::operator new[](
          static_cast<size_t>(std::max<Eigen::Index>(params_.size(), 1)) * sizeof(float),
          std::align_val_t{kInferenceAlignment}))) {
  const Vector rearranged = network_->InferenceWeights(params_);
  std::copy(rearranged.data(), rearranged.data() + rearranged.size(), inference_params_.get());
}

void SimilarityModel::AlignedDelete::operator()(float* p) const {
  ::operator delete[](p, std::align_val_t{kInferenceAlignment});
}

SimilarityModel::~SimilarityModel() = default;

absl::StatusOr<std::shared_ptr<const SimilarityModel>> SimilarityModel::Create(
    Architecture arch, Preprocessor preprocessor, Vector params, ModelMetadata metadata) {
  SRN_RETURN_IF_ERROR(arch.Validate());
  SRN_RETURN_IF_ERROR(preprocessor.Validate());
  if (preprocessor.output_dims() != arch.input_dims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "preprocessing yields ", preprocessor.output_dims(), " features per frame (",
        preprocessor.raw_dims, " x window ", preprocessor.window, ") but the encoder takes ",
        arch.input_dims));
  }
  const ParameterLayout layout(arch);
  if (params.size() != layout.total_size()) {
    return absl::InvalidArgumentError(absl::StrCat("architecture ", arch.ToString(), " needs ",
                                                   layout.total_size(), " parameters, got ",
                                                   params.size()));
  }
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    if (!std::isfinite(params[i])) {
      return absl::InvalidArgumentError(absl::StrCat("parameter ", i, " is not finite"));
    }
  }
  return std::shared_ptr<const SimilarityModel>(new SimilarityModel(
      std::move(arch), std::move(preprocessor), std::move(params), std::move(metadata)));
}

absl::StatusOr<RowMatrix> SimilarityModel::Embed(absl::Span<const Series* const> raw,
                                                  int threads) const {
  // Inline room for a server's usual one series: no allocation besides the series itself.
  absl::InlinedVector<Series, 1> processed(raw.size());
  absl::InlinedVector<const Series*, 1> pointers(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    absl::StatusOr<Series> s = preprocessor_.Apply(*raw[i]);
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat("series ", i, ": ", s.status().message()));
    }
    processed[i] = *std::move(s);
    pointers[i] = &processed[i];
  }
  return EmbedPreprocessed(pointers, threads);
}

RowMatrix SimilarityModel::EmbedPreprocessed(absl::Span<const Series* const> series,
                                             int threads) const {
  RowMatrix out;
  EmbedParallel(*network_, inference_params_.get(), series,
                threads > 0 ? threads : DefaultThreads(), &out);
  return out;
}

void SimilarityModel::Score(const float* query, const float* others, int n, double* out) const {
  const int e = embedding_dims();
  const float* v = params_.data() + layout_.v_offset();
  const float c = params_[layout_.c_offset()];
  for (int i = 0; i < n; ++i) {
    const float* b = others + static_cast<size_t>(i) * e;
    // v * (a * b), not (v * a) * b: the score of (a, b) and of (b, a) are then the same bits, as
    // an evaluation that scores each unordered pair once assumes.
    float logit = c;
    for (int k = 0; k < e; ++k) logit += v[k] * (query[k] * b[k]);
    out[i] = 1.0 / (1.0 + std::exp(-static_cast<double>(logit)));
  }
}

float SimilarityModel::Score(const float* a, const float* b) const {
  double s;
  Score(a, b, 1, &s);
  return static_cast<float>(s);
}

void SimilarityModel::ScoreRows(const float* query, const Eigen::Ref<const RowMatrix>& rows,
                                float* out) const {
  const int e = embedding_dims();
  // logit(row) = row . (v * query) + c
  Vector weights(e);
  const float* v = params_.data() + layout_.v_offset();
  for (int i = 0; i < e; ++i) weights[i] = v[i] * query[i];
  const float c = params_[layout_.c_offset()];
  Eigen::Map<Eigen::VectorXf> logits(out, rows.rows());
  logits.noalias() = rows * weights;
  for (Eigen::Index r = 0; r < rows.rows(); ++r) out[r] = 1.0f / (1.0f + std::exp(-(out[r] + c)));
}

absl::StatusOr<float> SimilarityModel::Similarity(const Series& a, const Series& b) const {
  SRN_ASSIGN_OR_RETURN(RowMatrix emb, Embed({&a, &b}));
  return Score(emb.row(0).data(), emb.row(1).data());
}

}  // namespace srn
