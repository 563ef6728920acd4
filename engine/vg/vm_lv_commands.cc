// lvcreate, lvremove, lvrename and lvresize, and what they need: lvm2's
// -L to -l rounding, the checks a new LV name must pass, zeroing a new
// LV's start, and the guard that refuses to rename or remove an LV that a
// segment type cowsnap does not model refers to. Removing, renaming and
// resizing know about snapshots (both LVs go together, references follow a
// rename, a COW store only grows); creating one is vm_snapshot_commands.cc.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <set>

#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/names.h"
#include "cowsnap/vg/pv_metadata.h"
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

// Does any segment of a type cowsnap does not model mention `lv_name`?
// Such LVs are sub-LVs of something lvm2 built (thin pools, raid images);
// renaming or removing them would corrupt it.
bool referenced_by_unknown(const VolumeGroup& vg, const std::string& lv_name) {
  std::function<bool(const ConfigValue&)> mentions = [&](const ConfigValue& v) {
    if (v.is_string()) return v.as_string() == lv_name;
    if (v.is_array()) {
      return std::any_of(v.items().begin(), v.items().end(), mentions);
    }
    return false;
  };
  std::function<bool(const ConfigSection&)> scan = [&](const ConfigSection& s) {
    for (const ConfigEntry& e : s.entries) {
      if (e.is_section ? scan(e.section) : mentions(e.value)) return true;
    }
    return false;
  };
  for (const LogicalVolume& lv : vg.lvs) {
    for (const Segment& seg : lv.segments) {
      if (!seg.is_striped() && !seg.is_snapshot() && scan(seg.extra)) return true;
    }
  }
  return false;
}

}  // namespace

uint64_t extents_for_bytes(const VolumeGroup& vg, uint64_t bytes) {
  const uint64_t ext = vg.extent_bytes();
  return (bytes + ext - 1) / ext;
}

namespace detail {

void set_permission(LogicalVolume& lv, LvPermission permission) {
  std::erase(lv.status, "WRITE");
  if (permission == LvPermission::kReadWrite) {
    // lvm2 writes WRITE right after READ.
    auto read = std::find(lv.status.begin(), lv.status.end(), "READ");
    lv.status.insert(read == lv.status.end() ? lv.status.begin() : read + 1, "WRITE");
  }
}

LogicalVolume new_lv(const std::string& name, int64_t time, const std::string& host) {
  LogicalVolume lv;
  lv.name = name;
  lv.id = format_lvm_id(new_lvm_id());
  lv.creation_time = time;
  lv.creation_host = host;
  return lv;
}

Status check_new_lv_name(const VolumeGroup& vg, const std::string& lv_name) {
  COWSNAP_RETURN_IF_ERROR(validate_lv_name(vg.name, lv_name));
  if (vg.find_lv(lv_name) != nullptr) {
    return Status::Error(
        EEXIST, fmt::format("Logical volume \"{}\" already exists in volume group \"{}\"", lv_name, vg.name));
  }
  if (vg.max_lv != 0) {
    size_t visible = 0;
    for (const LogicalVolume& lv : vg.lvs) visible += lv_user_visible(vg, lv) ? 1U : 0U;
    if (visible + 1 > vg.max_lv) {
      return Status::Error(EINVAL, fmt::format("Maximum number of logical volumes ({}) reached in volume "
                                               "group {}",
                                               vg.max_lv, vg.name));
    }
  }
  return Status::Ok();
}

// Zeroes the first bytes of an LV being created: free extents until the
// commit, so a failure here changes nothing that is in use.
Status zero_lv_start(const VolumeGroup& vg, const LogicalVolume& lv,
                     const std::map<std::string, std::string>& pv_paths, uint64_t bytes) {
  for (const Segment& s : lv.segments) {
    if (bytes == 0) break;
    const PhysicalVolume* pv = vg.find_pv(s.stripes.front().pv_name);
    auto it = pv_paths.find(pv->name);
    if (it == pv_paths.end()) return Status::Error(EIO, fmt::format("PV {} is missing", pv->name));
    const uint64_t n = std::min(bytes, s.extent_count * vg.extent_bytes());
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(it->second, false));
    const uint64_t at = pv->pe_start * 512 + s.stripes.front().first_pe * vg.extent_bytes();
    COWSNAP_RETURN_IF_ERROR(dev->write_zeroes(at, n));
    COWSNAP_RETURN_IF_ERROR(dev->flush());
    bytes -= n;
  }
  return Status::Ok();
}

}  // namespace detail

