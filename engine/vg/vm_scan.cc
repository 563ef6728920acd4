// How the VolumeManager finds its PVs and VGs: the devices file
// (lvmdevices --adddev/--deldev, under the global lock only), the scan of
// the listed devices that assembles each VG from its PVs' newest metadata
// and names the broken ones, read_vg on top of it, and the linear map an LV
// is activated from. Nothing here takes a VG's lock: readers rely on
// commits switching each metadata area with one header write.
#include <fmt/format.h>

#include <cerrno>

#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/volume_manager.h"
#include "volume_manager_internal.h"

namespace cowsnap::vg {

using detail::vg_not_found;

PvPathLookup VgOnDisk::path_lookup() const {
  return [paths = pv_paths](const PhysicalVolume& pv) {
    auto it = paths.find(pv.name);
    return it != paths.end() ? it->second : pv.device;
  };
}

Status VolumeManager::add_device(const std::string& path) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_global());
  return root_.add_device(path);
}

Status VolumeManager::remove_device(const std::string& path, bool force) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_global());
  if (!force) {
    COWSNAP_ASSIGN_OR_RETURN(ScanResult scan_result, scan());
    const std::string abs = absolute_path(path);
    for (const ScannedDevice& d : scan_result.devices) {
      if (d.path == abs && !d.vg_name.empty()) {
        return Status::Error(EBUSY, fmt::format("{} is a PV of volume group \"{}\"", abs, d.vg_name));
      }
    }
  }
  return root_.remove_device(path);
}

Result<std::vector<std::string>> VolumeManager::devices() const { return root_.devices(); }

Result<ScanResult> VolumeManager::scan() const {
  ScanResult out;
  COWSNAP_ASSIGN_OR_RETURN(std::vector<std::string> paths, root_.devices());
  struct Found {
    size_t device;
    VolumeGroup vg;
  };
  std::map<std::string, std::vector<Found>> by_name;
  for (const std::string& path : paths) {
    ScannedDevice d;
    d.path = path;
    auto dev = open_pv_device(path, true);
    if (!dev.ok()) {
      d.status = dev.status();
    } else if (auto pv = read_pv(**dev, path); !pv.ok()) {
      d.status = pv.status();
      if (d.status.errnum() == ENODATA) d.warnings.push_back(no_label_warning(**dev, path));
    } else {
      d.pv = std::move(*pv);
    }
    if (!d.pv) {
      out.devices.push_back(std::move(d));
      continue;
    }
    PvMetadata md = read_pv_metadata(*d.pv);
    d.warnings = std::move(md.warnings);
    out.devices.push_back(std::move(d));
    if (md.vg) by_name[md.vg->name].push_back({out.devices.size() - 1, std::move(*md.vg)});
  }
  for (auto& [name, found] : by_name) {
    const Found* best = &found.front();
    Status problem;
    for (const Found& f : found) {
      if (f.vg.id != best->vg.id) {
        problem = Status::Error(
            EINVAL, fmt::format("two different volume groups are called \"{}\" ({} "
                                "and {})",
                                name, out.devices[best->device].path, out.devices[f.device].path));
        break;
      }
      if (f.vg.seqno > best->vg.seqno) best = &f;
    }
    for (const Found& f : found) {
      if (problem.ok() && f.vg.seqno == best->vg.seqno && !(f.vg == best->vg)) {
        problem = Status::Error(EINVAL, fmt::format("volume group \"{}\": {} and {} hold different "
                                                    "metadata with the same seqno {}",
                                                    name, out.devices[best->device].path,
                                                    out.devices[f.device].path, f.vg.seqno));
      }
    }
    if (!problem.ok()) {
      out.broken_vgs[name] = problem;
      for (const Found& f : found) out.devices[f.device].vg_name = name;
      continue;
    }
    VgOnDisk v;
    v.vg = best->vg;
    for (const PhysicalVolume& p : v.vg.pvs) {
      auto raw = parse_lvm_id(p.id);
      for (ScannedDevice& d : out.devices) {
        if (raw.ok() && d.pv && d.pv->header.uuid == *raw) {
          if (v.pv_paths.count(p.name) != 0) {
            problem = Status::Error(EINVAL, fmt::format("volume group \"{}\": PV {} found on both {} and "
                                                        "{}",
                                                        name, p.id, v.pv_paths[p.name], d.path));
          }
          v.pv_paths[p.name] = d.path;
          d.vg_name = name;
        }
      }
      if (v.pv_paths.count(p.name) == 0) v.missing_pvs.push_back(p.name);
    }
    if (!problem.ok()) {
      out.broken_vgs[name] = problem;
      continue;
    }
    out.vgs.emplace(name, std::move(v));
  }
  return out;
}

Result<VgOnDisk> VolumeManager::read_vg(const std::string& vg_name) const {
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  if (auto it = s.broken_vgs.find(vg_name); it != s.broken_vgs.end()) return it->second;
  auto it = s.vgs.find(vg_name);
  if (it == s.vgs.end()) return vg_not_found(vg_name);
  return std::move(it->second);
}

Result<std::vector<LinearPiece>> VolumeManager::lv_map(const std::string& vg_name,
                                                       const std::string& lv_name) const {
  COWSNAP_ASSIGN_OR_RETURN(VgOnDisk v, read_vg(vg_name));
  return linear_map(v.vg, lv_name, v.path_lookup());
}

}  // namespace cowsnap::vg
