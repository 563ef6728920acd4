#include "cowsnap/vg/volume_manager.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <ctime>
#include <set>

#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/metadata_backup.h"
#include "cowsnap/vg/names.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/vg_commit.h"

namespace cowsnap::vg {
namespace {

// lvm2's MAX_EXTENT_SIZE for text-format VGs.
constexpr uint64_t kMaxExtentSectors = 0xffffffffULL;
// lvm2 zeroes the start of a new LV (lvcreate -Zy) so that stale
// signatures, or a stale COW store header, are not picked up.
constexpr uint64_t kZeroNewLvBytes = 4096;
constexpr uint64_t kSnapshotMinChunks = 3;

std::string size_string(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++u;
  }
  return fmt::format("{:.2f} {}", v, kUnits[u]);
}

Status vg_not_found(const std::string& name) {
  return Status::Error(ENOENT, fmt::format("Volume group \"{}\" not found", name));
}

Status lv_not_found(const std::string& vg, const std::string& lv) {
  return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg, lv));
}

// Does any segment of a type cowsnap does not model mention `lv_name`?
// Such LVs are sub-LVs of something lvm2 built (thin pools, raid images);
// renaming or removing them would corrupt it.
bool referenced_by_unknown(const VolumeGroup& vg, const std::string& lv_name) {
  std::function<bool(const ConfigValue&)> mentions = [&](const ConfigValue& v) {
    if (v.is_string()) return v.as_string() == lv_name;
    if (v.is_array()) {
      return std::any_of(v.items().begin(), v.items().end(), mentions);
    }
    return false;
  };
  std::function<bool(const ConfigSection&)> scan = [&](const ConfigSection& s) {
    for (const ConfigEntry& e : s.entries) {
      if (e.is_section ? scan(e.section) : mentions(e.value)) return true;
    }
    return false;
  };
  for (const LogicalVolume& lv : vg.lvs) {
    for (const Segment& seg : lv.segments) {
      if (!seg.is_striped() && !seg.is_snapshot() && scan(seg.extra)) return true;
    }
  }
  return false;
}

using PvWrite = PvCommit;

}  // namespace

// ------------------------------------------------------------- free helpers

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

Status validate_chunk_size(uint64_t sectors) {
  if (!std::has_single_bit(sectors) || sectors < kMinChunkSectors || sectors > kMaxChunkSectors) {
    return Status::Error(EINVAL, fmt::format("Chunk size must be a power of 2 in the range 4K to 512K "
                                             "(got {} sectors).",
                                             sectors));
  }
  return Status::Ok();
}

uint64_t extents_for_bytes(const VolumeGroup& vg, uint64_t bytes) {
  const uint64_t ext = vg.extent_bytes();
  return (bytes + ext - 1) / ext;
}

uint64_t cow_max_extents(const VolumeGroup& vg, uint64_t origin_extents, uint64_t chunk_sectors) {
  const uint64_t origin_sectors = origin_extents * vg.extent_size;
  const uint64_t origin_chunks = (origin_sectors + chunk_sectors - 1) / chunk_sectors;
  const uint64_t per_area = chunk_sectors * 512 / 16;  // exceptions per metadata chunk
  // The + per_area makes room for a terminating metadata chunk when the
  // data chunks fill the last area exactly (as lvm2 computes it).
  const uint64_t metadata_chunks = (origin_chunks + per_area) / per_area;
  const uint64_t sectors = (1 + origin_chunks + metadata_chunks) * chunk_sectors;
  return (sectors + vg.extent_size - 1) / vg.extent_size;
}

PvPathLookup VgOnDisk::path_lookup() const {
  return [paths = pv_paths](const PhysicalVolume& pv) {
    auto it = paths.find(pv.name);
    return it != paths.end() ? it->second : pv.device;
  };
}

// ------------------------------------------------------------ VolumeManager

Result<VolumeManager> VolumeManager::open(const std::string& root_dir, VolumeManagerOptions options) {
  COWSNAP_ASSIGN_OR_RETURN(Root root, Root::open(root_dir));
  return VolumeManager(std::move(root), std::move(options));
}

int64_t VolumeManager::now() const {
  return options_.clock ? options_.clock() : static_cast<int64_t>(::time(nullptr));
}

