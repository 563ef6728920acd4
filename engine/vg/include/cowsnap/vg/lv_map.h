// Where an LV's bytes live: the linear map the dm layer builds targets from,
// and lvm2's devices / seg_pe_ranges report strings.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

// [lv_offset, lv_offset + length) of the LV lives at
// [pv_offset, pv_offset + length) of the PV file, where
// pv_offset = pe_start + first_pe * extent bytes.
struct LinearPiece {
  uint64_t lv_offset_bytes = 0;
  uint64_t length_bytes = 0;
  std::string pv_path;
  uint64_t pv_offset_bytes = 0;
  bool operator==(const LinearPiece&) const = default;
};

// pv name ("pv0") -> path of the device now holding it.
using PvPathLookup = std::function<std::string(const PhysicalVolume&)>;

// The map of an LV made of linear segments (a plain LV, an origin's real
// data, a snapshot's COW store). EINVAL for a snapshotN LV (it has no data
// of its own: use snapshot_for() to find origin and COW), striped LVs with
// 2+ stripes and unknown segment types; ENOENT for an unknown LV.
Result<std::vector<LinearPiece>> linear_map(const VolumeGroup& vg, std::string_view lv_name,
                                            const PvPathLookup& path_of);

// lvm2's `devices` field: "/dev/loop0(0),/dev/loop1(5)".
std::string lv_devices_string(const VolumeGroup& vg, const LogicalVolume& lv, const PvPathLookup& path_of);
// lvm2's `seg_pe_ranges` field: "/dev/loop0:0-1 /dev/loop1:5-9".
std::string lv_pe_ranges_string(const VolumeGroup& vg, const LogicalVolume& lv, const PvPathLookup& path_of);

}  // namespace cowsnap::vg
