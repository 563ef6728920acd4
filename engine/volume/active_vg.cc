#include "cowsnap/volume/active_vg.h"

#include <fmt/format.h>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "failed_snapshot.h"

namespace cowsnap {
namespace {

// Device-mapper names join VG and LV with '-', doubling any '-' inside
// them, as lvm2 does ("vg-1", "lv" -> "vg--1-lv").
std::string escape_dm(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '-') out += '-';
  }
  return out;
}

std::string prefixed_lines(const std::string& name, const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    out += fmt::format("{}: {}\n", name, text.substr(start, nl - start));
    start = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

}  // namespace

std::string ActiveVolumeGroup::dm_name(const std::string& lv_name) const {
  return escape_dm(vg_name_) + "-" + escape_dm(lv_name);
}

vg::PvPathLookup ActiveVolumeGroup::path_lookup() const {
  return [this](const vg::PhysicalVolume& pv) {
    auto it = pv_paths_.find(pv.name);
    return it == pv_paths_.end() ? pv.device : it->second;
  };
}

Result<std::unique_ptr<ActiveVolumeGroup>> ActiveVolumeGroup::activate(const vg::VgOnDisk& disk,
                                                                       Options options) {
  const vg::VolumeGroup& vg = disk.vg;
  if (!disk.missing_pvs.empty()) {
    return Status::Error(ENODEV, fmt::format("cannot activate volume group {}: PV {} is missing", vg.name,
                                             disk.missing_pvs.front()));
  }
  auto active = std::make_unique<ActiveVolumeGroup>(vg.name, options);
  active->pv_paths_ = disk.pv_paths;
  for (const vg::LogicalVolume& lv : vg.lvs) {
    switch (vg::lv_role(vg, lv.name)) {
      case vg::LvRole::kPlain:
      case vg::LvRole::kOrigin:
        COWSNAP_RETURN_IF_ERROR(active->activate_plain(vg, lv));
        break;
      case vg::LvRole::kOther:
        return Status::Error(
            ENOTSUP, fmt::format("cannot activate {}/{}: segment type {} is not supported", vg.name, lv.name,
                                 lv.segments.empty() ? "(none)" : lv.segments.front().type));
      case vg::LvRole::kSnapshotCow:
      case vg::LvRole::kSnapshotInternal:
        break;  // below, once their origins are active
    }
  }
  for (const vg::SnapshotRef& ref : vg::snapshots(vg)) active->activate_snapshot_or_fail(vg, ref);
  return active;
}

void ActiveVolumeGroup::activate_snapshot_or_fail(const vg::VolumeGroup& vg, const vg::SnapshotRef& ref) {
  Status s = activate_snapshot(vg, ref, false, nullptr);
  if (s.ok()) return;
  linear_devices_.erase(dm_name(ref.cow_lv) + "-cow");
  auto origin = find(ref.origin_lv);
  auto volume = std::make_shared<ActiveVolume>();
  volume->vg_name = vg_name_;
  volume->lv_name = ref.cow_lv;
  volume->origin_lv = ref.origin_lv;
  // The kernel's dm-snapshot constructor error, then what the store said.
  volume->failure = s.with_context("Failed to read snapshot metadata");
  volume->device = make_failed_snapshot_target(origin ? origin->device->size_bytes() : 0,
                                               vg_name_ + "/" + ref.cow_lv, volume->failure);
  volumes_[ref.cow_lv] = volume;
}

Result<std::shared_ptr<BlockDevice>> ActiveVolumeGroup::pv_device(const std::string& path) {
  if (auto it = pv_devices_.find(path); it != pv_devices_.end()) return it->second;
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev,
                           open_device(path, DeviceOpenOptions{.read_only = options_.read_only}));
  pv_devices_.emplace(path, dev);
  return dev;
}

