// The volume manager: lvm2-style commands over the PVs listed in a root
// directory. The CLI calls these; each is one command.
//
// Every editing call:
//   1. takes the locks (ROOT/locks, see root.h), waiting for other
//      processes;
//   2. scans the listed devices and reads the VG's newest committed
//      metadata (highest seqno among its PVs; same seqno with different
//      text, or a PV named in the metadata but missing, is an error);
//   3. validates everything and builds the new metadata in memory — any
//      error here leaves the disks untouched;
//   4. commits: writes the new text (seqno + 1) on every PV of the VG and
//      flushes, then rewrites each PV's one-sector mda_header and flushes.
//      A crash before step 4's header writes leaves the previous metadata
//      in force everywhere.
// Errors carry an errno and lvm2-like wording, e.g. ENOSPC "Insufficient
// free space: 3 extents needed, but only 2 available", ENOENT "Volume group
// \"vgx\" not found", EEXIST "Logical volume \"b64m\" already exists in
// volume group \"vgsrv\"".
//
// Thread safety: a VolumeManager may be used from one thread at a time;
// concurrent processes are serialised by the lock files.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/lv_map.h"
#include "cowsnap/vg/physical_volume.h"
#include "cowsnap/vg/root.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

// Defaults follow lvm2's.
inline constexpr uint64_t kDefaultExtentSectors = 8192;  // 4 MiB
inline constexpr uint64_t kDefaultChunkSectors = 8;      // 4 KiB
inline constexpr uint64_t kMinChunkSectors = 8;          // 4 KiB
inline constexpr uint64_t kMaxChunkSectors = 1024;       // 512 KiB

// lvm2's rule for an extent size (sectors): a power of two, or a multiple of
// 128 KiB; at most 2^32 - 1 sectors. EINVAL with lvm2's wording.
Status validate_extent_size(uint64_t sectors);
// lvm2's rule for a snapshot chunk size: a power of two, 4 KiB to 512 KiB.
Status validate_chunk_size(uint64_t sectors);
// Extents needed for `bytes`, rounded up (lvm2's -L).
uint64_t extents_for_bytes(const VolumeGroup& vg, uint64_t bytes);
// The largest useful COW LV for an origin, in extents (lvm2's
// cow_max_extents: header + data + metadata chunks, rounded up).
uint64_t cow_max_extents(const VolumeGroup& vg, uint64_t origin_extents, uint64_t chunk_sectors);

// A device listed in the devices file, as scanned.
struct ScannedDevice {
  std::string path;
  Status status;  // why it is not usable as a PV (ok when it is one)
  std::optional<PvOnDisk> pv;
  std::string vg_name;  // empty: an orphan PV (in no VG)
  // lvm2's "WARNING: ..." lines for bad or stale metadata areas of this PV,
  // naming it and the area (pv_metadata.h); the VG is read from the good
  // area when there is one. Every command prints them.
  std::vector<std::string> warnings;
};

// A VG as found by a scan.
struct VgOnDisk {
  VolumeGroup vg;  // the newest metadata
  // PV name in the metadata ("pv0") -> device path, for every PV found.
  std::map<std::string, std::string> pv_paths;
  std::vector<std::string> missing_pvs;  // PV names with no device found
  [[nodiscard]] PvPathLookup path_lookup() const;
};

struct ScanResult {
  std::vector<ScannedDevice> devices;
  std::map<std::string, VgOnDisk> vgs;
  // VGs that could not be assembled (name -> why).
  std::map<std::string, Status> broken_vgs;
};

// What a command changed, for the CLI to print.
// An LV's permission (lvcreate -p, lvchange -p): WRITE in its status or not.
enum class LvPermission { kReadWrite, kReadOnly };

struct CommitResult {
  VolumeGroup vg;                    // the metadata now in force
  std::vector<std::string> notices;  // e.g. "Rounding up size to full physical extent 64.00 MiB"
};

