// Pieces of VG metadata built in memory, for tests that need a VG model
// without devices.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg::testing {

// A linear segment: LV extents [start, start + count) on `pv` from `first_pe`.
inline Segment linear(uint64_t start, uint64_t count, const std::string& pv, uint64_t first_pe) {
  Segment s;
  s.start_extent = start;
  s.extent_count = count;
  s.stripes = {{pv, first_pe}};
  return s;
}

inline LogicalVolume lv_of(const std::string& name, std::vector<Segment> segments) {
  LogicalVolume lv;
  lv.name = name;
  lv.segments = std::move(segments);
  return lv;
}

}  // namespace cowsnap::vg::testing
