#ifndef SRN_MODEL_WEIGHTS_WEIGHTS_FILE_H_
#define SRN_MODEL_WEIGHTS_WEIGHTS_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/nn/similarity_model.h"

namespace srn {

// The weights file format written by this build (see model/weights/weights.proto for the frame and
// the schema). Readers accept versions 1..kWeightsFormatVersion.
inline constexpr uint32_t kWeightsFormatVersion = 1;
// The fixed frame in front of the payload: magic, version, payload length, checksum.
inline constexpr size_t kWeightsHeaderSize = 28;

// Saving and loading models. All functions are thread-safe (they share no state); the model is
// only read. Every byte of a file is covered by the magic, the length or the checksum, so any
// corruption is reported instead of yielding a subtly different model.
//
// Error codes of the loaders (messages start with the file name or `name_for_errors`):
//   NotFound            the file does not exist
//   DataLoss            truncated, trailing bytes, bad magic, checksum mismatch, or a payload
//                       that is not a WeightsFile message
//   FailedPrecondition  written by a newer srn (format version above kWeightsFormatVersion)
//   InvalidArgument     a well-formed file whose model is inconsistent: unknown enum values,
//                       impossible architecture, preprocessing that does not feed the encoder,
//                       a missing, extra, duplicated or misshapen tensor (named in the message),
//                       non-finite values, disagreeing redundant dimensions
//   ResourceExhausted   a payload of 2 GiB or more (beyond what protobuf parses)
// and other codes from the operating system for unreadable files (FailedPrecondition for a
// directory).

// Writes `model` to `path` atomically: the file is written to `path`.tmp, flushed to disk, then
// renamed over `path` (and the directory synced), so readers see either the old or the complete
// new file. Concurrent saves to the same path race on the .tmp file; don't. Errors come from the
// operating system (e.g. NotFound for a missing directory); the .tmp file is removed on failure.
absl::Status SaveModel(const SimilarityModel& model, const std::string& path);

// Reads and checks a weights file; the result can be shared between threads. The header (magic,
// version, the payload length against the file's size and the 2 GiB limit) is checked before the
// payload is read, so a large file that is not a weights file costs a few bytes of reading.
absl::StatusOr<std::shared_ptr<const SimilarityModel>> LoadModel(const std::string& path);

// Like LoadModel, from the bytes of a file held in memory.
absl::StatusOr<std::shared_ptr<const SimilarityModel>> ParseModel(
    absl::string_view bytes, absl::string_view name_for_errors);

// The bytes SaveModel writes: deterministic, so equal models (metadata included) give equal
// bytes. Returns "" for a model whose payload would exceed the 2 GiB protobuf limit (SaveModel
// reports that as ResourceExhausted); no valid architecture of practical size gets close.
std::string SerializeModel(const SimilarityModel& model);

// A stable fingerprint of what the model computes: architecture, preprocessing and tensors, not
// the metadata. 16 lowercase hex digits of a 64-bit FNV-1a hash over a fixed little-endian
// encoding (documented in weights_file.cc), so it is identical for identical weights on every
// platform and build, and is used to tag embeddings. Not a defense against deliberate
// collisions. Costs one pass over the parameters (about 2 ms per MB): compute it once per model.
std::string ModelFingerprint(const SimilarityModel& model);

// Building blocks, exposed for tests and tools.
namespace weights_internal {

// CRC-32C (Castagnoli) of `n` bytes continuing from `crc` (0 to start): Crc32c(0, "123456789")
// is 0xE3069283. Uses the SSE4.2 instruction when the build targets it.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);
// The same, table-driven; the reference the hardware path is tested against.
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n);

// 64-bit FNV-1a of `data`, continuing from `hash` (start with kFnv64Offset).
inline constexpr uint64_t kFnv64Offset = 0xcbf29ce484222325ULL;
uint64_t Fnv1a64(uint64_t hash, const void* data, size_t n);

// Wraps a serialized WeightsFile in the frame, with a valid checksum for `version`.
std::string FramePayload(absl::string_view payload, uint32_t version = kWeightsFormatVersion);

}  // namespace weights_internal

}  // namespace srn

#endif  // SRN_MODEL_WEIGHTS_WEIGHTS_FILE_H_