struct VolumeManagerOptions {
  // Recorded in metadata (creation_host and the text's trailer).
  std::string host_name;  // empty: gethostname()
  // Seconds since the epoch for creation_time; empty: time(nullptr).
  std::function<int64_t()> clock;
  // Used in the text's description line, like lvm2's "Write from lvcreate ...".
  std::string command_line;
};

class VolumeManager {
 public:
  static Result<VolumeManager> open(const std::string& root_dir, VolumeManagerOptions options = {});

  [[nodiscard]] const Root& root() const { return root_; }
  void set_command_line(std::string command_line) { options_.command_line = std::move(command_line); }

  // ---- devices file (lvmdevices --adddev / --deldev) ----
  Status add_device(const std::string& path);
  // Refuses a device holding a PV of a VG (EBUSY) unless force.
  Status remove_device(const std::string& path, bool force = false);
  Result<std::vector<std::string>> devices() const;

  // ---- reading (no lock: headers are updated atomically) ----
  Result<ScanResult> scan() const;
  // ENOENT "Volume group "NAME" not found".
  Result<VgOnDisk> read_vg(const std::string& vg_name) const;

  // ---- PVs ----
  // Creates the file sparse when missing (size_bytes > 0 required then),
  // formats it, and adds it to the devices file. EEXIST when it is already
  // a PV ("Can't initialize physical volume "P" of volume group "V"
  // without -ff" when in a VG).
  Result<PvHeader> pvcreate(const std::string& path, uint64_t size_bytes,
                            const PvCreateOptions& options = {});
  // Wipes the label and removes the path from the devices file. EBUSY when
  // the PV belongs to a VG.
  Status pvremove(const std::string& path);

  // ---- VGs ----
  // The PVs must be orphan PVs listed in the devices file. EEXIST when the
  // name is taken.
  Result<CommitResult> vgcreate(const std::string& vg_name, const std::vector<std::string>& pv_paths,
                                uint64_t extent_sectors = kDefaultExtentSectors);
  Result<CommitResult> vgextend(const std::string& vg_name, const std::vector<std::string>& pv_paths);
  // EBUSY when LVs exist, unless force (then they go too). The PVs become
  // orphans again (text cleared, label flag cleared).
  Status vgremove(const std::string& vg_name, bool force = false);

  // ---- LVs ----
  // A linear LV of `extents` extents (lvcreate -l; use extents_for_bytes
  // for -L). kReadOnly (lvcreate -p r): the LV's status lacks WRITE.
  Result<CommitResult> lvcreate(const std::string& vg_name, const std::string& lv_name, uint64_t extents,
                                LvPermission permission = LvPermission::kReadWrite);
  // lvcreate -s: a COW LV `snap_name` of `cow_extents` extents plus the
  // internal snapshotN LV. cow_extents above the useful maximum are trimmed
  // (with a notice) as lvm2 does. EINVAL for a snapshot of a snapshot, a bad
  // chunk size, a COW smaller than 3 chunks. kReadOnly (lvcreate -s -p r):
  // the COW LV, which users see as the snapshot, lacks WRITE.
  Result<CommitResult> lvcreate_snapshot(const std::string& vg_name, const std::string& origin_lv,
                                         const std::string& snap_name, uint64_t cow_extents,
                                         uint64_t chunk_sectors = kDefaultChunkSectors,
                                         LvPermission permission = LvPermission::kReadWrite);
  // lvchange -p r|rw of a user-visible LV (a snapshot: its COW LV). EEXIST
  // with lvm2's message when the LV has that permission already.
  Result<CommitResult> lvchange_permission(const std::string& vg_name, const std::string& lv_name,
                                           LvPermission permission);
  // lvconvert --merge of snapshot `snap_name` (its COW LV): the snapshotN
  // segment names it merging_store instead of cow_store and snapshotN
  // loses VISIBLE, as lvm2 writes it; the merge itself is the server's
  // (the snapshot-merge target, at the origin's next activation). Refused
  // with lvm2's messages: not a snapshot, already merging, another
  // snapshot of the origin merging, a read-only origin.
  Result<CommitResult> lvconvert_merge(const std::string& vg_name, const std::string& snap_name);
  // Removes an LV. A snapshot (its COW LV name) goes with its snapshotN LV.
  // An origin with snapshots: EBUSY unless force, which removes the
  // snapshots too.
  Result<CommitResult> lvremove(const std::string& vg_name, const std::string& lv_name, bool force = false);
  Result<CommitResult> lvrename(const std::string& vg_name, const std::string& old_name,
                                const std::string& new_name);
  // Grows (or, for a plain LV, shrinks) to `new_extents`. Growing a
  // snapshot grows its COW store. Refuses origins with snapshots and
  // shrinking a snapshot. `before_commit`, when set, sees the metadata
  // about to be written, under the VG's lock, and its error cancels the
  // commit (an active snapshot prepares its grown store there).
  using BeforeCommitFn = std::function<Status(const VolumeGroup&)>;
  Result<CommitResult> lvresize(const std::string& vg_name, const std::string& lv_name, uint64_t new_extents,
                                const BeforeCommitFn& before_commit = {});

