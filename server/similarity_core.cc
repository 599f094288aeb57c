#include "server/similarity_core.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/status_macros.h"
#include "model/eval/dtw.h"
#include "model/nn/parallel.h"
#include "model/signature/frame_states.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/verification.h"
#include "model/weights/threshold_calibration_proto.h"
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
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i,
                       "]: the model's computation overflowed on this series (its embedding is "
                       "not finite); scale the values down or shorten the series"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStates(const Series& states, const std::string& what) {
  if (states.frames().allFinite()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what,
      ": the model's computation overflowed on this series (its per-frame states are not "
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
    case ReferenceFusion::kMax:
      return v1::FUSION_MAX;
    case ReferenceFusion::kMean:
      return v1::FUSION_MEAN;
    case ReferenceFusion::kTopKMean:
      return v1::FUSION_TOP_K_MEAN;
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

SubjectRecord ToRecord(const SubjectEntry& entry, const std::string& derivation_tag) {
  SubjectRecord record;
  if (entry.spreads.has_value()) record.derived = EncodeSpreads(derivation_tag, *entry.spreads);
  record.id = entry.id;
  record.threshold = entry.threshold;
  record.threshold_shift = entry.threshold_shift;
  record.created_unix_ms = entry.created_unix_ms;
  record.updated_unix_ms = entry.updated_unix_ms;
  record.model_id = entry.model_id;
  for (int r = 0; r < entry.references(); ++r) {
    StoredReference ref;
    ref.input = *entry.inputs[r];
    ref.embedding.assign(entry.embeddings.row(r).data(),
                         entry.embeddings.row(r).data() + entry.embeddings.cols());
    record.references.push_back(std::move(ref));
  }
  return record;
}

Precondition ExpectedInStore(const std::shared_ptr<const SubjectEntry>& served) {
  return served == nullptr ? Precondition::Absent()
                           : Precondition::UpdatedAt(served->updated_unix_ms);
}

std::vector<Precondition> ExpectedInStore(const std::vector<SubjectRecord>& rewrites) {
  std::vector<Precondition> expected;
  expected.reserve(rewrites.size());
  for (const SubjectRecord& record : rewrites) {
    expected.push_back(Precondition::UpdatedAt(record.updated_unix_ms));
  }
  return expected;
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
    entry->inputs.push_back(
        std::make_shared<const std::string>(std::move(record.references[r].input)));
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
    : options_(options),
      metrics_(metrics),
      store_(std::move(store)),
      concurrent_store_(store_.get()),
      index_(model),
      prepared_(options.prepared_cache_bytes) {
  if (metrics_ != nullptr) {
    metrics_->SetModel(model->id, model->model->architecture().FamilyName(), model->version);
  }
}

ReferenceFusion SimilarityCore::Fusion(v1::Fusion requested) const {
  switch (requested) {
    case v1::FUSION_MAX:
      return ReferenceFusion::kMax;
    case v1::FUSION_MEAN:
      return ReferenceFusion::kMean;
    case v1::FUSION_TOP_K_MEAN:
      return ReferenceFusion::kTopKMean;
    default:
      return options_.default_fusion;  // unspecified: requests pass CheckKnownEnums
  }
}

void SimilarityCore::UpdateEnrolledMetrics() const {
  if (metrics_ == nullptr) return;
  metrics_->SetEnrolled(index_.subjects(), index_.references());
  UpdatePreparedMetrics();
}

void SimilarityCore::UpdatePreparedMetrics() const {
  if (metrics_ != nullptr) metrics_->SetPreparedCache(prepared_.bytes(), prepared_.size());
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
  if (raw != nullptr)
    raw->assign(std::make_move_iterator(series.begin()), std::make_move_iterator(series.end()));
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
      return absl::InvalidArgumentError(
          absl::StrCat("threshold_shift must be in [-1, 1], got ", request.threshold_shift()));
    }
  }
  const bool replace = request.mode() == v1::ENROLL_MODE_REPLACE;
  std::vector<std::shared_ptr<const std::string>> inputs;
  for (const v1::SeriesInput& input : request.references())
    inputs.push_back(std::make_shared<const std::string>(input.SerializeAsString()));

  // Embedding and preparing the references (DTWs between every pair of them) are slow, so they
  // happen before taking the write lock; if the model or the subject changed in the meantime, it
  // is all done again from the new state.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const SubjectIndex::View before = index_.Lookup(request.subject_id());
    const ServingModel& model = *before.model;
    std::vector<Series> raw;
    SRN_ASSIGN_OR_RETURN(RowMatrix emb,
                         EmbedInputs(model, request.references(), "references", &raw));
    auto entry = std::make_shared<SubjectEntry>();
    entry->id = request.subject_id();
    entry->model_id = model.id;
    // Increasing per subject, so that it names one stored state (Precondition).
    entry->updated_unix_ms =
        std::max(NowUnixMs(), before.subject ? before.subject->updated_unix_ms + 1 : 0);
    entry->created_unix_ms =
        before.subject ? before.subject->created_unix_ms : entry->updated_unix_ms;
    entry->threshold = request.has_threshold()
                           ? std::optional<float>(request.threshold())
                           : (before.subject ? before.subject->threshold : std::nullopt);
    // A shift is kept until a fixed threshold replaces it.
    entry->threshold_shift =
        request.has_threshold_shift() ? std::optional<float>(request.threshold_shift())
        : request.has_threshold() || !before.subject ? std::nullopt
                                                     : before.subject->threshold_shift;
    const bool append = before.subject != nullptr && !replace;
    const int old_rows = append ? before.subject->references() : 0;
    if (old_rows + emb.rows() > options_.limits.max_references) {
      return absl::ResourceExhaustedError(
          absl::StrCat("subject '", request.subject_id(), "' would have ", old_rows + emb.rows(),
                       " references; the limit is ", options_.limits.max_references,
                       " (use mode REPLACE to replace them)"));
    }
    entry->embeddings.resize(old_rows + emb.rows(), emb.cols());
    if (append) {
      entry->embeddings.topRows(old_rows) = before.subject->embeddings;
      entry->inputs = before.subject->inputs;
    }
    entry->embeddings.bottomRows(emb.rows()) = emb;
    entry->inputs.insert(entry->inputs.end(), inputs.begin(), inputs.end());
    SRN_RETURN_IF_ERROR(DeriveFromEmbeddings(model, entry.get()));
    std::shared_ptr<const PreparedReferences> prepared;
    if (model.FusesDtw() || model.VerifiesByStates()) {
      auto fresh = std::make_shared<PreparedReferences>();
      if (append) {
        // The stored references' preparation is by the same model and options: reuse it.
        SRN_ASSIGN_OR_RETURN(std::shared_ptr<const PreparedReferences> old,
                             Prepared(model, before.subject, cancel));
        fresh->dtw = old->dtw;
        fresh->states = old->states;
      }
      SRN_RETURN_IF_ERROR(PrepareReferences(model, *entry, &raw, old_rows, cancel, fresh.get()));
      SRN_RETURN_IF_ERROR(
          CheckDtwBudget(MutualDtwCells(model, *fresh),
                         absl::StrCat("enrolling (the mutual distances of the subject's ",
                                      entry->references(), " references)")));
      for (int r = old_rows; r < static_cast<int>(fresh->states.size()); ++r) {
        SRN_RETURN_IF_ERROR(
            CheckStates(fresh->states[r], absl::StrCat("references[", r - old_rows, "]")));
      }
      SRN_ASSIGN_OR_RETURN(entry->spreads,
                           DeriveSpreads(model, *fresh, entry->references(), cancel));
      prepared = std::move(fresh);
    }
    const SubjectRecord record = ToRecord(*entry, DerivationTag(model, options_.dtw));

    {
      ReaderMutexLock write(&write_mu_);
      MutexLock subject(&SubjectMutex(request.subject_id()));
      const SubjectIndex::View now = index_.Lookup(request.subject_id());
      if (now.model != before.model || now.subject != before.subject) continue;
      const auto start = std::chrono::steady_clock::now();
      const absl::Status put = concurrent_store_->Put(record, ExpectedInStore(before.subject));
      if (!absl::IsAborted(put)) {
        SRN_RETURN_IF_ERROR(Committed(put, start));
        v1::EnrollResponse response;
        *response.mutable_subject() = ToProto(*entry);
        if (prepared != nullptr) prepared_.Insert(entry, std::move(prepared));
        if (before.subject != nullptr) prepared_.Erase(before.subject);
        index_.Upsert(std::move(entry));
        UpdateEnrolledMetrics();
        return response;
      }
    }
    // Another server changed the subject and this one has not applied that yet: apply it now
    // and enroll again from it.
    SRN_RETURN_IF_ERROR(ApplyStoredSubject(request.subject_id()));
  }
  return absl::UnavailableError(
      "the model or the subject kept changing during enrollment (other writes to it, or model "
      "swaps); retry");
}

