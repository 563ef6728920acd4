// An exclusive advisory lock on a file (flock), held for an object's
// lifetime. Two cowsnap processes editing one VG serialise on its lock file,
// as lvm2 serialises on /run/lock/lvm/V_vgname.
#pragma once

#include <string>

#include "cowsnap/status.h"

namespace cowsnap::vg {

class FileLock {
 public:
  FileLock() = default;
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  // Creates the file if needed (mode 0600) and takes LOCK_EX. With
  // wait = false, fails with EWOULDBLOCK "PATH: locked by another process"
  // instead of waiting.
  static Result<FileLock> acquire(const std::string& path, bool wait = true);

  [[nodiscard]] bool held() const { return fd_ >= 0; }
  void release();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cowsnap::vg
