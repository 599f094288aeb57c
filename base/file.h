#ifndef SRN_BASE_FILE_H_
#define SRN_BASE_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace srn {

// The whole content of a regular file. NotFound when the file does not exist, PermissionDenied
// when it cannot be read, InvalidArgument when it is not a regular file, DataLoss on a read
// error; messages name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Replaces `path` with `bytes` atomically and durably: writes `path`.tmp, fsyncs it, renames it
// over `path` and fsyncs the directory (best effort: some file systems refuse that, and the
// file's own data is already on disk). A reader sees the old content or the new, never a mix;
// after a crash, the old or the new. On failure the temporary is removed and `path` is untouched.
// Errors name the file: NotFound (no such directory), PermissionDenied, ResourceExhausted (disk
// full), Unavailable (other I/O errors).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

}  // namespace srn

#endif  // SRN_BASE_FILE_H_
