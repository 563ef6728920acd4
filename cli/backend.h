// The one interface every cowsnap verb goes through.
//
// Two implementations:
//  - OfflineBackend (offline_backend.cc): edits the PVs directly through
//    vg::VolumeManager under its file locks. Nothing is active offline; a
//    snapshot's validity and usage are read from its COW store on disk.
//  - OnlineBackend (online_backend.cc): forwards each call to a running
//    server over ROOT/control.sock, so that changes to live volumes
//    (lvcreate -s on a mounted origin) happen behind the server's I/O
//    barrier and live state (active, open) is real.
// Which one runs is decided in one place: select_backend() in
// backend_select.cc.
//
// Errors are engine Status values (errno + lvm2-like message); the verbs
// turn them into messages and exit codes. A Backend is used from one thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/report/attrs.h"
#include "cowsnap/store/exception_store.h"
#include "cowsnap/vg/volume_manager.h"

namespace cowsnap::cli {

// What the metadata alone cannot say about an LV (active, open, a
// snapshot's validity and usage): see report/attrs.h.
using LiveLvState = report::LvLiveState;

// LV name -> live state, for the user-visible LVs of one VG.
using VgLiveState = std::map<std::string, LiveLvState>;

class Backend {
 public:
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual ~Backend() = default;

  // "offline" or "online", for messages.
  [[nodiscard]] virtual std::string kind() const = 0;
  [[nodiscard]] virtual std::string root_dir() const = 0;

  // ---- reading ----
  virtual Result<vg::ScanResult> scan() = 0;
  virtual Result<vg::VgOnDisk> read_vg(const std::string& vg_name) = 0;
  virtual Result<VgLiveState> live_state(const vg::VgOnDisk& vg) = 0;
  // `dmsetup table` (status = false) / `dmsetup status` text of one VG.
  virtual Result<std::string> dm_text(const vg::VgOnDisk& vg, bool status) = 0;

  // ---- devices file ----
  virtual Result<std::vector<std::string>> devices() = 0;
  virtual Status add_device(const std::string& path) = 0;
  virtual Status remove_device(const std::string& path) = 0;

  // ---- editing (see vg/volume_manager.h for each contract) ----
  virtual Result<vg::PvHeader> pvcreate(const std::string& path, uint64_t size_bytes,
                                        const vg::PvCreateOptions& options) = 0;
  virtual Status pvremove(const std::string& path) = 0;
  virtual Result<vg::CommitResult> vgcreate(const std::string& vg_name,
                                            const std::vector<std::string>& pv_paths,
                                            uint64_t extent_sectors) = 0;
  virtual Result<vg::CommitResult> vgextend(const std::string& vg_name,
                                            const std::vector<std::string>& pv_paths) = 0;
  virtual Status vgremove(const std::string& vg_name, bool force) = 0;
  virtual Result<vg::CommitResult> lvcreate(const std::string& vg_name, const std::string& lv_name,
                                            uint64_t extents, vg::LvPermission permission) = 0;
  virtual Result<vg::CommitResult> lvcreate_snapshot(const std::string& vg_name, const std::string& origin_lv,
                                                     const std::string& snap_name, uint64_t cow_extents,
                                                     uint64_t chunk_sectors, vg::LvPermission permission) = 0;
  virtual Result<vg::CommitResult> lvremove(const std::string& vg_name, const std::string& lv_name,
                                            bool force) = 0;
  virtual Result<vg::CommitResult> lvrename(const std::string& vg_name, const std::string& old_name,
                                            const std::string& new_name) = 0;
  virtual Result<vg::CommitResult> lvresize(const std::string& vg_name, const std::string& lv_name,
                                            uint64_t new_extents) = 0;
  // lvchange -a y|n. The offline backend refuses (ENOTSUP): activation
  // means "served by a running server".
  virtual Status set_active(const std::string& vg_name, const std::string& lv_name, bool active) = 0;
  // lvconvert --merge of a snapshot: the merge is committed in the
  // metadata (notices: lvm2's lines, "Delaying merge since ..."); `started`
  // when a running server began it now, else it starts at the origin's
  // next activation.
  struct MergeStart {
    vg::CommitResult commit;
    bool started = false;
    std::string origin_lv;
  };
  virtual Result<MergeStart> lvconvert_merge(const std::string& vg_name, const std::string& snap_name) = 0;
  // lvchange --monitor y|n: dmeventd's watch (warnings, autoextend) of a
  // served snapshot, or of an origin's snapshots. Offline: ENOTSUP.
  virtual Status set_monitor(const std::string& vg_name, const std::string& lv_name, bool monitor) = 0;
  // lvchange -p r|rw. Online, connected clients stay; their writes are
  // refused from then on (EROFS) or accepted again.
  virtual Result<vg::CommitResult> set_permission(const std::string& vg_name, const std::string& lv_name,
                                                  vg::LvPermission permission) = 0;
};

// The offline backend over ROOT. `command_line` is recorded in metadata.
Result<std::unique_ptr<Backend>> make_offline_backend(const std::string& root_dir,
                                                      const std::string& command_line);

// The online backend when a server answers on ROOT/control.sock, else
// nullptr (no socket, or nobody listening on it).
std::unique_ptr<Backend> connect_online_backend(const std::string& root_dir, const std::string& command_line);

// Online when connect_online_backend() succeeds, else offline.
Result<std::unique_ptr<Backend>> select_backend(const std::string& root_dir, const std::string& command_line);

}  // namespace cowsnap::cli
