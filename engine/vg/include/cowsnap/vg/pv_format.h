// The binary structures at the start of an LVM2 physical volume: the label
// (one sector, in sector 0..3, normally 1), the PV header that follows it in
// the same sector, and the 512-byte mda_header at the start of each metadata
// area. All little-endian; the layout is described in docs/lvm2-metadata.md.
//
// These functions only encode and decode bytes; reading and writing devices
// is physical_volume.h's job. Decoders verify every checksum and magic and
// say what failed, prefixed with the `name` they are given (a path).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

inline constexpr uint64_t kLvmSector = 512;
inline constexpr uint64_t kLabelScanSectors = 4;  // lvm2 looks in sectors 0-3
inline constexpr uint64_t kDefaultLabelSector = 1;
inline constexpr uint32_t kPvHeaderExtensionVersion = 2;
inline constexpr uint32_t kPvExtUsed = 1;  // PV belongs to a VG
inline constexpr uint32_t kMdaHeaderVersion = 1;
inline constexpr uint64_t kMdaHeaderSize = 512;
inline constexpr uint32_t kRawLocnIgnored = 1;  // raw_locn flag: mda ignored
// Where pvcreate puts things by default, as lvm2 2.03 does.
inline constexpr uint64_t kDefaultMdaOffsetBytes = 4096;
inline constexpr uint64_t kDefaultPeStartSectors = 2048;  // 1 MiB

// {offset, size} in bytes; a data area of size 0 runs to the device's end.
struct DiskArea {
  uint64_t offset_bytes = 0;
  uint64_t size_bytes = 0;
  bool operator==(const DiskArea&) const = default;
};

// The PV header (with its v2 extension) as stored after the label.
struct PvHeader {
  std::string uuid;  // 32 chars, no dashes
  uint64_t device_size_bytes = 0;
  std::vector<DiskArea> data_areas;      // normally one: {pe_start, 0}
  std::vector<DiskArea> metadata_areas;  // normally one: {4096, pe_start - 4096}
  uint32_t extension_version = kPvHeaderExtensionVersion;
  uint32_t extension_flags = 0;  // kPvExtUsed when in a VG
  std::vector<DiskArea> bootloader_areas;
  bool operator==(const PvHeader&) const = default;
};

// One sector: "LABELONE", sector number, crc, offset 32, "LVM2 001", then
// the PV header. EINVAL when the header does not fit in the sector.
Result<std::array<uint8_t, kLvmSector>> encode_label_sector(const PvHeader& header,
                                                            uint64_t sector = kDefaultLabelSector);

// Is there a "LABELONE" label in this sector (magic and sector number only)?
bool looks_like_label(std::span<const uint8_t> sector, uint64_t sector_number);

// Decodes a sector that looks_like_label(). Errors (EINVAL, message
// "NAME: ..."): "label checksum mismatch", "unsupported label type ...",
// "bad PV header ...".
Result<PvHeader> decode_label_sector(std::span<const uint8_t> sector, uint64_t sector_number,
                                     std::string_view name);

// One metadata-area location: where the current text is, relative to the
// area's start, and its checksum.
struct RawLocn {
  uint64_t offset = 0;
  uint64_t size = 0;  // bytes, including lvm2's terminating NUL
  uint32_t checksum = 0;
  uint32_t flags = 0;
  bool operator==(const RawLocn&) const = default;
};

struct MdaHeader {
  uint32_t version = kMdaHeaderVersion;
  uint64_t start = 0;  // absolute byte offset of this header on the device
  uint64_t size = 0;   // of the whole metadata area, header included
  // Usually one (the current text) or none (a PV not yet in a VG).
  std::vector<RawLocn> raw_locns;
  bool operator==(const MdaHeader&) const = default;
};

std::array<uint8_t, kMdaHeaderSize> encode_mda_header(const MdaHeader& header);

// Errors (EINVAL, "NAME: ..."): "metadata area header checksum mismatch",
// "bad metadata area magic", "unsupported metadata area version N",
// "metadata area header says start X, expected Y".
Result<MdaHeader> decode_mda_header(std::span<const uint8_t> sector, uint64_t expected_start,
                                    std::string_view name);

}  // namespace cowsnap::vg
