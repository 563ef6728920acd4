// What the VolumeManager command files (volume_manager.cc, vm_*.cc) share
// and nobody else should see: lvm2's error wording for unknown VGs and LVs,
// its size notation, and the steps lvcreate and lvcreate -s have in common.
// Private to engine/vg; the public API stays in cowsnap/vg/volume_manager.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg::detail {

// lvm2 zeroes the start of a new LV (lvcreate -Zy) so that stale
// signatures, or a stale COW store header, are not picked up.
inline constexpr uint64_t kZeroNewLvBytes = 4096;

// lvm2's short size notation, "64.00 MiB", used in its messages.
std::string size_string(uint64_t bytes);
Status vg_not_found(const std::string& name);
Status lv_not_found(const std::string& vg, const std::string& lv);

// ---- shared by lvcreate and lvcreate -s (vm_lv_commands.cc) ----

LogicalVolume new_lv(const std::string& name, int64_t time, const std::string& host);
// Adds or drops WRITE in the LV's status (lvcreate -p, lvchange -p).
void set_permission(LogicalVolume& lv, LvPermission permission);
// lvm2's name rules plus: not taken in the VG, and the VG's max_lv not
// reached.
Status check_new_lv_name(const VolumeGroup& vg, const std::string& lv_name);
// Zeroes the first `bytes` of `lv`, whose extents are still free in the
// committed metadata.
Status zero_lv_start(const VolumeGroup& vg, const LogicalVolume& lv,
                     const std::map<std::string, std::string>& pv_paths, uint64_t bytes);

}  // namespace cowsnap::vg::detail
