#include "model/weights/weights_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "model/weights/threshold_calibration_proto.h"
#include "model/weights/weights.pb.h"

#if defined(__SSE4_2__) && defined(__x86_64__)
#include <nmmintrin.h>
#define SRN_HAVE_HW_CRC32C 1
#endif

namespace srn {

namespace pb = ::srn::weights::v1;

namespace {

// "SRNW" then CR LF SUB LF: see weights.proto for why.
constexpr char kMagic[8] = {'S', 'R', 'N', 'W', '\r', '\n', '\x1a', '\n'};
constexpr size_t kMagicSize = sizeof(kMagic);
constexpr size_t kVersionOffset = 8;
constexpr size_t kLengthOffset = 12;
constexpr size_t kChecksumOffset = 20;
static_assert(kChecksumOffset + 8 == kWeightsHeaderSize, "frame layout");

// protobuf refuses messages of 2 GiB or more.
constexpr uint64_t kMaxPayloadSize = INT_MAX;

void PutLe32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutLe64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetLe32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
uint64_t GetLe64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// --- CRC-32C -------------------------------------------------------------------------------

constexpr uint32_t kCrc32cPolynomial = 0x82f63b78;  // Castagnoli, bit-reflected

// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes.
struct Crc32cTables {
  uint32_t table[8][256];
};

constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPolynomial : c >> 1;
    t.table[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t prev = t.table[k - 1][i];
      t.table[k][i] = (prev >> 8) ^ t.table[0][prev & 0xff];
    }
  }
  return t;
}

constexpr Crc32cTables kCrc32c = MakeCrc32cTables();

// --- error helpers -------------------------------------------------------------------------

template <typename... Args>
absl::Status Error(absl::StatusCode code, absl::string_view name, const Args&... args) {
  return absl::Status(code, absl::StrCat(name, ": ", args...));
}

// Prefixes a status from a validator with the file name and what was being checked.
absl::Status Annotate(const absl::Status& status, absl::string_view name, absl::string_view what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(name, ": ", what, status.message()));
}

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string TensorNames(const ParameterLayout& layout) {
  return absl::StrJoin(layout.tensors(), ", ", [](std::string* out, const TensorSpec& t) {
    absl::StrAppend(out, t.name);
  });
}

// Index of the first value whose exponent bits are all ones (inf or NaN), or n. The integer test
// vectorizes, so the common all-finite case costs about as much as reading the data.
int64_t FirstNonFinite(const float* data, int64_t n) {
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr int64_t kBlock = 1024;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = std::min(n, begin + kBlock);
    bool bad = false;
    for (int64_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof(bits));
      bad |= (bits & kExponent) == kExponent;
    }
    if (bad) {
      for (int64_t i = begin; i < end; ++i) {
        uint32_t bits;
        std::memcpy(&bits, data + i, sizeof(bits));
        if ((bits & kExponent) == kExponent) return i;
      }
    }
  }
  return n;
}

// --- model <-> message ---------------------------------------------------------------------

pb::CellType CellToProto(CellType cell) {
  switch (cell) {
    case CellType::kRelu: return pb::CELL_TYPE_RELU;
    case CellType::kGru: return pb::CELL_TYPE_GRU;
    case CellType::kLstm: return pb::CELL_TYPE_LSTM;
  }
  return pb::CELL_TYPE_UNSPECIFIED;
}

pb::FeatureKind KindToProto(FeatureKind kind) {
  switch (kind) {
    case FeatureKind::kFrames: return pb::FEATURE_KIND_FRAMES;
    case FeatureKind::kSignature: return pb::FEATURE_KIND_SIGNATURE;
  }
  return pb::FEATURE_KIND_UNSPECIFIED;
}

