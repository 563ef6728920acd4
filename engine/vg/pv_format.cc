#include "cowsnap/vg/pv_format.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "cowsnap/common/little_endian.h"
#include "cowsnap/vg/crc.h"

namespace cowsnap::vg {
namespace {

constexpr std::string_view kLabelId = "LABELONE";
constexpr std::string_view kLabelType = "LVM2 001";
constexpr std::string_view kMdaMagic = " LVM2 x[5A%r0N*>";
// Label fields.
constexpr size_t kLabelSectorAt = 8;
constexpr size_t kLabelCrcAt = 16;
constexpr size_t kLabelOffsetAt = 20;  // the CRC covers from here to the sector's end
constexpr size_t kLabelTypeAt = 24;
constexpr uint32_t kPvHeaderOffset = 32;
// PV header fields, relative to its start.
constexpr size_t kUuidAt = 0;
constexpr size_t kDeviceSizeAt = 32;
constexpr size_t kAreasAt = 40;
constexpr size_t kAreaBytes = 16;
// mda_header fields.
constexpr size_t kMdaMagicAt = 4;
constexpr size_t kMdaVersionAt = 20;
constexpr size_t kMdaStartAt = 24;
constexpr size_t kMdaSizeAt = 32;
constexpr size_t kRawLocnsAt = 40;
constexpr size_t kRawLocnBytes = 24;

bool put_areas(std::span<uint8_t> b, size_t& at, const std::vector<DiskArea>& areas) {
  for (const DiskArea& a : areas) {
    if (at + kAreaBytes > b.size()) return false;
    le::store64(b, at, a.offset_bytes);
    le::store64(b, at + 8, a.size_bytes);
    at += kAreaBytes;
  }
  if (at + kAreaBytes > b.size()) return false;
  at += kAreaBytes;  // the {0,0} terminator: the buffer is zeroed
  return true;
}

bool get_areas(std::span<const uint8_t> b, size_t& at, std::vector<DiskArea>& areas) {
  while (at + kAreaBytes <= b.size()) {
    DiskArea a{le::load64(b, at), le::load64(b, at + 8)};
    at += kAreaBytes;
    if (a.offset_bytes == 0 && a.size_bytes == 0) return true;
    areas.push_back(a);
  }
  return false;
}

}  // namespace

Result<std::array<uint8_t, kLvmSector>> encode_label_sector(const PvHeader& header, uint64_t sector) {
  std::array<uint8_t, kLvmSector> out{};
  std::span<uint8_t> b(out);
  if (header.uuid.size() != 32) {
    return Status::Error(EINVAL, fmt::format("PV uuid \"{}\" is not 32 characters", header.uuid));
  }
  std::memcpy(out.data(), kLabelId.data(), kLabelId.size());
  le::store64(b, kLabelSectorAt, sector);
  le::store32(b, kLabelOffsetAt, kPvHeaderOffset);
  std::memcpy(out.data() + kLabelTypeAt, kLabelType.data(), kLabelType.size());
  std::span<uint8_t> pvh = b.subspan(kPvHeaderOffset);
  std::memcpy(pvh.data() + kUuidAt, header.uuid.data(), 32);
  le::store64(pvh, kDeviceSizeAt, header.device_size_bytes);
  size_t at = kAreasAt;
  bool fits = put_areas(pvh, at, header.data_areas) && put_areas(pvh, at, header.metadata_areas);
  if (fits && header.extension_version != 0) {
    fits = at + 8 <= pvh.size();
    if (fits) {
      le::store32(pvh, at, header.extension_version);
      le::store32(pvh, at + 4, header.extension_flags);
      at += 8;
      fits = put_areas(pvh, at, header.bootloader_areas);
    }
  }
  if (!fits) return Status::Error(EINVAL, "PV header does not fit in one sector");
  le::store32(b, kLabelCrcAt, lvm_crc32(b.subspan(kLabelOffsetAt)));
  return out;
}

bool looks_like_label(std::span<const uint8_t> sector, uint64_t sector_number) {
  return sector.size() >= kLvmSector && std::memcmp(sector.data(), kLabelId.data(), kLabelId.size()) == 0 &&
         le::load64(sector, kLabelSectorAt) == sector_number;
}

Result<PvHeader> decode_label_sector(std::span<const uint8_t> sector, uint64_t sector_number,
                                     std::string_view name) {
  if (!looks_like_label(sector, sector_number)) {
    return Status::Error(EINVAL, fmt::format("{}: no label in sector {}", name, sector_number));
  }
  std::span<const uint8_t> b = sector.first(kLvmSector);
  if (le::load32(b, kLabelCrcAt) != lvm_crc32(b.subspan(kLabelOffsetAt))) {
    return Status::Error(EINVAL, fmt::format("{}: label checksum mismatch", name));
  }
  if (std::memcmp(b.data() + kLabelTypeAt, kLabelType.data(), kLabelType.size()) != 0) {
    return Status::Error(
        EINVAL, fmt::format("{}: unsupported label type \"{}\"", name,
                            std::string_view(reinterpret_cast<const char*>(b.data() + kLabelTypeAt), 8)));
  }
  const uint32_t offset = le::load32(b, kLabelOffsetAt);
  if (offset < kLabelTypeAt + 8 || offset + kAreasAt > kLvmSector) {
    return Status::Error(EINVAL, fmt::format("{}: bad PV header offset {}", name, offset));
  }
  std::span<const uint8_t> pvh = b.subspan(offset);
  PvHeader h;
  h.uuid.assign(reinterpret_cast<const char*>(pvh.data() + kUuidAt), 32);
  h.device_size_bytes = le::load64(pvh, kDeviceSizeAt);
  size_t at = kAreasAt;
  if (!get_areas(pvh, at, h.data_areas) || !get_areas(pvh, at, h.metadata_areas)) {
    return Status::Error(EINVAL, fmt::format("{}: bad PV header: unterminated area list", name));
  }
  h.extension_version = 0;
  h.extension_flags = 0;
  if (at + 8 <= pvh.size()) {
    h.extension_version = le::load32(pvh, at);
    h.extension_flags = le::load32(pvh, at + 4);
    at += 8;
    if (h.extension_version != 0 && !get_areas(pvh, at, h.bootloader_areas)) {
      return Status::Error(EINVAL, fmt::format("{}: bad PV header: unterminated bootloader area list", name));
    }
  }
  return h;
}

std::array<uint8_t, kMdaHeaderSize> encode_mda_header(const MdaHeader& header) {
  std::array<uint8_t, kMdaHeaderSize> out{};
  std::span<uint8_t> b(out);
  std::memcpy(out.data() + kMdaMagicAt, kMdaMagic.data(), kMdaMagic.size());
  le::store32(b, kMdaVersionAt, header.version);
  le::store64(b, kMdaStartAt, header.start);
  le::store64(b, kMdaSizeAt, header.size);
  size_t at = kRawLocnsAt;
  for (const RawLocn& r : header.raw_locns) {
    // The last slot must stay zero as the terminator.
    assert(at + 2 * kRawLocnBytes <= kMdaHeaderSize);
    le::store64(b, at, r.offset);
    le::store64(b, at + 8, r.size);
    le::store32(b, at + 16, r.checksum);
    le::store32(b, at + 20, r.flags);
    at += kRawLocnBytes;
  }
  le::store32(b, 0, lvm_crc32(b.subspan(4)));
  return out;
}

Result<MdaHeader> decode_mda_header(std::span<const uint8_t> sector, uint64_t expected_start,
                                    std::string_view name) {
  std::span<const uint8_t> b = sector.first(kMdaHeaderSize);
  if (le::load32(b, 0) != lvm_crc32(b.subspan(4))) {
    return Status::Error(EINVAL, fmt::format("{}: metadata area header checksum mismatch", name));
  }
  if (std::memcmp(b.data() + kMdaMagicAt, kMdaMagic.data(), kMdaMagic.size()) != 0) {
    return Status::Error(EINVAL, fmt::format("{}: bad metadata area magic", name));
  }
  MdaHeader h;
  h.version = le::load32(b, kMdaVersionAt);
  if (h.version != kMdaHeaderVersion) {
    return Status::Error(EINVAL, fmt::format("{}: unsupported metadata area version {}", name, h.version));
  }
  h.start = le::load64(b, kMdaStartAt);
  h.size = le::load64(b, kMdaSizeAt);
  if (h.start != expected_start) {
    return Status::Error(EINVAL, fmt::format("{}: metadata area header says start {}, expected {}", name,
                                             h.start, expected_start));
  }
  for (size_t at = kRawLocnsAt; at + kRawLocnBytes <= kMdaHeaderSize; at += kRawLocnBytes) {
    RawLocn r{le::load64(b, at), le::load64(b, at + 8), le::load32(b, at + 16), le::load32(b, at + 20)};
    if (r.offset == 0) break;  // lvm2 ends the list at the first zero offset
    h.raw_locns.push_back(r);
  }
  return h;
}

}  // namespace cowsnap::vg
