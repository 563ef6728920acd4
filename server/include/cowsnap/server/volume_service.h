// VolumeService: what a running cowsnap server owns — the VolumeManager
// over ROOT, every VG activated into live devices, and the export map the
// nbdkit callbacks and the control socket share.
//
// This file knows nothing of nbdkit: the callbacks (nbdkit-plugin/cowsnap.cc)
// and the control socket (control_server.h) are thin shells over it.
//
// Locking:
//   control_mu_  serialises control operations (one VolumeManager command
//                at a time, as volume_manager.h requires). Taken first.
//   exports_mu_  guards exports_ and the membership of every
//                ActiveVolumeGroup (its volume map changes on create/remove,
//                so lookups must not race it; see active_vg.h). Shared for
//                open()/list/state, exclusive while a control operation
//                changes a VG. No I/O path takes it, so an online snapshot
//                waiting at the origin's barrier for in-flight I/O to drain
//                never waits on a connection that waits on this lock.
//   Export::alive_mu  shared for each I/O request of a connection,
//                exclusive while the export is retired (forced lvremove), so
//                no request reaches extents that were given back to the VG.
// Order: control_mu_ -> exports_mu_ -> Export::alive_mu -> engine locks.
//
// PV ownership (vg/lock.h): the server holds the lock on every PV of every
// VG it activates, for its whole life, so no other root's server serves the
// VG and no other root's command edits it. A VG whose PV another root holds
// is not served; requests for it fail with that reason.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cowsnap/common/status.h"
#include "cowsnap/control/protocol.h"
#include "cowsnap/server/snapshot_monitor.h"
#include "cowsnap/vg/lock.h"
#include "cowsnap/vg/lvm_config.h"
#include "cowsnap/vg/volume_manager.h"
#include "cowsnap/volume/active_vg.h"

namespace cowsnap::server {

// One NBD export: an active LV, named "VG/LV".
class Export {
 public:
  Export(std::string vg, std::string lv, std::shared_ptr<ActiveVolume> volume)
      : vg_(std::move(vg)), lv_(std::move(lv)), volume_(std::move(volume)) {}

  [[nodiscard]] const std::string& vg() const { return vg_; }
  [[nodiscard]] const std::string& lv() const { return lv_; }
  [[nodiscard]] std::string name() const { return vg_ + "/" + lv_; }
  [[nodiscard]] const std::shared_ptr<ActiveVolume>& volume() const { return volume_; }
  [[nodiscard]] Target& device() const { return *volume_->device; }
  [[nodiscard]] int64_t connections() const { return connections_.load(std::memory_order_acquire); }

  // Whether the LV is read-only now (lvchange -p r may change it while a
  // client is connected).
  [[nodiscard]] bool read_only() const noexcept { return volume_->read_only.load(std::memory_order_acquire); }

  // Runs one I/O request on the device unless the export was retired
  // (ENODEV then). Concurrent calls run in parallel.
  template <typename Fn>
  Status io(Fn&& fn) {
    std::shared_lock lock(alive_mu_);
    if (retired_) {
      return Status::Error(ENODEV, "logical volume " + name() + " was removed while connected");
    }
    return fn(*volume_->device);
  }
  // io() for a request that changes the LV (write, zero, trim): EROFS on a
  // read-only LV, as the kernel refuses a write to a read-only device.
  template <typename Fn>
  Status write_io(Fn&& fn) {
    if (read_only()) return Status::Error(EROFS, "logical volume " + name() + " is read-only");
    return io(std::forward<Fn>(fn));
  }