std::string VolumeManager::host() const {
  if (!options_.host_name.empty()) return options_.host_name;
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
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

Result<CommitResult> VolumeManager::edit_vg(const std::string& vg_name, const EditFn& edit) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(VgOnDisk current, read_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvLock> owned, claim_pvs_for_edit(current.pv_paths, root_.dir()));
  if (!current.missing_pvs.empty()) {
    return Status::Error(EIO, fmt::format("Cannot change volume group \"{}\": PV {} is missing", vg_name,
                                          current.missing_pvs.front()));
  }
  if (!current.vg.writable()) {
    return Status::Error(EROFS, fmt::format("Volume group \"{}\" is read-only or not resizeable", vg_name));
  }
  CommitResult result;
  result.vg = current.vg;
  COWSNAP_RETURN_IF_ERROR(edit(result.vg, result, current.pv_paths));
  sort_lvs_like_lvm2(result.vg);
  result.vg.seqno = current.vg.seqno + 1;
  // PVs the edit added (vgextend) are found through the path it gave them.
  std::map<std::string, std::string> paths = current.pv_paths;
  for (PhysicalVolume& p : result.vg.pvs) {
    if (auto it = paths.find(p.name); it != paths.end()) {
      p.device = it->second;
    } else {
      paths[p.name] = p.device;
    }
  }
  COWSNAP_RETURN_IF_ERROR(validate_vg(result.vg));
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvWrite> pvs, open_pvs_for_commit(result.vg, paths));
  TextTrailer trailer{
      options_.command_line.empty() ? "Write from cowsnap" : "Write from " + options_.command_line, host(),
      now()};
  COWSNAP_RETURN_IF_ERROR(archive_before_change(current.vg));
  COWSNAP_RETURN_IF_ERROR(commit_vg_text(pvs, vg_to_text(result.vg, TextStyle::kDisk, trailer)));
  backup_after_change(result.vg, &result);
  return result;
}

// ---------------------------------------------------------------------- PVs

Result<PvHeader> VolumeManager::pvcreate(const std::string& path, uint64_t size_bytes,
                                         const PvCreateOptions& options) {
  const std::string abs = absolute_path(path);
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_global());
  if (::access(abs.c_str(), F_OK) == 0) {
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(abs, true));
    COWSNAP_ASSIGN_OR_RETURN(bool labelled, has_pv_label(*dev));
    if (labelled) {
      auto pv = read_pv(*dev, abs);
      if (pv.ok() && pv->text()) {
        auto vg = parse_vg_text(*pv->text());
        return Status::Error(EEXIST, fmt::format("Can't initialize physical volume \"{}\" of volume group "
                                                 "\"{}\" without -ff",
                                                 abs, vg.ok() ? vg->name : "?"));
      }
      return Status::Error(EEXIST, fmt::format("{} is already an LVM2 physical volume", abs));
    }
  } else if (size_bytes == 0) {
    return Status::Error(ENOENT, fmt::format("{} does not exist and no size was given to create it", abs));
  }
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(abs, false, size_bytes));
  COWSNAP_ASSIGN_OR_RETURN(PvHeader header, format_pv(*dev, abs, options));
  Status added = root_.add_device(abs);
  if (!added.ok() && added.errnum() != EEXIST) return added;
  return header;
}

Status VolumeManager::pvremove(const std::string& path) {
  const std::string abs = absolute_path(path);
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  for (const ScannedDevice& d : s.devices) {
    if (d.path == abs && !d.vg_name.empty()) {
      return Status::Error(
          EBUSY, fmt::format("PV {} is used by VG {} so please use vgreduce first.", abs, d.vg_name));
    }
  }
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(abs, false));
  COWSNAP_ASSIGN_OR_RETURN(PvOnDisk pv, read_pv(*dev, abs));
  if ((pv.header.extension_flags & kPvExtUsed) != 0) {
    return Status::Error(EBUSY, fmt::format("PV {} is marked as used by a VG that was not found", abs));
  }
  COWSNAP_RETURN_IF_ERROR(wipe_pv_label(*dev, pv));
  Status removed = root_.remove_device(abs);
  if (!removed.ok() && removed.errnum() != ENOENT) return removed;
  return Status::Ok();
}

// ---------------------------------------------------------------------- VGs

