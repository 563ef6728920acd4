// vgcreate, vgextend and vgremove: the commands that change which PVs
// make up a VG. They check that new PVs are listed orphans, size each PV's
// data area in extents, name PVs in the metadata as lvm2 does (pv0, pv1,
// ...), flip the PV label's in-use flag, and turn a removed VG's PVs back
// into orphans. Also lvm2's extent size rule, which only vgcreate applies.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/metadata_backup.h"
#include "cowsnap/vg/names.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/vg_commit.h"
#include "cowsnap/vg/volume_manager.h"
#include "volume_manager_internal.h"

namespace cowsnap::vg {

using detail::size_string;
using detail::vg_not_found;

namespace {

// lvm2's MAX_EXTENT_SIZE for text-format VGs.
constexpr uint64_t kMaxExtentSectors = 0xffffffffULL;

using PvWrite = PvCommit;

// New PVs for vgcreate/vgextend: listed, orphan, distinct.
Result<std::vector<const ScannedDevice*>> orphan_pvs(const ScanResult& s,
                                                     const std::vector<std::string>& paths) {
  std::vector<const ScannedDevice*> out;
  std::set<std::string> seen;
  if (paths.empty()) return Status::Error(EINVAL, "Please enter physical volume name(s)");
  for (const std::string& p : paths) {
    const std::string abs = absolute_path(p);
    if (!seen.insert(abs).second) return Status::Error(EINVAL, fmt::format("{} is given twice", abs));
    const ScannedDevice* found = nullptr;
    for (const ScannedDevice& d : s.devices) {
      if (d.path == abs) found = &d;
    }
    if (found == nullptr) {
      return Status::Error(ENOENT, fmt::format("Device {} not found (it is not in the devices file)", abs));
    }
    if (!found->status.ok()) return found->status;
    if (!found->vg_name.empty()) {
      return Status::Error(
          EBUSY, fmt::format("Physical volume '{}' is already in volume group '{}'", abs, found->vg_name));
    }
    if ((found->pv->header.extension_flags & kPvExtUsed) != 0) {
      return Status::Error(EBUSY, fmt::format("Physical volume '{}' is marked as used by a volume group "
                                              "that was not found",
                                              abs));
    }
    if (found->pv->mdas.empty()) {
      return Status::Error(EINVAL, fmt::format("{}: PVs without a metadata area are not supported", abs));
    }
    out.push_back(found);
  }
  return out;
}

Result<PhysicalVolume> new_vg_pv(const ScannedDevice& d, std::string name, uint64_t extent_size) {
  PhysicalVolume p;
  p.name = std::move(name);
  p.id = format_lvm_id(d.pv->header.uuid);
  p.device = d.path;
  p.dev_size = d.pv->device_bytes / 512;
  p.pe_start = d.pv->pe_start_bytes() / 512;
  uint64_t end = p.dev_size;
  // Metadata areas or bootloader areas past pe_start end the data area.
  for (const DiskArea& a : d.pv->header.metadata_areas) {
    if (a.offset_bytes / 512 > p.pe_start) end = std::min(end, a.offset_bytes / 512);
  }
  for (const DiskArea& a : d.pv->header.bootloader_areas) {
    if (a.offset_bytes / 512 > p.pe_start) end = std::min(end, a.offset_bytes / 512);
  }
  p.pe_count = end > p.pe_start ? (end - p.pe_start) / extent_size : 0;
  if (p.pe_count == 0) {
    return Status::Error(
        EINVAL, fmt::format("{}: too small for an extent of {}", d.path, size_string(extent_size * 512)));
  }
  return p;
}

// The N of a PV name "pvN" that new PVs may be numbered after, or none.
// The names come from metadata any writer may have made, so a number too
// large for 64 bits, or the largest one (it has no successor), must not
// throw or wrap: such names are passed over. They cannot collide with the
// names new_pv_names makes, whose numbers are all smaller.
std::optional<uint64_t> pv_number(std::string_view name) {
  if (name.size() <= 2 || name.substr(0, 2) != "pv") return std::nullopt;
  const std::string_view digits = name.substr(2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t n = 0;
  const char* end = digits.data() + digits.size();
  const auto [stop, ec] = std::from_chars(digits.data(), end, n);
  if (ec != std::errc() || stop != end || n == std::numeric_limits<uint64_t>::max()) return std::nullopt;
  return n;
}

// lvm2 names the PVs in a VG's metadata pv0, pv1, ...: `count` new PVs get
// the numbers after the highest one in use, as cowsnap always did (gaps
// stay gaps).
Result<std::vector<std::string>> new_pv_names(const VolumeGroup& vg, size_t count) {
  uint64_t next = 0;
  for (const PhysicalVolume& p : vg.pvs) {
    if (std::optional<uint64_t> n = pv_number(p.name)) next = std::max(next, *n + 1);
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    if (next == std::numeric_limits<uint64_t>::max()) {
      return Status::Error(EINVAL, fmt::format("Cannot add a physical volume to volume group \"{}\": no PV "
                                               "number is left after pv{}",
                                               vg.name, next - 1));
    }
    out.push_back(fmt::format("pv{}", next++));
  }
  return out;
}

}  // namespace

Status validate_extent_size(uint64_t sectors) {
  if (sectors == 0) return Status::Error(EINVAL, "Physical extent size may not be zero.");
  if (sectors > kMaxExtentSectors) {
    return Status::Error(EINVAL, fmt::format("Physical extent size cannot be larger than {}.",
                                             size_string(kMaxExtentSectors * 512)));
  }
  if (!std::has_single_bit(sectors) && sectors % 256 != 0) {
    return Status::Error(EINVAL,
                         "Physical Extent size must be a multiple of 128.00 KiB when not a power of 2.");
  }
  return Status::Ok();
}

Result<CommitResult> VolumeManager::vgcreate(const std::string& vg_name,
                                             const std::vector<std::string>& pv_paths,
                                             uint64_t extent_sectors) {
  COWSNAP_RETURN_IF_ERROR(validate_vg_name(vg_name));
  COWSNAP_RETURN_IF_ERROR(validate_extent_size(extent_sectors));
  COWSNAP_ASSIGN_OR_RETURN(FileLock global, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  if (s.vgs.count(vg_name) != 0 || s.broken_vgs.count(vg_name) != 0) {
    return Status::Error(EEXIST, fmt::format("A volume group called {} already exists.", vg_name));
  }
  COWSNAP_ASSIGN_OR_RETURN(auto devs, orphan_pvs(s, pv_paths));
  CommitResult result;
  VolumeGroup& vg = result.vg;
  vg.name = vg_name;
  vg.id = format_lvm_id(new_lvm_id());
  vg.seqno = 1;
  vg.extent_size = extent_sectors;
  std::map<std::string, std::string> paths;
  for (size_t i = 0; i < devs.size(); ++i) {
    COWSNAP_ASSIGN_OR_RETURN(PhysicalVolume p, new_vg_pv(*devs[i], fmt::format("pv{}", i), extent_sectors));
    paths[p.name] = p.device;
    vg.pvs.push_back(std::move(p));
  }
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvLock> owned, claim_pvs_for_edit(paths, root_.dir()));
  COWSNAP_RETURN_IF_ERROR(validate_vg(vg));
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvWrite> pvs, open_pvs_for_commit(vg, paths));
  TextTrailer trailer{
      options_.command_line.empty() ? "Write from cowsnap vgcreate" : "Write from " + options_.command_line,
      host(), now()};
  COWSNAP_RETURN_IF_ERROR(commit_vg_text(pvs, vg_to_text(vg, TextStyle::kDisk, trailer)));
  for (PvWrite& w : pvs) COWSNAP_RETURN_IF_ERROR(set_pv_in_use(w, true));
  backup_after_change(result.vg, &result);
  return result;
}

Result<CommitResult> VolumeManager::vgextend(const std::string& vg_name,
                                             const std::vector<std::string>& pv_paths) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock global, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  if (s.vgs.count(vg_name) == 0 && s.broken_vgs.count(vg_name) == 0) return vg_not_found(vg_name);
  COWSNAP_ASSIGN_OR_RETURN(auto devs, orphan_pvs(s, pv_paths));
  std::vector<std::string> added_paths;
  COWSNAP_ASSIGN_OR_RETURN(
      CommitResult result, edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths&) -> Status {
        if (vg.max_pv != 0 && vg.pvs.size() + devs.size() > vg.max_pv) {
          return Status::Error(EINVAL, fmt::format("Maximum number of physical volumes ({}) exceeded for "
                                                   "\"{}\"",
                                                   vg.max_pv, vg_name));
        }
        COWSNAP_ASSIGN_OR_RETURN(std::vector<std::string> names, new_pv_names(vg, devs.size()));
        for (size_t i = 0; i < devs.size(); ++i) {
          COWSNAP_ASSIGN_OR_RETURN(PhysicalVolume p, new_vg_pv(*devs[i], names[i], vg.extent_size));
          added_paths.push_back(devs[i]->path);
          vg.pvs.push_back(std::move(p));
        }
        return Status::Ok();
      }));
  // edit_vg found the new PVs' paths through their device hints only if the
  // scan knew them; they are orphans, so commit wrote them via the hint map.
  for (const std::string& path : added_paths) {
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(path, false));
    PvWrite w;
    w.path = path;
    w.dev = dev;
    COWSNAP_ASSIGN_OR_RETURN(w.pv, read_pv(*dev, path));
    COWSNAP_RETURN_IF_ERROR(set_pv_in_use(w, true));
  }
  return result;
}

