// Activation: the dm tables lvm2 would build for a VG, as live devices.
//
//  - a plain LV:      "VG-LV"       linear targets over PV extents;
//  - an origin:       "VG-LV"       snapshot-origin over "VG-LV-real"
//                     (the linear targets) while it has snapshots;
//  - a snapshot:      "VG-SNAP"     snapshot over the origin's -real device
//                     and "VG-SNAP-cow" (the COW LV's linear targets).
// Every non-snapshot LV goes through an Origin object even while it has no
// snapshots (with none, a write costs one uncontended shared lock), so a
// snapshot can be attached to a live LV without swapping its device.
//
// Thread safety: I/O on the volumes' devices may be concurrent. Changes
// (add/remove a volume) must be serialised by the caller, and must not race
// lookups: the nbdkit plugin holds its own lock around both.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/dm/mapped_device.h"
#include "cowsnap/dm/snapshot.h"
#include "cowsnap/vg/volume_manager.h"

namespace cowsnap {

struct ActiveVolume {
  std::string vg_name;
  std::string lv_name;
  // What clients read and write: a SnapshotOriginTarget or a SnapshotTarget.
  std::shared_ptr<Target> device;
  // Set for every non-snapshot LV (plain or origin).
  std::shared_ptr<Origin> origin;
  // Set for a snapshot LV (the COW LV's name).
  std::shared_ptr<SnapshotTarget> snapshot;
  std::string origin_lv;  // a snapshot's origin LV name (set for every snapshot)
  // A snapshot whose activation failed (its store could not be opened):
  // why, "Failed to read snapshot metadata: ...". Then `snapshot` is null,
  // it is not attached to its origin, and `device` fails every request
  // with EIO naming this reason. Ok for every other volume.
  Status failure;
  // The LV lacks WRITE (lvcreate -p r, lvchange -p r): writes to `device`
  // are refused by its users (the server answers EROFS). Changed online by
  // ActiveVolumeGroup::set_permission while clients are connected, so it is
  // read per request.
  std::atomic<bool> read_only{false};
  // Watched as dmeventd watches a monitored LV (lvchange --monitor y|n):
  // warnings and autoextend. Set by the server at activation from
  // lvm.conf's activation/monitoring, as lvm2 does; not kept on disk.
  std::atomic<bool> monitored{true};
  // A merging snapshot whose merge could not start at activation: why.
  std::string merge_error;
  [[nodiscard]] bool is_snapshot() const { return !origin_lv.empty(); }
  [[nodiscard]] bool failed() const { return !failure.ok(); }
};

class ActiveVolumeGroup {
 public:
  struct Options {
    bool read_only = false;
    // Every origin activated runs in this mode (cowsnap/dm/snapshot.h,
    // invariants 8-12).
    WriteBackOptions write_back;
  };
  // Opens every PV of the VG and activates every user-visible LV. Fails
  // when a PV is missing or an LV uses a segment type cowsnap cannot serve
  // (naming it). A snapshot that cannot be activated (its store fails to
  // open: bad magic, version, chunk size, exceptions) fails alone, as one
  // dm table load fails in the kernel: it is kept as a failed volume (see
  // ActiveVolume::failure), its origin serves without it (origin writes no
  // longer copy out to it, as the kernel's origin no longer knows it), the
  // other snapshots are unaffected, and its store is never written, so it
  // keeps failing on every later activation.
  static Result<std::unique_ptr<ActiveVolumeGroup>> activate(const vg::VgOnDisk& vg, Options options);
  static Result<std::unique_ptr<ActiveVolumeGroup>> activate(const vg::VgOnDisk& vg) {
    return activate(vg, Options{});
  }

  [[nodiscard]] const std::string& name() const { return vg_name_; }
  // Null when the VG has no such user-visible LV.
  [[nodiscard]] std::shared_ptr<ActiveVolume> find(const std::string& lv_name) const;
  [[nodiscard]] std::vector<std::shared_ptr<ActiveVolume>> volumes() const;

  // `dmsetup table` / `dmsetup status` for every dm device of the VG, in
  // name order: "NAME: start length type params" lines.
  [[nodiscard]] std::string dm_table() const { return dm_text(false); }
  [[nodiscard]] std::string dm_status() const { return dm_text(true); }

