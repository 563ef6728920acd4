#include "cowsnap/vg/allocation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

namespace cowsnap::vg {

std::vector<FreeArea> free_areas(const VolumeGroup& vg) {
  std::vector<FreeArea> out;
  for (const PhysicalVolume& pv : vg.pvs) {
    if (!pv.allocatable()) continue;
    std::vector<std::pair<uint64_t, uint64_t>> used;  // [first, end)
    for (const LogicalVolume& lv : vg.lvs) {
      for (const Segment& s : lv.segments) {
        if (!s.is_striped() || s.stripes.empty()) continue;
        const uint64_t area = s.extent_count / s.stripes.size();
        for (const Stripe& st : s.stripes) {
          if (st.pv_name == pv.name) used.emplace_back(st.first_pe, st.first_pe + area);
        }
      }
    }
    std::sort(used.begin(), used.end());
    uint64_t at = 0;
    for (const auto& [first, end] : used) {
      if (first > at) out.push_back({pv.name, at, first - at});
      at = std::max(at, end);
    }
    if (pv.pe_count > at) out.push_back({pv.name, at, pv.pe_count - at});
  }
  return out;
}

uint64_t free_extent_count(const VolumeGroup& vg) {
  uint64_t n = 0;
  for (const FreeArea& a : free_areas(vg)) n += a.count;
  return n;
}

uint64_t used_extent_count(const VolumeGroup& vg, std::string_view pv_name) {
  uint64_t n = 0;
  for (const LogicalVolume& lv : vg.lvs) {
    for (const Segment& s : lv.segments) {
      if (!s.is_striped() || s.stripes.empty()) continue;
      const uint64_t area = s.extent_count / s.stripes.size();
      for (const Stripe& st : s.stripes) {
        if (st.pv_name == pv_name) n += area;
      }
    }
  }
  return n;
}

Result<std::vector<Segment>> allocate_linear(const VolumeGroup& vg, const LogicalVolume& lv,
                                             uint64_t extents) {
  assert(extents > 0);
  std::vector<FreeArea> areas = free_areas(vg);
  uint64_t available = 0;
  for (const FreeArea& a : areas) available += a.count;
  if (extents > available) {
    return Status::Error(ENOSPC, fmt::format("Insufficient free space: {} extents needed, but only {} "
                                             "available",
                                             extents, available));
  }
  std::vector<Segment> out;
  uint64_t start = lv.extent_count();
  uint64_t left = extents;
  auto take = [&](FreeArea& a, uint64_t n) {
    Segment s;
    s.start_extent = start;
    s.extent_count = n;
    s.stripes = {{a.pv_name, a.first_pe}};
    out.push_back(std::move(s));
    a.first_pe += n;
    a.count -= n;
    start += n;
    left -= n;
  };
  // 1. Continue the last segment in place.
  if (!lv.segments.empty() && lv.segments.back().is_linear()) {
    const Segment& last = lv.segments.back();
    const Stripe& st = last.stripes.front();
    for (FreeArea& a : areas) {
      if (a.pv_name == st.pv_name && a.first_pe == st.first_pe + last.extent_count) {
        take(a, std::min(left, a.count));
        break;
      }
    }
  }
  if (left == 0) return out;
  // 2. One area that holds the rest.
  for (FreeArea& a : areas) {
    if (a.count >= left) {
      take(a, left);
      return out;
    }
  }
  // 3. Span areas in order.
  for (FreeArea& a : areas) {
    if (left == 0) break;
    if (a.count > 0) take(a, std::min(left, a.count));
  }
  return out;
}

void append_segments(LogicalVolume& lv, const std::vector<Segment>& more) {
  for (const Segment& s : more) {
    if (!lv.segments.empty()) {
      Segment& last = lv.segments.back();
      if (last.is_linear() && s.is_linear() && last.extra.empty() &&
          last.stripes.front().pv_name == s.stripes.front().pv_name &&
          last.stripes.front().first_pe + last.extent_count == s.stripes.front().first_pe) {
        last.extent_count += s.extent_count;
        continue;
      }
    }
    lv.segments.push_back(s);
  }
}

}  // namespace cowsnap::vg
