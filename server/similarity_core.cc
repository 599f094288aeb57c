#include "server/similarity_core.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "model/nn/parallel.h"
#include "model/signature/frame_states.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/verification.h"
#include "model/weights/threshold_calibration_proto.h"
#include "base/status_macros.h"
#include "base/clock.h"
#include "server/request_enums.h"

namespace srn {
namespace {

absl::Status CheckThreshold(float threshold, const std::string& what) {
  if (!(threshold >= 0.0f && threshold <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a similarity in [0, 1], got ", threshold));
  }
  return absl::OkStatus();
}

// What leaves the server is finite, and every similarity or score is in [0, 1] (the API's
// promise). An embedding that overflowed comes from the input (values or length the network
// cannot take): InvalidArgument. A score out of range from finite embeddings is a bug: Internal.
absl::Status CheckEmbeddings(const RowMatrix& embeddings, const std::string& what) {
  for (int i = 0; i < embeddings.rows(); ++i) {
    if (!embeddings.row(i).allFinite()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "]: the model's computation overflowed on this series (its embedding is "
          "not finite); scale the values down or shorten the series"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStates(const Series& states, const std::string& what) {
  if (states.frames().allFinite()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": the model's computation overflowed on this series (its per-frame states are not "
      "finite); scale the values down or shorten the series"));
}

absl::Status CheckScore(double score, const std::string& what) {
  if (score >= 0.0 && score <= 1.0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("the ", what, " came out as ", score, ", outside [0, 1]; please report this"));
}

absl::Status CheckFinite(double value, const std::string& what) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("the ", what, " came out as ", value, "; please report this"));
}

v1::Fusion ToProto(ReferenceFusion rule) {
  switch (rule) {
    case ReferenceFusion::kMax: return v1::FUSION_MAX;
    case ReferenceFusion::kMean: return v1::FUSION_MEAN;
    case ReferenceFusion::kTopKMean: return v1::FUSION_TOP_K_MEAN;
  }
  return v1::FUSION_UNSPECIFIED;
}

}  // namespace

DefaultThreshold ResolveDefaultThreshold(const ServingModel& model,
                                         const std::optional<float>& server_threshold) {
  if (server_threshold.has_value()) {
    return {*server_threshold, "the server's --default_threshold"};
  }
  if (model.FusesDtw() || model.VerifiesByStates()) {
    return {0.5f, "0.5, the equal-error point of the model's calibrated Verify score"};
  }
  if (const std::optional<ThresholdCalibration>& t = model.model->metadata().thresholds;
      t.has_value()) {
    return {static_cast<float>(t->default_threshold),
            absl::StrCat("the model's calibration (", t->default_choice, ", measured on ",
                         t->measured_on, ")")};
  }
  return {0.5f,
          "0.5, uncalibrated: this model records no threshold (srn-eval --calibrate measures "
          "one for a target false-accept rate)"};
}

SubjectRecord ToRecord(const SubjectEntry& entry) {
  SubjectRecord record;
  record.id = entry.id;
  record.threshold = entry.threshold;
  record.threshold_shift = entry.threshold_shift;
  record.created_unix_ms = entry.created_unix_ms;
  record.updated_unix_ms = entry.updated_unix_ms;
  record.model_id = entry.model_id;
  for (int r = 0; r < entry.references(); ++r) {
    StoredReference ref;
    ref.input = entry.inputs[r];
    ref.embedding.assign(entry.embeddings.row(r).data(),
                         entry.embeddings.row(r).data() + entry.embeddings.cols());
    record.references.push_back(std::move(ref));
  }
  return record;
}

absl::StatusOr<std::shared_ptr<SubjectEntry>> FromRecord(SubjectRecord record) {
  auto entry = std::make_shared<SubjectEntry>();
  entry->id = std::move(record.id);
  entry->threshold = record.threshold;
  entry->threshold_shift = record.threshold_shift;
  entry->created_unix_ms = record.created_unix_ms;
  entry->updated_unix_ms = record.updated_unix_ms;
  entry->model_id = std::move(record.model_id);
  const int n = static_cast<int>(record.references.size());
  const int dims = n == 0 ? 0 : static_cast<int>(record.references[0].embedding.size());
  entry->embeddings.resize(n, dims);
  for (int r = 0; r < n; ++r) {
    const StoredReference& ref = record.references[r];
    if (static_cast<int>(ref.embedding.size()) != dims) {
      return absl::DataLossError(absl::StrCat("subject '", entry->id, "': reference ", r, " has ",
                                              ref.embedding.size(),
                                              " embedding values, reference 0 has ", dims));
    }
    std::copy(ref.embedding.begin(), ref.embedding.end(), entry->embeddings.row(r).data());
    entry->inputs.push_back(std::move(record.references[r].input));
  }
  return entry;
}

v1::Subject ToProto(const SubjectEntry& entry) {
  v1::Subject s;
  s.set_subject_id(entry.id);
  s.set_reference_count(entry.references());
  if (entry.threshold.has_value()) s.set_threshold(*entry.threshold);
  if (entry.threshold_shift.has_value()) s.set_threshold_shift(*entry.threshold_shift);
  s.set_created_unix_ms(entry.created_unix_ms);
  s.set_updated_unix_ms(entry.updated_unix_ms);
  s.set_model_id(entry.model_id);
  return s;
}

SimilarityCore::SimilarityCore(std::shared_ptr<const ServingModel> model,
                               std::unique_ptr<SubjectStore> store, const CoreOptions& options,
                               ServerMetrics* metrics)
    : options_(options), metrics_(metrics), store_(std::move(store)), index_(model) {
  if (metrics_ != nullptr) {
    metrics_->SetModel(model->id, model->model->architecture().FamilyName(), model->version);
  }
}

ReferenceFusion SimilarityCore::Fusion(v1::Fusion requested) const {
  switch (requested) {
    case v1::FUSION_MAX: return ReferenceFusion::kMax;
    case v1::FUSION_MEAN: return ReferenceFusion::kMean;
    case v1::FUSION_TOP_K_MEAN: return ReferenceFusion::kTopKMean;
    default: return options_.default_fusion;  // unspecified: requests pass CheckKnownEnums
  }
}

void SimilarityCore::UpdateEnrolledMetrics() const {
  if (metrics_ != nullptr) metrics_->SetEnrolled(index_.subjects(), index_.references());
}

absl::StatusOr<RowMatrix> SimilarityCore::EmbedInputs(
    const ServingModel& model, const google::protobuf::RepeatedPtrField<v1::SeriesInput>& inputs,
    const std::string& what, std::vector<Series>* raw) const {
  absl::InlinedVector<Series, 1> series;
  series.reserve(inputs.size());
  for (int i = 0; i < inputs.size(); ++i) {
    SRN_ASSIGN_OR_RETURN(Series s, ToRawSeries(inputs[i], *model.model, options_.limits,
                                                absl::StrCat(what, "[", i, "]")));
    if (metrics_ != nullptr) metrics_->SeriesLength(s.length());
    series.push_back(std::move(s));
  }
  absl::InlinedVector<const Series*, 1> pointers;
  for (const Series& s : series) pointers.push_back(&s);
  SRN_ASSIGN_OR_RETURN(RowMatrix embeddings, model.model->Embed(pointers, options_.threads));
  SRN_RETURN_IF_ERROR(CheckEmbeddings(embeddings, what));
  if (raw != nullptr) raw->assign(std::make_move_iterator(series.begin()),
                                  std::make_move_iterator(series.end()));
  return embeddings;
}

absl::StatusOr<RowMatrix> SimilarityCore::EmbedOne(const ServingModel& model,
                                                   const v1::SeriesInput& input,
                                                   const std::string& what) const {
  SRN_ASSIGN_OR_RETURN(Series s, ToRawSeries(input, *model.model, options_.limits, what));
  if (metrics_ != nullptr) metrics_->SeriesLength(s.length());
  SRN_ASSIGN_OR_RETURN(RowMatrix embedding, model.model->Embed({&s}));
  SRN_RETURN_IF_ERROR(CheckEmbeddings(embedding, what));
  return embedding;
}

absl::StatusOr<v1::EmbedResponse> SimilarityCore::Embed(const v1::EmbedRequest& request) const {
  if (request.series_size() == 0) return absl::InvalidArgumentError("no series to embed");
  if (request.series_size() > options_.limits.max_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(request.series_size(),
                                                     " series in one call exceeds the limit of ",
                                                     options_.limits.max_batch));
  }
  const std::shared_ptr<const ServingModel> model = index_.model();
  SRN_ASSIGN_OR_RETURN(RowMatrix emb, EmbedInputs(*model, request.series(), "series"));
  v1::EmbedResponse response;
  for (int i = 0; i < emb.rows(); ++i) {
    auto* values = response.add_embeddings()->mutable_values();
    values->Add(emb.row(i).data(), emb.row(i).data() + emb.cols());
  }
  response.set_model_id(model->id);
  return response;
}

absl::StatusOr<v1::SimilarityResponse> SimilarityCore::Similarity(
    const v1::SimilarityRequest& request) const {
  const std::shared_ptr<const ServingModel> model = index_.model();
  SRN_ASSIGN_OR_RETURN(Series a, ToRawSeries(request.a(), *model->model, options_.limits, "a"));
  SRN_ASSIGN_OR_RETURN(Series b, ToRawSeries(request.b(), *model->model, options_.limits, "b"));
  if (metrics_ != nullptr) {
    metrics_->SeriesLength(a.length());
    metrics_->SeriesLength(b.length());
  }
  SRN_ASSIGN_OR_RETURN(RowMatrix emb, model->model->Embed({&a, &b}, options_.threads));
  SRN_RETURN_IF_ERROR(CheckEmbeddings(emb.topRows(1), "a"));
  SRN_RETURN_IF_ERROR(CheckEmbeddings(emb.bottomRows(1), "b"));
  const float similarity = model->model->Score(emb.row(0).data(), emb.row(1).data());
  SRN_RETURN_IF_ERROR(CheckScore(similarity, "similarity"));
  v1::SimilarityResponse response;
  response.set_similarity(similarity);
  response.set_model_id(model->id);
  return response;
}

absl::StatusOr<v1::EnrollResponse> SimilarityCore::Enroll(const v1::EnrollRequest& request,
                                                          const Cancellation& cancel) {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(request));
  SRN_RETURN_IF_ERROR(ValidateSubjectId(request.subject_id(), options_.limits));
  if (request.references_size() == 0) {
    return absl::InvalidArgumentError("no references to enroll");
  }
  if (request.references_size() > options_.limits.max_references) {
    return absl::ResourceExhaustedError(absl::StrCat(request.references_size(),
                                                     " references exceeds the limit of ",
                                                     options_.limits.max_references));
  }
  if (request.has_threshold())
    SRN_RETURN_IF_ERROR(CheckThreshold(request.threshold(), "threshold"));
  if (request.has_threshold_shift()) {
    if (request.has_threshold()) {
      return absl::InvalidArgumentError(
          "set threshold or threshold_shift (a threshold derived from the references), not both");
    }
    if (!(request.threshold_shift() >= -1.0f && request.threshold_shift() <= 1.0f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "threshold_shift must be in [-1, 1], got ", request.threshold_shift()));
    }
  }
  const bool replace = request.mode() == v1::ENROLL_MODE_REPLACE;
  std::vector<std::string> inputs;
  for (const v1::SeriesInput& input : request.references())
    inputs.push_back(input.SerializeAsString());

  // Embedding is slow, so it happens before taking the write lock; if the model changed in the
  // meantime, embed again with the new one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::shared_ptr<const ServingModel> model = index_.model();
    std::vector<Series> raw;
    SRN_ASSIGN_OR_RETURN(RowMatrix emb,
                         EmbedInputs(*model, request.references(), "references", &raw));

    MutexLock write(&write_mu_);
    const SubjectIndex::View view = index_.Lookup(request.subject_id());
    if (view.model->id != model->id) continue;
    auto entry = std::make_shared<SubjectEntry>();
    entry->id = request.subject_id();
    entry->model_id = model->id;
    entry->updated_unix_ms = NowUnixMs();
    entry->created_unix_ms = view.subject ? view.subject->created_unix_ms : entry->updated_unix_ms;
    entry->threshold = request.has_threshold()
                           ? std::optional<float>(request.threshold())
                           : (view.subject ? view.subject->threshold : std::nullopt);
    // A shift is kept until a fixed threshold replaces it.
    entry->threshold_shift = request.has_threshold_shift()
                                 ? std::optional<float>(request.threshold_shift())
                                 : request.has_threshold() || !view.subject
                                       ? std::nullopt
                                       : view.subject->threshold_shift;
    const bool append = view.subject != nullptr && !replace;
    const int old_rows = append ? view.subject->references() : 0;
    if (old_rows + emb.rows() > options_.limits.max_references) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "subject '", request.subject_id(), "' would have ", old_rows + emb.rows(),
          " references; the limit is ", options_.limits.max_references,
          " (use mode REPLACE to replace them)"));
    }
    entry->embeddings.resize(old_rows + emb.rows(), emb.cols());
    if (append) {
      entry->embeddings.topRows(old_rows) = view.subject->embeddings;
      entry->inputs = view.subject->inputs;
      // The stored references' DTW preparation and states are by the same model and options:
      // keep them.
      entry->dtw_references = view.subject->dtw_references;
      entry->states_references = view.subject->states_references;
    }
    entry->embeddings.bottomRows(emb.rows()) = emb;
    entry->inputs.insert(entry->inputs.end(), inputs.begin(), inputs.end());
    SRN_RETURN_IF_ERROR(PrepareVerification(*model, entry.get(), &raw, old_rows, cancel));
    for (int r = old_rows; r < static_cast<int>(entry->states_references.size()); ++r) {
      SRN_RETURN_IF_ERROR(CheckStates(entry->states_references[r],
                                      absl::StrCat("references[", r - old_rows, "]")));
    }

    const auto start = std::chrono::steady_clock::now();
    SRN_RETURN_IF_ERROR(store_->Put(ToRecord(*entry)));
    if (metrics_ != nullptr) {
      metrics_->StoreCommit(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    v1::EnrollResponse response;
    *response.mutable_subject() = ToProto(*entry);
    index_.Upsert(std::move(entry));
    UpdateEnrolledMetrics();
    return response;
  }
  return absl::UnavailableError("the model kept changing during enrollment; retry");
}

