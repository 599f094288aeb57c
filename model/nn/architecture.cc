#include "model/nn/architecture.h"

#include "absl/strings/str_cat.h"

namespace srn {

int Architecture::gates() const {
  switch (cell) {
    case CellType::kRelu: return 1;
    case CellType::kGru: return 3;
    case CellType::kLstm: return 4;
  }
  return 1;
}

std::string Architecture::FamilyName() const {
  if (is_logistic()) return "logistic";
  std::string name;
  switch (cell) {
    case CellType::kRelu: name = recurrent ? "srn" : "sn"; break;
    case CellType::kGru: name = "gru"; break;
    case CellType::kLstm: name = "lstm"; break;
  }
  switch (pooling) {
    case Pooling::kLast:
      return absl::StrCat(name, "-l");
    case Pooling::kMean:
      return absl::StrCat(name, "-a");
    case Pooling::kStats:
      return absl::StrCat(name, "-s");
  }
  return name;
}

std::string Architecture::ToString() const {
  if (is_logistic()) return absl::StrCat("logistic in=", input_dims);
  return absl::StrCat(FamilyName(), " h=", hidden, " layers=", layers, " in=", input_dims);
}

absl::Status Architecture::Validate() const {
  if (input_dims <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("input_dims must be positive, got ", input_dims));
  }
  if (hidden < 0)
    return absl::InvalidArgumentError(absl::StrCat("hidden must be >= 0, got ", hidden));
  if (hidden > 0 && (layers < 1 || layers > 16)) {
    return absl::InvalidArgumentError(absl::StrCat("layers must be in [1, 16], got ", layers));
  }
  if (input_dims > 1 << 16 || hidden > 1 << 14) {
    return absl::InvalidArgumentError(absl::StrCat("architecture too large: in=", input_dims,
                                                   " hidden=", hidden));
  }
  if (!recurrent && cell != CellType::kRelu) {
    return absl::InvalidArgumentError("only relu cells can be non-recurrent (SN models)");
  }
  if (is_logistic() && pooling != Pooling::kMean) {
    return absl::InvalidArgumentError(
        "the logistic model averages its inputs over time (pooling=mean)");
  }
  return absl::OkStatus();
}

bool operator==(const Architecture& a, const Architecture& b) {
  if (a.is_logistic() || b.is_logistic()) {
    return a.is_logistic() == b.is_logistic() && a.input_dims == b.input_dims;
  }
  return a.cell == b.cell && a.recurrent == b.recurrent && a.pooling == b.pooling &&
         a.input_dims == b.input_dims && a.hidden == b.hidden && a.layers == b.layers;
}

absl::StatusOr<Architecture> ParseFamily(absl::string_view name) {
  Architecture arch;
  if (name == "logistic") {
    arch.hidden = 0;
    arch.layers = 0;
    arch.pooling = Pooling::kMean;
    return arch;
  }
  const size_t dash = name.rfind('-');
  if (dash == absl::string_view::npos || dash + 2 != name.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown model family '", name,
        "' (expected srn, sn, gru or lstm with -a, -l or -s, e.g. gru-a, or logistic)"));
  }
  const absl::string_view cell = name.substr(0, dash);
  const char pool = name[dash + 1];
  if (pool == 'a') {
    arch.pooling = Pooling::kMean;
  } else if (pool == 'l') {
    arch.pooling = Pooling::kLast;
  } else if (pool == 's') {
    arch.pooling = Pooling::kStats;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown pooling in '", name, "' (-a, -l or -s)"));
  }
  if (cell == "srn") {
    arch.cell = CellType::kRelu;
  } else if (cell == "sn") {
    arch.cell = CellType::kRelu;
    arch.recurrent = false;
  } else if (cell == "gru") {
    arch.cell = CellType::kGru;
  } else if (cell == "lstm") {
    arch.cell = CellType::kLstm;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown model family '", name,
        "' (expected srn, sn, gru or lstm with -a, -l or -s, e.g. gru-a, or logistic)"));
  }
  return arch;
}

absl::string_view CellTypeName(CellType cell) {
  switch (cell) {
    case CellType::kRelu: return "relu";
    case CellType::kGru: return "gru";
    case CellType::kLstm: return "lstm";
  }
  return "unknown";
}

absl::string_view PoolingName(Pooling pooling) {
  switch (pooling) {
    case Pooling::kLast:
      return "last";
    case Pooling::kMean:
      return "mean";
    case Pooling::kStats:
      return "stats";
  }
  return "unknown";
}

}  // namespace srn