pb::WeightsFile ToProto(const SimilarityModel& model) {
  pb::WeightsFile file;
  const Architecture& arch = model.architecture();
  pb::Architecture* a = file.mutable_architecture();
  a->set_cell(CellToProto(arch.cell));
  a->set_recurrent(arch.recurrent);
  switch (arch.pooling) {
    case Pooling::kLast:
      a->set_pooling(pb::POOLING_LAST);
      break;
    case Pooling::kMean:
      a->set_pooling(pb::POOLING_MEAN);
      break;
    case Pooling::kStats:
      a->set_pooling(pb::POOLING_STATS);
      break;
  }
  a->set_input_dims(arch.input_dims);
  a->set_hidden(arch.hidden);
  a->set_layers(arch.layers);
  a->set_family(arch.FamilyName());

  const Preprocessor& pre = model.preprocessor();
  pb::Dimensions* d = file.mutable_dimensions();
  d->set_raw_dims(pre.raw_dims);
  d->set_input_dims(arch.input_dims);
  d->set_embedding_dims(arch.embedding_dims());
  d->set_parameter_count(model.layout().total_size());

  pb::Preprocessing* p = file.mutable_preprocessing();
  p->set_kind(KindToProto(pre.kind));
  p->set_raw_dims(pre.raw_dims);
  p->mutable_mean()->Add(pre.mean.data(), pre.mean.data() + pre.mean.size());
  p->mutable_scale()->Add(pre.scale.data(), pre.scale.data() + pre.scale.size());
  p->set_window(pre.window);
  p->set_center_series(pre.center_series);

  const float* params = model.params().data();
  for (const TensorSpec& spec : model.layout().tensors()) {
    pb::Tensor* t = file.add_tensors();
    t->set_name(spec.name);
    t->add_shape(spec.rows);
    t->add_shape(spec.cols);
    t->mutable_data()->Add(params + spec.offset, params + spec.offset + spec.size());
  }

  const ModelMetadata& meta = model.metadata();
  pb::Metadata* m = file.mutable_metadata();
  m->set_training_data(meta.training_data);
  m->set_command(meta.command);
  for (const auto& [key, value] : meta.hyperparameters) {  // std::map: sorted
    pb::Hyperparameter* h = m->add_hyperparameters();
    h->set_name(key);
    h->set_value(value);
  }
  for (const auto& [key, value] : meta.metrics) {
    pb::Metric* metric = m->add_metrics();
    metric->set_name(key);
    metric->set_value(value);
  }
  m->set_seed(meta.seed);
  m->set_created(meta.created);
  m->set_verification(meta.verification);
  for (const std::string& c : meta.trained_classes) m->add_trained_classes(c);
  if (meta.thresholds.has_value()) {
    ThresholdCalibrationToProto(*meta.thresholds, m->mutable_thresholds());
  }
  return file;
}

// The payload bytes, or ResourceExhausted beyond what protobuf can represent.
absl::StatusOr<std::string> SerializePayload(const SimilarityModel& model) {
  const pb::WeightsFile file = ToProto(model);
  const size_t size = file.ByteSizeLong();
  if (size > kMaxPayloadSize) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model ", model.architecture().ToString(), " needs a ", size,
                     "-byte payload; the weights format holds at most ", kMaxPayloadSize));
  }
  std::string payload;
  {
    google::protobuf::io::StringOutputStream stream(&payload);
    google::protobuf::io::CodedOutputStream out(&stream);
    // Repeated fields only (no maps) already serialize in a fixed order; this keeps it so if
    // maps are ever added.
    out.SetSerializationDeterministic(true);
    file.SerializeWithCachedSizes(&out);
  }
  return payload;
}

absl::StatusOr<Architecture> ArchitectureFromProto(const pb::Architecture& a,
                                                   absl::string_view name) {
  Architecture arch;
  switch (a.cell()) {
    case pb::CELL_TYPE_RELU: arch.cell = CellType::kRelu; break;
    case pb::CELL_TYPE_GRU: arch.cell = CellType::kGru; break;
    case pb::CELL_TYPE_LSTM: arch.cell = CellType::kLstm; break;
    default:
      return Error(absl::StatusCode::kInvalidArgument, name,
                   "architecture.cell is unset or unknown (", static_cast<int>(a.cell()), ")");
  }
  switch (a.pooling()) {
    case pb::POOLING_LAST: arch.pooling = Pooling::kLast; break;
    case pb::POOLING_MEAN: arch.pooling = Pooling::kMean; break;
    case pb::POOLING_STATS:
      arch.pooling = Pooling::kStats;
      break;
    default:
      return Error(absl::StatusCode::kInvalidArgument, name,
                   "architecture.pooling is unset or unknown (", static_cast<int>(a.pooling()),
                   ")");
  }
  arch.recurrent = a.recurrent();
  arch.input_dims = a.input_dims();
  arch.hidden = a.hidden();
  arch.layers = a.layers();
  SRN_RETURN_IF_ERROR(Annotate(arch.Validate(), name, "architecture: "));
  if (a.family() != arch.FamilyName()) {
    return Error(absl::StatusCode::kInvalidArgument, name, "architecture.family is '",
                 absl::CHexEscape(a.family()),
                 "' but the architecture fields describe '", arch.FamilyName(), "'");
  }
  return arch;
}