absl::StatusOr<v1::VerifyResponse> SimilarityCore::Verify(const v1::VerifyRequest& request,
                                                          const Cancellation& cancel) const {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(request));
  SRN_RETURN_IF_ERROR(ValidateSubjectId(request.subject_id(), options_.limits));
  if (request.has_threshold())
    SRN_RETURN_IF_ERROR(CheckThreshold(request.threshold(), "threshold"));
  if (request.top_k() < 0) return absl::InvalidArgumentError("top_k must not be negative");
  const SubjectIndex::View view = index_.Lookup(request.subject_id());
  if (view.subject == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("subject '", request.subject_id(), "' is not enrolled"));
  }
  const ServingModel& model = *view.model;
  SRN_ASSIGN_OR_RETURN(const Series raw,
                       ToRawSeries(request.query(), *model.model, options_.limits, "query"));
  if (metrics_ != nullptr) metrics_->SeriesLength(raw.length());
  const SubjectEntry& subject = *view.subject;
  const int references = subject.references();
  VerificationPolicy policy;
  VerificationEvidence evidence;
  std::vector<double> similarities(references);
  if (model.VerifiesByStates()) {
    // The entry's states are by `model` (they are read together). The calibrated score always
    // averages over the references.
    policy.learned = LearnedScore::kStatesDtw;
    policy.fusion = ReferenceFusion::kMean;
    policy.dtw_fusion = model.calibration.dtw_fusion;
    SRN_ASSIGN_OR_RETURN(const Series states, FrameStates(*model.model, raw));
    SRN_RETURN_IF_ERROR(CheckStates(states, "query"));
    for (int r = 0; r < references; ++r) {
      SRN_RETURN_IF_ERROR(cancel.Check());
      similarities[r] = -StatesDistance(states, subject.states_references[r],
                                        model.calibration.states_dtw, &cancel);
    }
    SRN_RETURN_IF_ERROR(cancel.Check());  // the last distance may have been cut short
    evidence.mutual_similarity = -subject.states_spread;
  } else {
    SRN_ASSIGN_OR_RETURN(RowMatrix query, model.model->Embed({&raw}));
    SRN_RETURN_IF_ERROR(CheckEmbeddings(query, "query"));
    model.model->Score(query.row(0).data(), subject.embeddings.data(), references,
                       similarities.data());
    policy.fusion = Fusion(request.fusion());
    policy.top_k = request.top_k() > 0 ? request.top_k() : options_.default_fusion_k;
    evidence.mutual_similarity = subject.mutual_similarity;
    if (model.FusesDtw()) policy.dtw_fusion = model.calibration.dtw_fusion;
  }
  evidence.similarities = similarities;
  std::vector<double> distances;
  // The entry's DTW references match the model it was built with, which is `model`; they are
  // empty only when the fusion is off. A states model skips the DTW verifier when its weight
  // for this number of references is 0.
  const double dtw_weight = references >= 2 ? model.calibration.dtw_fusion.weight_many
                                            : model.calibration.dtw_fusion.weight_one;
  if (model.FusesDtw() && !subject.dtw_references.empty() &&
      (!model.VerifiesByStates() || dtw_weight > 0)) {
    SRN_ASSIGN_OR_RETURN(const Series prepared, PrepareForSignatureDtw(raw, options_.dtw));
    for (const Series& ref : subject.dtw_references) {
      SRN_RETURN_IF_ERROR(cancel.Check());
      distances.push_back(SignatureDtwDistance(prepared, ref, options_.dtw, &cancel));
    }
    SRN_RETURN_IF_ERROR(cancel.Check());
    evidence.dtw_distances = distances;
    evidence.dtw_spread = subject.dtw_spread;
  }
  const VerificationScore verification = ScoreVerification(evidence, policy);
  if (!std::isfinite(verification.score)) {
    // Finite inputs give finite scores; anything else is a query the model cannot compare.
    return absl::InvalidArgumentError(
        "the query cannot be compared with the references (its score is not finite)");
  }
  const float score = static_cast<float>(verification.score);
  v1::VerifyResponse response;
  float threshold = 0;
  if (request.has_threshold()) {
    threshold = request.threshold();
    response.set_threshold_source("the request's threshold");
  } else if (subject.threshold.has_value()) {
    threshold = *subject.threshold;
    response.set_threshold_source(subject.threshold_shift.has_value()
                                      ? "the subject's, derived from its references "
                                        "(threshold_shift)"
                                      : "the subject's threshold");
  } else {
    const DefaultThreshold d = ResolveDefaultThreshold(model, options_.default_threshold);
    threshold = d.value;
    response.set_threshold_source(d.source);
  }
  if (verification.states_ratio.has_value()) {
    // The learned part of a states score: minus d / D, higher for more similar like the
    // embedding's similarity (see VerifyResponse.srn_score).
    response.set_srn_score(static_cast<float>(-*verification.states_ratio));
  } else if (verification.dtw_ratio.has_value()) {
    response.set_srn_score(static_cast<float>(verification.srn));
  }
  if (verification.dtw_ratio.has_value()) {
    response.set_dtw_distance_ratio(static_cast<float>(*verification.dtw_ratio));
  }
  SRN_RETURN_IF_ERROR(CheckScore(score, "verification score"));
  SRN_RETURN_IF_ERROR(CheckScore(threshold, "threshold"));
  for (double v : similarities) SRN_RETURN_IF_ERROR(CheckFinite(v, "reference score"));
  if (response.has_srn_score()) SRN_RETURN_IF_ERROR(CheckFinite(response.srn_score(), "SRN score"));
  if (response.has_dtw_distance_ratio()) {
    SRN_RETURN_IF_ERROR(CheckFinite(response.dtw_distance_ratio(), "DTW distance ratio"));
  }
  response.set_score(score);
  response.set_accepted(score >= threshold);
  response.set_threshold(threshold);
  for (double s : similarities) response.add_reference_scores(static_cast<float>(s));
  response.set_fusion(ToProto(policy.fusion));
  response.set_model_id(model.id);
  if (metrics_ != nullptr) metrics_->VerifyDecision(response.accepted());
  return response;
}

