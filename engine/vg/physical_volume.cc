#include "cowsnap/vg/physical_volume.h"

#include <fmt/format.h>

#include <cerrno>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/lvm_id.h"

namespace cowsnap::vg {
namespace {

constexpr uint64_t kLabelAreaBytes = kLabelScanSectors * kLvmSector;
// lvm2 refuses PVs smaller than this (pvcreate: "too small (min 2.00 MiB)").
constexpr uint64_t kMinPvBytes = uint64_t{2} << 20;
// lvm2's default data alignment, which also aligns the second mda's start.
constexpr uint64_t kMdaAlignBytes = uint64_t{1} << 20;

// read_metadata_area failed: is the header good (then the text is bad)?
MetadataText bad_area(BlockDevice& dev, const DiskArea& area, const std::string& name, Status why) {
  MetadataText m;
  m.problem = std::move(why);
  m.header.start = area.offset_bytes;
  m.header.size = area.size_bytes;
  std::array<uint8_t, kMdaHeaderSize> sector{};
  Result<MdaHeader> h = Status::Error(EINVAL, "unreadable");
  if (area.offset_bytes + kMdaHeaderSize <= dev.size_bytes() && dev.read(area.offset_bytes, sector).ok()) {
    h = decode_mda_header(sector, area.offset_bytes, name);
  }
  if (h.ok() && h->size == area.size_bytes) {
    m.header = std::move(*h);
  } else {
    m.header_bad = true;
  }
  return m;
}

}  // namespace

Result<std::shared_ptr<BlockDevice>> open_pv_device(const std::string& path, bool read_only,
                                                    uint64_t create_size_bytes) {
  return open_device(path, {.read_only = read_only, .create_size_bytes = create_size_bytes});
}

uint64_t PvOnDisk::pe_start_bytes() const {
  return header.data_areas.empty() ? 0 : header.data_areas.front().offset_bytes;
}

const std::optional<std::string>& PvOnDisk::text() const {
  static const std::optional<std::string> kNone;
  for (const MetadataText& m : mdas) {
    if (m.text) return m.text;
  }
  return kNone;
}

Result<DiskArea> second_mda_area(uint64_t device_bytes, uint64_t pe_start_bytes, uint64_t first_mda_bytes) {
  if (first_mda_bytes < device_bytes) {
    const uint64_t start = (device_bytes - first_mda_bytes) / kMdaAlignBytes * kMdaAlignBytes;
    if (start > pe_start_bytes) return DiskArea{start, device_bytes - start};
  }
  return Status::Error(EINVAL, fmt::format("device of {} bytes is too small for a second metadata area of {} "
                                           "bytes after pe_start {}",
                                           device_bytes, first_mda_bytes, pe_start_bytes));
}

Result<PvHeader> format_pv(BlockDevice& dev, const std::string& name, const PvCreateOptions& options) {
  const uint64_t size = dev.size_bytes();
  const uint64_t pe_start = options.pe_start_sectors * kLvmSector;
  if (size < kMinPvBytes) {
    return Status::Error(
        EINVAL, fmt::format("{}: device is too small ({} bytes, min {} bytes)", name, size, kMinPvBytes));
  }
  if (options.mda_offset_bytes < kLabelAreaBytes || options.mda_offset_bytes % kLvmSector != 0 ||
      pe_start < options.mda_offset_bytes + 2 * kMdaHeaderSize || pe_start % kLvmSector != 0 ||
      pe_start >= size) {
    return Status::Error(EINVAL, fmt::format("{}: bad layout: metadata area at {}, pe_start {} "
                                             "bytes, device {} bytes",
                                             name, options.mda_offset_bytes, pe_start, size));
  }
  PvHeader h;
  if (options.uuid.empty()) {
    h.uuid = new_lvm_id();
  } else {
    COWSNAP_ASSIGN_OR_RETURN(h.uuid, parse_lvm_id(options.uuid));
  }
  h.device_size_bytes = size;
  h.data_areas = {DiskArea{pe_start, 0}};
  h.metadata_areas = {DiskArea{options.mda_offset_bytes, pe_start - options.mda_offset_bytes}};
  if (options.metadata_copies == 2) {
    COWSNAP_ASSIGN_OR_RETURN(DiskArea second,
                             second_mda_area(size, pe_start, h.metadata_areas.front().size_bytes));
    h.metadata_areas.push_back(second);
  } else if (options.metadata_copies != 1) {
    return Status::Error(EINVAL, fmt::format("{}: --pvmetadatacopies {} is not supported (1 or 2)", name,
                                             options.metadata_copies));
  }
  h.extension_version = kPvHeaderExtensionVersion;
  h.extension_flags = 0;

  // The metadata area first and the label last: until the label is
  // written, the device is not a PV at all.
  std::vector<uint8_t> zeros(options.mda_offset_bytes, 0);
  COWSNAP_RETURN_IF_ERROR(dev.write(0, zeros).with_context(name));
  for (const DiskArea& area : h.metadata_areas) COWSNAP_RETURN_IF_ERROR(init_metadata_area(dev, area, name));
  COWSNAP_ASSIGN_OR_RETURN(const auto label, encode_label_sector(h, kDefaultLabelSector));
  COWSNAP_RETURN_IF_ERROR(dev.write(kDefaultLabelSector * kLvmSector, label).with_context(name));
  COWSNAP_RETURN_IF_ERROR(dev.flush().with_context(name));
  return h;
}

Result<bool> has_pv_label(BlockDevice& dev) {
  if (dev.size_bytes() < kLabelAreaBytes) return false;
  std::array<uint8_t, kLabelAreaBytes> buf{};
  COWSNAP_RETURN_IF_ERROR(dev.read(0, buf));
  for (uint64_t s = 0; s < kLabelScanSectors; ++s) {
    if (looks_like_label(std::span<const uint8_t>(buf).subspan(s * kLvmSector, kLvmSector), s)) {
      return true;
    }
  }
  return false;
}

Result<PvOnDisk> read_pv(BlockDevice& dev, const std::string& name) {
  PvOnDisk pv;
  pv.name = name;
  pv.device_bytes = dev.size_bytes();
  const Status no_label =
      Status::Error(ENODATA, fmt::format("{}: not an LVM2 PV: no label in sectors 0-3", name));
  if (pv.device_bytes < kLabelAreaBytes) return no_label;
  std::array<uint8_t, kLabelAreaBytes> buf{};
  COWSNAP_RETURN_IF_ERROR(dev.read(0, buf).with_context(name));
  bool found = false;
  for (uint64_t s = 0; s < kLabelScanSectors && !found; ++s) {
    auto sector = std::span<const uint8_t>(buf).subspan(s * kLvmSector, kLvmSector);
    if (!looks_like_label(sector, s)) continue;
    COWSNAP_ASSIGN_OR_RETURN(pv.header, decode_label_sector(sector, s, name));
    pv.label_sector = s;
    found = true;
  }
  if (!found) return no_label;
  if (pv.header.device_size_bytes > pv.device_bytes) {
    return Status::Error(EINVAL, fmt::format("{}: truncated: device is {} bytes, header says {}", name,
                                             pv.device_bytes, pv.header.device_size_bytes));
  }
  if (pv.header.data_areas.empty() || pv.header.data_areas.front().offset_bytes > pv.device_bytes) {
    return Status::Error(EINVAL, fmt::format("{}: bad PV header: no usable data area", name));
  }
  for (const DiskArea& area : pv.header.metadata_areas) {
    Result<MetadataText> m = read_metadata_area(dev, area, name);
    pv.mdas.push_back(m.ok() ? std::move(*m) : bad_area(dev, area, name, m.status()));
  }
  return pv;
}

Status write_pv_label(BlockDevice& dev, const PvOnDisk& pv, const PvHeader& header) {
  COWSNAP_ASSIGN_OR_RETURN(const auto label, encode_label_sector(header, pv.label_sector));
  COWSNAP_RETURN_IF_ERROR(dev.write(pv.label_sector * kLvmSector, label).with_context(pv.name));
  return dev.flush().with_context(pv.name);
}

Status wipe_pv_label(BlockDevice& dev, const PvOnDisk& pv) {
  std::array<uint8_t, kLvmSector> zeros{};
  COWSNAP_RETURN_IF_ERROR(dev.write(pv.label_sector * kLvmSector, zeros).with_context(pv.name));
  return dev.flush().with_context(pv.name);
}

}  // namespace cowsnap::vg
