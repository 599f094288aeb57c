#ifndef SRN_SERVER_CALL_CANCELLATION_H_
#define SRN_SERVER_CALL_CANCELLATION_H_

#include <chrono>

#include "absl/status/status.h"
#include "base/cancellation.h"
#include "grpcpp/server_context.h"

namespace srn {

// The Cancellation of one gRPC call: its deadline passed (checked against the clock, so even
// before gRPC notices) or the call was cancelled (the client cancelled it or went away). Lives on
// the handler's stack for the call; ServerContextBase::IsCancelled is thread-safe.
class CallCancellation final : public Cancellation {
 public:
  explicit CallCancellation(const grpc::ServerContextBase& ctx) : ctx_(ctx) {}

  absl::Status Check() const override {
    if (std::chrono::system_clock::now() >= ctx_.deadline()) {
      return absl::DeadlineExceededError("the call's deadline passed; its work was stopped");
    }
    if (ctx_.IsCancelled()) {
      return absl::CancelledError("the call was cancelled or its client went away");
    }
    return absl::OkStatus();
  }

 private:
  const grpc::ServerContextBase& ctx_;
};

}  // namespace srn

#endif  // SRN_SERVER_CALL_CANCELLATION_H_
