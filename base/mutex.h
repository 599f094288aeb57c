#ifndef SRN_BASE_MUTEX_H_
#define SRN_BASE_MUTEX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace srn {

// srn's mutex: absl::Mutex's interface and thread-safety annotations (clang checks what it
// guards) over std::shared_mutex, so that ThreadSanitizer sees every lock. TSan intercepts
// pthreads, which the standard library uses, but cannot see into Debian's uninstrumented
// Abseil; with absl::Mutex every access it guards looked like a race.
//
// Exclusive (Lock) or shared (ReaderLock) ownership; Await blocks, with the mutex released,
// until a condition on the guarded state holds, re-checked whenever an exclusive owner unlocks
// (as absl::Mutex::Await does). Not recursive.
class ABSL_LOCKABLE Mutex final {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.unlock();
    if (waiters_.load(std::memory_order_acquire) > 0) changed_.notify_all();
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

  // Returns once cond() (called with the mutex held) is true; the mutex is released while
  // waiting. `cond` reads guarded state: declare it ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu).
  template <typename Condition>
  void Await(const Condition& cond) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::shared_mutex> lock(mu_, std::adopt_lock);
    waiters_.fetch_add(1, std::memory_order_acq_rel);
    while (!cond()) changed_.wait(lock);
    waiters_.fetch_sub(1, std::memory_order_acq_rel);
    lock.release();
  }

  // Await for at most `timeout`; returns cond() (false when it timed out still false).
  template <typename Condition>
  bool AwaitWithTimeout(const Condition& cond, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    std::unique_lock<std::shared_mutex> lock(mu_, std::adopt_lock);
    waiters_.fetch_add(1, std::memory_order_acq_rel);
    bool done = cond();
    while (!done && changed_.wait_until(lock, deadline) != std::cv_status::timeout) done = cond();
    if (!done) done = cond();
    waiters_.fetch_sub(1, std::memory_order_acq_rel);
    lock.release();
    return done;
  }

  // Waits on `cv` (notified by its owner) with the mutex released; a wake-up may be spurious.
  void Wait(std::condition_variable_any* cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::shared_mutex> lock(mu_, std::adopt_lock);
    cv->wait(lock);
    lock.release();
  }

 private:
  std::shared_mutex mu_;
  std::condition_variable_any changed_;  // an exclusive owner unlocked while someone awaited
  std::atomic<int> waiters_{0};
};

// Holds a Mutex exclusively for a scope.
class ABSL_SCOPED_LOCKABLE MutexLock final {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds a Mutex shared for a scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock final {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace srn

#endif  // SRN_BASE_MUTEX_H_
