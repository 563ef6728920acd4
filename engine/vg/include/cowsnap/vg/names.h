// Name rules for VGs and LVs, as lvm2 2.03 enforces them (checked against
// the real tools): [a-zA-Z0-9+_.-], not starting with '-', not "." or "..",
// at most 127 characters; LV names must not start with "snapshot" or
// "pvmove" nor contain a reserved suffix such as "_cmeta" or "_rimage".
// Errors are EINVAL with lvm2's wording.
#pragma once

#include <string_view>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

inline constexpr size_t kMaxNameChars = 127;

Status validate_vg_name(std::string_view name);
// The character and length rules alone (non-empty, at most kMaxNameChars,
// [a-zA-Z0-9+_.-], no leading '-', not "." or ".."): what lvm2 reports as
// 'Logical volume name "X" is invalid.' on its command line.
bool lv_name_well_formed(std::string_view name);
// Checks the LV name alone and with its VG (lvm2 limits "vg/lv" length).
Status validate_lv_name(std::string_view vg_name, std::string_view lv_name);

}  // namespace cowsnap::vg
