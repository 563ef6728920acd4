#include "cowsnap/report/attrs.h"

namespace cowsnap::report {

std::string lv_attr(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv, const LvLiveState& live) {
  std::string a = "----------";
  const vg::LvRole role = vg::lv_role(vg, lv.name);
  const auto snap = vg::snapshot_for(vg, lv.name);
  if (role == vg::LvRole::kOrigin) {
    bool merging = false;
    for (const auto& ref : vg::snapshots_of(vg, lv.name)) merging = merging || ref.merging;
    a[0] = merging ? 'O' : 'o';
  } else if (role == vg::LvRole::kSnapshotCow || role == vg::LvRole::kSnapshotInternal) {
    a[0] = snap && snap->merging ? 'S' : 's';
  }
  a[1] = lv.has_status("WRITE") ? 'w' : 'r';
  a[2] = 'i';
  const bool is_snapshot = role == vg::LvRole::kSnapshotCow;
  if ((is_snapshot || role == vg::LvRole::kOrigin) && live.merge_failed) {
    a[4] = 'm';
  } else if (is_snapshot && !live.failure.empty()) {
    a[4] = live.active ? 'd' : '-';
  } else if (is_snapshot && !live.snapshot_valid) {
    a[4] = 'I';
  } else if (live.active) {
    a[4] = 'a';
  }
  if (live.open) a[5] = 'o';
  if (role == vg::LvRole::kOrigin || is_snapshot) a[6] = 's';
  return a;
}

std::string vg_attr(const vg::VolumeGroup& vg, bool partial) {
  std::string a = "------";
  auto has = [&](std::string_view w) {
    for (const auto& s : vg.status) {
      if (s == w) return true;
    }
    return false;
  };
  a[0] = has("WRITE") ? 'w' : 'r';
  if (has("RESIZEABLE")) a[1] = 'z';
  if (has("EXPORTED")) a[2] = 'x';
  if (partial) a[3] = 'p';
  a[4] = 'n';
  return a;
}

std::string pv_attr(const vg::PhysicalVolume* pv_in_vg, bool missing) {
  std::string a = "---";
  if (pv_in_vg != nullptr && pv_in_vg->allocatable()) a[0] = 'a';
  if (missing) a[2] = 'm';
  return a;
}

}  // namespace cowsnap::report