absl::StatusOr<v1::IdentifyResponse> SimilarityCore::Identify(
    const v1::IdentifyRequest& request) const {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(request));
  if (request.top_k() < 0 || request.top_k() > options_.limits.max_top_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k must be in [0, ", options_.limits.max_top_k, "], got ", request.top_k()));
  }
  if (request.has_threshold())
    SRN_RETURN_IF_ERROR(CheckThreshold(request.threshold(), "threshold"));
  const int top_k = request.top_k() > 0 ? request.top_k() : 5;
  const float threshold = request.has_threshold() ? request.threshold()
                                                  : -std::numeric_limits<float>::infinity();
  const ReferenceFusion rule = Fusion(request.fusion());
  const int threads = options_.threads > 0 ? options_.threads : DefaultThreads();
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::shared_ptr<const ServingModel> model = index_.model();
    SRN_ASSIGN_OR_RETURN(RowMatrix query, EmbedOne(*model, request.query(), "query"));
    bool stale = false;
    std::vector<IdentifyCandidate> candidates =
        index_.Identify(*model, query.row(0).data(), top_k, rule, options_.default_fusion_k,
                        threshold, threads, &stale);
    if (stale) continue;  // the model was swapped between embedding and scanning
    v1::IdentifyResponse response;
    for (const IdentifyCandidate& c : candidates) {
      SRN_RETURN_IF_ERROR(
          CheckScore(c.score, absl::StrCat("score of subject '", c.subject->id, "'")));
      v1::Candidate* out = response.add_candidates();
      out->set_subject_id(c.subject->id);
      out->set_score(c.score);
    }
    response.set_model_id(model->id);
    return response;
  }
  return absl::UnavailableError("the model kept changing during identification; retry");
}

