#ifndef SRN_BASE_STD_MUTEX_H_
#define SRN_BASE_STD_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace srn {

// std::mutex with the thread-safety annotations absl::Mutex has, so that clang checks what it
// guards. For code that ThreadSanitizer must see synchronize: TSan intercepts std::mutex
// (pthreads), but not Debian's uninstrumented Abseil, whose absl::Mutex it cannot see.
// Lock/Unlock and Wait are the whole interface; prefer StdMutexLock for a scope.
class ABSL_LOCKABLE StdMutex final {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Releases the mutex while waiting on `cv` and holds it again on return (a wake-up may be
  // spurious: wait in a loop on the condition).
  void Wait(std::condition_variable* cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    cv->wait(lock);
    lock.release();
  }

 private:
  std::mutex mu_;
};

// Holds a StdMutex for a scope.
class ABSL_SCOPED_LOCKABLE StdMutexLock final {
 public:
  explicit StdMutexLock(StdMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~StdMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  StdMutexLock(const StdMutexLock&) = delete;
  StdMutexLock& operator=(const StdMutexLock&) = delete;

 private:
  StdMutex* const mu_;
};

}  // namespace srn

#endif  // SRN_BASE_STD_MUTEX_H_
