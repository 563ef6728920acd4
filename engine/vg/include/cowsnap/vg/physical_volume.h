// One LVM2 physical volume on a device: formatting (pvcreate), reading and
// verifying label, PV header and metadata areas, and committing VG text.
//
// Thread safety: none; callers serialise per device (the VG lock does).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"
#include "cowsnap/vg/metadata_area.h"
#include "cowsnap/vg/pv_format.h"

namespace cowsnap::vg {

// Opens a PV's file or block device. When the path does not exist and
// create_size_bytes > 0, creates a sparse file of that size first.
Result<std::shared_ptr<BlockDevice>> open_pv_device(const std::string& path, bool read_only,
                                                    uint64_t create_size_bytes = 0);

struct PvCreateOptions {
  uint64_t pe_start_sectors = kDefaultPeStartSectors;  // data area start
  uint64_t mda_offset_bytes = kDefaultMdaOffsetBytes;  // the metadata area runs to pe_start
  std::string uuid;                                    // 32 raw or 38 dashed chars; empty: a new random id
  // pvcreate --pvmetadatacopies: 1, or 2 for a second metadata area at the
  // device's end, placed as lvm2 places it (second_mda_area()).
  uint32_t metadata_copies = 1;
};

// Where lvm2 2.03 puts a PV's second metadata area: as large as the first
// (`first_mda_bytes`), ending at the device's end, its start aligned down
// to 1 MiB (lvm2's default data alignment) — so it is usually a little
// larger than the first. EINVAL when it would not lie past pe_start.
Result<DiskArea> second_mda_area(uint64_t device_bytes, uint64_t pe_start_bytes, uint64_t first_mda_bytes);

// What is on a PV. `mdas` has one entry per metadata area of the header,
// in order.
struct PvOnDisk {
  std::string name;  // path, used in messages
  uint64_t device_bytes = 0;
  uint64_t label_sector = kDefaultLabelSector;
  PvHeader header;
  std::vector<MetadataText> mdas;

  [[nodiscard]] uint64_t pe_start_bytes() const;  // first data area's offset
  // The newest VG text among the metadata areas, if any.
  [[nodiscard]] const std::optional<std::string>& text() const;
};

// Writes a label (sector 1), zeroes sectors 0-3 otherwise, and an empty
// metadata area, the way lvm2's pvcreate lays them out. REQUIRES: the
// caller checked the device holds no PV it must keep. EINVAL when the
// device is too small for pe_start plus one 512-byte sector.
Result<PvHeader> format_pv(BlockDevice& dev, const std::string& name, const PvCreateOptions& options);

// Reads and verifies everything. Errors: ENODATA "NAME: not an LVM2 PV: no
// label in sectors 0-3"; EINVAL for label checksum/magic errors ("NAME:
// label checksum mismatch", ...); EINVAL "NAME: truncated: device is N
// bytes, header says M". A bad metadata area (header or text) is not an
// error of the PV: its MetadataText carries the problem (see
// metadata_area.h) and pv_metadata.h turns it into lvm2's warnings.
Result<PvOnDisk> read_pv(BlockDevice& dev, const std::string& name);

// Does the device carry an LVM2 label (without verifying the rest)?
Result<bool> has_pv_label(BlockDevice& dev);

// Rewrites the label sector (e.g. to set or clear kPvExtUsed). One sector:
// atomic. Flushes.
Status write_pv_label(BlockDevice& dev, const PvOnDisk& pv, const PvHeader& header);

// Wipes the label sector (pvremove). Flushes.
Status wipe_pv_label(BlockDevice& dev, const PvOnDisk& pv);

}  // namespace cowsnap::vg