absl::StatusOr<v1::Subject> SimilarityCore::GetSubject(const v1::GetSubjectRequest& request) const {
  SRN_RETURN_IF_ERROR(ValidateSubjectId(request.subject_id(), options_.limits));
  const SubjectIndex::View view = index_.Lookup(request.subject_id());
  if (view.subject == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("subject '", request.subject_id(), "' is not enrolled"));
  }
  return ToProto(*view.subject);
}

absl::StatusOr<v1::ListSubjectsResponse> SimilarityCore::ListSubjects(
    const v1::ListSubjectsRequest& request) const {
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size must not be negative");
  const int page_size = request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);
  if (!request.page_token().empty()) {
    if (!ValidateSubjectId(request.page_token(), options_.limits).ok()) {
      return absl::InvalidArgumentError("page_token is not one this server returned");
    }
  }
  const std::vector<std::shared_ptr<const SubjectEntry>> page =
      index_.List(request.page_token(), page_size + 1);
  v1::ListSubjectsResponse response;
  for (int i = 0; i < static_cast<int>(page.size()) && i < page_size; ++i) {
    *response.add_subjects() = ToProto(*page[i]);
  }
  if (static_cast<int>(page.size()) > page_size)
    response.set_next_page_token(page[page_size - 1]->id);
  return response;
}