absl::StatusOr<SimilarityCore::Query> SimilarityCore::PrepareQuery(
    const ServingModel& model, const v1::SeriesInput& input) const {
  Query query;
  SRN_ASSIGN_OR_RETURN(query.raw, ToRawSeries(input, *model.model, options_.limits, "query"));
  if (metrics_ != nullptr) metrics_->SeriesLength(query.raw.length());
  if (model.VerifiesByStates()) {
    SRN_ASSIGN_OR_RETURN(query.states, FrameStates(*model.model, query.raw));
    SRN_RETURN_IF_ERROR(CheckStates(*query.states, "query"));
  } else {
    SRN_ASSIGN_OR_RETURN(query.embedding, model.model->Embed({&query.raw}));
    SRN_RETURN_IF_ERROR(CheckEmbeddings(*query.embedding, "query"));
  }
  if (model.FusesDtw()) {
    SRN_ASSIGN_OR_RETURN(query.dtw, PrepareForSignatureDtw(query.raw, options_.dtw));
  }
  return query;
}

absl::StatusOr<SimilarityCore::SubjectVerification> SimilarityCore::VerifySubject(
    const ServingModel& model, const std::shared_ptr<const SubjectEntry>& entry, const Query& query,
    ReferenceFusion fusion, int fusion_k, const Cancellation& cancel) const {
  const SubjectEntry& subject = *entry;
  const int references = subject.references();
  SubjectVerification out;
  VerificationPolicy policy;
  VerificationEvidence evidence;
  out.similarities.resize(references);
  // The entry's prepared references and spreads are by `model` (they are read together).
  SRN_ASSIGN_OR_RETURN(const std::shared_ptr<const PreparedReferences> prepared,
                       Prepared(model, entry, cancel));
  // A states model skips the DTW verifier when its weight for this number of references is 0.
  const double dtw_weight = references >= 2 ? model.calibration.dtw_fusion.weight_many
                                            : model.calibration.dtw_fusion.weight_one;
  const bool use_dtw = model.FusesDtw() && (!model.VerifiesByStates() || dtw_weight > 0);
  if (prepared != nullptr) {
    const int query_frames = std::min(query.raw.length(), kMaxDtwFrames);
    int64_t cells = 0;
    for (const Series& ref : prepared->states) {
      cells += DtwCells(model.calibration.states_dtw, query_frames, ref.length());
    }
    for (const Series& ref : prepared->dtw) {
      if (use_dtw) cells += DtwCells(options_.dtw.dtw, query_frames, ref.length());
    }
    SRN_RETURN_IF_ERROR(
        CheckDtwBudget(cells, absl::StrCat("this Verify (a query of ", query.raw.length(),
                                           " frames against ", references, " references)")));
  }
  ReferenceSpreads spreads;
  if (prepared != nullptr) {
    if (subject.spreads.has_value()) {
      spreads = *subject.spreads;
    } else {  // recovered without them; DeriveMissingSpreads stores them
      SRN_ASSIGN_OR_RETURN(spreads, DeriveSpreads(model, *prepared, references, cancel));
    }
  }
  if (model.VerifiesByStates()) {
    // The calibrated score always averages over the references.
    policy.learned = LearnedScore::kStatesDtw;
    policy.fusion = ReferenceFusion::kMean;
    policy.dtw_fusion = model.calibration.dtw_fusion;
    for (int r = 0; r < references; ++r) {
      SRN_RETURN_IF_ERROR(cancel.Check());
      out.similarities[r] = -StatesDistance(*query.states, prepared->states[r],
                                            model.calibration.states_dtw, &cancel);
    }
    SRN_RETURN_IF_ERROR(cancel.Check());  // the last distance may have been cut short
    evidence.mutual_similarity = -spreads.states;
  } else {
    model.model->Score(query.embedding->row(0).data(), subject.embeddings.data(), references,
                       out.similarities.data());
    policy.fusion = fusion;
    policy.top_k = fusion_k;
    evidence.mutual_similarity = subject.mutual_similarity;
    if (model.FusesDtw()) policy.dtw_fusion = model.calibration.dtw_fusion;
  }
  evidence.similarities = out.similarities;
  std::vector<double> distances;  // the evidence holds a view of it
  if (use_dtw) {
    for (const Series& ref : prepared->dtw) {
      SRN_RETURN_IF_ERROR(cancel.Check());
      distances.push_back(SignatureDtwDistance(*query.dtw, ref, options_.dtw, &cancel));
    }
    SRN_RETURN_IF_ERROR(cancel.Check());
    evidence.dtw_distances = distances;
    evidence.dtw_spread = spreads.dtw;
  }
  out.fusion = policy.fusion;
  out.verification = ScoreVerification(evidence, policy);
  if (!std::isfinite(out.verification.score)) {
    // Finite inputs give finite scores; anything else is a query the model cannot compare.
    return absl::InvalidArgumentError(
        "the query cannot be compared with the references (its score is not finite)");
  }
  return out;
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
  const SubjectEntry& subject = *view.subject;
  SRN_ASSIGN_OR_RETURN(const Query query, PrepareQuery(model, request.query()));
  SRN_ASSIGN_OR_RETURN(
      const SubjectVerification verified,
      VerifySubject(model, view.subject, query, Fusion(request.fusion()),
                    request.top_k() > 0 ? request.top_k() : options_.default_fusion_k, cancel));
  const VerificationScore& verification = verified.verification;
  const std::vector<double>& similarities = verified.similarities;
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
  response.set_fusion(ToProto(verified.fusion));
  response.set_model_id(model.id);
  if (metrics_ != nullptr) metrics_->VerifyDecision(response.accepted());
  return response;
}

