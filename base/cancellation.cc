#include "base/cancellation.h"

namespace srn {
namespace {

class Never final : public Cancellation {
 public:
  absl::Status Check() const override { return absl::OkStatus(); }
};

}  // namespace

const Cancellation& NeverCancelled() {
  static const Never* never = new Never();
  return *never;
}

}  // namespace srn
