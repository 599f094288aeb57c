#ifndef SRN_MODEL_NN_ARCHITECTURE_H_
#define SRN_MODEL_NN_ARCHITECTURE_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace srn {

// The recurrent cell of each encoder layer.
enum class CellType {
  kRelu,  // z_t = relu(W x_t + A z_{t-1} + b): the paper's SRN (or SN when not recurrent)
  kGru,   // PyTorch-compatible GRU (gates r, z, n; separate recurrent bias)
  kLstm,  // PyTorch-compatible LSTM (gates i, f, g, o; one bias)
};

// How the per-frame hidden states of the top layer become one embedding.
enum class Pooling {
  kLast,  // h = z_T        ("-L" models)
  kMean,  // h = mean_t z_t ("-A" models)
  // h = (mean_t z_t, sd_t z_t), 2 x hidden values ("-S" models): statistics pooling as speaker
  // embeddings use it; sd = sqrt(mean_t z_t^2 - mean^2 + kStatsPoolingEpsilon).
  kStats,
};

// Keeps the standard deviation of statistics pooling (and its gradient) finite for constant
// states.
inline constexpr double kStatsPoolingEpsilon = 1e-6;

// The shape of a siamese encoder plus its similarity head s = sigmoid(v . (h1 * h2) + c).
// A value type. `hidden == 0` is the logistic model: no hidden units, h = mean_t x_t.
struct Architecture {
  CellType cell = CellType::kRelu;
  bool recurrent = true;  // false: SN models (A = 0); relu cells only
  Pooling pooling = Pooling::kMean;
  int input_dims = 0;     // features per frame after preprocessing (raw dims x window)
  int hidden = 64;        // units per layer; 0 for the logistic model
  int layers = 1;         // stacked layers (each layer's frames feed the next)

  bool is_logistic() const { return hidden == 0; }
  int embedding_dims() const {
    return is_logistic() ? input_dims : pooling == Pooling::kStats ? 2 * hidden : hidden;
  }
  // Gate blocks per layer: 1 (relu), 3 (gru), 4 (lstm).
  int gates() const;

  // The family name: srn-a, srn-l, srn-s, sn-a, sn-l, sn-s, gru-a, gru-l, gru-s, lstm-a,
  // lstm-l, lstm-s or logistic.
  std::string FamilyName() const;
  // FamilyName plus shape, e.g. "srn-a h=64 layers=2 in=26".
  std::string ToString() const;

  absl::Status Validate() const;
};

bool operator==(const Architecture& a, const Architecture& b);
inline bool operator!=(const Architecture& a, const Architecture& b) { return !(a == b); }

// Parses a family name (see FamilyName) into cell, recurrence and pooling; sizes keep defaults.
absl::StatusOr<Architecture> ParseFamily(absl::string_view name);

absl::string_view CellTypeName(CellType cell);
absl::string_view PoolingName(Pooling pooling);

}  // namespace srn

#endif  // SRN_MODEL_NN_ARCHITECTURE_H_
