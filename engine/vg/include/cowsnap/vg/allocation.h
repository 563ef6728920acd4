// Free-extent accounting and linear allocation over a VG's PVs.
//
// Policy (lvm2's "normal" for linear LVs, simplified): when growing an LV,
// first extend its last segment in place if the extents right after it are
// free; then take the first free area that holds everything that is left
// (contiguous when possible); otherwise fill free areas in PV order, then PE
// order, spanning areas and PVs. Adjacent pieces are merged into one segment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

struct FreeArea {
  std::string pv_name;
  uint64_t first_pe = 0;
  uint64_t count = 0;
  bool operator==(const FreeArea&) const = default;
};

// Free extents of every allocatable PV, in PV order then PE order. Counts
// extents used by striped segments; other segment types use no PV extents
// directly in lvm2 (mirror/raid/thin build on hidden striped LVs).
std::vector<FreeArea> free_areas(const VolumeGroup& vg);
uint64_t free_extent_count(const VolumeGroup& vg);
// Extents of `pv_name` in use.
uint64_t used_extent_count(const VolumeGroup& vg, std::string_view pv_name);

// The segments to append to `lv` (which may have no segments yet) so that it
// grows by `extents`. ENOSPC "Insufficient free space: N extents needed, but
// only M available" when the VG lacks room. Does not modify `vg`.
// REQUIRES: extents > 0; lv's segments are linear (callers check).
Result<std::vector<Segment>> allocate_linear(const VolumeGroup& vg, const LogicalVolume& lv,
                                             uint64_t extents);

// Appends `more` to lv.segments, merging a piece that continues the last
// segment on the same PV into it.
void append_segments(LogicalVolume& lv, const std::vector<Segment>& more);

}  // namespace cowsnap::vg