namespace {

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

}  // namespace

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
        uint64_t next = 0;
        for (const PhysicalVolume& p : vg.pvs) {
          uint64_t n = 0;
          if (p.name.size() > 2 && p.name.substr(0, 2) == "pv" &&
              std::all_of(p.name.begin() + 2, p.name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            n = std::stoull(p.name.substr(2)) + 1;
          }
          next = std::max(next, n);
        }
        for (const ScannedDevice* d : devs) {
          COWSNAP_ASSIGN_OR_RETURN(PhysicalVolume p,
                                   new_vg_pv(*d, fmt::format("pv{}", next++), vg.extent_size));
          added_paths.push_back(d->path);
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

// ---------------------------------------------------------------------- LVs

namespace {

LogicalVolume new_lv(const std::string& name, int64_t time, const std::string& host) {
  LogicalVolume lv;
  lv.name = name;
  lv.id = format_lvm_id(new_lvm_id());
  lv.creation_time = time;
  lv.creation_host = host;
  return lv;
}

Status check_new_lv_name(const VolumeGroup& vg, const std::string& lv_name) {
  COWSNAP_RETURN_IF_ERROR(validate_lv_name(vg.name, lv_name));
  if (vg.find_lv(lv_name) != nullptr) {
    return Status::Error(
        EEXIST, fmt::format("Logical volume \"{}\" already exists in volume group \"{}\"", lv_name, vg.name));
  }
  if (vg.max_lv != 0) {
    size_t visible = 0;
    for (const LogicalVolume& lv : vg.lvs) visible += lv_user_visible(vg, lv) ? 1U : 0U;
    if (visible + 1 > vg.max_lv) {
      return Status::Error(EINVAL, fmt::format("Maximum number of logical volumes ({}) reached in volume "
                                               "group {}",
                                               vg.max_lv, vg.name));
    }
  }
  return Status::Ok();
}

// Zeroes the first bytes of an LV being created: free extents until the
// commit, so a failure here changes nothing that is in use.
Status zero_lv_start(const VolumeGroup& vg, const LogicalVolume& lv,
                     const std::map<std::string, std::string>& pv_paths, uint64_t bytes) {
  for (const Segment& s : lv.segments) {
    if (bytes == 0) break;
    const PhysicalVolume* pv = vg.find_pv(s.stripes.front().pv_name);
    auto it = pv_paths.find(pv->name);
    if (it == pv_paths.end()) return Status::Error(EIO, fmt::format("PV {} is missing", pv->name));
    const uint64_t n = std::min(bytes, s.extent_count * vg.extent_bytes());
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> dev, open_pv_device(it->second, false));
    const uint64_t at = pv->pe_start * 512 + s.stripes.front().first_pe * vg.extent_bytes();
    COWSNAP_RETURN_IF_ERROR(dev->write_zeroes(at, n));
    COWSNAP_RETURN_IF_ERROR(dev->flush());
    bytes -= n;
  }
  return Status::Ok();
}

std::string next_snapshot_name(const VolumeGroup& vg) {
  // lvm2 names the internal LV "snapshot%d" with one more than the highest
  // such number in use.
  int64_t high = -1;
  for (const LogicalVolume& lv : vg.lvs) {
    if (lv.name.size() <= 8 || lv.name.substr(0, 8) != "snapshot") continue;
    const std::string digits = lv.name.substr(8);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (digits.size() > 9) continue;
    high = std::max<int64_t>(high, std::stoll(digits));
  }
  return fmt::format("snapshot{}", high + 1);
}

}  // namespace

Result<CommitResult> VolumeManager::lvcreate(const std::string& vg_name, const std::string& lv_name,
                                             uint64_t extents) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths& pv_paths) -> Status {
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, lv_name));
    if (extents == 0) return Status::Error(EINVAL, "Unable to create new logical volume with no extents.");
    LogicalVolume lv = new_lv(lv_name, now(), host());
    COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, lv, extents));
    append_segments(lv, segs);
    COWSNAP_RETURN_IF_ERROR(zero_lv_start(vg, lv, pv_paths, kZeroNewLvBytes));
    vg.lvs.push_back(std::move(lv));
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvcreate_snapshot(const std::string& vg_name,
                                                      const std::string& origin_lv,
                                                      const std::string& snap_name, uint64_t cow_extents,
                                                      uint64_t chunk_sectors) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& result, const PvPaths& pv_paths) -> Status {
    COWSNAP_RETURN_IF_ERROR(validate_chunk_size(chunk_sectors));
    const LogicalVolume* origin = vg.find_lv(origin_lv);
    if (origin == nullptr) return lv_not_found(vg_name, origin_lv);
    switch (lv_role(vg, origin_lv)) {
      case LvRole::kSnapshotCow:
      case LvRole::kSnapshotInternal:
        return Status::Error(EINVAL, "Snapshots of snapshots are not supported.");
      case LvRole::kOther:
        return Status::Error(
            EINVAL, fmt::format("Snapshots of {}/{} (segment type {}) are not supported.", vg_name, origin_lv,
                                origin->segments.empty() ? "none" : origin->segments.front().type));
      case LvRole::kPlain:
      case LvRole::kOrigin:
        break;
    }
    if (!origin->visible()) {
      return Status::Error(
          EINVAL, fmt::format("Snapshots of hidden volume {}/{} are not supported.", vg_name, origin_lv));
    }
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, snap_name));
    const uint64_t origin_extents = origin->extent_count();
    const uint64_t max = cow_max_extents(vg, origin_extents, chunk_sectors);
    if (cow_extents > max) {
      result.notices.push_back(fmt::format("Reducing COW size {} down to maximum usable size {}.",
                                           size_string(cow_extents * vg.extent_bytes()),
                                           size_string(max * vg.extent_bytes())));
      cow_extents = max;
    }
    if (cow_extents * vg.extent_size < kSnapshotMinChunks * chunk_sectors) {
      const uint64_t need = (kSnapshotMinChunks * chunk_sectors + vg.extent_size - 1) / vg.extent_size;
      return Status::Error(EINVAL, fmt::format("Snapshot volume cannot be smaller than 3 chunks ({} extents, "
                                               "{}).",
                                               need, size_string(kSnapshotMinChunks * chunk_sectors * 512)));
    }
    LogicalVolume cow = new_lv(snap_name, now(), host());
    cow.status = {"READ", "WRITE"};  // lvm2 hides the COW LV behind snapshotN
    COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, cow, cow_extents));
    append_segments(cow, segs);
    LogicalVolume snap = new_lv(next_snapshot_name(vg), now(), host());
    Segment seg;
    seg.type = "snapshot";
    seg.extent_count = origin_extents;  // lvm2 records the origin's size here
    seg.chunk_size = chunk_sectors;
    seg.origin = origin_lv;
    seg.cow_store = snap_name;
    snap.segments.push_back(std::move(seg));
    // A zeroed first chunk makes the store layer create a new store rather
    // than trust whatever the free extents held.
    COWSNAP_RETURN_IF_ERROR(zero_lv_start(vg, cow, pv_paths, std::max(kZeroNewLvBytes, chunk_sectors * 512)));
    vg.lvs.push_back(std::move(cow));
    vg.lvs.push_back(std::move(snap));
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvremove(const std::string& vg_name, const std::string& lv_name,
                                             bool force) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult& result, const PvPaths&) -> Status {
    if (vg.find_lv(lv_name) == nullptr) return lv_not_found(vg_name, lv_name);
    std::set<std::string> doomed;
    switch (lv_role(vg, lv_name)) {
      case LvRole::kSnapshotInternal: {
        auto ref = snapshot_for(vg, lv_name);
        return Status::Error(EINVAL, fmt::format("{}/{} is the internal part of snapshot \"{}\": remove that "
                                                 "instead",
                                                 vg_name, lv_name, ref ? ref->cow_lv : "?"));
      }
      case LvRole::kSnapshotCow: {
        auto ref = snapshot_for(vg, lv_name);
        doomed = {ref->cow_lv, ref->internal_lv};
        break;
      }
      case LvRole::kOrigin: {
        auto snaps = snapshots_of(vg, lv_name);
        if (!force) {
          std::string names;
          for (const SnapshotRef& s : snaps) names += (names.empty() ? "" : ", ") + s.cow_lv;
          return Status::Error(EBUSY, fmt::format("Logical volume {}/{} has {} snapshot(s) ({}): remove them "
                                                  "first, or force to remove them too",
                                                  vg_name, lv_name, snaps.size(), names));
        }
        for (const SnapshotRef& s : snaps) {
          doomed.insert(s.cow_lv);
          doomed.insert(s.internal_lv);
          result.notices.push_back(fmt::format("Logical volume \"{}\" successfully removed.", s.cow_lv));
        }
        doomed.insert(lv_name);
        break;
      }
      case LvRole::kPlain:
        doomed = {lv_name};
        break;
      case LvRole::kOther:
        return Status::Error(EINVAL, fmt::format("Removing {}/{} (segment type {}) is not supported", vg_name,
                                                 lv_name, vg.find_lv(lv_name)->segments.front().type));
    }
    for (const std::string& name : doomed) {
      if (referenced_by_unknown(vg, name)) {
        return Status::Error(EBUSY, fmt::format("{}/{} is used by another logical volume", vg_name, name));
      }
    }
    std::erase_if(vg.lvs, [&](const LogicalVolume& lv) { return doomed.count(lv.name) != 0; });
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvrename(const std::string& vg_name, const std::string& old_name,
                                             const std::string& new_name) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths&) -> Status {
    LogicalVolume* lv = vg.find_lv(old_name);
    if (lv == nullptr) return lv_not_found(vg_name, old_name);
    if (old_name == new_name) {
      return Status::Error(EINVAL, fmt::format("Old and new logical volume names must differ"));
    }
    const LvRole role = lv_role(vg, old_name);
    if (role == LvRole::kSnapshotInternal || role == LvRole::kOther || referenced_by_unknown(vg, old_name)) {
      return Status::Error(EINVAL, fmt::format("Cannot rename internal LV \"{}\".", old_name));
    }
    COWSNAP_RETURN_IF_ERROR(check_new_lv_name(vg, new_name));
    lv->name = new_name;
    for (LogicalVolume& other : vg.lvs) {
      for (Segment& s : other.segments) {
        if (!s.is_snapshot()) continue;
        if (s.origin == old_name) s.origin = new_name;
        if (s.cow_store == old_name) s.cow_store = new_name;
      }
    }
    return Status::Ok();
  });
}