  // ---- metadata backups, restore and repair (vg_recovery.cc) ----
  // Every commit also keeps lvm2's backups (metadata_backup.h): before
  // writing a metadata area, the version in force goes to ROOT/archive (the
  // change is refused when that fails); after the commit, the new version
  // to ROOT/backup/VG (a failure there is a notice only).

  // vgcfgbackup: the VG's metadata to `file`, or ROOT/backup/VG when empty.
  Status vgcfgbackup(const std::string& vg_name, const std::string& file = "");
  // vgcfgrestore: writes the VG of `file` (ROOT/backup/VG when empty) to
  // every metadata area of its PVs, found by uuid, whatever their areas
  // hold now (bad, or a newer version). The restored seqno is one above the
  // highest of the file's and any on the PVs, so it is in force
  // everywhere. The current version, if readable, is archived first.
  // Errors (lvm2's words): EINVAL "'FILE' does not contain volume group
  // 'VG'."; ENOENT "Couldn't find device with uuid X."; EBUSY when a PV now
  // belongs to another VG.
  Result<CommitResult> vgcfgrestore(const std::string& vg_name, const std::string& file = "");
  // vgck: the VG must be readable; `warnings` are its PVs' bad or stale
  // metadata areas. With update_metadata (vgck --updatemetadata) each such
  // area gets the VG's current metadata (same seqno), one "WARNING:
  // repairing bad metadata (0xN) in mdaK at OFFSET on PATH." per area.
  struct VgckReport {
    std::vector<std::string> warnings;
    std::vector<std::string> repaired;
  };
  Result<VgckReport> vgck(const std::string& vg_name, bool update_metadata);

  // ---- activation ----
  // The linear map of an LV (see lv_map.h) with current device paths.
  Result<std::vector<LinearPiece>> lv_map(const std::string& vg_name, const std::string& lv_name) const;

 private:
  VolumeManager(Root root, VolumeManagerOptions options)
      : root_(std::move(root)), options_(std::move(options)) {}

  using PvPaths = std::map<std::string, std::string>;
  using EditFn = std::function<Status(VolumeGroup&, CommitResult&, const PvPaths&)>;
  // Runs `edit` on the VG's metadata under its lock and commits the result.
  Result<CommitResult> edit_vg(const std::string& vg_name, const EditFn& edit,
                               const BeforeCommitFn& before_commit = {});

  // lvm2's archive() and backup() around a commit (vg_recovery.cc).
  Status archive_before_change(const VolumeGroup& current) const;
  void backup_after_change(const VolumeGroup& committed, CommitResult* result) const;
  [[nodiscard]] std::string command_text() const;

  int64_t now() const;
  std::string host() const;

  Root root_;
  VolumeManagerOptions options_;
};

}  // namespace cowsnap::vg
