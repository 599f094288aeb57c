// Writes the valid seeds of the weights_file fuzzer with the project's own writer: tiny untrained
// models of every cell type and pooling, frames and signature kinds, as whole files (.srnw) and
// as bare payloads (.payload, which the fuzzer also loads inside a valid frame). Run it after a
// change to the weights format (fuzz/run.sh builds it):
//   build-fuzz/fuzz/write_weights_seeds fuzz/corpus/weights_file

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/file.h"
#include "fuzz/tiny_models.h"
#include "model/data/signature_features.h"
#include "model/weights/weights_file.h"

namespace srn::fuzz {
namespace {

struct Seed {
  const char* name;
  const char* family;
  FeatureKind kind;
  int raw_dims;
  int window;
  bool center_series;
};

constexpr Seed kSeeds[] = {
    {"srn_a", "srn-a", FeatureKind::kFrames, 2, 1, false},
    {"sn_l_window", "sn-l", FeatureKind::kFrames, 2, 3, true},
    {"gru_s_signature", "gru-s", FeatureKind::kSignature, kSignatureFeatureDims, 1, false},
    {"lstm_l", "lstm-l", FeatureKind::kFrames, 1, 2, false},
    {"logistic", "logistic", FeatureKind::kFrames, 3, 1, false},
};

// The model of `seed`; the first one carries metadata too, to seed its fields.
absl::StatusOr<std::shared_ptr<const SimilarityModel>> SeedModel(const Seed& seed, int index) {
  std::shared_ptr<const SimilarityModel> model = TinyModel(
      seed.family, seed.kind, seed.raw_dims, seed.window, seed.center_series, 100 + index);
  if (index != 0) return model;
  ModelMetadata meta;
  meta.training_data = "fuzz seed";
  meta.command = "write_weights_seeds";
  meta.hyperparameters = {{"lr", "0.01"}, {"epochs", "3"}};
  meta.metrics = {{"val_auc", 0.5}};
  meta.seed = 7;
  meta.created = "2026-12-07T00:00:00Z";
  return SimilarityModel::Create(model->architecture(), model->preprocessor(), model->params(),
                                 std::move(meta));
}

absl::Status WriteSeeds(const std::filesystem::path& dir) {
  int index = 0;
  for (const Seed& seed : kSeeds) {
    absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = SeedModel(seed, index++);
    if (!model.ok()) return model.status();
    const std::string file = SerializeModel(**model);
    absl::Status status =
        WriteFileAtomically((dir / (std::string(seed.name) + ".srnw")).string(), file);
    if (!status.ok()) return status;
    status = WriteFileAtomically((dir / (std::string(seed.name) + ".payload")).string(),
                                 file.substr(kWeightsHeaderSize));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace srn::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  const absl::Status status = srn::fuzz::WriteSeeds(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "write_weights_seeds: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