  // Online changes, with `vm` committing the metadata (see volume_manager.h).
  // lvcreate -s on a live origin: origin I/O is held at the barrier while
  // the metadata commits, the new store is initialised and the snapshot is
  // attached; every origin write acknowledged before is in the snapshot,
  // none after. On a failure after the commit, the metadata change is
  // rolled back.
  Result<vg::CommitResult> create_snapshot(vg::VolumeManager& vm, const std::string& origin_lv,
                                           const std::string& snap_name, uint64_t cow_extents,
                                           uint64_t chunk_sectors,
                                           vg::LvPermission permission = vg::LvPermission::kReadWrite);
  Result<vg::CommitResult> create_volume(vg::VolumeManager& vm, const std::string& lv_name, uint64_t extents,
                                         vg::LvPermission permission = vg::LvPermission::kReadWrite);
  // lvchange -p: commits the LV's new permission, then the live volume (if
  // active) takes it; requests already past the check finish as before.
  Result<vg::CommitResult> set_permission(vg::VolumeManager& vm, const std::string& lv_name,
                                          vg::LvPermission permission);
  // Removes an LV (a snapshot detaches first; an origin's snapshots go too
  // when forced).
  Result<vg::CommitResult> remove_volume(vg::VolumeManager& vm, const std::string& lv_name, bool force);
  // lvextend of a live snapshot, and autoextend: grows its COW LV to
  // `new_extents` and its store with it, without the origin's barrier
  // (SnapshotTarget::grow_store), so that a request or a write-back
  // committer waiting for the room can call it; connected clients carry
  // on. The rescue of a filling snapshot.
  Result<vg::CommitResult> grow_snapshot(vg::VolumeManager& vm, const std::string& lv_name,
                                         uint64_t new_extents);
  // lvrename of an LV nobody holds a device of (the caller checks: a
  // client would keep the old objects). A snapshot is re-attached under its
  // new name behind its origin's barrier, so the origin stays live and no
  // origin write escapes the copy-out; an origin or plain LV is re-activated
  // (with its snapshots) under the new name; an inactive LV stays inactive.
  Result<vg::CommitResult> rename_volume(vg::VolumeManager& vm, const std::string& old_name,
                                         const std::string& new_name);
  // lvchange -an: stops serving the LV (an origin: with its snapshots, as
  // lvm2 does); refresh() leaves it inactive until activate_volume().
  // Flushes what is deactivated. ENOENT for an LV that is not active.
  Status deactivate_volume(const std::string& lv_name);
  // lvchange -ay: activates the LV (a snapshot needs its origin active;
  // activating an origin activates its snapshots too).
  Status activate_volume(vg::VolumeManager& vm, const std::string& lv_name);
  // lvconvert --merge of snapshot `snap_name`: commits it in the metadata
  // (vg::VolumeManager::lvconvert_merge); with `start_now` (the caller
  // found nobody holding the origin or the snapshot), re-activates the
  // origin with its snapshots, which starts the merge: the origin serves
  // the snapshot-merge target, in the synchronous mode. Otherwise the merge
  // starts at the origin's next activation, as lvm2 defers it.
  Result<vg::CommitResult> merge_snapshot(vg::VolumeManager& vm, const std::string& snap_name,
                                          bool start_now);
  // The volume and, for an origin, its active snapshots.
  [[nodiscard]] std::vector<std::shared_ptr<ActiveVolume>> with_snapshots(
      const std::shared_ptr<ActiveVolume>& volume) const;
  // The origins whose merge runs (not failed), by LV name.
  [[nodiscard]] std::vector<std::string> merging_origins() const;
  // The merge itself is I/O on the origin: its owner's thread calls
  // Origin::merge_next one step at a time. Once a step said done, this
  // detaches the snapshot and removes its LVs from the metadata (a crash
  // in between leaves an empty merging snapshot, which the next activation
  // finishes at once). Returns the commit and, in `snapshot`, the merged
  // snapshot's name.
  Result<vg::CommitResult> finish_merge(vg::VolumeManager& vm, const std::string& origin_lv,
                                        std::string& snapshot);

  // Re-reads the VG and activates LVs that appeared (made by other
  // commands), keeping the live ones.
  Status refresh(vg::VolumeManager& vm);

  ActiveVolumeGroup(std::string vg_name, Options options) : vg_name_(std::move(vg_name)), options_(options) {}

  // The device-mapper name of an LV of this VG, as lvm2 names it ("VG-LV",
  // dashes in either doubled).
  [[nodiscard]] std::string dm_name(const std::string& lv_name) const;

 private:
  Result<std::shared_ptr<BlockDevice>> pv_device(const std::string& path);
  // The device of `lv_name`'s linear segments, named `name`; linear_device
  // also records it for table() and status().
  Result<std::shared_ptr<MappedDevice>> make_linear_device(const vg::VolumeGroup& vg,
                                                           const std::string& lv_name,
                                                           const std::string& name);
  Result<std::shared_ptr<MappedDevice>> linear_device(const vg::VolumeGroup& vg, const std::string& lv_name,
                                                      const std::string& dm_name);
  [[nodiscard]] vg::PvPathLookup path_lookup() const;
  Status activate_plain(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv);
  Status activate_snapshot(const vg::VolumeGroup& vg, const vg::SnapshotRef& ref, bool create_store,
                           std::unique_lock<std::shared_mutex>* held);
  // activate_snapshot for the snapshot LV `snap_name` of freshly committed
  // metadata; EIO when the metadata lacks it.
  // activate_snapshot, or on its failure a failed volume for the snapshot.
  void activate_snapshot_or_fail(const vg::VolumeGroup& vg, const vg::SnapshotRef& ref);
  Status activate_committed_snapshot(const vg::VolumeGroup& vg, const std::string& snap_name,
                                     bool create_store, std::unique_lock<std::shared_mutex>* held);
  [[nodiscard]] std::string dm_text(bool status) const;
  // Flushes what is about to stop serving (before drop()); `why` prefixes
  // the error.
  static Status flush_volumes(const std::vector<std::shared_ptr<ActiveVolume>>& volumes,
                              const std::string& why);
  // Stops serving a volume: detaches a snapshot (under `held`, its origin's
  // barrier, when given), forgets its devices.
  void drop(const ActiveVolume& volume, std::unique_lock<std::shared_mutex>* held = nullptr);

  std::string vg_name_;
  Options options_;
  std::set<std::string> inactive_;                                       // LVs deactivated by lvchange -an
  std::map<std::string, std::shared_ptr<BlockDevice>> pv_devices_;       // by path
  std::map<std::string, std::string> pv_paths_;                          // PV name -> path
  std::map<std::string, std::shared_ptr<ActiveVolume>> volumes_;         // by LV name
  std::map<std::string, std::shared_ptr<MappedDevice>> linear_devices_;  // -real and -cow, by LV name
};

}  // namespace cowsnap
