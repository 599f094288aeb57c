#include "model/signature/frame_states.h"

#include <random>
#include <utility>

#include "base/status_macros.h"
#include "model/nn/network.h"
#include "model/signature/frame_triplet_trainer.h"

namespace srn {

Series HiddenStates(const SimilarityModel& model, const Series& preprocessed) {
  if (model.architecture().is_logistic()) return preprocessed;
  const Network<float> network(model.architecture(), model.layout());
  Network<float>::Workspace ws;
  RowMatrix pooled;
  std::mt19937_64 unused(0);
  // A batch of one series packs its frames in time order, one row per step.
  network.Forward(model.params().data(), {&preprocessed}, 0.0f, &unused, &ws, &pooled);
  RowMatrix states = std::move(ws.layers.back().out);
  NormalizeFrames(FrameNormalizationOf(model).value_or(FrameNormalization::kNone), &states);
  return Series(std::move(states));
}

absl::StatusOr<Series> FrameStates(const SimilarityModel& model, const Series& raw) {
  SRN_RETURN_IF_ERROR(FrameNormalizationOf(model).status());
  SRN_ASSIGN_OR_RETURN(const Series preprocessed, model.preprocessor().Apply(raw));
  return HiddenStates(model, preprocessed);
}

double StatesDistance(const Series& a, const Series& b, const DtwOptions& dtw) {
  return NormalizedDtwDistance(a, b, dtw);
}

double MeanMutualStatesDistance(absl::Span<const Series> states, const DtwOptions& dtw) {
  const size_t n = states.size();
  if (n < 2) return 1.0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) sum += StatesDistance(states[i], states[j], dtw);
  }
  return sum / static_cast<double>(n * (n - 1) / 2);
}

}  // namespace srn