absl::StatusOr<Preprocessor> PreprocessorFromProto(const pb::Preprocessing& p,
                                                   absl::string_view name) {
  Preprocessor pre;
  switch (p.kind()) {
    case pb::FEATURE_KIND_FRAMES: pre.kind = FeatureKind::kFrames; break;
    case pb::FEATURE_KIND_SIGNATURE: pre.kind = FeatureKind::kSignature; break;
    default:
      return Error(absl::StatusCode::kInvalidArgument, name,
                   "preprocessing.kind is unset or unknown (", static_cast<int>(p.kind()), ")");
  }
  pre.raw_dims = p.raw_dims();
  pre.window = p.window();
  pre.center_series = p.center_series();
  pre.mean = Eigen::Map<const Vector>(p.mean().data(), p.mean_size());
  pre.scale = Eigen::Map<const Vector>(p.scale().data(), p.scale_size());
  SRN_RETURN_IF_ERROR(Annotate(pre.Validate(), name, "preprocessing: "));
  return pre;
}

// Checks every tensor against the layout and gathers them into one flat vector.
absl::StatusOr<Vector> ParamsFromProto(const pb::WeightsFile& file, const Architecture& arch,
                                       const ParameterLayout& layout, absl::string_view name) {
  const std::vector<TensorSpec>& specs = layout.tensors();
  std::vector<const pb::Tensor*> found(specs.size(), nullptr);
  for (const pb::Tensor& t : file.tensors()) {
    const TensorSpec* spec = layout.Find(t.name());
    if (spec == nullptr) {
      return Error(absl::StatusCode::kInvalidArgument, name, "unexpected tensor '",
                   absl::CHexEscape(t.name()),
                   "': architecture ", arch.ToString(), " has tensors ", TensorNames(layout));
    }
    const size_t index = static_cast<size_t>(spec - specs.data());
    if (found[index] != nullptr) {
      return Error(absl::StatusCode::kInvalidArgument, name, "tensor '", t.name(),
                   "' appears more than once");
    }
    found[index] = &t;
    if (t.shape_size() != 2 || t.shape(0) != spec->rows || t.shape(1) != spec->cols) {
      return Error(absl::StatusCode::kInvalidArgument, name, "tensor '", t.name(), "' has shape ",
                   ShapeString(t.shape()), " but architecture ", arch.ToString(), " needs [",
                   spec->rows, ", ", spec->cols, "]");
    }
    if (t.data_size() != spec->size()) {
      return Error(absl::StatusCode::kInvalidArgument, name, "tensor '", t.name(), "' holds ",
                   t.data_size(), " values but its shape ", ShapeString(t.shape()), " needs ",
                   spec->size());
    }
    const int64_t bad = FirstNonFinite(t.data().data(), t.data_size());
    if (bad < t.data_size()) {
      return Error(absl::StatusCode::kInvalidArgument, name, "tensor '", t.name(), "' value [",
                   bad / spec->cols, ", ", bad % spec->cols, "] is not finite (",
                   t.data(static_cast<int>(bad)), ")");
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (found[i] == nullptr) {
      return Error(absl::StatusCode::kInvalidArgument, name, "missing tensor '", specs[i].name,
                   "' of architecture ", arch.ToString(), " (", specs[i].rows, " x ",
                   specs[i].cols, ")");
    }
  }
  // Every tensor is present with the right size, so the allocation is bounded by the file size.
  Vector params(layout.total_size());
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].size() == 0) continue;
    std::memcpy(params.data() + specs[i].offset, found[i]->data().data(),
                static_cast<size_t>(specs[i].size()) * sizeof(float));
  }
  return params;
}

