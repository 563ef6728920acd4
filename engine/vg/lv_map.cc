#include "cowsnap/vg/lv_map.h"

#include <fmt/format.h>

#include <cerrno>

namespace cowsnap::vg {

Result<std::vector<LinearPiece>> linear_map(const VolumeGroup& vg, std::string_view lv_name,
                                            const PvPathLookup& path_of) {
  const LogicalVolume* lv = vg.find_lv(lv_name);
  if (lv == nullptr) {
    return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg.name, lv_name));
  }
  std::vector<LinearPiece> out;
  const uint64_t ext = vg.extent_bytes();
  for (const Segment& s : lv->segments) {
    if (s.is_snapshot()) {
      return Status::Error(
          EINVAL, fmt::format("{}/{} is an internal snapshot LV with no data of its own", vg.name, lv_name));
    }
    if (!s.is_striped()) {
      return Status::Error(
          EINVAL, fmt::format("{}/{}: segment type \"{}\" is not supported", vg.name, lv_name, s.type));
    }
    if (s.stripes.size() != 1) {
      return Status::Error(EINVAL, fmt::format("{}/{}: striped segments with {} stripes are not supported",
                                               vg.name, lv_name, s.stripes.size()));
    }
    const PhysicalVolume* pv = vg.find_pv(s.stripes.front().pv_name);
    if (pv == nullptr) {
      return Status::Error(
          EINVAL, fmt::format("{}/{} uses unknown PV {}", vg.name, lv_name, s.stripes.front().pv_name));
    }
    LinearPiece p;
    p.lv_offset_bytes = s.start_extent * ext;
    p.length_bytes = s.extent_count * ext;
    p.pv_path = path_of(*pv);
    p.pv_offset_bytes = pv->pe_start * 512 + s.stripes.front().first_pe * ext;
    out.push_back(std::move(p));
  }
  return out;
}

std::string lv_devices_string(const VolumeGroup& vg, const LogicalVolume& lv, const PvPathLookup& path_of) {
  std::string out;
  for (const Segment& s : lv.segments) {
    for (const Stripe& st : s.stripes) {
      const PhysicalVolume* pv = vg.find_pv(st.pv_name);
      if (!out.empty()) out += ',';
      out += fmt::format("{}({})", pv != nullptr ? path_of(*pv) : st.pv_name, st.first_pe);
    }
  }
  return out;
}

std::string lv_pe_ranges_string(const VolumeGroup& vg, const LogicalVolume& lv, const PvPathLookup& path_of) {
  std::string out;
  for (const Segment& s : lv.segments) {
    if (s.stripes.empty()) continue;
    const uint64_t area = s.extent_count / s.stripes.size();
    for (const Stripe& st : s.stripes) {
      const PhysicalVolume* pv = vg.find_pv(st.pv_name);
      if (!out.empty()) out += ' ';
      out += fmt::format("{}:{}-{}", pv != nullptr ? path_of(*pv) : st.pv_name, st.first_pe,
                         st.first_pe + area - 1);
    }
  }
  return out;
}

}  // namespace cowsnap::vg
