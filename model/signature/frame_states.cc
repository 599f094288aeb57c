#include "model/signature/frame_states.h"

#include <random>
#include <utility>

#include "base/status_macros.h"
#include "model/nn/network.h"
#include "model/signature/frame_triplet_trainer.h"

namespace srn {

Series HiddenStates(const SimilarityModel& model, const Series& preprocessed) {
  if (model.architecture().is_logistic()) return CapFrames(preprocessed, kMaxDtwFrames);
  const Network<float> network(model.architecture(), model.layout());
  Network<float>::Workspace ws;
  RowMatrix pooled;
  std::mt19937_64 unused(0);
  // A batch of one series packs its frames in time order, one row per step.
  network.Forward(model.params().data(), {&preprocessed}, 0.0f, &unused, &ws, &pooled);
  RowMatrix states = std::move(ws.layers.back().out);
  NormalizeFrames(FrameNormalizationOf(model).value_or(FrameNormalization::kNone), &states);
  Series out(std::move(states));
  return out.length() > kMaxDtwFrames ? CapFrames(out, kMaxDtwFrames) : out;
}

absl::StatusOr<Series> FrameStates(const SimilarityModel& model, const Series& raw) {
  SRN_RETURN_IF_ERROR(FrameNormalizationOf(model).status());
  SRN_ASSIGN_OR_RETURN(const Series preprocessed, model.preprocessor().Apply(raw));
  return HiddenStates(model, preprocessed);
}

double StatesDistance(const Series& a, const Series& b, const DtwOptions& dtw,
                      const Cancellation* cancel) {
  return NormalizedDtwDistance(a, b, dtw, cancel);
}

double MeanMutualStatesDistance(absl::Span<const Series> states, const DtwOptions& dtw) {
  return *MeanMutualDistance(static_cast<int>(states.size()), [&](int i, int j) {
    return StatesDistance(states[i], states[j], dtw);
  });
}

}  // namespace srn
