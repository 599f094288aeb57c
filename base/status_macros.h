#ifndef SRN_BASE_STATUS_MACROS_H_
#define SRN_BASE_STATUS_MACROS_H_

// Debian's Abseil (2022) ships no RETURN_IF_ERROR / ASSIGN_OR_RETURN; these are ours.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SRN_STATUS_CONCAT_INNER_(a, b) a##b
#define SRN_STATUS_CONCAT_(a, b) SRN_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define SRN_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    ::absl::Status srn_status_ = (expr);            \
    if (!srn_status_.ok()) return srn_status_;      \
  } while (false)

// `lhs = value of expr`, or returns its status from the enclosing function.
#define SRN_ASSIGN_OR_RETURN(lhs, expr) \
  SRN_ASSIGN_OR_RETURN_IMPL_(SRN_STATUS_CONCAT_(srn_statusor_, __LINE__), lhs, expr)
#define SRN_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // SRN_BASE_STATUS_MACROS_H_