absl::StatusOr<v1::DeleteSubjectResponse> SimilarityCore::DeleteSubject(
    const v1::DeleteSubjectRequest& request) {
  SRN_RETURN_IF_ERROR(ValidateSubjectId(request.subject_id(), options_.limits));
  MutexLock write(&write_mu_);
  if (index_.Lookup(request.subject_id()).subject == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("subject '", request.subject_id(), "' is not enrolled"));
  }
  const auto start = std::chrono::steady_clock::now();
  SRN_RETURN_IF_ERROR(store_->Delete(request.subject_id()));
  if (metrics_ != nullptr) {
    metrics_->StoreCommit(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  index_.Remove(request.subject_id());
  UpdateEnrolledMetrics();
  return v1::DeleteSubjectResponse();
}

absl::StatusOr<v1::ModelInfo> SimilarityCore::GetModelInfo() const {
  const std::shared_ptr<const ServingModel> serving = index_.model();
  const SimilarityModel& m = *serving->model;
  const Architecture& arch = m.architecture();
  const ModelMetadata& meta = m.metadata();
  v1::ModelInfo info;
  info.set_model_id(serving->id);
  info.set_family(arch.FamilyName());
  info.set_cell(std::string(CellTypeName(arch.cell)));
  info.set_recurrent(arch.recurrent && !arch.is_logistic());
  info.set_pooling(std::string(PoolingName(arch.pooling)));
  info.set_hidden(arch.hidden);
  info.set_layers(arch.is_logistic() ? 0 : arch.layers);
  info.set_embedding_dims(m.embedding_dims());
  info.set_input_kind(m.preprocessor().kind == FeatureKind::kSignature ? v1::ModelInfo::SIGNATURE
                                                                       : v1::ModelInfo::FRAMES);
  info.set_input_features(m.preprocessor().raw_dims);
  info.set_window(m.preprocessor().window);
  info.set_center_series(m.preprocessor().center_series);
  info.set_training_data(meta.training_data);
  info.set_command(meta.command);
  for (const auto& [k, v] : meta.hyperparameters) (*info.mutable_hyperparameters())[k] = v;
  for (const auto& [k, v] : meta.metrics) (*info.mutable_metrics())[k] = v;
  info.set_seed(meta.seed);
  info.set_created(meta.created);
  info.set_source(serving->source);
  const DefaultThreshold default_threshold =
      ResolveDefaultThreshold(*serving, options_.default_threshold);
  info.set_default_threshold(default_threshold.value);
  info.set_default_threshold_source(default_threshold.source);
  info.mutable_trained_classes()->Assign(meta.trained_classes.begin(),
                                         meta.trained_classes.end());
  if (meta.thresholds.has_value()) {
    ThresholdCalibrationToProto(*meta.thresholds, info.mutable_threshold_calibration());
  }
  info.set_default_fusion(ToProto(options_.default_fusion));
  const VerificationCalibration& c = serving->calibration;
  info.set_verification_score(LearnedScoreName(c.learned));
  if (serving->VerifiesByStates()) {
    info.set_states_dtw(absl::StrCat(
        "band=", c.states_dtw.band_fraction, " cost=",
        c.states_dtw.local_cost == DtwLocalCost::kEuclidean ? "euclidean" : "squared"));
    if (c.states_spread.has_value()) {
      info.set_states_single_reference_spread(FormatDtwSpreadModel(*c.states_spread));
    }
  }
  if (serving->FusesDtw() || serving->VerifiesByStates()) {
    v1::DtwFusion* f = info.mutable_dtw_fusion();
    f->set_weight_one(c.dtw_fusion.weight_one);
    f->set_offset_one(c.dtw_fusion.offset_one);
    f->set_weight_many(c.dtw_fusion.weight_many);
    f->set_offset_many(c.dtw_fusion.offset_many);
    if (c.dtw_spread.has_value()) {
      f->set_single_reference_spread(FormatDtwSpreadModel(*c.dtw_spread));
    }
  }
  return info;
}

absl::StatusOr<std::shared_ptr<const SubjectEntry>> SimilarityCore::Reembed(
    const SubjectEntry& entry, const ServingModel& model) const {
  std::vector<Series> raw;
  for (int r = 0; r < static_cast<int>(entry.inputs.size()); ++r) {
    v1::SeriesInput input;
    if (!input.ParseFromString(entry.inputs[r])) {
      return absl::DataLossError(absl::StrCat("subject '", entry.id, "': stored reference ", r,
                                              " is not a readable series"));
    }
    // Stored series were accepted once; a new model may still not take them (other features).
    RequestLimits unlimited = options_.limits;
    unlimited.max_series_length = std::numeric_limits<int>::max();
    unlimited.check_value_range = false;
    absl::StatusOr<Series> s = ToRawSeries(input, *model.model, unlimited, "reference");
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("subject '", entry.id, "' reference ", r,
                                                        " cannot be embedded by model ", model.id,
                                                        ": ", s.status().message()));
    }
    raw.push_back(*std::move(s));
  }
  std::vector<const Series*> pointers;
  for (const Series& s : raw) pointers.push_back(&s);
  SRN_ASSIGN_OR_RETURN(RowMatrix emb, model.model->Embed(pointers, options_.threads));
  auto fresh = std::make_shared<SubjectEntry>(entry);
  fresh->embeddings = std::move(emb);
  fresh->model_id = model.id;
  // A derived threshold follows the new model's similarities.
  SRN_RETURN_IF_ERROR(PrepareVerification(model, fresh.get(), &raw));
  return std::shared_ptr<const SubjectEntry>(std::move(fresh));
}