// A recorded calibration whose numbers a server could not use is refused: every rate in [0, 1],
// every threshold a similarity in [0, 1], at least one reference and some trials of each kind.
absl::StatusOr<ThresholdCalibration> ThresholdsFromProto(const pb::ThresholdCalibration& t,
                                                         absl::string_view name) {
  const auto in_unit = [](double x) { return x >= 0.0 && x <= 1.0; };  // false for NaN
  const auto bad = [&](absl::string_view what) {
    return Error(absl::StatusCode::kInvalidArgument, name, "metadata: thresholds: ", what,
                 " (recalibrate with srn-eval --calibrate)");
  };
  ThresholdCalibration out;
  for (const pb::ThresholdCalibration::Point& p : t.points()) {
    if (!in_unit(p.target_far()) || !in_unit(p.threshold()) || !in_unit(p.far()) ||
        !in_unit(p.frr())) {
      return bad(absl::StrFormat("the point for FAR %g has a value outside [0, 1]",
                                 p.target_far()));
    }
    out.points.push_back({p.target_far(), p.threshold(), p.far(), p.frr()});
  }
  if (!in_unit(t.eer()) || !in_unit(t.eer_threshold()) || !in_unit(t.default_threshold())) {
    return bad("the equal-error point or the default threshold is outside [0, 1]");
  }
  if (t.references() < 1 || t.genuine_trials() < 1 || t.impostor_trials() < 1) {
    return bad("it needs at least one reference and trials of each kind");
  }
  out.eer = t.eer();
  out.eer_threshold = t.eer_threshold();
  out.default_choice = t.default_choice();
  out.default_threshold = t.default_threshold();
  out.references = t.references();
  out.genuine_trials = t.genuine_trials();
  out.impostor_trials = t.impostor_trials();
  out.measured_on = t.measured_on();
  return out;
}

absl::StatusOr<ModelMetadata> MetadataFromProto(const pb::Metadata& m, absl::string_view name) {
  ModelMetadata meta;
  meta.training_data = m.training_data();
  meta.command = m.command();
  for (const pb::Hyperparameter& h : m.hyperparameters()) {
    if (!meta.hyperparameters.emplace(h.name(), h.value()).second) {
      return Error(absl::StatusCode::kInvalidArgument, name, "metadata: hyperparameter '",
                   absl::CHexEscape(h.name()), "' appears more than once");
    }
  }
  for (const pb::Metric& metric : m.metrics()) {
    if (!meta.metrics.emplace(metric.name(), metric.value()).second) {
      return Error(absl::StatusCode::kInvalidArgument, name, "metadata: metric '",
                   absl::CHexEscape(metric.name()), "' appears more than once");
    }
  }
  meta.seed = m.seed();
  meta.created = m.created();
  meta.verification = m.verification();
  meta.trained_classes.assign(m.trained_classes().begin(), m.trained_classes().end());
  if (m.has_thresholds()) {
    SRN_ASSIGN_OR_RETURN(meta.thresholds, ThresholdsFromProto(m.thresholds(), name));
  }
  return meta;
}

