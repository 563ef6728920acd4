// The backend used while a server runs: changes to active VGs go through
// the server (control/client.h), so that lvcreate -s on a mounted origin is
// taken behind the origin's I/O barrier and the new export appears at once;
// live state (active, open, validity, usage) is the server's.
//
// Reading metadata (scan, read_vg) stays direct: headers are committed
// atomically, so reading PVs under a running server is safe. Commands that
// touch no active VG (pvcreate, devices file) also go direct, then the
// server is asked to refresh so it serves what they made.
#include <fmt/format.h>

#include <cerrno>

#include "cowsnap/control/client.h"
#include "online_backend.h"

namespace cowsnap::cli {
namespace {

StoreUsage to_store_usage(const control::Usage& u) {
  return StoreUsage{u.total_sectors, u.allocated_sectors, u.metadata_sectors};
}

class OnlineBackend final : public Backend {
 public:
  OnlineBackend(control::Client client, std::unique_ptr<Backend> direct, std::string root_dir)
      : client_(std::move(client)), direct_(std::move(direct)), root_dir_(std::move(root_dir)) {}

  [[nodiscard]] std::string kind() const override { return "online"; }
  [[nodiscard]] std::string root_dir() const override { return root_dir_; }

  Result<vg::ScanResult> scan() override { return direct_->scan(); }
  Result<vg::VgOnDisk> read_vg(const std::string& vg_name) override { return direct_->read_vg(vg_name); }

  Result<VgLiveState> live_state(const vg::VgOnDisk& disk) override {
    COWSNAP_ASSIGN_OR_RETURN(std::vector<control::LvState> lvs, client_.lvs());
    VgLiveState state;
    for (const vg::LogicalVolume& lv : disk.vg.lvs) {
      if (vg::lv_user_visible(disk.vg, lv)) state.emplace(lv.name, LiveLvState{});
    }
    bool served = false;
    for (const control::LvState& s : lvs) {
      if (s.vg != disk.vg.name) continue;
      served = true;
      LiveLvState& live = state[s.lv];
      live.active = s.active;
      live.open = s.open_connections > 0;
      live.snapshot_valid = s.valid;
      live.failure = s.failure;
      live.merging = s.merging;
      live.merge_failed = s.merge_failed;
      if (s.is_snapshot && s.failure.empty()) live.monitored = s.monitored;
      if (s.usage) live.usage = to_store_usage(*s.usage);
    }
    // A merging snapshot has no device of its own: lvm2 reports it with
    // its origin's state and the snapshot-merge target's usage.
    for (const vg::SnapshotRef& ref : vg::snapshots(disk.vg)) {
      auto origin = state.find(ref.origin_lv);
      if (!ref.merging || origin == state.end() || !origin->second.merging) continue;
      state[ref.cow_lv] = origin->second;
    }
    // A VG the server does not serve (it failed to activate, or appeared
    // after a direct edit): report it as the offline backend would.
    if (!served) return direct_->live_state(disk);
    return state;
  }

  Result<std::string> dm_text(const vg::VgOnDisk& disk, bool status) override {
    return client_.dmsetup(status, disk.vg.name);
  }

  Result<std::vector<std::string>> devices() override { return direct_->devices(); }
  Status add_device(const std::string& path) override { return direct_->add_device(path); }
  Status remove_device(const std::string& path) override { return direct_->remove_device(path); }

  Result<vg::PvHeader> pvcreate(const std::string& path, uint64_t size_bytes,
                                const vg::PvCreateOptions& options) override {
    return direct_->pvcreate(path, size_bytes, options);
  }
  Status pvremove(const std::string& path) override { return direct_->pvremove(path); }

  Result<vg::CommitResult> vgcreate(const std::string& vg_name, const std::vector<std::string>& pv_paths,
                                    uint64_t extent_sectors) override {
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, direct_->vgcreate(vg_name, pv_paths, extent_sectors));
    return refreshed(std::move(commit));
  }
  Result<vg::CommitResult> vgextend(const std::string& vg_name,
                                    const std::vector<std::string>& pv_paths) override {
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, direct_->vgextend(vg_name, pv_paths));
    return refreshed(std::move(commit));
  }
  Status vgremove(const std::string& vg_name, bool force) override {
    COWSNAP_ASSIGN_OR_RETURN(std::vector<control::LvState> lvs, client_.lvs());
    for (const control::LvState& s : lvs) {
      if (s.vg == vg_name) {
        return Status::Error(EBUSY,
                             fmt::format("Volume group \"{}\" is served by the running cowsnap server on {}; "
                                         "stop it before removing the VG",
                                         vg_name, root_dir_));
      }
    }
    return direct_->vgremove(vg_name, force);
  }

