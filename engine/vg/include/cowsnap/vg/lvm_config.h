// ROOT/lvm.conf: the part of lvm2's configuration cowsnap acts on, in
// lvm2's syntax (config_tree.h):
//
//   activation {
//       snapshot_autoextend_threshold = 70
//       snapshot_autoextend_percent = 20
//   }
//
// As in lvm2 2.03: a threshold of 100 or more turns autoextend off (the
// default), one below 50 counts as 50, and a snapshot past the threshold
// grows by `percent` of its size, rounded up to whole extents. Settings
// cowsnap does not know are ignored, as lvm2 ignores unknown ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

struct LvmConfig {
  int64_t snapshot_autoextend_threshold = 100;
  int64_t snapshot_autoextend_percent = 20;
  // activation/monitoring: whether activation monitors LVs (dmeventd's
  // warnings and autoextend); lvchange --monitor changes it per LV.
  int64_t monitoring = 1;

  [[nodiscard]] bool autoextend() const {
    return snapshot_autoextend_threshold < 100 && snapshot_autoextend_percent > 0;
  }
  // The threshold in force: 50 at least.
  [[nodiscard]] uint32_t threshold_percent() const;
  // The size an autoextended snapshot of `extents` extents grows to.
  [[nodiscard]] uint64_t grown_extents(uint64_t extents) const;
};

// EINVAL naming `source` and the line on a syntax error, or naming the
// setting when it is not an integer.
Result<LvmConfig> parse_lvm_config(std::string_view text, const std::string& source);
// ROOT/lvm.conf; lvm2's defaults when there is no such file.
Result<LvmConfig> load_lvm_config(const std::string& root_dir);

}  // namespace cowsnap::vg