Result<std::shared_ptr<MappedDevice>> ActiveVolumeGroup::make_linear_device(const vg::VolumeGroup& vg,
                                                                            const std::string& lv_name,
                                                                            const std::string& name) {
  COWSNAP_ASSIGN_OR_RETURN(std::vector<vg::LinearPiece> pieces, vg::linear_map(vg, lv_name, path_lookup()));
  std::vector<TableEntry> table;
  for (const vg::LinearPiece& p : pieces) {
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> pv, pv_device(p.pv_path));
    table.push_back(
        {p.lv_offset_bytes / kSectorBytes, p.length_bytes / kSectorBytes,
         make_linear_target(pv, p.pv_path, p.pv_offset_bytes / kSectorBytes, p.length_bytes / kSectorBytes)});
  }
  return MappedDevice::create(name, std::move(table));
}

Result<std::shared_ptr<MappedDevice>> ActiveVolumeGroup::linear_device(const vg::VolumeGroup& vg,
                                                                       const std::string& lv_name,
                                                                       const std::string& name) {
  COWSNAP_ASSIGN_OR_RETURN(auto dev, make_linear_device(vg, lv_name, name));
  linear_devices_[name] = dev;
  return dev;
}

Status ActiveVolumeGroup::activate_plain(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv) {
  COWSNAP_ASSIGN_OR_RETURN(auto real, linear_device(vg, lv.name, dm_name(lv.name) + "-real"));
  auto volume = std::make_shared<ActiveVolume>();
  volume->vg_name = vg_name_;
  volume->lv_name = lv.name;
  // A merge runs in the synchronous mode only (invariant 15 of snapshot.h).
  WriteBackOptions write_back = options_.write_back;
  for (const vg::SnapshotRef& ref : vg::snapshots_of(vg, lv.name)) {
    if (ref.merging) write_back.enabled = false;
  }
  volume->origin = Origin::create(real, real->name(), write_back);
  volume->device = std::make_shared<SnapshotOriginTarget>(volume->origin);
  volume->read_only = !lv.has_status("WRITE");
  volumes_[lv.name] = volume;
  return Status::Ok();
}

Status ActiveVolumeGroup::activate_snapshot(const vg::VolumeGroup& vg, const vg::SnapshotRef& ref,
                                            bool create_store, std::unique_lock<std::shared_mutex>* held) {
  auto origin = find(ref.origin_lv);
  if (!origin || !origin->origin) {
    return Status::Error(
        ENOENT, fmt::format("snapshot {}/{}: origin {} is not active", vg_name_, ref.cow_lv, ref.origin_lv));
  }
  COWSNAP_ASSIGN_OR_RETURN(auto cow, linear_device(vg, ref.cow_lv, dm_name(ref.cow_lv) + "-cow"));
  auto attached = open_snapshot(
      origin->origin, {cow, cow->name(), 'P', static_cast<uint32_t>(ref.chunk_size), create_store}, held);
  if (!attached.ok())
    return attached.status().with_context(fmt::format("snapshot {}/{}", vg_name_, ref.cow_lv));
  auto volume = std::make_shared<ActiveVolume>();
  volume->vg_name = vg_name_;
  volume->lv_name = ref.cow_lv;
  volume->snapshot = *attached;
  volume->device = *attached;
  volume->origin_lv = ref.origin_lv;
  const vg::LogicalVolume* cow_lv = vg.find_lv(ref.cow_lv);
  volume->read_only = cow_lv != nullptr && !cow_lv->has_status("WRITE");
  if (ref.merging) {
    // lvm2's activation of an origin with a merging snapshot loads the
    // snapshot-merge target; one that cannot merge (invalid) stays a
    // plain snapshot, and the reason is kept for the log.
    Status merge = origin->origin->start_merge(*attached);
    if (!merge.ok()) volume->merge_error = merge.message();
  }
  volumes_[ref.cow_lv] = volume;
  return Status::Ok();
}

