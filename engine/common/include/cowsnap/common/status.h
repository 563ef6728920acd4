// Status and Result: the engine's one error type.
//
// Every fallible engine call returns a Status (or a Result<T>, a value or a
// Status). An error carries an errno value, so that the nbdkit plugin can
// hand it to NBD clients unchanged (EIO for an invalid snapshot, EINVAL for
// a bad range, ENOSPC, EROFS, ...), and a message that names what failed and
// where, for people. No exception crosses the engine's API.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cowsnap {

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // success

  static Status Ok() noexcept { return {}; }
  // REQUIRES: errnum != 0.
  static Status Error(int errnum, std::string message);
  // An error from the current `errno` of a failed system call.
  static Status FromErrno(std::string_view what);

  [[nodiscard]] bool ok() const noexcept { return errnum_ == 0; }
  // The errno value of the error, 0 for success.
  [[nodiscard]] int errnum() const noexcept { return errnum_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // The message, or "ok" for success.
  [[nodiscard]] std::string to_string() const;
  // The same error with "context: " put in front of its message.
  [[nodiscard]] Status with_context(std::string_view context) const;

 private:
  Status(int errnum, std::string message) noexcept : errnum_(errnum), message_(std::move(message)) {}
  int errnum_ = 0;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  // NOLINTBEGIN(google-explicit-constructor): implicit, like std::expected.
  Result(T value) : v_(std::move(value)) {}
  Result(Status error) : v_(std::move(error)) {
    assert(!std::get<Status>(v_).ok() && "a Result needs a value or an error");
  }
  // NOLINTEND(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  // The error; Status::Ok() when the result holds a value.
  [[nodiscard]] Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cowsnap

#define COWSNAP_CONCAT_INNER_(a, b) a##b
#define COWSNAP_CONCAT_(a, b) COWSNAP_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the calling function when it failed.
#define COWSNAP_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::cowsnap::Status cowsnap_status_ = (expr);        \
    if (!cowsnap_status_.ok()) return cowsnap_status_; \
  } while (false)

// `lhs = value of expr`, or returns its error from the calling function.
#define COWSNAP_ASSIGN_OR_RETURN(lhs, expr) \
  COWSNAP_ASSIGN_OR_RETURN_IMPL_(COWSNAP_CONCAT_(cowsnap_result_, __LINE__), lhs, expr)
#define COWSNAP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
