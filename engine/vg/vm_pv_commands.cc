// pvcreate and pvremove: turning a file or device into an orphan PV
// listed in the devices file, and back. They take the global lock only; a
// PV that belongs to a VG is refused, as lvm2 refuses it without -ff.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/volume_manager.h"

namespace cowsnap::vg {

Result<PvHeader> VolumeManager::pvcreate(const std::string& path, uint64_t size_bytes,
                                         const PvCreateOptions& options) {
  const std::string abs = absolute_path(path);
  COWSNAP_ASSIGN_OR_RETURN(FileLock lock, root_.lock_global());
  COWSNAP_ASSIGN_OR_RETURN(const bool exists, device_exists(abs));
  if (exists) {
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

}  // namespace cowsnap::vg