Status ActiveVolumeGroup::activate_committed_snapshot(const vg::VolumeGroup& vg, const std::string& snap_name,
                                                      bool create_store,
                                                      std::unique_lock<std::shared_mutex>* held) {
  auto ref = vg::snapshot_for(vg, snap_name);
  if (!ref)
    return Status::Error(EIO, fmt::format("snapshot {} missing from the committed metadata", snap_name));
  return activate_snapshot(vg, *ref, create_store, held);
}

std::shared_ptr<ActiveVolume> ActiveVolumeGroup::find(const std::string& lv_name) const {
  auto it = volumes_.find(lv_name);
  return it == volumes_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ActiveVolume>> ActiveVolumeGroup::volumes() const {
  std::vector<std::shared_ptr<ActiveVolume>> out;
  for (const auto& [name, v] : volumes_) out.push_back(v);
  return out;
}

std::string ActiveVolumeGroup::dm_text(bool status) const {
  // The -real and -cow devices exist only under origins with snapshots and
  // under snapshots, as in lvm2; a plain LV is its linear table itself.
  auto linear = [&](const std::string& name, const std::string& device) {
    const MappedDevice& dev = *linear_devices_.at(device);
    return prefixed_lines(name, status ? dev.status_text() : dev.table_text());
  };
  std::map<std::string, std::string> lines;  // dm name -> lines, sorted like dmsetup
  for (const auto& [name, v] : volumes_) {
    const std::string dm = dm_name(name);
    const uint64_t sectors = v->device->size_bytes() / kSectorBytes;
    if (v->failed()) {
      lines[dm] = dm + ": \n";  // a device without a table
    } else if (v->is_snapshot()) {
      // A merging snapshot has no device of its own: its origin's
      // snapshot-merge table uses the COW device.
      if (!v->snapshot->merging()) {
        lines[dm] = fmt::format("{}: 0 {} snapshot {}\n", dm, sectors,
                                status ? v->snapshot->status_params() : v->snapshot->table_params());
      }
      lines[v->snapshot->cow_name()] = linear(v->snapshot->cow_name(), v->snapshot->cow_name());
    } else if (auto merging = v->origin->merging_snapshot()) {
      lines[dm] = fmt::format("{}: 0 {} snapshot-merge {}\n", dm, sectors,
                              status ? merging->status_params() : merging->table_params());
      lines[v->origin->real_name()] = linear(v->origin->real_name(), v->origin->real_name());
    } else if (!v->origin->snapshots().empty()) {
      // snapshot-origin has no status: dmsetup's line ends in the blank
      // after the type.
      lines[dm] =
          fmt::format("{}: 0 {} snapshot-origin {}\n", dm, sectors, status ? "" : v->origin->real_name());
      lines[v->origin->real_name()] = linear(v->origin->real_name(), v->origin->real_name());
    } else {
      lines[dm] = linear(dm, v->origin->real_name());
    }
  }
  std::string out;
  for (const auto& [dm, text] : lines) out += text;
  return out;
}

Result<vg::CommitResult> ActiveVolumeGroup::create_snapshot(vg::VolumeManager& vm,
                                                            const std::string& origin_lv,
                                                            const std::string& snap_name,
                                                            uint64_t cow_extents, uint64_t chunk_sectors,
                                                            vg::LvPermission permission) {
  auto origin = find(origin_lv);
  if (!origin) {
    return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg_name_, origin_lv));
  }
  if (origin->is_snapshot()) {
    return Status::Error(EINVAL, fmt::format("Snapshots of snapshots are not supported: {}/{} is a snapshot",
                                             vg_name_, origin_lv));
  }
  auto barrier = origin->origin->hold_io();
  COWSNAP_ASSIGN_OR_RETURN(
      vg::CommitResult commit,
      vm.lvcreate_snapshot(vg_name_, origin_lv, snap_name, cow_extents, chunk_sectors, permission));
  Status s = activate_committed_snapshot(commit.vg, snap_name, true, &barrier);
  if (!s.ok()) {
    linear_devices_.erase(dm_name(snap_name) + "-cow");
    (void)vm.lvremove(vg_name_, snap_name, false);
    return s;
  }
  return commit;
}