absl::StatusOr<v1::IdentifyResponse> SimilarityCore::Identify(const v1::IdentifyRequest& request,
                                                              const Cancellation& cancel) const {
  SRN_RETURN_IF_ERROR(CheckKnownEnums(request));
  if (request.top_k() < 0 || request.top_k() > options_.limits.max_top_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k must be in [0, ", options_.limits.max_top_k, "], got ", request.top_k()));
  }
  if (request.has_threshold())
    SRN_RETURN_IF_ERROR(CheckThreshold(request.threshold(), "threshold"));
  const int top_k = request.top_k() > 0 ? request.top_k() : 5;
  const float threshold =
      request.has_threshold() ? request.threshold() : -std::numeric_limits<float>::infinity();
  const ReferenceFusion rule = Fusion(request.fusion());
  const int threads = options_.threads > 0 ? options_.threads : DefaultThreads();
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::shared_ptr<const ServingModel> model = index_.model();
    const bool rerank = model->VerifiesByStates() && options_.identify_rerank > 0;
    // The query is converted once: re-ranking needs it prepared as Verify prepares it.
    std::optional<Query> query;
    RowMatrix embedding;
    if (rerank) {
      SRN_ASSIGN_OR_RETURN(query, PrepareQuery(*model, request.query()));
      SRN_ASSIGN_OR_RETURN(embedding, model->model->Embed({&query->raw}));
      SRN_RETURN_IF_ERROR(CheckEmbeddings(embedding, "query"));
    } else {
      SRN_ASSIGN_OR_RETURN(embedding, EmbedOne(*model, request.query(), "query"));
    }
    bool stale = false;
    // A states model's pooled embedding only shortlists, by the embeddings' distance (its
    // similarity head, fitted on training pairs, ranks unseen people far worse: DEFAULT_MODEL.md);
    // the shortlist is ranked by Verify's score, and the threshold applies to that score.
    std::vector<IdentifyCandidate> candidates = index_.Identify(
        *model, embedding.row(0).data(), rerank ? std::max(top_k, options_.identify_rerank) : top_k,
        rule, options_.default_fusion_k,
        rerank ? -std::numeric_limits<float>::infinity() : threshold, threads, &stale,
        rerank ? ScanScore::kDistance : ScanScore::kModel);
    if (stale) continue;  // the model was swapped between embedding and scanning
    if (rerank && !candidates.empty()) {
      for (IdentifyCandidate& c : candidates) {
        SRN_ASSIGN_OR_RETURN(const SubjectVerification verified,
                             VerifySubject(*model, c.subject, *query, ReferenceFusion::kMean,
                                           options_.default_fusion_k, cancel));
        c.score = static_cast<float>(verified.verification.score);
      }
      std::sort(candidates.begin(), candidates.end(),
                [](const IdentifyCandidate& a, const IdentifyCandidate& b) {
                  return a.score != b.score ? a.score > b.score : a.subject->id < b.subject->id;
                });
      candidates.erase(
          std::remove_if(candidates.begin(), candidates.end(),
                         [&](const IdentifyCandidate& c) { return c.score < threshold; }),
          candidates.end());
      if (static_cast<int>(candidates.size()) > top_k) candidates.resize(top_k);
    }
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
  const std::shared_ptr<const SubjectEntry> subject = index_.Lookup(request.subject_id()).subject;
  if (subject == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("subject '", request.subject_id(), "' is not enrolled"));
  }
  const auto start = std::chrono::steady_clock::now();
  SRN_RETURN_IF_ERROR(Committed(store_->Delete(request.subject_id()), start));
  index_.Remove(request.subject_id());
  prepared_.Erase(subject);
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
  info.mutable_trained_classes()->Assign(meta.trained_classes.begin(), meta.trained_classes.end());
  if (meta.thresholds.has_value()) {
    ThresholdCalibrationToProto(*meta.thresholds, info.mutable_threshold_calibration());
  }
  info.set_default_fusion(ToProto(options_.default_fusion));
  const VerificationCalibration& c = serving->calibration;
  info.set_verification_score(LearnedScoreName(c.learned));
  if (serving->VerifiesByStates()) {
    info.set_states_dtw(absl::StrCat(
        "band=", c.states_dtw.band_fraction,
        " cost=", c.states_dtw.local_cost == DtwLocalCost::kEuclidean ? "euclidean" : "squared"));
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
    if (!input.ParseFromString(*entry.inputs[r])) {
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
  fresh->spreads.reset();
  // A derived threshold follows the new model's similarities.
  SRN_RETURN_IF_ERROR(DeriveFromEmbeddings(model, fresh.get()));
  if (model.FusesDtw() || model.VerifiesByStates()) {
    PreparedReferences prepared;
    SRN_RETURN_IF_ERROR(PrepareReferences(model, *fresh, &raw, 0, NeverCancelled(), &prepared));
    SRN_ASSIGN_OR_RETURN(fresh->spreads,
                         DeriveSpreads(model, prepared, fresh->references(), NeverCancelled()));
  }
  return std::shared_ptr<const SubjectEntry>(std::move(fresh));
}

absl::Status SimilarityCore::DeriveFromEmbeddings(const ServingModel& serving,
                                                  SubjectEntry* entry) const {
  const bool fused = serving.FusesDtw();
  const bool states = serving.VerifiesByStates();
  // Only the embedding score's DTW fusion and its derived threshold use the mutual similarity
  // (a states score is calibrated: its derived threshold starts from 0.5).
  entry->mutual_similarity =
      !states && (fused || entry->threshold_shift.has_value())
          ? MeanMutualScore(MutualSimilarities(*serving.model, entry->embeddings))
          : 0.0;
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

absl::Status SimilarityCore::PrepareReferences(const ServingModel& serving,
                                               const SubjectEntry& entry,
                                               const std::vector<Series>* raw, int first,
                                               const Cancellation& cancel,
                                               PreparedReferences* prepared) const {
  const SimilarityModel& model = *serving.model;
  const bool fused = serving.FusesDtw();
  const bool states = serving.VerifiesByStates();
  RequestLimits unlimited = options_.limits;
  unlimited.max_series_length = std::numeric_limits<int>::max();
  unlimited.check_value_range = false;
  const VerificationCalibration& calibration = serving.calibration;
  const int references = static_cast<int>(entry.inputs.size());
  for (int r = first; r < references; ++r) {
    SRN_RETURN_IF_ERROR(cancel.Check());
    Series parsed;
    if (raw == nullptr) {
      v1::SeriesInput input;
      if (!input.ParseFromString(*entry.inputs[r])) {
        return absl::DataLossError(absl::StrCat("subject '", entry.id, "': stored reference ", r,
                                                " is not a readable series"));
      }
      SRN_ASSIGN_OR_RETURN(parsed, ToRawSeries(input, model, unlimited, "reference"));
    }
    const Series& features = raw != nullptr ? (*raw)[r - first] : parsed;
    if (fused) {
      SRN_ASSIGN_OR_RETURN(Series dtw_ready, PrepareForSignatureDtw(features, options_.dtw));
      prepared->dtw.push_back(std::move(dtw_ready));
      if (references == 1 && calibration.dtw_spread.has_value()) {
        SRN_ASSIGN_OR_RETURN(prepared->one_reference_dtw_spread,
                             PredictDtwSpread(*calibration.dtw_spread, features));
      }
    }
    if (states) {
      SRN_ASSIGN_OR_RETURN(Series frame_states, FrameStates(model, features));
      prepared->states.push_back(std::move(frame_states));
      if (references == 1 && calibration.states_spread.has_value()) {
        SRN_ASSIGN_OR_RETURN(prepared->one_reference_states_spread,
                             PredictDtwSpread(*calibration.states_spread, features));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const PreparedReferences>> SimilarityCore::Prepared(
    const ServingModel& model, const std::shared_ptr<const SubjectEntry>& entry,
    const Cancellation& cancel, bool keep) const {
  if (!model.FusesDtw() && !model.VerifiesByStates()) return nullptr;
  if (std::shared_ptr<const PreparedReferences> kept = prepared_.Find(entry)) return kept;
  auto fresh = std::make_shared<PreparedReferences>();
  SRN_RETURN_IF_ERROR(PrepareReferences(model, *entry, nullptr, 0, cancel, fresh.get()));
  if (keep) {
    prepared_.Insert(entry, fresh);
    UpdatePreparedMetrics();
  }
  return std::shared_ptr<const PreparedReferences>(std::move(fresh));
}

int64_t SimilarityCore::MutualDtwCells(const ServingModel& model,
                                       const PreparedReferences& prepared) const {
  int64_t cells = 0;
  for (size_t i = 0; i < prepared.states.size(); ++i) {
    for (size_t j = i + 1; j < prepared.states.size(); ++j) {
      cells += DtwCells(model.calibration.states_dtw, prepared.states[i].length(),
                        prepared.states[j].length());
    }
  }
  for (size_t i = 0; i < prepared.dtw.size(); ++i) {
    for (size_t j = i + 1; j < prepared.dtw.size(); ++j) {
      cells += DtwCells(options_.dtw.dtw, prepared.dtw[i].length(), prepared.dtw[j].length());
    }
  }
  return cells;
}

absl::Status SimilarityCore::CheckDtwBudget(int64_t cells, const std::string& what) const {
  if (cells <= options_.max_dtw_cells) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s would compute %.3g DTW cells, more than the %.3g one call may "
      "(srn-server --max_dtw_cells_per_call): use fewer or shorter series",
      what, static_cast<double>(cells), static_cast<double>(options_.max_dtw_cells)));
}

absl::StatusOr<ReferenceSpreads> SimilarityCore::DeriveSpreads(const ServingModel& model,
                                                               const PreparedReferences& prepared,
                                                               int references,
                                                               const Cancellation& cancel) const {
  ReferenceSpreads spreads;
  if (references < 2) {
    spreads.dtw = model.FusesDtw() ? prepared.one_reference_dtw_spread : 1;
    spreads.states = model.VerifiesByStates() ? prepared.one_reference_states_spread : 1;
    return spreads;
  }
  // The same sums as MeanMutualDtwDistance and MeanMutualStatesDistance (srn-eval's), with the
  // cancellation checked between pairs.
  if (model.FusesDtw()) {
    const auto pair = [&](int i, int j) {
      return SignatureDtwDistance(prepared.dtw[i], prepared.dtw[j], options_.dtw, &cancel);
    };
    SRN_ASSIGN_OR_RETURN(spreads.dtw, MeanMutualDistance(references, pair, cancel));
  }
  if (model.VerifiesByStates()) {
    const auto pair = [&](int i, int j) {
      return StatesDistance(prepared.states[i], prepared.states[j], model.calibration.states_dtw,
                            &cancel);
    };
    SRN_ASSIGN_OR_RETURN(spreads.states, MeanMutualDistance(references, pair, cancel));
  }
  return spreads;
}

absl::Status SimilarityCore::Recover() {
  MutexLock write(&write_mu_);
  // Taken before the snapshot: a change committed meanwhile is applied again by FollowStore.
  absl::StatusOr<int64_t> position = store_->ChangePosition();
  if (!position.ok() && !absl::IsUnimplemented(position.status())) return position.status();
  shared_store_ = position.ok();
  follow_from_ = position.value_or(0);
  const std::shared_ptr<const ServingModel> model = index_.model();
  std::vector<std::shared_ptr<const SubjectEntry>> entries;
  std::vector<SubjectRecord> rewritten;
  SRN_RETURN_IF_ERROR(LoadStoredLocked(*model, &entries, &rewritten, nullptr));
  // A subject another server changed since the snapshot is left to FollowStore, which applies
  // that change.
  if (!rewritten.empty()) {
    SRN_RETURN_IF_ERROR(store_->PutAll(rewritten, ExpectedInStore(rewritten)).status());
  }
  prepared_.Clear();
  index_.Reset(model, std::move(entries));
  UpdateEnrolledMetrics();
  return absl::OkStatus();
}

absl::Status SimilarityCore::LoadStoredLocked(const ServingModel& model,
                                              std::vector<std::shared_ptr<const SubjectEntry>>* out,
                                              std::vector<SubjectRecord>* rewritten,
                                              ServingModelAdoption* counts) {
  const std::string tag = DerivationTag(model, options_.dtw);
  const bool uses_spreads = model.FusesDtw() || model.VerifiesByStates();
  return store_->ForEach([&](SubjectRecord record) -> absl::Status {
    const std::string derived = std::move(record.derived);
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<SubjectEntry> entry, FromRecord(std::move(record)));
    if (entry->model_id != model.id) {
      SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectEntry> fresh, Reembed(*entry, model));
      if (rewritten != nullptr) rewritten->push_back(ToRecord(*fresh, tag));
      if (counts != nullptr) ++counts->reembedded;
      out->push_back(std::move(fresh));
      return absl::OkStatus();
    }
    SRN_RETURN_IF_ERROR(DeriveFromEmbeddings(model, entry.get()));
    if (uses_spreads) entry->spreads = DecodeSpreads(derived, tag);
    if (counts != nullptr) ++counts->as_stored;
    out->push_back(std::move(entry));
    return absl::OkStatus();
  });
}

absl::Status SimilarityCore::AdoptModel(std::shared_ptr<const ServingModel> model,
                                        ServingModelAdoption* adoption) {
  MutexLock write(&write_mu_);
  std::vector<std::shared_ptr<const SubjectEntry>> entries;
  ServingModelAdoption counts;
  SRN_RETURN_IF_ERROR(LoadStoredLocked(*model, &entries, nullptr, &counts));
  if (metrics_ != nullptr) {
    metrics_->SetModel(model->id, model->model->architecture().FamilyName(), model->version);
  }
  prepared_.Clear();
  index_.Reset(std::move(model), std::move(entries));
  UpdateEnrolledMetrics();
  if (adoption != nullptr) *adoption = counts;
  return absl::OkStatus();
}

absl::Status SimilarityCore::Committed(absl::Status status,
                                       std::chrono::steady_clock::time_point start) {
  if (metrics_ == nullptr) return status;
  if (status.ok()) {
    metrics_->StoreCommit(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } else {
    metrics_->StoreWriteFailed();
  }
  return status;
}

bool SimilarityCore::follows_store() {
  MutexLock write(&write_mu_);
  return shared_store_;
}

absl::Status SimilarityCore::FollowStore(const Cancellation& stop) {
  int64_t after;
  {
    MutexLock write(&write_mu_);
    if (!shared_store_) return absl::UnimplementedError("the store is not shared");
    after = follow_from_;
  }
  bool reported = false;
  // Retries a store that cannot be reached, saying so once per outage.
  const auto trouble = [&](const absl::Status& s) {
    if (!reported) std::cerr << "srn-server: following the store: " << s.message() << "\n";
    reported = true;
    if (metrics_ != nullptr) metrics_->SetFollowFailing(true);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  };
  while (true) {
    SRN_RETURN_IF_ERROR(stop.Check());
    absl::StatusOr<SubjectStore::Changes> changes = concurrent_store_->WaitForChanges(after, 0.5);
    if (absl::IsOutOfRange(changes.status())) {
      // Cut off for longer than the store keeps changes: read it all again.
      std::cerr << "srn-server: following the store: " << changes.status().message() << "\n";
      if (absl::Status s = Recover(); !s.ok()) {
        trouble(s);
        continue;
      }
      std::cerr << "srn-server: read the whole store again; following it from there\n";
      MutexLock write(&write_mu_);
      after = follow_from_;
      continue;
    }
    if (!changes.ok()) {
      trouble(changes.status());
      continue;
    }
    // Each subject once, as its last change left it; this server's own writes, echoed, are
    // already served (their updated time and model say so) and cost no read.
    absl::flat_hash_map<std::string, size_t> last;
    for (size_t i = 0; i < changes->ids.size(); ++i) last[changes->ids[i]] = i;
    bool failed = false;
    for (size_t i = 0; i < changes->ids.size(); ++i) {
      const std::string& id = changes->ids[i];
      if (last[id] != i) continue;
      if (changes->updated_unix_ms[i] != 0) {
        const SubjectIndex::View view = index_.Lookup(id);
        if (view.subject != nullptr &&
            view.subject->updated_unix_ms == changes->updated_unix_ms[i] &&
            view.subject->model_id == changes->model_ids[i]) {
          continue;
        }
      }
      if (absl::Status s = ApplyStoredSubject(id); !s.ok()) {
        trouble(s);
        failed = true;
        break;
      }
    }
    if (failed) continue;  // from the same position
    if (metrics_ != nullptr) {
      const int64_t now_ms = absl::ToUnixMillis(absl::Now());
      for (const int64_t written_ms : changes->written_unix_ms) {
        metrics_->FollowApplied(static_cast<double>(now_ms - written_ms) / 1000);
      }
      metrics_->SetFollowFailing(false);
    }
    if (reported) std::cerr << "srn-server: following the store again\n";
    reported = false;
    after = changes->next;
    MutexLock write(&write_mu_);
    follow_from_ = after;
  }
}

absl::Status SimilarityCore::ApplyStoredSubject(const std::string& id) {
  MutexLock write(&write_mu_);
  return ApplyStoredSubjectLocked(id);
}

absl::Status SimilarityCore::ApplyStoredSubjectLocked(const std::string& id) {
  const SubjectIndex::View view = index_.Lookup(id);
  absl::StatusOr<SubjectRecord> record = store_->Get(id);
  if (absl::IsNotFound(record.status())) {
    if (view.subject != nullptr) {
      index_.Remove(id);
      prepared_.Erase(view.subject);
      UpdateEnrolledMetrics();
    }
    return absl::OkStatus();
  }
  SRN_RETURN_IF_ERROR(record.status());
  // This server's own write, echoed: nothing to do.
  if (view.subject != nullptr && view.subject->updated_unix_ms == record->updated_unix_ms &&
      view.subject->model_id == record->model_id &&
      view.subject->references() == static_cast<int>(record->references.size()) &&
      view.subject->threshold == record->threshold) {
    return absl::OkStatus();
  }
  const ServingModel& model = *view.model;
  const std::string derived = std::move(record->derived);
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<SubjectEntry> entry, FromRecord(*std::move(record)));
  std::shared_ptr<const SubjectEntry> published;
  if (entry->model_id != model.id) {
    SRN_ASSIGN_OR_RETURN(published, Reembed(*entry, model));
  } else {
    SRN_RETURN_IF_ERROR(DeriveFromEmbeddings(model, entry.get()));
    if (model.FusesDtw() || model.VerifiesByStates()) {
      entry->spreads = DecodeSpreads(derived, DerivationTag(model, options_.dtw));
    }
    published = std::move(entry);
  }
  if (view.subject != nullptr) prepared_.Erase(view.subject);
  index_.Upsert(std::move(published));
  UpdateEnrolledMetrics();
  return absl::OkStatus();
}

int64_t SimilarityCore::subjects_missing_spreads() const {
  const std::shared_ptr<const ServingModel> model = index_.model();
  if (!model->FusesDtw() && !model->VerifiesByStates()) return 0;
  int64_t missing = 0;
  for (const auto& entry : index_.List("", std::numeric_limits<int>::max())) {
    if (!entry->spreads.has_value()) ++missing;
  }
  return missing;
}

absl::StatusOr<int64_t> SimilarityCore::DeriveMissingSpreads(const Cancellation& stop) {
  constexpr int kBatch = 256;
  const int64_t missing = subjects_missing_spreads();
  int64_t completed = 0;
  if (metrics_ != nullptr) metrics_->SetMissingSpreads(missing);
  std::string after;
  while (true) {
    const std::shared_ptr<const ServingModel> model = index_.model();
    if (!model->FusesDtw() && !model->VerifiesByStates()) break;
    const std::string tag = DerivationTag(*model, options_.dtw);
    const std::vector<std::shared_ptr<const SubjectEntry>> page = index_.List(after, 4 * kBatch);
    if (page.empty()) break;
    after = page.back()->id;
    // Derived off the lock; stored and published only for the entries still current once it is
    // taken.
    std::vector<std::shared_ptr<const SubjectEntry>> before;
    std::vector<std::shared_ptr<SubjectEntry>> derived;
    const auto publish = [&]() -> absl::Status {
      MutexLock write(&write_mu_);
      std::vector<SubjectRecord> records;
      std::vector<size_t> current;
      for (size_t i = 0; i < derived.size(); ++i) {
        const SubjectIndex::View view = index_.Lookup(derived[i]->id);
        if (view.model != model || view.subject != before[i]) continue;
        records.push_back(ToRecord(*derived[i], tag));
        current.push_back(i);
      }
      // A subject another server changed meanwhile keeps what FollowStore will apply.
      SRN_ASSIGN_OR_RETURN(const std::vector<std::string> skipped,
                           store_->PutAll(records, ExpectedInStore(records)));
      for (const size_t i : current) {
        if (std::find(skipped.begin(), skipped.end(), derived[i]->id) != skipped.end()) continue;
        if (std::shared_ptr<const PreparedReferences> kept = prepared_.Find(before[i])) {
          prepared_.Insert(derived[i], std::move(kept));
          prepared_.Erase(before[i]);
        }
        index_.Upsert(std::move(derived[i]));
      }
      completed += static_cast<int64_t>(current.size());
      if (metrics_ != nullptr) {
        metrics_->SetMissingSpreads(std::max<int64_t>(0, missing - completed));
      }
      before.clear();
      derived.clear();
      return absl::OkStatus();
    };
    for (const auto& entry : page) {
      if (entry->spreads.has_value() || entry->model_id != model->id) continue;
      SRN_RETURN_IF_ERROR(stop.Check());
      // Not kept: a pass over every subject would push the verified ones out of the cache.
      SRN_ASSIGN_OR_RETURN(std::shared_ptr<const PreparedReferences> prepared,
                           Prepared(*model, entry, stop, /*keep=*/false));
      auto fresh = std::make_shared<SubjectEntry>(*entry);
      SRN_ASSIGN_OR_RETURN(fresh->spreads,
                           DeriveSpreads(*model, *prepared, fresh->references(), stop));
      before.push_back(entry);
      derived.push_back(std::move(fresh));
      if (static_cast<int>(derived.size()) == kBatch) SRN_RETURN_IF_ERROR(publish());
    }
    if (!derived.empty()) SRN_RETURN_IF_ERROR(publish());
  }
  if (metrics_ != nullptr) metrics_->SetMissingSpreads(subjects_missing_spreads());
  return completed;
}

absl::Status SimilarityCore::SwapModel(std::shared_ptr<const ServingModel> model,
                                       int64_t* reembedded) {
  MutexLock write(&write_mu_);
  const std::vector<std::shared_ptr<const SubjectEntry>> current =
      index_.List("", std::numeric_limits<int>::max());
  const std::string tag = DerivationTag(*model, options_.dtw);
  std::vector<std::shared_ptr<const SubjectEntry>> entries;
  std::vector<SubjectRecord> records;
  entries.reserve(current.size());
  for (const auto& entry : current) {
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectEntry> fresh, Reembed(*entry, *model));
    records.push_back(ToRecord(*fresh, tag));
    entries.push_back(std::move(fresh));
  }
  std::vector<std::string> skipped;
  if (!records.empty()) {
    SRN_ASSIGN_OR_RETURN(skipped, store_->PutAll(records, ExpectedInStore(records)));
  }
  if (metrics_ != nullptr) {
    metrics_->SetModel(model->id, model->model->architecture().FamilyName(), model->version);
  }
  prepared_.Clear();
  index_.Reset(std::move(model), std::move(entries));
  // Subjects another server changed meanwhile: serve them as stored now (re-embedded with the
  // new model in memory).
  for (const std::string& id : skipped) SRN_RETURN_IF_ERROR(ApplyStoredSubjectLocked(id));
  if (reembedded != nullptr) *reembedded = static_cast<int64_t>(records.size());
  UpdateEnrolledMetrics();
  return absl::OkStatus();
}

}  // namespace srn