absl::StatusOr<std::shared_ptr<const SimilarityModel>> ModelFromProto(const pb::WeightsFile& file,
                                                                      absl::string_view name) {
  if (!file.has_architecture()) {
    return Error(absl::StatusCode::kInvalidArgument, name, "the file has no architecture");
  }
  if (!file.has_preprocessing()) {
    return Error(absl::StatusCode::kInvalidArgument, name, "the file has no preprocessing");
  }
  if (!file.has_dimensions()) {
    return Error(absl::StatusCode::kInvalidArgument, name, "the file has no dimensions");
  }
  SRN_ASSIGN_OR_RETURN(Architecture arch, ArchitectureFromProto(file.architecture(), name));
  SRN_ASSIGN_OR_RETURN(Preprocessor pre, PreprocessorFromProto(file.preprocessing(), name));
  // In 64 bits: a crafted raw_dims times window could overflow int.
  const int64_t pre_out = static_cast<int64_t>(pre.raw_dims) * pre.window;
  if (pre_out != arch.input_dims) {
    return Error(absl::StatusCode::kInvalidArgument, name, "preprocessing yields ", pre_out,
                 " features per frame (raw_dims ", pre.raw_dims, " x window ", pre.window,
                 ") but architecture.input_dims is ", arch.input_dims);
  }
  const ParameterLayout layout(arch);
  const pb::Dimensions& d = file.dimensions();
  if (d.raw_dims() != pre.raw_dims || d.input_dims() != arch.input_dims ||
      d.embedding_dims() != arch.embedding_dims() || d.parameter_count() != layout.total_size()) {
    return Error(absl::StatusCode::kInvalidArgument, name, "dimensions (raw_dims ", d.raw_dims(),
                 ", input_dims ", d.input_dims(), ", embedding_dims ", d.embedding_dims(),
                 ", parameter_count ", d.parameter_count(),
                 ") disagree with the architecture and preprocessing (", pre.raw_dims, ", ",
                 arch.input_dims, ", ", arch.embedding_dims(), ", ", layout.total_size(), ")");
  }
  SRN_ASSIGN_OR_RETURN(Vector params, ParamsFromProto(file, arch, layout, name));
  SRN_ASSIGN_OR_RETURN(ModelMetadata meta, MetadataFromProto(file.metadata(), name));
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = SimilarityModel::Create(
      std::move(arch), std::move(pre), std::move(params), std::move(meta));
  if (!model.ok()) return Annotate(model.status(), name, "");
  return model;
}

// --- fingerprint ---------------------------------------------------------------------------

// Feeds values to FNV-1a 64 in a fixed little-endian encoding, independent of the host.
class FingerprintHasher final {
 public:
  void U32(uint32_t v) {
    char bytes[4];
    PutLe32(v, bytes);
    hash_ = weights_internal::Fnv1a64(hash_, bytes, sizeof(bytes));
  }
  void U64(uint64_t v) {
    char bytes[8];
    PutLe64(v, bytes);
    hash_ = weights_internal::Fnv1a64(hash_, bytes, sizeof(bytes));
  }
  void Str(absl::string_view s) {
    U64(s.size());
    hash_ = weights_internal::Fnv1a64(hash_, s.data(), s.size());
  }
  // Count, then the IEEE-754 bits of each value.
  void Floats(const float* data, int64_t n) {
    U64(static_cast<uint64_t>(n));
    uint64_t h = hash_;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof(bits));
      for (int k = 0; k < 4; ++k) {
        h ^= (bits >> (8 * k)) & 0xff;
        h *= kFnv64Prime;
      }
    }
    hash_ = h;
  }
  uint64_t hash() const { return hash_; }

  static constexpr uint64_t kFnv64Prime = 0x100000001b3ULL;

 private:
  uint64_t hash_ = weights_internal::kFnv64Offset;
};

}  // namespace

namespace weights_internal {

uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n) {
  const auto& t = kCrc32c.table;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    const uint32_t lo = c ^ (static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                             static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
    const uint32_t hi = static_cast<uint32_t>(p[4]) | static_cast<uint32_t>(p[5]) << 8 |
                        static_cast<uint32_t>(p[6]) << 16 | static_cast<uint32_t>(p[7]) << 24;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32c(uint32_t crc, const void* data, size_t n) {
#ifdef SRN_HAVE_HW_CRC32C
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t c = static_cast<uint32_t>(~crc);
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));  // x86-64 is little-endian, as CRC-32C wants
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
#else
  return Crc32cPortable(crc, data, n);
#endif
}

uint64_t Fnv1a64(uint64_t hash, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    hash ^= p[i];
    hash *= FingerprintHasher::kFnv64Prime;
  }
  return hash;
}

std::string FramePayload(absl::string_view payload, uint32_t version) {
  std::string out(kWeightsHeaderSize + payload.size(), '\0');
  std::memcpy(&out[0], kMagic, kMagicSize);
  PutLe32(version, &out[kVersionOffset]);
  PutLe64(payload.size(), &out[kLengthOffset]);
  uint32_t crc = Crc32c(0, &out[kVersionOffset], kChecksumOffset - kVersionOffset);
  crc = Crc32c(crc, payload.data(), payload.size());
  PutLe64(crc, &out[kChecksumOffset]);
  if (!payload.empty()) std::memcpy(&out[kWeightsHeaderSize], payload.data(), payload.size());
  return out;
}

}  // namespace weights_internal

