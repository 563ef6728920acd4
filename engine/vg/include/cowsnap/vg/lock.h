// An exclusive advisory lock on a file (flock), held for an object's
// lifetime. Two cowsnap processes editing one VG serialise on its lock file,
// as lvm2 serialises on /run/lock/lvm/V_vgname.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"

namespace cowsnap::vg {

class PvLock;

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
  // Opens an existing file (a PV: a file or block device) read-only and
  // takes LOCK_EX or LOCK_SH without waiting: EWOULDBLOCK when held.
  static Result<FileLock> try_existing(const std::string& path, bool exclusive);

  [[nodiscard]] bool held() const { return fd_ >= 0; }
  void release();

 private:
  friend class PvLock;
  explicit FileLock(int fd) : fd_(fd) {}
  static Result<FileLock> open_and_lock(const std::string& path, int open_flags, int lock_op);
  int fd_ = -1;
};

// ---- PV ownership across roots ----
//
// A PV has one owner at a time: the root (ROOT) whose server serves it, or
// whose offline command is editing it. Two roots whose devices files list
// the same PV file would otherwise both write it and corrupt its snapshots.
// The owner holds flock(LOCK_EX) on the PV file or block device itself —
// per open file description, so the lock survives the engine opening and
// closing the same file through other descriptors (a POSIX fcntl lock would
// be dropped by the first close), and dies with the process. While holding
// it, the owner also keeps ROOT/locks/pv_owner open: another process finds
// the holder's pid in /proc/locks and its root through /proc/PID/fd.
//
// A PV on an RBD image (rbd:POOL/IMAGE) may be shared by roots on other
// hosts, where flock and /proc cannot reach: its owner holds RBD's
// exclusive lock instead (cowsnap/io/rbd.h, Ownership), kept by the open
// image the PvLock holds. A second owner is refused whatever its root;
// within one process the lock is shared (the server's edits pass).
//
// Within one root, the ROOT/locks files (root.h) order the server and the
// commands, so a PV held by a process of the same root is not a conflict
// for an edit. Lock order: ROOT/locks/V_* before PV locks.

// Who holds a PV's lock, as far as /proc tells (same uid or root).
struct PvHolder {
  pid_t pid = 0;
  std::string command;  // /proc/PID/comm, e.g. "nbdkit", "cowsnap"
  std::string root;     // empty when it cannot be known
};
// Null when nobody holds it (or /proc/locks does not show it).
std::optional<PvHolder> find_pv_holder(const std::string& pv_path);

// What acquiring an RBD PV's lock does about another owner (PvLock::acquire):
// refuse; break it once the owner is dead (its watch lapsed); break it even
// while the owner is alive. Files have no take-over.
enum class PvTakeOver { kNo, kDeadOwner, kForce };

class PvLock {
 public:
  PvLock() = default;
  PvLock(PvLock&& other) noexcept = default;
  PvLock& operator=(PvLock&& other) noexcept = default;

  // Takes the PV's lock for `root_dir` without waiting for another root.
  // A holder of the same root (an offline command mid-edit) is waited for,
  // up to `same_root_wait_ms`. EBUSY "PV PATH is owned by another cowsnap
  // root (pid N COMMAND, root DIR)" otherwise (the parenthesis says what
  // can be known).
  // An RBD PV: its exclusive lock is taken, breaking another owner's as
  // `take_over` allows (EBUSY naming the owner otherwise).
  static Result<PvLock> acquire(const std::string& pv_path, const std::string& root_dir,
                                int same_root_wait_ms = 10000, PvTakeOver take_over = PvTakeOver::kNo);

  [[nodiscard]] bool held() const { return pv_.held() || rbd_image_ != nullptr; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  static Result<PvLock> acquire_rbd(const std::string& pv_path, PvTakeOver take_over);

  std::string path_;
  // ROOT/locks/pv_owner, open (shared) while pv_ is held. Declared first so
  // that it is released last: while the PV is locked, a waiter must be able
  // to find the holder's root.
  FileLock owner_;
  FileLock pv_;  // flock on the PV itself
  // An RBD PV's open image, owning its exclusive lock while any holder of
  // the image (this lock, an active VG) is alive.
  std::shared_ptr<BlockDevice> rbd_image_;
};

// What an edit from `root_dir` needs before it writes the PVs at `paths`:
// a free PV is locked (held until the result is dropped); a PV held by a
// process of the same root (its server) passes; a PV of another root fails
// with PvLock::acquire's EBUSY. An RBD PV is locked the same way whoever
// holds it (within this process the lock is shared).
Result<std::vector<PvLock>> claim_pvs_for_edit(const std::vector<std::string>& paths,
                                               const std::string& root_dir);
// The same for a VG's PV name -> path map (VgOnDisk::pv_paths).
Result<std::vector<PvLock>> claim_pvs_for_edit(const std::map<std::string, std::string>& pv_paths,
                                               const std::string& root_dir);

}  // namespace cowsnap::vg