absl::Status SimilarityCore::PrepareVerification(const ServingModel& serving, SubjectEntry* entry,
                                                 const std::vector<Series>* raw, int prepared,
                                                 const Cancellation& cancel) const {
  const SimilarityModel& model = *serving.model;
  const bool fused = serving.FusesDtw();
  const bool states = serving.VerifiesByStates();
  // Only the embedding score's DTW fusion and its derived threshold use the mutual similarity
  // (a states score is calibrated: its derived threshold starts from 0.5).
  entry->mutual_similarity = !states && (fused || entry->threshold_shift.has_value())
                                 ? MeanMutualScore(MutualSimilarities(model, entry->embeddings))
                                 : 0.0;
  entry->dtw_references.resize(fused ? prepared : 0);
  entry->dtw_spread = 1;
  entry->states_references.resize(states ? prepared : 0);
  entry->states_spread = 1;
  const int references = static_cast<int>(entry->inputs.size());
  if (fused || states) {
    RequestLimits unlimited = options_.limits;
    unlimited.max_series_length = std::numeric_limits<int>::max();
    unlimited.check_value_range = false;
    const VerificationCalibration& calibration = serving.calibration;
    for (int r = prepared; r < references; ++r) {
      SRN_RETURN_IF_ERROR(cancel.Check());
      Series parsed;
      if (raw == nullptr) {
        v1::SeriesInput input;
        if (!input.ParseFromString(entry->inputs[r])) {
          return absl::DataLossError(absl::StrCat("subject '", entry->id, "': stored reference ", r,
                                                  " is not a readable series"));
        }
        SRN_ASSIGN_OR_RETURN(parsed, ToRawSeries(input, model, unlimited, "reference"));
      }
      const Series& features = raw != nullptr ? (*raw)[r - prepared] : parsed;
      if (fused) {
        SRN_ASSIGN_OR_RETURN(Series dtw_ready, PrepareForSignatureDtw(features, options_.dtw));
        entry->dtw_references.push_back(std::move(dtw_ready));
        if (references == 1 && calibration.dtw_spread.has_value()) {
          SRN_ASSIGN_OR_RETURN(entry->dtw_spread,
                               PredictDtwSpread(*calibration.dtw_spread, features));
        }
      }
      if (states) {
        SRN_ASSIGN_OR_RETURN(Series frame_states, FrameStates(model, features));
        entry->states_references.push_back(std::move(frame_states));
        if (references == 1 && calibration.states_spread.has_value()) {
          SRN_ASSIGN_OR_RETURN(entry->states_spread,
                               PredictDtwSpread(*calibration.states_spread, features));
        }
      }
    }
    // The same sums as MeanMutualDtwDistance and MeanMutualStatesDistance (srn-eval's), with the
    // call's cancellation checked between pairs.
    const auto dtw_pair = [&](int i, int j) {
      return SignatureDtwDistance(entry->dtw_references[i], entry->dtw_references[j],
                                  options_.dtw, &cancel);
    };
    const auto states_pair = [&](int i, int j) {
      return StatesDistance(entry->states_references[i], entry->states_references[j],
                            calibration.states_dtw, &cancel);
    };
    if (references >= 2 && fused) {
      SRN_ASSIGN_OR_RETURN(entry->dtw_spread, MeanMutualDistance(references, dtw_pair, cancel));
    }
    if (references >= 2 && states) {
      SRN_ASSIGN_OR_RETURN(entry->states_spread,
                           MeanMutualDistance(references, states_pair, cancel));
    }
  }
  if (entry->threshold_shift.has_value()) {
    absl::StatusOr<double> threshold =
        DerivedThreshold(entry->references(), entry->mutual_similarity, *entry->threshold_shift,
                         /*fused=*/fused || states);
    if (!threshold.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject '", entry->id, "': ", threshold.status().message()));
    }
    entry->threshold = static_cast<float>(*threshold);
  }
  return absl::OkStatus();
}

