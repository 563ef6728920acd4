// VolumeManager's metadata backups (archive before, backup after every
// change), vgcfgbackup, vgcfgrestore and vgck: the ways back from bad
// metadata. See volume_manager.h and metadata_backup.h.
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>

#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/metadata_backup.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/vg_commit.h"
#include "cowsnap/vg/volume_manager.h"

namespace cowsnap::vg {

std::string VolumeManager::command_text() const {
  return options_.command_line.empty() ? "cowsnap" : options_.command_line;
}

Status VolumeManager::archive_before_change(const VolumeGroup& current) const {
  const BackupInfo info{fmt::format("Created *before* executing '{}'", command_text()), host(), now()};
  auto written = write_archive(root_.dir(), current, info);
  if (!written.ok()) {
    return Status::Error(written.status().errnum(),
                         fmt::format("Cannot archive volume group metadata for {} to {}/archive: {}",
                                     current.name, root_.dir(), written.status().message()));
  }
  return Status::Ok();
}

void VolumeManager::backup_after_change(const VolumeGroup& committed, CommitResult* result) const {
  const BackupInfo info{fmt::format("Created *after* executing '{}'", command_text()), host(), now()};
  const std::string dir = root_.dir() + "/backup";
  Status st = ::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST
                  ? write_backup_file(backup_path(root_.dir(), committed.name), committed, info)
                  : Status::FromErrno(dir + ": mkdir");
  // The change is committed already: lvm2 only warns when the backup fails.
  if (!st.ok() && result != nullptr) {
    result->notices.push_back(
        fmt::format("WARNING: Backup of volume group {} metadata failed: {}", committed.name, st.message()));
  }
}

Status VolumeManager::vgcfgbackup(const std::string& vg_name, const std::string& file) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(VgOnDisk current, read_vg(vg_name));
  if (file.empty()) {
    CommitResult r;
    backup_after_change(current.vg, &r);
    if (!r.notices.empty()) return Status::Error(EIO, r.notices.front());
    return Status::Ok();
  }
  // lvm2 records the command line itself as the description of a -f backup.
  return write_backup_file(file, current.vg, BackupInfo{command_text(), host(), now()});
}

Result<CommitResult> VolumeManager::vgcfgrestore(const std::string& vg_name, const std::string& file) {
  const std::string path = file.empty() ? backup_path(root_.dir(), vg_name) : file;
  COWSNAP_ASSIGN_OR_RETURN(FileLock global, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(BackupFile backup, read_backup_file(path));
  if (backup.vg.name != vg_name) {
    return Status::Error(EINVAL, fmt::format("'{}' does not contain volume group '{}'.", path, vg_name));
  }
  COWSNAP_RETURN_IF_ERROR(validate_vg(backup.vg));
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  CommitResult result;
  result.vg = backup.vg;
  uint64_t highest = backup.vg.seqno;
  std::map<std::string, std::string> paths;
  size_t missing = 0;
  Status first_missing;
  for (PhysicalVolume& p : result.vg.pvs) {
    COWSNAP_ASSIGN_OR_RETURN(std::string raw, parse_lvm_id(p.id));
    const ScannedDevice* found = nullptr;
    for (const ScannedDevice& d : s.devices) {
      if (d.pv && d.pv->header.uuid == raw) found = &d;
    }
    if (found == nullptr) {
      if (missing++ == 0)
        first_missing = Status::Error(ENOENT, fmt::format("Couldn't find device with uuid {}.", p.id));
      continue;
    }
    if (!found->vg_name.empty() && found->vg_name != vg_name) {
      return Status::Error(EBUSY, fmt::format("Physical volume {} is in volume group {}, not {}.",
                                              found->path, found->vg_name, vg_name));
    }
    p.device = found->path;
    paths[p.name] = found->path;
  }
  if (missing != 0) {
    return Status::Error(ENOENT,
                         fmt::format("{}\n  Cannot restore Volume Group {} with {} PVs marked as missing.",
                                     first_missing.message(), vg_name, missing));
  }
  if (auto it = s.vgs.find(vg_name); it != s.vgs.end()) {
    highest = std::max(highest, it->second.vg.seqno);
    COWSNAP_RETURN_IF_ERROR(archive_before_change(it->second.vg));
  }
  result.vg.seqno = highest + 1;
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvCommit> pvs, open_pvs_for_commit(result.vg, paths));
  const TextTrailer trailer{"Write from " + command_text(), host(), now()};
  COWSNAP_RETURN_IF_ERROR(commit_vg_text(pvs, vg_to_text(result.vg, TextStyle::kDisk, trailer)));
  for (PvCommit& w : pvs) COWSNAP_RETURN_IF_ERROR(set_pv_in_use(w, true));
  backup_after_change(result.vg, &result);
  return result;
}

Result<VolumeManager::VgckReport> VolumeManager::vgck(const std::string& vg_name, bool update_metadata) {
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_vg(vg_name));
  COWSNAP_ASSIGN_OR_RETURN(ScanResult s, scan());
  VgckReport report;
  auto it = s.vgs.find(vg_name);
  std::set<std::string> vg_paths;
  if (it != s.vgs.end()) {
    for (const auto& [name, path] : it->second.pv_paths) vg_paths.insert(path);
  }
  for (const ScannedDevice& d : s.devices) {
    if (d.vg_name == vg_name || vg_paths.count(d.path) != 0) {
      report.warnings.insert(report.warnings.end(), d.warnings.begin(), d.warnings.end());
    }
  }
  if (auto b = s.broken_vgs.find(vg_name); b != s.broken_vgs.end()) return b->second;
  if (it == s.vgs.end()) return Status::Error(ENOENT, fmt::format("Volume group \"{}\" not found", vg_name));
  const VgOnDisk& current = it->second;
  if (!update_metadata) return report;
  COWSNAP_ASSIGN_OR_RETURN(std::vector<PvCommit> pvs, open_pvs_for_commit(current.vg, current.pv_paths));
  std::vector<PvCommit> to_write;
  for (PvCommit& w : pvs) {
    const PvMetadata md = read_pv_metadata(w.pv);
    for (const PvMetadata::Repair& r : md.repairs) {
      w.only.push_back(r.mda);
      report.repaired.push_back(fmt::format("WARNING: repairing bad metadata (0x{:x}) in mda{} at {} on {}.",
                                            r.bad_fields, r.mda + 1, w.pv.mdas[r.mda].header.start, w.path));
    }
    // A good area holding another VG's text, or none, is left alone: only
    // the areas found bad or stale are rewritten.
    if (!w.only.empty()) to_write.push_back(std::move(w));
  }
  if (to_write.empty()) return report;
  const TextTrailer trailer{"Write from " + command_text(), host(), now()};
  COWSNAP_RETURN_IF_ERROR(commit_vg_text(to_write, vg_to_text(current.vg, TextStyle::kDisk, trailer)));
  return report;
}

}  // namespace cowsnap::vg
