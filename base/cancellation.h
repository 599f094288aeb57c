#ifndef SRN_BASE_CANCELLATION_H_
#define SRN_BASE_CANCELLATION_H_

#include <atomic>

#include "absl/status/status.h"

namespace srn {

// Whether the work of one call should stop early: its deadline passed or its caller went away.
// Long loops check it between units of bounded cost (one DTW, one chunk of a scan) and return
// its status, so that abandoned work ends within milliseconds. Implementations are thread-safe.
class Cancellation {
 public:
  virtual ~Cancellation() = default;
  // OK to go on; otherwise why to stop (DeadlineExceeded or Cancelled, saying so).
  virtual absl::Status Check() const = 0;
};

// The Cancellation of work that nobody abandons (tools, tests, start-up).
const Cancellation& NeverCancelled();

// A Cancellation that says stop once Cancel is called (background work the owner stops).
class CancellationFlag final : public Cancellation {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  absl::Status Check() const override;

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace srn

#endif  // SRN_BASE_CANCELLATION_H_
