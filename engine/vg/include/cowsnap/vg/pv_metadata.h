// The VG metadata one PV holds, read as lvm2 reads it from the PV's
// metadata areas (one, or two with pvcreate --pvmetadatacopies 2): every
// good copy is parsed, the newest (highest seqno) is the PV's, and every
// bad or older copy gets a warning in lvm2's words, naming the PV and the
// area ("mda1", "mda2"). A bad area never hides the good one; when no area
// is good the PV's VG is unknown, which is said too — never silence.
//
// Pure: works on what read_pv() returned, touches no device.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/vg/physical_volume.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

struct PvMetadata {
  std::optional<VolumeGroup> vg;  // the newest good copy
  size_t mda = 0;                 // index in PvOnDisk::mdas of that copy
  // Areas to rewrite (vgck --updatemetadata), with lvm2's reason bits:
  // 0x4 bad header, 0x8 bad text, 0x10 older than the newest copy.
  struct Repair {
    size_t mda = 0;
    unsigned bad_fields = 0;
  };
  std::vector<Repair> repairs;
  // "WARNING: ..." lines, in the order lvm2 prints them.
  std::vector<std::string> warnings;
};

inline constexpr unsigned kBadMdaHeader = 0x4;
inline constexpr unsigned kBadMdaText = 0x8;
inline constexpr unsigned kBadMdaMismatch = 0x10;

PvMetadata read_pv_metadata(const PvOnDisk& pv);

// A device listed in the devices file carries no LVM2 label (sectors 0-3):
// lvm2's "Device PATH has no PVID (devices file ID)". lvm2 takes the ID from
// its devices file; cowsnap's lists paths only, so the ID is recovered from
// what the lost label left behind: a metadata area at lvm2's default offset
// whose VG text names a PV last seen at PATH. "none" when there is none.
std::string no_label_warning(BlockDevice& dev, const std::string& path);

}  // namespace cowsnap::vg
