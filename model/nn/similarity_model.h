#ifndef SRN_MODEL_NN_SIMILARITY_MODEL_H_
#define SRN_MODEL_NN_SIMILARITY_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/nn/architecture.h"
#include "model/nn/parameters.h"
#include "model/data/preprocess.h"
#include "model/data/series.h"

namespace srn {

template <typename T>
class Network;

// Acceptance thresholds measured for a model by `srn-eval --calibrate` on classes it was not
// trained on: Verify trials (a query against `references` enrolled examples of a class, their
// similarities averaged as srn-server's default fusion does), thresholds in the server's units (a
// similarity in [0, 1]). A server with no --default_threshold of its own accepts at
// `default_threshold`.
struct ThresholdCalibration {
  struct Point {
    double target_far = 0;  // asked for
    double threshold = 0;   // the lowest threshold whose measured FAR is at most target_far
    double far = 0;         // measured there
    double frr = 0;
  };
  std::vector<Point> points;  // by decreasing target FAR
  double eer = 0;             // the equal-error point of the same trials
  double eer_threshold = 0;
  // The operating point the server uses by default: "eer" or "far=<target>" (one of `points`).
  std::string default_choice;
  double default_threshold = 0;
  int references = 1;
  int64_t genuine_trials = 0;
  int64_t impostor_trials = 0;
  std::string measured_on;  // e.g. "glove.csv (--protocol=test): 19 classes"
};

// What a weights file says about how a model came to be (reported by GetModelInfo).
struct ModelMetadata {
  std::string training_data;                          // e.g. "arabic-voice speakers 1-60"
  std::string command;                                // the srn-train command line
  std::map<std::string, std::string> hyperparameters;  // name -> value as text
  std::map<std::string, double> metrics;              // e.g. "val_auc" -> 0.93
  uint64_t seed = 0;
  std::string created;                                // ISO 8601 UTC
  // How this model verifies, as measured for it (see model/signature/verification.h,
  // FormatVerificationCalibration); "" when nothing was measured.
  std::string verification;
  // The classes the model was trained (and validated) on, by name, sorted; empty when unknown
  // (files written before it was recorded).
  std::vector<std::string> trained_classes;
  // Measured acceptance thresholds; unset until `srn-eval --calibrate` records them.
  std::optional<ThresholdCalibration> thresholds;
};

// A trained siamese similarity model: preprocessing, encoder and head with their weights.
// Immutable once built; all const methods are safe to call from many threads at once (each call
// uses its own scratch space), so servers share one instance through std::shared_ptr<const>.
class SimilarityModel final {
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
  absl::StatusOr<RowMatrix> Embed(absl::Span<const Series* const> raw, int threads = 0) const;
  // Embeds already-preprocessed series (as the trainer and evaluations hold them), on `threads`
  // threads (0: DefaultThreads()).
  RowMatrix EmbedPreprocessed(absl::Span<const Series* const> series, int threads = 0) const;

  // The head: out[i] = sigmoid(v . (query * others_i) + c) for the n embeddings `others` (size
  // n * embedding_dims, row-major), the logit summed in float in dimension order and the sigmoid
  // taken in double; symmetric to the bit in query and others_i. Every score of one pair of
  // embeddings comes from here, so that training, evaluation and serving agree to the bit.
  void Score(const float* query, const float* others, int n, double* out) const;
  // The same for one pair, rounded to float.
  float Score(const float* a, const float* b) const;
  // The head over many rows at once for ranking (Identify's scan): logits by a matrix-vector
  // product, so they may differ from Score's in the last bits. rows: n x embedding_dims.
  void ScoreRows(const float* query, const Eigen::Ref<const RowMatrix>& rows, float* out) const;
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

#endif  // SRN_MODEL_NN_SIMILARITY_MODEL_H_
