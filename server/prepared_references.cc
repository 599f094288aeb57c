#include "server/prepared_references.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "model/signature/verification.h"

namespace srn {
namespace {

// The first field of a stored value: its format, so that a later one is never misread.
constexpr absl::string_view kSpreadsFormat = "spreads-v1";

}  // namespace

size_t PreparedReferences::bytes() const {
  size_t values = 0;
  for (const Series& s : dtw) values += static_cast<size_t>(s.frames().size());
  for (const Series& s : states) values += static_cast<size_t>(s.frames().size());
  return values * sizeof(float);
}

std::string DerivationTag(const ServingModel& model, const SignatureDtwOptions& dtw) {
  return absl::StrFormat("%s %s | dtw band=%d,%.17g cost=%d features=%s per_series=%d", model.id,
                         FormatVerificationCalibration(model.calibration), dtw.dtw.band_frames,
                         dtw.dtw.band_fraction, static_cast<int>(dtw.dtw.local_cost),
                         absl::StrJoin(dtw.features, ","), dtw.per_series ? 1 : 0);
}

std::string EncodeSpreads(const std::string& tag, const ReferenceSpreads& spreads) {
  return absl::StrFormat("%s\n%s\n%.17g %.17g", kSpreadsFormat, tag, spreads.dtw, spreads.states);
}

std::optional<ReferenceSpreads> DecodeSpreads(const std::string& stored, const std::string& tag) {
  const std::vector<absl::string_view> lines = absl::StrSplit(stored, '\n');
  if (lines.size() != 3 || lines[0] != kSpreadsFormat || lines[1] != tag) return std::nullopt;
  const std::vector<absl::string_view> values = absl::StrSplit(lines[2], ' ');
  ReferenceSpreads spreads;
  if (values.size() != 2 || !absl::SimpleAtod(values[0], &spreads.dtw) ||
      !absl::SimpleAtod(values[1], &spreads.states)) {
    return std::nullopt;
  }
  // A spread divides distances: only a positive finite one is usable.
  const auto usable = [](double d) { return d > 0 && d < std::numeric_limits<double>::max(); };
  if (!usable(spreads.dtw) || !usable(spreads.states)) return std::nullopt;
  return spreads;
}

std::shared_ptr<const PreparedReferences> PreparedReferenceCache::Find(
    const std::shared_ptr<const SubjectEntry>& entry) {
  MutexLock lock(&mu_);
  const auto it = slots_.find(entry.get());
  if (it == slots_.end()) return nullptr;
  if (it->second->owner.lock() != entry) {  // cannot happen while `entry` lives; defensive
    Erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->prepared;
}

void PreparedReferenceCache::Insert(const std::shared_ptr<const SubjectEntry>& entry,
                                    std::shared_ptr<const PreparedReferences> prepared) {
  const size_t bytes = prepared->bytes();
  MutexLock lock(&mu_);
  if (const auto it = slots_.find(entry.get()); it != slots_.end()) Erase(it);
  if (bytes > capacity_bytes_) return;
  lru_.push_front(Slot{entry.get(), entry, std::move(prepared), bytes});
  slots_[entry.get()] = lru_.begin();
  bytes_ += bytes;
  while (bytes_ > capacity_bytes_) Erase(slots_.find(lru_.back().key));
}

void PreparedReferenceCache::Erase(const std::shared_ptr<const SubjectEntry>& entry) {
  MutexLock lock(&mu_);
  if (const auto it = slots_.find(entry.get()); it != slots_.end()) Erase(it);
}

void PreparedReferenceCache::Clear() {
  MutexLock lock(&mu_);
  slots_.clear();
  lru_.clear();
  bytes_ = 0;
}

size_t PreparedReferenceCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

size_t PreparedReferenceCache::size() const {
  MutexLock lock(&mu_);
  return slots_.size();
}

void PreparedReferenceCache::Erase(Slots::iterator it) {
  bytes_ -= it->second->bytes;
  lru_.erase(it->second);
  slots_.erase(it);
}

}  // namespace srn