Result<vg::CommitResult> ActiveVolumeGroup::create_volume(vg::VolumeManager& vm, const std::string& lv_name,
                                                          uint64_t extents, vg::LvPermission permission) {
  COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvcreate(vg_name_, lv_name, extents, permission));
  const vg::LogicalVolume* lv = commit.vg.find_lv(lv_name);
  Status s = lv != nullptr
                 ? activate_plain(commit.vg, *lv)
                 : Status::Error(EIO, fmt::format("{} missing from the committed metadata", lv_name));
  if (!s.ok()) {
    (void)vm.lvremove(vg_name_, lv_name, false);
    return s;
  }
  return commit;
}

Result<vg::CommitResult> ActiveVolumeGroup::set_permission(vg::VolumeManager& vm, const std::string& lv_name,
                                                           vg::LvPermission permission) {
  COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvchange_permission(vg_name_, lv_name, permission));
  if (auto volume = find(lv_name)) volume->read_only = permission == vg::LvPermission::kReadOnly;
  return commit;
}

std::vector<std::shared_ptr<ActiveVolume>> ActiveVolumeGroup::with_snapshots(
    const std::shared_ptr<ActiveVolume>& volume) const {
  std::vector<std::shared_ptr<ActiveVolume>> out{volume};
  for (const auto& [name, v] : volumes_) {
    if (v->is_snapshot() && v->origin_lv == volume->lv_name) out.push_back(v);
  }
  return out;
}

Status ActiveVolumeGroup::flush_volumes(const std::vector<std::shared_ptr<ActiveVolume>>& volumes,
                                        const std::string& why) {
  for (const auto& v : volumes) {
    // A failed or invalid snapshot holds nothing to flush, and its flush
    // fails by design.
    if (v->failed() || (v->snapshot && !v->snapshot->valid())) continue;
    COWSNAP_RETURN_IF_ERROR(v->device->flush().with_context(fmt::format("{}: flushing {}", why, v->lv_name)));
  }
  return Status::Ok();
}

void ActiveVolumeGroup::drop(const ActiveVolume& volume, std::unique_lock<std::shared_mutex>* held) {
  if (volume.failed()) {
    // Never attached, no -cow device.
  } else if (volume.is_snapshot()) {
    if (auto o = volume.snapshot->origin()) o->detach_snapshot(volume.snapshot, held);
    linear_devices_.erase(volume.snapshot->cow_name());
  } else {
    linear_devices_.erase(volume.origin->real_name());
  }
  volumes_.erase(volume.lv_name);
}

Result<vg::CommitResult> ActiveVolumeGroup::remove_volume(vg::VolumeManager& vm, const std::string& lv_name,
                                                          bool force) {
  auto volume = find(lv_name);
  if (!volume)
    return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg_name_, lv_name));
  if (volume->snapshot && volume->snapshot->merging()) {
    return Status::Error(
        EBUSY, fmt::format("Can't remove merging snapshot logical volume {}/{}.", vg_name_, lv_name));
  }
  COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvremove(vg_name_, lv_name, force));
  for (const auto& v : with_snapshots(volume)) drop(*v);
  return commit;
}

