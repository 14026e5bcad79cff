// Status and Result<T>: how the engine and the operators report errors.
//
// The engine never throws across its interfaces and never exits: library exceptions (yaml-cpp,
// simdjson, std) are caught where the library is called and become a Status. Only cli/ turns a
// Status into a message and an exit code (see ExitCodeFor in cli/).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace streamrun {

class Status {
 public:
  // Do not reorder: cli/ maps these to exit codes.
  enum class Code {
    kOk = 0,
    kPipelineError,  // the pipeline file or the command line is wrong: exit 2
    kIoError,        // a file or socket could not be used: exit 1
    kDataError,      // an input record could not be read (on_error: fail): exit 1
    kRuntimeError,   // anything else that stops a running job: exit 1
    kCancelled,      // the job was interrupted (Ctrl-C, stop): exit 130
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status PipelineError(std::string msg) {
    return Status(Code::kPipelineError, std::move(msg));
  }
  static Status IoError(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status DataError(std::string msg) { return Status(Code::kDataError, std::move(msg)); }
  static Status RuntimeError(std::string msg) {
    return Status(Code::kRuntimeError, std::move(msg));
  }
  static Status Cancelled(std::string msg = "interrupted") {
    return Status(Code::kCancelled, std::move(msg));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace streamrun

// Returns from the calling function when `expr` (a Status) is not ok.
#define SR_RETURN_IF_ERROR(expr)      \
  do {                                \
    ::streamrun::Status _st = (expr); \
    if (!_st.ok()) return _st;        \
  } while (0)

#define SR_CONCAT_INNER(a, b) a##b
#define SR_CONCAT(a, b) SR_CONCAT_INNER(a, b)
// `SR_ASSIGN_OR_RETURN(auto x, F())`: declares x from a Result, or returns its Status.
#define SR_ASSIGN_OR_RETURN(lhs, rexpr) \
  SR_ASSIGN_OR_RETURN_IMPL(SR_CONCAT(_res_, __LINE__), lhs, rexpr)
#define SR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                             \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