 private:
  friend class VolumeService;
  std::string vg_;
  std::string lv_;
  std::shared_ptr<ActiveVolume> volume_;
  std::atomic<int64_t> connections_{0};
  std::shared_mutex alive_mu_;
  bool retired_ = false;  // guarded by alive_mu_
};

struct ExportListing {
  std::string name;
  std::string description;
};

class VolumeService {
 public:
  using Logger = std::function<void(const std::string&)>;
  struct Options {
    bool read_only = false;
    Logger log_error;  // problems worth a line on stderr
    Logger log_debug;  // verbose chatter (nbdkit -v)
    // What the VG metadata and its archives record as the command behind
    // an online change: the host program names itself here.
    std::string command_line = "cowsnap server (online change)";
    // Origins' write-back mode (off: dm-snapshot's synchronous copy-out).
    // Write-back acknowledges copy-out writes before they are durable; a
    // crash may lose writes since the last FLUSH, never a snapshot's view.
    WriteBackOptions write_back;
    // What activating a VG does when another client owns one of its RBD
    // PVs (cowsnap/vg/lock.h): refuse, or take the PV over.
    vg::PvTakeOver take_over = vg::PvTakeOver::kNo;
    // How often the snapshot monitor looks at every active snapshot and
    // logs dmeventd's warnings (80 % full and each 5 % after, invalid);
    // dmeventd looks every 10 s. Zero: no monitor thread (monitor_snapshots()
    // still works).
    std::chrono::milliseconds monitor_interval{1000};
    // The most a merge step copies back at once (lvconvert --merge): origin
    // I/O to a run waits while it is copied.
    uint64_t merge_step_bytes = uint64_t{1} << 20;
    // A test hook: after this many merge steps (0: no limit) the merge
    // thread takes no more, as if the server had stopped half way; for
    // tests that hand a half-done merge to the kernel.
    uint64_t test_merge_step_limit = 0;
  };

  // Opens ROOT, scans it and activates every VG. A VG that cannot be
  // activated is logged and skipped (the others are still served); a root
  // that cannot be opened or scanned fails.
  static Result<std::unique_ptr<VolumeService>> start(const std::string& root_dir, Options options);
  // What start() checks before it activates anything: ROOT opens and
  // scans, and ROOT/lvm.conf parses. For a host that must report a bad
  // root before it can start threads (nbdkit's get_ready, before it forks:
  // threads do not survive the fork, so start() waits for after_fork).
  static Status check_root(const std::string& root_dir);
  VolumeService(const VolumeService&) = delete;
  VolumeService& operator=(const VolumeService&) = delete;
  // Stops the monitor and merge threads.
  ~VolumeService();

  // One step of every running merge (lvconvert --merge); a merge whose
  // table is empty is finished: its snapshot LV removed, lvm2's lines
  // logged. The merge thread calls it until it says no merge runs.
  // REQUIRES: no lock of this service held.
  bool merge_snapshots();

  // One look of the snapshot monitor at every active snapshot, logging
  // what dmeventd would (see SnapshotMonitor). The monitor thread calls it
  // every monitor_interval. REQUIRES: no lock of this service held.
  void monitor_snapshots();

  [[nodiscard]] const std::string& root_dir() const { return root_dir_; }

  // ---- for nbdkit callbacks ----
  // The export named `name` ("VG/LV"; "" means the default export), its
  // connection count raised. ENOENT naming the export when unknown.
  Result<std::shared_ptr<Export>> connect(const std::string& name);
  void disconnect(const std::shared_ptr<Export>& exp);
  [[nodiscard]] std::vector<ExportListing> list_exports() const;
  // The first export by name, "" when there is none.
  [[nodiscard]] std::string default_export() const;
  [[nodiscard]] std::string describe(const Export& exp) const;
  // Flushes every active device (shutdown).
  Status flush_all();

  // ---- for the control socket ----
  // Runs one request (see control/protocol.h). Never throws.
  control::Response handle(const nlohmann::json& request);

 private:
  VolumeService(std::string root_dir, vg::VolumeManager vm, Options options)
      : root_dir_(std::move(root_dir)), vm_(std::move(vm)), options_(std::move(options)) {}

  // REQUIRES: control_mu_ held; exports_mu_ held exclusively.
  Status activate_all(std::vector<std::string>& notices);
  // Takes the locks of the VG's PVs this server does not hold yet; on a
  // failure, none of them. REQUIRES: control_mu_ held.
  Status own_pvs(const vg::VgOnDisk& disk);
  // Rebuilds exports_ from the active VGs, keeping the Export objects (and
  // their connection counts) of LVs that are still there and retiring the
  // rest. REQUIRES: exports_mu_ held exclusively.
  void rebuild_exports();
  // REQUIRES: exports_mu_ held (either way).
  [[nodiscard]] control::LvState state_of(const Export& exp) const;
  [[nodiscard]] std::string describe_locked(const Export& exp) const;
  Result<ActiveVolumeGroup*> active_vg(const std::string& vg_name);
  // The exports of `lv_name` and, when it is not a snapshot, of its
  // snapshots that have NBD clients: "VG/LV (N connections)" each.
  // REQUIRES: exports_mu_ held.
  [[nodiscard]] std::vector<std::string> busy_exports(const std::string& vg_name, const std::string& lv_name,
                                                      const ActiveVolume& volume) const;
  Result<uint64_t> extents_arg(const nlohmann::json& request, const std::string& vg_name,
                               std::vector<std::string>& notices);
  // What the sized changes (lvcreate, lvcreate -s, lvextend) share: the
  // request's size in extents, with its notices, and the active VG, looked up
  // with exports_mu_ taken exclusively (held by `exports`).
  // REQUIRES: control_mu_ held; exports_mu_ not held.
  struct SizedChange {
    std::vector<std::string> notices;
    uint64_t extents = 0;
    std::unique_lock<std::shared_mutex> exports;
    ActiveVolumeGroup* vg = nullptr;
  };
  Result<SizedChange> sized_change(const nlohmann::json& request, const std::string& vg_name);