  Result<vg::CommitResult> lvcreate(const std::string& vg_name, const std::string& lv_name, uint64_t extents,
                                    vg::LvPermission permission) override {
    return committed(vg_name, client_.lvcreate_extents(vg_name, lv_name, extents,
                                                       permission == vg::LvPermission::kReadOnly));
  }
  Result<vg::CommitResult> lvcreate_snapshot(const std::string& vg_name, const std::string& origin_lv,
                                             const std::string& snap_name, uint64_t cow_extents,
                                             uint64_t chunk_sectors, vg::LvPermission permission) override {
    return committed(
        vg_name, client_.lvcreate_snapshot_extents(vg_name, origin_lv, snap_name, cow_extents, chunk_sectors,
                                                   permission == vg::LvPermission::kReadOnly));
  }
  Result<vg::CommitResult> set_permission(const std::string& vg_name, const std::string& lv_name,
                                          vg::LvPermission permission) override {
    return committed(
        vg_name, client_.lvchange_permission(vg_name, lv_name, permission == vg::LvPermission::kReadWrite));
  }
  Result<vg::CommitResult> lvremove(const std::string& vg_name, const std::string& lv_name,
                                    bool force) override {
    return committed(vg_name, client_.lvremove(vg_name, lv_name, force));
  }
  Result<vg::CommitResult> lvrename(const std::string& vg_name, const std::string& old_name,
                                    const std::string& new_name) override {
    return committed(vg_name, client_.lvrename(vg_name, old_name, new_name));
  }
  Result<vg::CommitResult> lvresize(const std::string& vg_name, const std::string& lv_name,
                                    uint64_t new_extents) override {
    return committed(vg_name, client_.lvextend_extents(vg_name, lv_name, new_extents));
  }
  Result<MergeStart> lvconvert_merge(const std::string& vg_name, const std::string& snap_name) override {
    Result<control::Response> response = client_.lvconvert_merge(vg_name, snap_name);
    const bool started = response.ok() && response->body.value("started", false);
    const std::string origin = response.ok() ? response->body.value("origin", std::string()) : std::string();
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, committed(vg_name, std::move(response)));
    return MergeStart{.commit = std::move(commit), .started = started, .origin_lv = origin};
  }
  Status set_monitor(const std::string& vg_name, const std::string& lv_name, bool monitor) override {
    COWSNAP_ASSIGN_OR_RETURN(control::Response r, client_.lvchange_monitor(vg_name, lv_name, monitor));
    return r.status();
  }
  Status set_active(const std::string& vg_name, const std::string& lv_name, bool active) override {
    COWSNAP_ASSIGN_OR_RETURN(control::Response r, client_.lvchange(vg_name, lv_name, active));
    return r.status();
  }

 private:
  // The server's answer as the CommitResult a verb prints: its notices and
  // the metadata now in force (read back from the PVs).
  Result<vg::CommitResult> committed(const std::string& vg_name, Result<control::Response> response) {
    if (!response.ok()) return response.status();
    COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, direct_->read_vg(vg_name));
    vg::CommitResult commit{std::move(disk.vg), std::move(response->notices)};
    return commit;
  }

  Result<vg::CommitResult> refreshed(vg::CommitResult commit) {
    auto r = client_.refresh();
    if (!r.ok()) {
      commit.notices.push_back(
          fmt::format("the running server did not pick the change up: {}", r.status().message()));
    } else {
      for (std::string& n : r->notices) commit.notices.push_back(std::move(n));
    }
    return commit;
  }

  control::Client client_;
  std::unique_ptr<Backend> direct_;
  std::string root_dir_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_online_backend(const std::string& root_dir,
                                                     const std::string& command_line) {
  COWSNAP_ASSIGN_OR_RETURN(control::Client client, control::Client::connect_root(root_dir));
  COWSNAP_ASSIGN_OR_RETURN(std::unique_ptr<Backend> direct, make_offline_backend(root_dir, command_line));
  return std::unique_ptr<Backend>(
      std::make_unique<OnlineBackend>(std::move(client), std::move(direct), root_dir));
}

std::unique_ptr<Backend> connect_online_backend(const std::string& root_dir,
                                                const std::string& command_line) {
  auto backend = make_online_backend(root_dir, command_line);
  return backend.ok() ? std::move(backend).value() : nullptr;
}

}  // namespace cowsnap::cli
