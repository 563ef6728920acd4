// The VolumeManager's core: opening a root, the clock and host name that
// go into metadata, and edit_vg, the lock-read-edit-validate-commit cycle
// every editing command goes through (volume_manager.h, steps 1-4). Also
// the lvm2-worded helpers all the command files share
// (volume_manager_internal.h). The commands themselves live by what they
// work on: vm_scan.cc (devices file, scanning, reading), vm_pv_commands.cc,
// vm_vg_commands.cc, vm_lv_commands.cc, vm_snapshot_commands.cc and
// vg_recovery.cc (backups, restore, vgck).
#include "cowsnap/vg/volume_manager.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/vg_commit.h"
#include "volume_manager_internal.h"

namespace cowsnap::vg {
namespace detail {

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

}  // namespace detail

namespace {

using PvWrite = PvCommit;

}  // namespace

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

Result<CommitResult> VolumeManager::edit_vg(const std::string& vg_name, const EditFn& edit,
                                            const BeforeCommitFn& before_commit) {
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
  if (before_commit) COWSNAP_RETURN_IF_ERROR(before_commit(result.vg));
  TextTrailer trailer{
      options_.command_line.empty() ? "Write from cowsnap" : "Write from " + options_.command_line, host(),
      now()};
  COWSNAP_RETURN_IF_ERROR(archive_before_change(current.vg));
  COWSNAP_RETURN_IF_ERROR(commit_vg_text(pvs, vg_to_text(result.vg, TextStyle::kDisk, trailer)));
  backup_after_change(result.vg, &result);
  return result;
}

}  // namespace cowsnap::vg
