#ifndef SRN_SERVER_STORE_LOCK_H_
#define SRN_SERVER_STORE_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace srn {

// An exclusive advisory lock (flock) on "<store>.lock", held for the life of the object, so that
// two servers never write one store ("one writer per volume"). The kernel drops it when the
// process dies, so a crash never leaves a stale lock. Move-only.
class StoreLock final {
 public:
  // FailedPrecondition when another process holds the lock (the message gives its pid).
  static absl::StatusOr<StoreLock> Acquire(const std::string& store_path);

  StoreLock(StoreLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StoreLock& operator=(StoreLock&& other) noexcept;
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  ~StoreLock();

 private:
  explicit StoreLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace srn

#endif  // SRN_SERVER_STORE_LOCK_H_
