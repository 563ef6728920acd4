// The root directory: what cowsnap scans and where it locks.
//
//   ROOT/devices         PV paths, one per line ('#' comments allowed), the
//                        role lvm2's /etc/lvm/devices/system.devices plays
//   ROOT/locks/V_NAME.lock   one per VG: held while a command edits it
//   ROOT/locks/P_global.lock held while the set of PVs/VGs changes
//                        (pvcreate, vgcreate, vgextend, vgremove, devices)
//
// Lock order: global before any VG lock. Thread safety: a Root is a value;
// concurrent processes are ordered by the lock files.
#pragma once

#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/lock.h"

namespace cowsnap::vg {

class Root {
 public:
  // Creates the directory, locks/ and an empty devices file when missing.
  static Result<Root> open(const std::string& dir);

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string devices_file() const { return dir_ + "/devices"; }

  // Paths as listed, in file order.
  [[nodiscard]] Result<std::vector<std::string>> devices() const;
  // Like `lvmdevices --adddev`: appends the absolute path. EEXIST "PATH is
  // already in the devices file". The file is replaced atomically (rename).
  // REQUIRES (for this and remove_device): the caller holds lock_global(),
  // or two concurrent edits may lose one (VolumeManager does this).
  Status add_device(const std::string& path) const;
  // Like `lvmdevices --deldev`. ENOENT when not listed.
  Status remove_device(const std::string& path) const;

  [[nodiscard]] Result<FileLock> lock_vg(const std::string& vg_name, bool wait = true) const;
  [[nodiscard]] Result<FileLock> lock_global(bool wait = true) const;

 private:
  explicit Root(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// The absolute, lexically normal form of a path (no symlink resolution).
std::string absolute_path(const std::string& path);

}  // namespace cowsnap::vg
