// srn-store-gen: writes an SQLite subject store of many enrolled subjects, as srn-server stores
// them, for measuring start-up over a large store (bench/startup_bench.sh, issue 20). Each subject
// has --references real SVC2004 signatures of one signer (subject i: signer i mod the signers,
// consecutive genuine signatures from a rotating start), their inputs exactly as srnctl sends
// them and their embeddings by --weights. The spreads Enroll would derive are not written (as in
// a store from before they were stored): the server derives them after it starts serving.
//
//   build/bench/srn-store-gen --store=/tmp/big.db --subjects=100000
//       --signatures=$SRN_DATA_DIR/svc2004/Task2 [--weights=deploy/models/default.srnw]
// (one command line).

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "client/series_files.h"
#include "server/series_input.h"
#include "server/serving_model.h"
#include "server/subject_store.h"

ABSL_FLAG(std::string, weights, "deploy/models/default.srnw", "the model that embeds");
ABSL_FLAG(std::string, store, "",
          "the store to fill: a new SQLite file, or an empty PostgreSQL database "
          "(postgresql://...)");
ABSL_FLAG(int, subjects, 100000, "subjects to write");
ABSL_FLAG(int, references, 5, "references per subject (at most 20)");
ABSL_FLAG(std::string, signatures, "", "an SVC2004 task directory (U<u>S<s>.TXT files)");

namespace {

int Fail(const std::string& message) {
  std::cerr << "srn-store-gen: " << message << "\n";
  return 1;
}

// A signer's genuine signatures (S1-S20), each as stored: the serialized input and its embedding.
struct Signer {
  std::vector<srn::StoredReference> genuine;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string store_path = absl::GetFlag(FLAGS_store);
  const std::string dir = absl::GetFlag(FLAGS_signatures);
  const int subjects = absl::GetFlag(FLAGS_subjects);
  const int references = absl::GetFlag(FLAGS_references);
  if (store_path.empty() || dir.empty()) return Fail("give --store and --signatures");
  if (subjects < 1 || references < 1 || references > 20) {
    return Fail("need --subjects >= 1 and --references in [1, 20]");
  }
  const bool postgres = srn::IsPostgresUri(store_path);
  if (!postgres && std::filesystem::exists(store_path)) {
    return Fail(store_path + " exists; give a new file");
  }
  absl::StatusOr<std::shared_ptr<const srn::ServingModel>> model =
      srn::LoadServingModel(absl::GetFlag(FLAGS_weights), "");
  if (!model.ok()) return Fail(std::string(model.status().message()));

  const auto start = std::chrono::steady_clock::now();
  std::vector<Signer> signers;
  for (int u = 1; u <= 100; ++u) {
    Signer signer;
    for (int s = 1; s <= 20; ++s) {
      const std::string path = absl::StrFormat("%s/U%dS%d.TXT", dir, u, s);
      if (!std::filesystem::exists(path)) break;
      absl::StatusOr<srn::v1::SeriesInput> input = srn::ReadSeriesInput(path);
      if (!input.ok()) return Fail(std::string(input.status().message()));
      absl::StatusOr<srn::Series> raw =
          srn::ToRawSeries(*input, *(*model)->model, srn::RequestLimits(), path);
      if (!raw.ok()) return Fail(std::string(raw.status().message()));
      absl::StatusOr<srn::RowMatrix> embedding = (*model)->model->Embed({&*raw});
      if (!embedding.ok()) return Fail(std::string(embedding.status().message()));
      srn::StoredReference reference;
      reference.input = input->SerializeAsString();
      reference.embedding.assign(embedding->data(), embedding->data() + embedding->cols());
      signer.genuine.push_back(std::move(reference));
    }
    if (static_cast<int>(signer.genuine.size()) == 20) signers.push_back(std::move(signer));
  }
  if (signers.empty()) return Fail("no signer with U<u>S1-20.TXT in " + dir);

  absl::StatusOr<std::unique_ptr<srn::SubjectStore>> store =
      postgres ? srn::OpenPostgresSubjectStore(store_path)
               : srn::OpenSqliteSubjectStore(store_path);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  constexpr int kBatch = 2000;
  std::vector<srn::SubjectRecord> batch;
  for (int i = 0; i < subjects; ++i) {
    const Signer& signer = signers[i % signers.size()];
    const int first = static_cast<int>((i / signers.size()) % 20);
    srn::SubjectRecord record;
    record.id = absl::StrFormat("subject-%07d", i);
    record.created_unix_ms = record.updated_unix_ms = now_ms;
    record.model_id = (*model)->id;
    for (int r = 0; r < references; ++r) {
      record.references.push_back(signer.genuine[(first + r) % 20]);
    }
    batch.push_back(std::move(record));
    if (static_cast<int>(batch.size()) == kBatch || i + 1 == subjects) {
      if (absl::Status s = (*store)->PutAll(batch, {}).status(); !s.ok())
        return Fail(std::string(s.message()));
      batch.clear();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << absl::StrFormat(
      "STOREGEN subjects=%d references=%d signers=%d model=%s seconds=%.1f bytes=%d\n", subjects,
      references, signers.size(), (*model)->id, seconds,
      postgres ? -1 : static_cast<int64_t>(std::filesystem::file_size(store_path)));
  return 0;
}
