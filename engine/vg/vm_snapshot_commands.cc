// lvcreate -s: a snapshot is a COW LV plus the hidden snapshotN LV whose
// segment ties it to its origin. This file owns lvm2's snapshot rules:
// the chunk size range, the useful maximum COW size (larger requests are
// trimmed with a notice), the three-chunk minimum, which LVs may be an
// origin, and how snapshotN is numbered.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>

#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/volume_manager.h"
#include "volume_manager_internal.h"

namespace cowsnap::vg {

using detail::check_new_lv_name;
using detail::kZeroNewLvBytes;
using detail::lv_not_found;
using detail::new_lv;
using detail::set_permission;
using detail::size_string;
using detail::zero_lv_start;

namespace {

constexpr uint64_t kSnapshotMinChunks = 3;

std::string next_snapshot_name(const VolumeGroup& vg) {
  // lvm2 names the internal LV "snapshot%d" with one more than the highest
  // such number in use.
  int64_t high = -1;
  for (const LogicalVolume& lv : vg.lvs) {
    if (lv.name.size() <= 8 || lv.name.substr(0, 8) != "snapshot") continue;
    const std::string digits = lv.name.substr(8);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (digits.size() > 9) continue;
    high = std::max<int64_t>(high, std::stoll(digits));
  }
  return fmt::format("snapshot{}", high + 1);
}

}  // namespace

Status validate_chunk_size(uint64_t sectors) {
  if (!std::has_single_bit(sectors) || sectors < kMinChunkSectors || sectors > kMaxChunkSectors) {
    return Status::Error(EINVAL, fmt::format("Chunk size must be a power of 2 in the range 4K to 512K "
                                             "(got {} sectors).",
                                             sectors));
  }
  return Status::Ok();
}

uint64_t cow_max_extents(const VolumeGroup& vg, uint64_t origin_extents, uint64_t chunk_sectors) {
  const uint64_t origin_sectors = origin_extents * vg.extent_size;
  const uint64_t origin_chunks = (origin_sectors + chunk_sectors - 1) / chunk_sectors;
  const uint64_t per_area = chunk_sectors * 512 / 16;  // exceptions per metadata chunk
  // The + per_area makes room for a terminating metadata chunk when the
  // data chunks fill the last area exactly (as lvm2 computes it).
  const uint64_t metadata_chunks = (origin_chunks + per_area) / per_area;
  const uint64_t sectors = (1 + origin_chunks + metadata_chunks) * chunk_sectors;
  return (sectors + vg.extent_size - 1) / vg.extent_size;
}

Result<CommitResult> VolumeManager::lvcreate_snapshot(const std::string& vg_name,
                                                      const std::string& origin_lv,
                                                      const std::string& snap_name, uint64_t cow_extents,
                                                      uint64_t chunk_sectors, LvPermission permission) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& result, const PvPaths& pv_paths) -> Status {
    COWSNAP_RETURN_IF_ERROR(validate_chunk_size(chunk_sectors));
    const LogicalVolume* origin = vg.find_lv(origin_lv);
    if (origin == nullptr) return lv_not_found(vg_name, origin_lv);
    switch (lv_role(vg, origin_lv)) {
      case LvRole::kSnapshotCow:
      case LvRole::kSnapshotInternal:
        return Status::Error(EINVAL, "Snapshots of snapshots are not supported.");
      case LvRole::kOther:
        return Status::Error(
            EINVAL, fmt::format("Snapshots of {}/{} (segment type {}) are not supported.", vg_name, origin_lv,
                                origin->segments.empty() ? "none" : origin->segments.front().type));
      case LvRole::kPlain:
      case LvRole::kOrigin:
        break;
    }
    if (!origin->visible()) {
      return Status::Error(
          EINVAL, fmt::format("Snapshots of hidden volume {}/{} are not supported.", vg_name, origin_lv));
    }
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, snap_name));
    const uint64_t origin_extents = origin->extent_count();
    const uint64_t max = cow_max_extents(vg, origin_extents, chunk_sectors);
    if (cow_extents > max) {
      result.notices.push_back(fmt::format("Reducing COW size {} down to maximum usable size {}.",
                                           size_string(cow_extents * vg.extent_bytes()),
                                           size_string(max * vg.extent_bytes())));
      cow_extents = max;
    }
    if (cow_extents * vg.extent_size < kSnapshotMinChunks * chunk_sectors) {
      const uint64_t need = (kSnapshotMinChunks * chunk_sectors + vg.extent_size - 1) / vg.extent_size;
      return Status::Error(EINVAL, fmt::format("Snapshot volume cannot be smaller than 3 chunks ({} extents, "
                                               "{}).",
                                               need, size_string(kSnapshotMinChunks * chunk_sectors * 512)));
    }
    LogicalVolume cow = new_lv(snap_name, now(), host());
    cow.status = {"READ", "WRITE"};  // lvm2 hides the COW LV behind snapshotN
    set_permission(cow, permission);
    COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, cow, cow_extents));
    append_segments(cow, segs);
    LogicalVolume snap = new_lv(next_snapshot_name(vg), now(), host());
    Segment seg;
    seg.type = "snapshot";
    seg.extent_count = origin_extents;  // lvm2 records the origin's size here
    seg.chunk_size = chunk_sectors;
    seg.origin = origin_lv;
    seg.cow_store = snap_name;
    snap.segments.push_back(std::move(seg));
    // A zeroed first chunk makes the store layer create a new store rather
    // than trust whatever the free extents held.
    COWSNAP_RETURN_IF_ERROR(zero_lv_start(vg, cow, pv_paths, std::max(kZeroNewLvBytes, chunk_sectors * 512)));
    vg.lvs.push_back(std::move(cow));
    vg.lvs.push_back(std::move(snap));
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvconvert_merge(const std::string& vg_name,
                                                    const std::string& snap_name) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& /*result*/, const PvPaths&) -> Status {
    if (vg.find_lv(snap_name) == nullptr) return lv_not_found(vg_name, snap_name);
    const std::string snap_display = vg_name + "/" + snap_name;
    auto ref = snapshot_for(vg, snap_name);
    if (!ref || ref->cow_lv != snap_name) {
      // lvm2 takes any other LV for a raid image split off with
      // --trackchanges.
      return Status::Error(
          EINVAL, fmt::format("{} cannot be merged because --trackchanges was not used.", snap_display));
    }
    if (ref->merging) {
      return Status::Error(EINVAL, fmt::format("Command on LV {} is invalid on LV with properties: "
                                               "lv_is_merging_cow .\nCommand not permitted on LV {}.",
                                               snap_display, snap_display));
    }
    for (const SnapshotRef& other : snapshots_of(vg, ref->origin_lv)) {
      if (other.merging) {
        // lvm2 names the snapshot being converted twice.
        return Status::Error(EBUSY, fmt::format("Cannot merge snapshot {} into the origin {}/{} with merging "
                                                "snapshot {}.",
                                                snap_display, vg_name, ref->origin_lv, snap_display));
      }
    }
    LogicalVolume* origin = vg.find_lv(ref->origin_lv);
    if (origin == nullptr) return lv_not_found(vg_name, ref->origin_lv);
    if (!origin->has_status("WRITE")) {
      return Status::Error(EROFS,
                           fmt::format("Cannot merge snapshot {} into the read-only origin {}/{}. (Use "
                                       "lvchange -p rw).",
                                       snap_display, vg_name, ref->origin_lv));
    }
    LogicalVolume* internal = vg.find_lv(ref->internal_lv);
    if (internal == nullptr) return lv_not_found(vg_name, ref->internal_lv);
    internal->segments.front().merging = true;
    std::erase(internal->status, std::string("VISIBLE"));
    return Status::Ok();
  });
}

}  // namespace cowsnap::vg