  control::Response op_lvs();
  control::Response op_lvcreate(const nlohmann::json& request);
  control::Response op_lvcreate_snapshot(const nlohmann::json& request);
  control::Response op_changed(const nlohmann::json& request);
  control::Response op_lvremove(const nlohmann::json& request);
  control::Response op_lvextend(const nlohmann::json& request);
  control::Response op_refresh();
  control::Response op_lvchange(const nlohmann::json& request);
  control::Response op_lvrename(const nlohmann::json& request);
  control::Response op_lvconvert(const nlohmann::json& request);
  // Wakes the merge thread (a merge may have started).
  void kick_merges();
  control::Response op_dmsetup(const nlohmann::json& request, bool status);

  void log_error(const std::string& msg) const {
    if (options_.log_error) options_.log_error(msg);
  }
  void log_debug(const std::string& msg) const {
    if (options_.log_debug) options_.log_debug(msg);
  }

  // Autoextend (ROOT/lvm.conf): grows snapshot `lv_name` of `vg_name` by
  // lvm.conf's percent, as lvm2's `lvextend --use-policies`, logging lvm2's
  // messages. Called by origin writes (SnapshotTarget::set_grower) with no
  // lock of the engine held, but inside an export's io(): so it waits at
  // most kGrowLockWait for control_mu_ (a control operation retiring that
  // export waits for the write) and fails then, as it does when the VG has
  // no free extents; the snapshot then overflows as without autoextend.
  Status autoextend(const std::string& vg_name, const std::string& lv_name);
  static constexpr std::chrono::seconds kGrowLockWait{2};
  // Sets a grower on every active snapshot when lvm.conf turns autoextend
  // on. REQUIRES: exports_mu_ held.
  void install_growers();

  const std::string root_dir_;
  // Timed so that autoextend can give up (see autoextend()).
  std::timed_mutex control_mu_;
  vg::VolumeManager vm_;  // guarded by control_mu_
  const Options options_;

  mutable std::shared_mutex exports_mu_;
  std::map<std::string, std::unique_ptr<ActiveVolumeGroup>> vgs_;  // guarded by exports_mu_
  std::map<std::string, std::shared_ptr<Export>> exports_;         // guarded by exports_mu_, by "VG/LV"
  std::map<std::string, Status> unserved_;      // guarded by exports_mu_: VG name -> why it is not served
  vg::LvmConfig lvm_config_;                    // read at start
  std::map<std::string, vg::PvLock> pv_locks_;  // guarded by control_mu_, by PV path

  // Lock order: monitor_mu_ is taken with no other lock of this service
  // held, and exports_mu_ is never held while a line is logged by it.
  std::mutex monitor_mu_;
  SnapshotMonitor monitor_;  // guarded by monitor_mu_
  std::mutex monitor_stop_mu_;
  std::condition_variable monitor_wake_;
  bool monitor_stopping_ = false;  // guarded by monitor_stop_mu_
  std::thread monitor_thread_;     // started last in start(), joined first in the destructor

  // The merge thread sleeps on merge_wake_ while no merge runs.
  std::mutex merge_mu_;
  std::condition_variable merge_wake_;
  bool merge_stopping_ = false;  // guarded by merge_mu_
  bool merge_kicked_ = false;    // guarded by merge_mu_
  uint64_t merge_steps_ = 0;     // taken so far; used by the merge thread only
  std::thread merge_thread_;
};

}  // namespace cowsnap::server
