// The backend used when no server runs: VolumeManager edits the PVs
// directly; nothing is active. A snapshot's validity and usage come from its
// COW store, opened read-only from the COW LV's extents, so reports show
// Data% and invalid snapshots offline as well.
#include <fmt/format.h>

#include <cerrno>

#include "backend.h"
#include "cowsnap/dm/mapped_device.h"
#include "cowsnap/io/devices.h"
#include "cowsnap/volume/active_vg.h"

namespace cowsnap::cli {
namespace {

class OfflineBackend final : public Backend {
 public:
  explicit OfflineBackend(vg::VolumeManager vm) : vm_(std::move(vm)) {}

  [[nodiscard]] std::string kind() const override { return "offline"; }
  [[nodiscard]] std::string root_dir() const override { return vm_.root().dir(); }

  Result<vg::ScanResult> scan() override { return vm_.scan(); }
  Result<vg::VgOnDisk> read_vg(const std::string& vg_name) override { return vm_.read_vg(vg_name); }

  Result<VgLiveState> live_state(const vg::VgOnDisk& disk) override {
    VgLiveState state;
    for (const vg::LogicalVolume& lv : disk.vg.lvs) {
      if (!vg::lv_user_visible(disk.vg, lv)) continue;
      state.emplace(lv.name, LiveLvState{});
    }
    for (const vg::SnapshotRef& ref : vg::snapshots(disk.vg)) {
      LiveLvState& live = state[ref.cow_lv];
      Result<std::unique_ptr<ExceptionStore>> store = open_store(disk, ref);
      if (!store.ok()) {
        // Data% stays blank; the report warns with the reason.
        live.failure = store.status().with_context("Failed to read snapshot metadata").message();
        continue;
      }
      live.snapshot_valid = (*store)->valid();
      live.usage = (*store)->usage();
    }
    return state;
  }

  Result<std::string> dm_text(const vg::VgOnDisk& disk, bool status) override {
    COWSNAP_ASSIGN_OR_RETURN(
        std::unique_ptr<ActiveVolumeGroup> active,
        ActiveVolumeGroup::activate(disk, ActiveVolumeGroup::Options{.read_only = true, .write_back = {}}));
    return status ? active->dm_status() : active->dm_table();
  }

  Result<std::vector<std::string>> devices() override { return vm_.devices(); }
  Status add_device(const std::string& path) override { return vm_.add_device(path); }
  Status remove_device(const std::string& path) override { return vm_.remove_device(path); }