Result<CommitResult> VolumeManager::lvresize(const std::string& vg_name, const std::string& lv_name,
                                             uint64_t new_extents) {
  return edit_vg(vg_name, [&](VolumeGroup& vg, CommitResult&, const PvPaths&) -> Status {
    LogicalVolume* lv = vg.find_lv(lv_name);
    if (lv == nullptr) return lv_not_found(vg_name, lv_name);
    const LvRole role = lv_role(vg, lv_name);
    if (role == LvRole::kSnapshotInternal || role == LvRole::kOther) {
      return Status::Error(EINVAL,
                           fmt::format("Cannot resize {}/{}: unsupported volume type", vg_name, lv_name));
    }
    if (role == LvRole::kOrigin) {
      return Status::Error(EBUSY,
                           fmt::format("Cannot resize {}/{} while it has snapshots", vg_name, lv_name));
    }
    for (const Segment& s : lv->segments) {
      if (!s.is_linear()) {
        return Status::Error(
            EINVAL, fmt::format("Cannot resize {}/{}: only linear segments are supported", vg_name, lv_name));
      }
    }
    const uint64_t cur = lv->extent_count();
    if (new_extents == cur) {
      return Status::Error(
          EINVAL, fmt::format("New size ({} extents) matches existing size ({} extents).", new_extents, cur));
    }
    if (new_extents == 0) return Status::Error(EINVAL, "Cannot resize a logical volume to 0 extents");
    if (new_extents > cur) {
      COWSNAP_ASSIGN_OR_RETURN(std::vector<Segment> segs, allocate_linear(vg, *lv, new_extents - cur));
      append_segments(*lv, segs);
      return Status::Ok();
    }
    if (role == LvRole::kSnapshotCow) {
      return Status::Error(EINVAL,
                           fmt::format("Shrinking snapshot {}/{} is not supported", vg_name, lv_name));
    }
    while (lv->extent_count() > new_extents) {
      Segment& last = lv->segments.back();
      const uint64_t excess = lv->extent_count() - new_extents;
      if (last.extent_count <= excess) {
        lv->segments.pop_back();
      } else {
        last.extent_count -= excess;
      }
    }
    return Status::Ok();
  });
}

Result<std::vector<LinearPiece>> VolumeManager::lv_map(const std::string& vg_name,
                                                       const std::string& lv_name) const {
  COWSNAP_ASSIGN_OR_RETURN(VgOnDisk v, read_vg(vg_name));
  return linear_map(v.vg, lv_name, v.path_lookup());
}

}  // namespace cowsnap::vg