std::string SerializeModel(const SimilarityModel& model) {
  absl::StatusOr<std::string> payload = SerializePayload(model);
  if (!payload.ok()) return "";
  return weights_internal::FramePayload(*payload);
}

namespace {

// Everything the header alone can tell about a file of `file_size` bytes that starts with
// `header` (its first min(file_size, kWeightsHeaderSize) bytes): magic, a version that can be
// valid, and a payload length that matches the file and stays within protobuf's limit. Checked
// before the payload is read, so a large file of garbage costs a few bytes of reading.
absl::Status CheckHeader(absl::string_view header, uint64_t file_size, absl::string_view name) {
  constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
  const size_t magic_bytes = std::min(header.size(), kMagicSize);
  if (header.substr(0, magic_bytes) != absl::string_view(kMagic, magic_bytes)) {
    return Error(kDataLoss, name, "not an srn weights file (bad magic bytes)");
  }
  if (file_size < kWeightsHeaderSize) {
    return Error(kDataLoss, name, "truncated: ", file_size, " bytes, less than the ",
                 kWeightsHeaderSize, "-byte header");
  }
  // Versions above this build's are told apart from corruption by the checksum, later.
  if (GetLe32(header.data() + kVersionOffset) == 0) {
    return Error(kDataLoss, name, "invalid format version 0");
  }
  const uint64_t length = GetLe64(header.data() + kLengthOffset);
  const uint64_t available = file_size - kWeightsHeaderSize;
  if (length > available) {
    return Error(kDataLoss, name, "truncated: the header announces a ", length,
                 "-byte payload but only ", available, " bytes follow it");
  }
  if (length < available) {
    return Error(kDataLoss, name, available - length, " unexpected bytes after the ", length,
                 "-byte payload");
  }
  if (length > kMaxPayloadSize) {
    return Error(absl::StatusCode::kResourceExhausted, name, "the ", length,
                 "-byte payload exceeds the ", kMaxPayloadSize, "-byte limit");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const SimilarityModel>> ParseModel(absl::string_view bytes,
                                                                  absl::string_view name) {
  constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
  SRN_RETURN_IF_ERROR(
      CheckHeader(bytes.substr(0, std::min(bytes.size(), kWeightsHeaderSize)), bytes.size(), name));
  // CheckHeader has checked the declared payload length against the bytes.
  const uint32_t version = GetLe32(bytes.data() + kVersionOffset);
  const uint64_t stored_checksum = GetLe64(bytes.data() + kChecksumOffset);
  const absl::string_view payload = bytes.substr(kWeightsHeaderSize);
  uint32_t checksum = weights_internal::Crc32c(0, bytes.data() + kVersionOffset,
                                               kChecksumOffset - kVersionOffset);
  checksum = weights_internal::Crc32c(checksum, payload.data(), payload.size());
  // The checksum covers the version too, so a corrupt version is reported as corruption and
  // a version check failure means the file really comes from another srn.
  if (stored_checksum != checksum) {
    return Error(kDataLoss, name, "checksum mismatch (stored ",
                 absl::StrFormat("0x%016x", stored_checksum), ", computed ",
                 absl::StrFormat("0x%016x", checksum), "): the file is corrupt");
  }
  if (version > kWeightsFormatVersion) {
    return Error(absl::StatusCode::kFailedPrecondition, name,
                 "written by a newer srn (weights format version ", version,
                 "); this build reads versions up to ", kWeightsFormatVersion,
                 ": upgrade srn to load it");
  }
  pb::WeightsFile file;
  if (!file.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Error(kDataLoss, name, "the payload is not a valid srn.weights.v1.WeightsFile message");
  }
  return ModelFromProto(file, name);
}

namespace {

// Closes a file descriptor on scope exit unless released.
class FdCloser final {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now, reporting the error close() can return (e.g. deferred write errors on NFS).
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Reads from `fd` into (*bytes)[*used, limit) until that is full or the file ends, retrying on
// EINTR; returns whether the file may hold more (false once a read returned 0).
absl::StatusOr<bool> ReadUpTo(int fd, const std::string& path, size_t limit, std::string* bytes,
                              size_t* used) {
  while (*used < limit) {
    const ssize_t n = ::read(fd, &(*bytes)[*used], limit - *used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
    }
    if (n == 0) return false;
    *used += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::Status SaveModel(const SimilarityModel& model, const std::string& path) {
  SRN_ASSIGN_OR_RETURN(const std::string payload, SerializePayload(model));
  const std::string bytes = weights_internal::FramePayload(payload);
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<std::shared_ptr<const SimilarityModel>> LoadModel(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open weights file ", path));
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path));
  if (S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is a directory, not a weights file"));
  }
  // The header first: a file that is not a weights file, or whose header disagrees with its
  // size, is refused before its payload is read (or memory allocated for it).
  std::string bytes(kWeightsHeaderSize, '\0');
  size_t used = 0;
  if (S_ISREG(st.st_mode)) {
    SRN_ASSIGN_OR_RETURN(const bool more, ReadUpTo(fd, path, bytes.size(), &bytes, &used));
    (void)more;
    SRN_RETURN_IF_ERROR(CheckHeader(absl::string_view(bytes.data(), used),
                                    static_cast<uint64_t>(st.st_size), path));
  }
  // One spare byte so that a regular file is read in one call plus the call that sees its end;
  // the buffer still grows if the file does (or st_size is 0, as for pipes).
  bytes.resize(std::max(used, static_cast<size_t>(std::max<off_t>(st.st_size, 0))) + 1);
  for (;;) {
    if (used == bytes.size()) bytes.resize(bytes.size() * 2);
    SRN_ASSIGN_OR_RETURN(const bool more, ReadUpTo(fd, path, bytes.size(), &bytes, &used));
    if (!more) break;
  }
  bytes.resize(used);
  closer.Close();
  return ParseModel(bytes, path);
}

// The fingerprint is FNV-1a 64 over this byte string (u32/u64 little-endian; str = u64 length then
// the bytes; floats = u64 count then each value's IEEE-754 bits as u32):
//   str "srn-model-fingerprint-v1"
//   str family name, u32 input_dims, u32 hidden, u32 layers (0 for the logistic model)
//   u32 feature kind (1 frames, 2 signature), u32 raw_dims, u32 window, floats mean, floats scale
//   u64 tensor count, then per tensor in ParameterLayout order: str name, u32 rows, u32 cols,
//   floats data
// Changing anything here changes every fingerprint and orphans stored embeddings: don't.
std::string ModelFingerprint(const SimilarityModel& model) {
  FingerprintHasher h;
  h.Str("srn-model-fingerprint-v1");
  const Architecture& arch = model.architecture();
  h.Str(arch.FamilyName());
  h.U32(static_cast<uint32_t>(arch.input_dims));
  h.U32(static_cast<uint32_t>(arch.hidden));
  // The logistic model has no layers, whatever the field says (Architecture's == agrees).
  h.U32(static_cast<uint32_t>(arch.is_logistic() ? 0 : arch.layers));
  const Preprocessor& pre = model.preprocessor();
  h.U32(static_cast<uint32_t>(KindToProto(pre.kind)));
  h.U32(static_cast<uint32_t>(pre.raw_dims));
  h.U32(static_cast<uint32_t>(pre.window));
  // Hashed only when set, so that fingerprints of models from before the option stay the same.
  if (pre.center_series) h.Str("center_series");
  h.Floats(pre.mean.data(), pre.mean.size());
  h.Floats(pre.scale.data(), pre.scale.size());
  const ParameterLayout& layout = model.layout();
  h.U64(layout.tensors().size());
  for (const TensorSpec& spec : layout.tensors()) {
    h.Str(spec.name);
    h.U32(static_cast<uint32_t>(spec.rows));
    h.U32(static_cast<uint32_t>(spec.cols));
    h.Floats(model.params().data() + spec.offset, spec.size());
  }
  return absl::StrFormat("%016x", h.hash());
}

}  // namespace srn
