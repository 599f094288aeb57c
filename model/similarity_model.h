#ifndef SRN_MODEL_SIMILARITY_MODEL_H_
#define SRN_MODEL_SIMILARITY_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/architecture.h"
#include "model/parameters.h"
#include "model/preprocess.h"
#include "model/series.h"

namespace srn {

template <typename T>
class Network;

// What a weights file says about how a model came to be (reported by GetModelInfo).
struct ModelMetadata {
  std::string training_data;                          // e.g. "arabic-voice speakers 1-60"
  std::string command;                                // the srn-train command line
  std::map<std::string, std::string> hyperparameters;  // name -> value as text
  std::map<std::string, double> metrics;              // e.g. "val_auc" -> 0.93
  uint64_t seed = 0;
  std::string created;                                // ISO 8601 UTC
};

// A trained siamese similarity model: preprocessing, encoder and head with their weights.
// Immutable once built; all const methods are safe to call from many threads at once (each call
// uses its own scratch space), so servers share one instance through std::shared_ptr<const>.
class SimilarityModel {
 public:
  // Checks that the parameters fit the architecture and the preprocessing feeds it.
  static absl::StatusOr<std::shared_ptr<const SimilarityModel>> Create(
      Architecture arch, Preprocessor preprocessor, Vector params, ModelMetadata metadata = {});
  ~SimilarityModel();
  SimilarityModel(const SimilarityModel&) = delete;
  SimilarityModel& operator=(const SimilarityModel&) = delete;

  const Architecture& architecture() const { return arch_; }
  const Preprocessor& preprocessor() const { return preprocessor_; }
  const ParameterLayout& layout() const { return layout_; }
  const Vector& params() const { return params_; }
  const ModelMetadata& metadata() const { return metadata_; }
  int embedding_dims() const { return arch_.embedding_dims(); }

  // Embeds raw series (preprocessing applied): row i of the result (n x embedding_dims) is the
  // embedding of raw[i]. Series may have different lengths. InvalidArgument names the bad series.
  absl::StatusOr<RowMatrix> Embed(absl::Span<const Series* const> raw) const;
  // Embeds already-preprocessed series (as the trainer and evaluations hold them).
  RowMatrix EmbedPreprocessed(absl::Span<const Series* const> series) const;

  // s = sigmoid(v . (a * b) + c) for embeddings a and b (embedding_dims each).
  float Score(const float* a, const float* b) const;
  // Similarity of two raw series in [0, 1].
  absl::StatusOr<float> Similarity(const Series& a, const Series& b) const;

 private:
  SimilarityModel(Architecture arch, Preprocessor preprocessor, Vector params,
                  ModelMetadata metadata);

  const Architecture arch_;
  const Preprocessor preprocessor_;
  const ParameterLayout layout_;
  const Vector params_;
  const ModelMetadata metadata_;
  struct AlignedDelete {
    void operator()(float* p) const;
  };
  static constexpr size_t kInferenceAlignment = 64;

  const std::unique_ptr<const Network<float>> network_;  // takes inference_params_
  // params_ rearranged by Network::InferenceWeights, on a cache-line boundary: the first layer's
  // W^T and A^T rows then start on cache lines (their offsets are multiples of 16 floats when
  // the single-series kernel runs), and its 64-byte loads never straddle two lines, which
  // measured up to twice as slow.
  const std::unique_ptr<float[], AlignedDelete> inference_params_;
};

}  // namespace srn

#endif  // SRN_MODEL_SIMILARITY_MODEL_H_