Result<vg::CommitResult> ActiveVolumeGroup::rename_volume(vg::VolumeManager& vm, const std::string& old_name,
                                                          const std::string& new_name) {
  auto volume = find(old_name);
  if (!volume) {
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvrename(vg_name_, old_name, new_name));
    if (inactive_.erase(old_name) > 0) inactive_.insert(new_name);
    return commit;
  }
  const auto going = with_snapshots(volume);
  COWSNAP_RETURN_IF_ERROR(flush_volumes(going, fmt::format("renaming {}/{}", vg_name_, old_name)));
  if (!volume->is_snapshot() || volume->failed()) {
    // Nobody holds the origin or its snapshots: nothing writes meanwhile.
    // (A failed snapshot is re-activated, and fails again, under its new
    // name.)
    COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvrename(vg_name_, old_name, new_name));
    for (const auto& v : going) drop(*v);
    COWSNAP_RETURN_IF_ERROR(refresh(vm).with_context(
        fmt::format("renamed {}/{} to {} on disk, but activating it failed", vg_name_, old_name, new_name)));
    return commit;
  }
  auto origin = find(volume->origin_lv);
  if (!origin) return Status::Error(ENODEV, fmt::format("{}/{}: its origin is gone", vg_name_, old_name));
  auto barrier = origin->origin->hold_io();
  COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvrename(vg_name_, old_name, new_name));
  drop(*volume, &barrier);
  Status s = activate_committed_snapshot(commit.vg, new_name, false, &barrier);
  if (!s.ok()) {
    // Back to the old name, still behind the barrier: no origin write has
    // gone past the snapshot.
    linear_devices_.erase(dm_name(new_name) + "-cow");
    auto back = vm.lvrename(vg_name_, new_name, old_name);
    if (!back.ok() || !activate_committed_snapshot(back->vg, old_name, false, &barrier).ok()) {
      // Detached, origin writes would no longer be copied out: it must
      // never be served again as if it were whole.
      volume->snapshot->invalidate(s.with_context("re-attaching after a failed rename"));
    }
    return s.with_context(fmt::format("renaming snapshot {}/{}", vg_name_, old_name));
  }
  return commit;
}

Result<vg::CommitResult> ActiveVolumeGroup::grow_snapshot(vg::VolumeManager& vm, const std::string& lv_name,
                                                          uint64_t new_extents) {
  auto volume = find(lv_name);
  if (!volume || !volume->is_snapshot()) {
    return Status::Error(EINVAL, fmt::format("{}/{} is not an active snapshot", vg_name_, lv_name));
  }
  if (volume->failed()) {
    return volume->failure.with_context(
        fmt::format("cannot extend snapshot {}/{} online", vg_name_, lv_name));
  }
  auto origin = volume->snapshot->origin();
  if (!origin) return Status::Error(ENODEV, fmt::format("{}/{}: its origin is gone", vg_name_, lv_name));
  const std::string cow_name = volume->snapshot->cow_name();
  // No barrier: requests go on throughout (SnapshotTarget::grow_store).
  // The grown store is readied on the new extents before the metadata
  // naming them is committed, so a crash after the commit finds it whole.
  std::shared_ptr<MappedDevice> grown;
  COWSNAP_ASSIGN_OR_RETURN(
      vg::CommitResult commit,
      vm.lvresize(vg_name_, lv_name, new_extents, [&](const vg::VolumeGroup& next) -> Status {
        COWSNAP_ASSIGN_OR_RETURN(grown, make_linear_device(next, lv_name, cow_name));
        return volume->snapshot->prepare_growth(*grown);
      }));
  Status s = volume->snapshot->grow_store(grown);
  if (!s.ok()) {
    return s.with_context(
        fmt::format("growing snapshot {}/{} (its COW LV is larger on disk now; the old "
                    "size serves until the server restarts)",
                    vg_name_, lv_name));
  }
  linear_devices_[cow_name] = grown;
  return commit;
}

Result<vg::CommitResult> ActiveVolumeGroup::merge_snapshot(vg::VolumeManager& vm,
                                                           const std::string& snap_name, bool start_now) {
  COWSNAP_ASSIGN_OR_RETURN(vg::CommitResult commit, vm.lvconvert_merge(vg_name_, snap_name));
  auto ref = vg::snapshot_for(commit.vg, snap_name);
  auto origin = ref ? find(ref->origin_lv) : nullptr;
  if (!start_now || !origin) return commit;
  const auto going = with_snapshots(origin);
  COWSNAP_RETURN_IF_ERROR(
      flush_volumes(going, fmt::format("starting the merge of {}/{}", vg_name_, snap_name)));
  for (const auto& v : going) drop(*v);
  COWSNAP_RETURN_IF_ERROR(refresh(vm).with_context(fmt::format(
      "the merge of {}/{} is committed, but re-activating {} failed", vg_name_, snap_name, ref->origin_lv)));
  return commit;
}

