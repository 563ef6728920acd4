#include "atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

namespace cowsnap::vg {
namespace {

Status fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(fmt::format("{}: open", path));
  const int rc = ::fsync(fd);
  Status st = rc == 0 ? Status::Ok() : Status::FromErrno(fmt::format("{}: fsync", path));
  ::close(fd);
  return st;
}

}  // namespace

Status write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(fmt::format("{}: create", tmp));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Status::FromErrno(fmt::format("{}: write", tmp));
      ::close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status st = Status::FromErrno(fmt::format("{}: fsync", tmp));
    ::close(fd);
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(fmt::format("{}: rename", path));
  const size_t slash = path.rfind('/');
  return fsync_path(slash == std::string::npos ? "." : path.substr(0, slash), O_RDONLY | O_DIRECTORY);
}

}  // namespace cowsnap::vg
