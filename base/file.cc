#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

absl::Status ErrnoStatus(int err, const std::string& what) {
  return absl::Status(err == ENOENT || err == ENOTDIR ? absl::StatusCode::kNotFound
                      : err == EACCES || err == EPERM || err == EROFS
                          ? absl::StatusCode::kPermissionDenied
                      : err == ENOSPC || err == EDQUOT ? absl::StatusCode::kResourceExhausted
                                                       : absl::StatusCode::kUnavailable,
                      absl::StrCat(what, ": ", std::strerror(err)));
}

// Writes all of `bytes` to `fd` and syncs it; the caller closes it.
absl::Status WriteAndSync(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("cannot write ", path));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0) return ErrnoStatus(errno, absl::StrCat("cannot sync ", path));
  return absl::OkStatus();
}

void SyncParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    if (err == EACCES)
      return absl::PermissionDeniedError(absl::StrCat(path, ": permission denied"));
    return absl::UnavailableError(absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::string content;
  // One spare byte so that the read which sees end-of-file needs no reallocation.
  content.resize(static_cast<size_t>(st.st_size) + 1);
  size_t done = 0;
  while (true) {
    if (done == content.size()) content.resize(content.size() * 2 + 4096);  // file grew
    const ssize_t got = ::read(fd, &content[done], content.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": read error: ", std::strerror(err)));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  content.resize(done);
  return content;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot create ", tmp));
  absl::Status written = WriteAndSync(fd, bytes, tmp);
  if (::close(fd) != 0 && written.ok()) {
    written = ErrnoStatus(errno, absl::StrCat("cannot close ", tmp));
  }
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = ErrnoStatus(errno, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  SyncParentDirectory(path);
  return absl::OkStatus();
}

}  // namespace srn