std::vector<std::string> ActiveVolumeGroup::merging_origins() const {
  std::vector<std::string> out;
  for (const auto& [name, v] : volumes_) {
    if (!v->is_snapshot() && v->origin && v->origin->merging_snapshot() && !v->origin->merge_failed()) {
      out.push_back(name);
    }
  }
  return out;
}

Result<vg::CommitResult> ActiveVolumeGroup::finish_merge(vg::VolumeManager& vm, const std::string& origin_lv,
                                                         std::string& snapshot) {
  auto origin = find(origin_lv);
  std::shared_ptr<SnapshotTarget> merging =
      origin && origin->origin ? origin->origin->merging_snapshot() : nullptr;
  std::shared_ptr<ActiveVolume> snap;
  for (const auto& [name, v] : volumes_) {
    if (merging && v->snapshot == merging) snap = v;
  }
  if (!snap) return Status::Error(EINVAL, fmt::format("{}/{} has no merging snapshot", vg_name_, origin_lv));
  snapshot = snap->lv_name;
  // Every chunk is home and the emptied table is durable: the snapshot
  // goes, then its LVs.
  drop(*snap);
  return vm.lvremove(vg_name_, snapshot, false);
}

Status ActiveVolumeGroup::refresh(vg::VolumeManager& vm) {
  COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, vm.read_vg(vg_name_));
  pv_paths_ = disk.pv_paths;
  for (const vg::LogicalVolume& lv : disk.vg.lvs) {
    const vg::LvRole role = vg::lv_role(disk.vg, lv.name);
    if ((role == vg::LvRole::kPlain || role == vg::LvRole::kOrigin) && !find(lv.name) &&
        inactive_.count(lv.name) == 0) {
      COWSNAP_RETURN_IF_ERROR(activate_plain(disk.vg, lv));
    }
  }
  for (const vg::SnapshotRef& ref : vg::snapshots(disk.vg)) {
    if (!find(ref.cow_lv) && inactive_.count(ref.cow_lv) == 0 && find(ref.origin_lv)) {
      activate_snapshot_or_fail(disk.vg, ref);
    }
  }
  return Status::Ok();
}

Status ActiveVolumeGroup::deactivate_volume(const std::string& lv_name) {
  auto volume = find(lv_name);
  if (!volume) return Status::Error(ENOENT, fmt::format("{}/{} is not active", vg_name_, lv_name));
  const auto going = with_snapshots(volume);
  COWSNAP_RETURN_IF_ERROR(flush_volumes(going, fmt::format("deactivating {}/{}", vg_name_, lv_name)));
  for (const auto& v : going) {
    inactive_.insert(v->lv_name);
    drop(*v);
  }
  return Status::Ok();
}

Status ActiveVolumeGroup::activate_volume(vg::VolumeManager& vm, const std::string& lv_name) {
  COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, vm.read_vg(vg_name_));
  if (disk.vg.find_lv(lv_name) == nullptr) {
    return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg_name_, lv_name));
  }
  if (auto ref = vg::snapshot_for(disk.vg, lv_name); ref && ref->cow_lv == lv_name) {
    if (!find(ref->origin_lv)) {
      return Status::Error(EINVAL, fmt::format("cannot activate snapshot {}/{}: its origin {} is inactive",
                                               vg_name_, lv_name, ref->origin_lv));
    }
  } else {
    for (const vg::SnapshotRef& r : vg::snapshots_of(disk.vg, lv_name)) inactive_.erase(r.cow_lv);
  }
  inactive_.erase(lv_name);
  return refresh(vm);
}

}  // namespace cowsnap
