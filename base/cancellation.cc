#include "base/cancellation.h"

namespace srn {
namespace {

class Never final : public Cancellation {
 public:
  absl::Status Check() const override { return absl::OkStatus(); }
};

}  // namespace

absl::Status CancellationFlag::Check() const {
  if (cancelled_.load(std::memory_order_relaxed)) {
    return absl::CancelledError("stopped: its owner is shutting down");
  }
  return absl::OkStatus();
}

const Cancellation& NeverCancelled() {
  static const Never* never = new Never();
  return *never;
}

}  // namespace srn