Result<CommitResult> VolumeManager::lvcreate(const std::string& vg_name, const std::string& lv_name,
                                             uint64_t extents, LvPermission permission) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& result, const PvPaths& pv_paths) -> Status {
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, lv_name));
    if (extents == 0) return Status::Error(EINVAL, "Unable to create new logical volume with no extents.");
    LogicalVolume lv = new_lv(lv_name, now(), host());
    set_permission(lv, permission);
    COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, lv, extents));
    append_segments(lv, segs);
    if (permission == LvPermission::kReadOnly) {
      // lvm2 zeroes no read-only LV, and says so.
      result.notices.push_back(fmt::format("WARNING: Logical volume {}/{} not zeroed.", vg_name, lv_name));
    } else {
      COWSNAP_RETURN_IF_ERROR(zero_lv_start(vg, lv, pv_paths, kZeroNewLvBytes));
    }
    vg.lvs.push_back(std::move(lv));
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvchange_permission(const std::string& vg_name,
                                                        const std::string& lv_name, LvPermission permission) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths&) -> Status {
    LogicalVolume* lv = vg.find_lv(lv_name);
    if (lv == nullptr || !lv_user_visible(vg, *lv)) return lv_not_found(vg_name, lv_name);
    const bool writable = lv->has_status("WRITE");
    // lvm2 2.03.16's words, and its exit code 5, for a change to nothing.
    if (permission == LvPermission::kReadWrite && writable) {
      return Status::Error(EEXIST,
                           fmt::format("Logical volume {}/{} is already writable.", vg_name, lv_name));
    }
    if (permission == LvPermission::kReadOnly && !writable) {
      return Status::Error(EEXIST,
                           fmt::format("Logical volume \"{}/{}\" is already read only.", vg_name, lv_name));
    }
    set_permission(*lv, permission);
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvremove(const std::string& vg_name, const std::string& lv_name,
                                             bool force) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& result, const PvPaths&) -> Status {
    if (vg.find_lv(lv_name) == nullptr) return lv_not_found(vg_name, lv_name);
    std::set<std::string> doomed;
    switch (lv_role(vg, lv_name)) {
      case LvRole::kSnapshotInternal: {
        auto ref = snapshot_for(vg, lv_name);
        return Status::Error(EINVAL, fmt::format("{}/{} is the internal part of snapshot \"{}\": remove that "
                                                 "instead",
                                                 vg_name, lv_name, ref ? ref->cow_lv : "?"));
      }
      case LvRole::kSnapshotCow: {
        auto ref = snapshot_for(vg, lv_name);
        doomed = {ref->cow_lv, ref->internal_lv};
        break;
      }
      case LvRole::kOrigin: {
        auto snaps = snapshots_of(vg, lv_name);
        if (!force) {
          std::string names;
          for (const SnapshotRef& s : snaps) names += (names.empty() ? "" : ", ") + s.cow_lv;
          return Status::Error(EBUSY, fmt::format("Logical volume {}/{} has {} snapshot(s) ({}): remove them "
                                                  "first, or force to remove them too",
                                                  vg_name, lv_name, snaps.size(), names));
        }
        for (const SnapshotRef& s : snaps) {
          doomed.insert(s.cow_lv);
          doomed.insert(s.internal_lv);
          result.notices.push_back(fmt::format("Logical volume \"{}\" successfully removed.", s.cow_lv));
        }
        doomed.insert(lv_name);
        break;
      }
      case LvRole::kPlain:
        doomed = {lv_name};
        break;
      case LvRole::kOther:
        return Status::Error(EINVAL, fmt::format("Removing {}/{} (segment type {}) is not supported", vg_name,
                                                 lv_name, vg.find_lv(lv_name)->segments.front().type));
    }
    for (const std::string& name : doomed) {
      if (referenced_by_unknown(vg, name)) {
        return Status::Error(EBUSY, fmt::format("{}/{} is used by another logical volume", vg_name, name));
      }
    }
    std::erase_if(vg.lvs, [&](const LogicalVolume& lv) { return doomed.count(lv.name) != 0; });
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvrename(const std::string& vg_name, const std::string& old_name,
                                             const std::string& new_name) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths&) -> Status {
    LogicalVolume* lv = vg.find_lv(old_name);
    if (lv == nullptr) return lv_not_found(vg_name, old_name);
    if (old_name == new_name) {
      return Status::Error(EINVAL, fmt::format("Old and new logical volume names must differ"));
    }
    const LvRole role = lv_role(vg, old_name);
    if (role == LvRole::kSnapshotInternal || role == LvRole::kOther || referenced_by_unknown(vg, old_name)) {
      return Status::Error(EINVAL, fmt::format("Cannot rename internal LV \"{}\".", old_name));
    }
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, new_name));
    lv->name = new_name;
    for (LogicalVolume& other : vg.lvs) {
      for (Segment& s : other.segments) {
        if (!s.is_snapshot()) continue;
        if (s.origin == old_name) s.origin = new_name;
        if (s.cow_store == old_name) s.cow_store = new_name;
      }
    }
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvresize(const std::string& vg_name, const std::string& lv_name,
                                             uint64_t new_extents, const BeforeCommitFn& before_commit) {
  const EditFn resize = [&](VolumeGroup& vg, CommitResult& result, const PvPaths&) -> Status {
    LogicalVolume* lv = vg.find_lv(lv_name);
    if (lv == nullptr) return lv_not_found(vg_name, lv_name);
    const LvRole role = lv_role(vg, lv_name);
    if (role == LvRole::kSnapshotInternal || role == LvRole::kOther) {
      return Status::Error(EINVAL,
                           fmt::format("Cannot resize {}/{}: unsupported volume type", vg_name, lv_name));
    }
    if (role == LvRole::kOrigin) {
      return Status::Error(EBUSY,
                           fmt::format("Cannot resize {}/{} while it has snapshots", vg_name, lv_name));
    }
    for (const Segment& s : lv->segments) {
      if (!s.is_linear()) {
        return Status::Error(
            EINVAL, fmt::format("Cannot resize {}/{}: only linear segments are supported", vg_name, lv_name));
      }
    }
    const uint64_t cur = lv->extent_count();
    if (role == LvRole::kSnapshotCow && new_extents > cur) {
      // As at lvcreate -s: a COW larger than the origin can ever fill is
      // waste, so lvm2 grows it only to that size, and says so.
      for (const LogicalVolume& internal : vg.lvs) {
        if (internal.segments.size() != 1 || internal.segments[0].cow_store != lv_name) continue;
        const Segment& snap = internal.segments[0];
        const LogicalVolume* origin = vg.find_lv(snap.origin);
        if (origin == nullptr) break;
        const uint64_t max = cow_max_extents(vg, origin->extent_count(), snap.chunk_size);
        if (new_extents > max) {
          result.notices.push_back(fmt::format("Reached maximum COW size {} ({} extents).",
                                               size_string(max * vg.extent_bytes()), max));
          new_extents = max;
        }
        break;
      }
    }
    if (new_extents == cur) {
      return Status::Error(
          EINVAL, fmt::format("New size ({} extents) matches existing size ({} extents).", new_extents, cur));
    }
    if (new_extents == 0) return Status::Error(EINVAL, "Cannot resize a logical volume to 0 extents");
    if (new_extents > cur) {
      COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, *lv, new_extents - cur));
      append_segments(*lv, segs);
      return Status::Ok();
    }
    if (role == LvRole::kSnapshotCow) {
      return Status::Error(EINVAL,
                           fmt::format("Shrinking snapshot {}/{} is not supported", vg_name, lv_name));
    }
    while (lv->extent_count() > new_extents) {
      Segment& last = lv->segments.back();
      const uint64_t excess = lv->extent_count() - new_extents;
      if (last.extent_count <= excess) {
        lv->segments.pop_back();
      } else {
        last.extent_count -= excess;
      }
    }
    return Status::Ok();
  };
  return edit_vg(vg_name, resize, before_commit);
}

}  // namespace cowsnap::vg