absl::Status SimilarityCore::Recover() {
  MutexLock write(&write_mu_);
  const std::shared_ptr<const ServingModel> model = index_.model();
  std::vector<std::shared_ptr<const SubjectEntry>> entries;
  std::vector<std::shared_ptr<SubjectEntry>> current;  // stored under `model`, to prepare
  std::vector<SubjectRecord> rewritten;
  SRN_RETURN_IF_ERROR(store_->ForEach([&](SubjectRecord record) -> absl::Status {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<SubjectEntry> entry, FromRecord(std::move(record)));
    if (entry->model_id != model->id) {
      SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectEntry> fresh, Reembed(*entry, *model));
      rewritten.push_back(ToRecord(*fresh));
      entries.push_back(std::move(fresh));
    } else {
      current.push_back(std::move(entry));
    }
    return absl::OkStatus();
  }));
  // Derived state is never stored (the server may now run with other options), and with DTW
  // fusion it costs about a millisecond per subject: prepare on every core.
  std::vector<absl::Status> prepared(current.size());
  const int threads = options_.threads > 0 ? options_.threads : DefaultThreads();
  ParallelFor(static_cast<int>(current.size()), threads, [&](int begin, int end, int) {
    for (int i = begin; i < end; ++i) prepared[i] = PrepareVerification(*model, current[i].get());
  });
  for (size_t i = 0; i < current.size(); ++i) {
    SRN_RETURN_IF_ERROR(prepared[i]);
    entries.push_back(std::move(current[i]));
  }
  if (!rewritten.empty()) SRN_RETURN_IF_ERROR(store_->PutAll(rewritten));
  index_.Reset(model, std::move(entries));
  UpdateEnrolledMetrics();
  return absl::OkStatus();
}

absl::Status SimilarityCore::SwapModel(std::shared_ptr<const ServingModel> model,
                                       int64_t* reembedded) {
  MutexLock write(&write_mu_);
  const std::vector<std::shared_ptr<const SubjectEntry>> current =
      index_.List("", std::numeric_limits<int>::max());
  std::vector<std::shared_ptr<const SubjectEntry>> entries;
  std::vector<SubjectRecord> records;
  entries.reserve(current.size());
  for (const auto& entry : current) {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectEntry> fresh, Reembed(*entry, *model));
    records.push_back(ToRecord(*fresh));
    entries.push_back(std::move(fresh));
  }
  if (!records.empty()) SRN_RETURN_IF_ERROR(store_->PutAll(records));
  if (metrics_ != nullptr) {
    metrics_->SetModel(model->id, model->model->architecture().FamilyName(), model->version);
  }
  index_.Reset(std::move(model), std::move(entries));
  if (reembedded != nullptr) *reembedded = static_cast<int64_t>(records.size());
  UpdateEnrolledMetrics();
  return absl::OkStatus();
}

}  // namespace srn