  Result<vg::PvHeader> pvcreate(const std::string& path, uint64_t size_bytes,
                                const vg::PvCreateOptions& options) override {
    return vm_.pvcreate(path, size_bytes, options);
  }
  Status pvremove(const std::string& path) override { return vm_.pvremove(path); }
  Result<vg::CommitResult> vgcreate(const std::string& vg_name, const std::vector<std::string>& pv_paths,
                                    uint64_t extent_sectors) override {
    return vm_.vgcreate(vg_name, pv_paths, extent_sectors);
  }
  Result<vg::CommitResult> vgextend(const std::string& vg_name,
                                    const std::vector<std::string>& pv_paths) override {
    return vm_.vgextend(vg_name, pv_paths);
  }
  Status vgremove(const std::string& vg_name, bool force) override { return vm_.vgremove(vg_name, force); }
  Result<vg::CommitResult> lvcreate(const std::string& vg_name, const std::string& lv_name, uint64_t extents,
                                    vg::LvPermission permission) override {
    return vm_.lvcreate(vg_name, lv_name, extents, permission);
  }
  Result<vg::CommitResult> lvcreate_snapshot(const std::string& vg_name, const std::string& origin_lv,
                                             const std::string& snap_name, uint64_t cow_extents,
                                             uint64_t chunk_sectors, vg::LvPermission permission) override {
    COWSNAP_ASSIGN_OR_RETURN(
        vg::CommitResult result,
        vm_.lvcreate_snapshot(vg_name, origin_lv, snap_name, cow_extents, chunk_sectors, permission));
    // The kernel writes a new store's header at first activation; offline
    // nothing activates, and cowsnap's store layer refuses a zeroed header,
    // so the store is created here. On failure the snapshot goes again.
    Status init = init_store(vg_name, snap_name, chunk_sectors);
    if (!init.ok()) {
      (void)vm_.lvremove(vg_name, snap_name, false);
      return init.with_context(fmt::format("cannot initialise the COW store of {}/{}", vg_name, snap_name));
    }
    return result;
  }
  Result<vg::CommitResult> lvremove(const std::string& vg_name, const std::string& lv_name,
                                    bool force) override {
    return vm_.lvremove(vg_name, lv_name, force);
  }
  Result<vg::CommitResult> lvrename(const std::string& vg_name, const std::string& old_name,
                                    const std::string& new_name) override {
    return vm_.lvrename(vg_name, old_name, new_name);
  }
  Result<vg::CommitResult> lvresize(const std::string& vg_name, const std::string& lv_name,
                                    uint64_t new_extents) override {
    return vm_.lvresize(vg_name, lv_name, new_extents);
  }
  Result<MergeStart> lvconvert_merge(const std::string& vg_name, const std::string& snap_name) override {
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm_.lvconvert_merge(vg_name, snap_name));
    auto ref = vg::snapshot_for(commit.vg, snap_name);
    MergeStart start{.commit = std::move(commit), .started = false, .origin_lv = ref ? ref->origin_lv : ""};
    // Nothing is active offline: lvm2's words for an inactive origin.
    start.commit.notices.push_back(
        fmt::format("Merging of snapshot {}/{} will occur on next activation of {}/{}.", vg_name, snap_name,
                    vg_name, start.origin_lv));
    return start;
  }
  Result<vg::CommitResult> set_permission(const std::string& vg_name, const std::string& lv_name,
                                          vg::LvPermission permission) override {
    return vm_.lvchange_permission(vg_name, lv_name, permission);
  }
  Status set_monitor(const std::string& vg_name, const std::string& lv_name, bool /*monitor*/) override {
    return Status::Error(ENOTSUP,
                         fmt::format("Cannot change monitoring of {}/{}: no cowsnap server is running on {} "
                                     "(only a served LV is monitored)",
                                     vg_name, lv_name, root_dir()));
  }
  Status set_active(const std::string& vg_name, const std::string& lv_name, bool /*active*/) override {
    return Status::Error(ENOTSUP,
                         fmt::format("Cannot change activation of {}/{}: no cowsnap server is running on {} "
                                     "(an LV is active while a server serves it; start one with nbdkit)",
                                     vg_name, lv_name, root_dir()));
  }

 private:
  // The COW LV's extents as one device.
  Result<std::shared_ptr<BlockDevice>> cow_device(const vg::VgOnDisk& disk, const std::string& cow_lv,
                                                  bool read_only) {
    COWSNAP_ASSIGN_OR_RETURN(std::vector<vg::LinearPiece> pieces,
                             vg::linear_map(disk.vg, cow_lv, disk.path_lookup()));
    std::vector<TableEntry> table;
    for (const vg::LinearPiece& piece : pieces) {
      COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev,
                               open_device(piece.pv_path, DeviceOpenOptions{.read_only = read_only}));
      table.push_back(TableEntry{
          piece.lv_offset_bytes / 512, piece.length_bytes / 512,
          make_linear_target(dev, piece.pv_path, piece.pv_offset_bytes / 512, piece.length_bytes / 512)});
    }
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<MappedDevice> cow,
                             MappedDevice::create(disk.vg.name + "-" + cow_lv + "-cow", std::move(table)));
    return std::shared_ptr<BlockDevice>(cow);
  }

  Result<std::unique_ptr<ExceptionStore>> open_store(const vg::VgOnDisk& disk, const vg::SnapshotRef& ref) {
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> cow, cow_device(disk, ref.cow_lv, true));
    return open_persistent_store(cow, static_cast<uint32_t>(ref.chunk_size), [](ChunkIndex, ChunkIndex) {});
  }

  Status init_store(const std::string& vg_name, const std::string& snap_name, uint64_t chunk_sectors) {
    COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, vm_.read_vg(vg_name));
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> cow, cow_device(disk, snap_name, false));
    COWSNAP_ASSIGN_OR_RETURN(std::unique_ptr<ExceptionStore> store,
                             create_persistent_store(cow, static_cast<uint32_t>(chunk_sectors)));
    return Status::Ok();
  }

  vg::VolumeManager vm_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_offline_backend(const std::string& root_dir,
                                                      const std::string& command_line) {
  vg::VolumeManagerOptions options;
  options.command_line = command_line;
  COWSNAP_ASSIGN_OR_RETURN(vg::VolumeManager vm, vg::VolumeManager::open(root_dir, std::move(options)));
  return std::unique_ptr<Backend>(std::make_unique<OfflineBackend>(std::move(vm)));
}

}  // namespace cowsnap::cli