Status VolumeManager::vgremove(const std::string& vg_name, bool force) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock global, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(VgOnDisk current, read_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvLock> owned, claim_pvs_for_edit(current.pv_paths, root_.dir()));
  if (!current.vg.lvs.empty() && !force) {
    size_t visible = 0;
    for (const LogicalVolume& lv : current.vg.lvs) visible += lv_user_visible(current.vg, lv) ? 1U : 0U;
    return Status::Error(
        EBUSY, fmt::format("Volume group \"{}\" still contains {} logical volume(s)", vg_name, visible));
  }
  if (!current.missing_pvs.empty()) {
    return Status::Error(EIO, fmt::format("Cannot remove volume group \"{}\": PV {} is missing", vg_name,
                                          current.missing_pvs.front()));
  }
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvWrite> pvs, open_pvs_for_commit(current.vg, current.pv_paths));
  COWSNAP_RETURN_IF_ERROR(archive_before_change(current.vg));
  // Each PV becomes an orphan: its metadata header names no text (one
  // sector, atomic), then its label drops the in-use flag.
  for (PvWrite& w : pvs) {
    for (const MetadataText& m : w.pv.mdas) {
      MdaHeader empty = m.header;
      empty.raw_locns.clear();
      COWSNAP_RETURN_IF_ERROR(write_mda_header(*w.dev, empty, w.path));
    }
    COWSNAP_RETURN_IF_ERROR(set_pv_in_use(w, false));
  }
  return remove_backup(root_.dir(), vg_name);
}

}  // namespace cowsnap::vg
