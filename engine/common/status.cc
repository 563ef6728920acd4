#include "cowsnap/common/status.h"

#include <fmt/format.h>

#include <cerrno>
#include <system_error>

namespace cowsnap {

Status Status::Error(int errnum, std::string message) {
  assert(errnum != 0);
  return {errnum, std::move(message)};
}

Status Status::FromErrno(std::string_view what) {
  const int saved = errno;
  return {saved != 0 ? saved : EIO, fmt::format("{}: {}", what, std::generic_category().message(saved))};
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return message_;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return {errnum_, fmt::format("{}: {}", context, message_)};
}

}  // namespace cowsnap
