// An LVM2 PV as the volume manager reads it (read_pv: label in sectors 0-3,
// PV header, each metadata area's header and circular text buffer), then the
// VG text it holds (parse_vg_text), on a device made of the fuzz input.
//
// Input: one flags byte, then the device image. Every structure carries a
// CRC that random bytes almost never match, so unless a flag bit says
// otherwise the target first sets the label's, each mda header's and each
// text's checksum to the right value (what lvm2 would have written) and the
// fuzzer explores what lies behind the checksums.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cowsnap/vg/crc.h"
#include "cowsnap/vg/metadata_area.h"
#include "cowsnap/vg/physical_volume.h"
#include "cowsnap/vg/pv_format.h"
#include "cowsnap/vg/vg_model.h"
#include "fuzz_util.h"

using namespace cowsnap;
using namespace cowsnap::vg;

namespace {

// Field offsets from lvm2's format (docs/lvm2-metadata.md).
constexpr size_t kLabelCrcAt = 16;
constexpr size_t kLabelCrcFrom = 20;  // the label CRC covers bytes 20..511
constexpr size_t kMdaCrcFrom = 4;     // the mda header CRC covers bytes 4..511
constexpr size_t kRawLocnsAt = 40;
constexpr size_t kRawLocnChecksumAt = 16;

constexpr uint8_t kKeepLabelCrc = 1;
constexpr uint8_t kKeepMdaCrc = 2;
constexpr uint8_t kKeepTextCrc = 4;

void put_le32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

void fix_mda_crc(std::vector<uint8_t>& img, size_t at) {
  put_le32(img, at, lvm_crc32(std::span<const uint8_t>(img).subspan(at + kMdaCrcFrom, kMdaHeaderSize - 4)));
}

// Sets the checksum of the first raw_locn's text (wrapping as the circular
// buffer does) when its location lies inside the area.
void fix_text_crc(std::vector<uint8_t>& img, const DiskArea& area) {
  auto h = decode_mda_header(std::span<const uint8_t>(img).subspan(area.offset_bytes, kMdaHeaderSize),
                             area.offset_bytes, "fuzz");
  if (!h.ok() || h->raw_locns.empty()) return;
  const RawLocn& r = h->raw_locns.front();
  const uint64_t capacity = area.size_bytes - kMdaHeaderSize;
  if (r.offset < kMdaHeaderSize || r.offset >= area.size_bytes || r.size > capacity || r.size == 0) return;
  const uint64_t first = std::min(r.size, area.size_bytes - r.offset);
  std::span<const uint8_t> all(img);
  uint32_t crc = lvm_crc32(all.subspan(area.offset_bytes + r.offset, first));
  if (first < r.size) crc = lvm_crc32(all.subspan(area.offset_bytes + kMdaHeaderSize, r.size - first), crc);
  put_le32(img, area.offset_bytes + kRawLocnsAt + kRawLocnChecksumAt, crc);
  fix_mda_crc(img, area.offset_bytes);
}

void fix_checksums(std::vector<uint8_t>& img, uint8_t flags) {
  for (uint64_t s = 0; s < kLabelScanSectors && (s + 1) * kLvmSector <= img.size(); ++s) {
    std::span<const uint8_t> sector = std::span<const uint8_t>(img).subspan(s * kLvmSector, kLvmSector);
    if (!looks_like_label(sector, s)) continue;
    if ((flags & kKeepLabelCrc) == 0) {
      put_le32(img, s * kLvmSector + kLabelCrcAt, lvm_crc32(sector.subspan(kLabelCrcFrom)));
    }
    auto header = decode_label_sector(sector, s, "fuzz");
    if (!header.ok()) return;
    for (const DiskArea& area : header->metadata_areas) {
      if (area.size_bytes <= kMdaHeaderSize || area.offset_bytes > img.size() ||
          area.size_bytes > img.size() - area.offset_bytes) {
        continue;
      }
      if ((flags & kKeepMdaCrc) == 0) fix_mda_crc(img, area.offset_bytes);
      if ((flags & kKeepTextCrc) == 0) fix_text_crc(img, area);
    }
    return;  // read_pv uses the first label it finds
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> img(data + 1, data + size);
  fix_checksums(img, data[0]);
  auto dev = fuzz::device_from(img, "pv");
  auto pv = read_pv(*dev, "pv");
  if (!pv.ok()) return 0;
  fuzz::check(pv->mdas.size() == pv->header.metadata_areas.size(), "one MetadataText per metadata area");
  if (pv->text()) {
    auto vg = parse_vg_text(*pv->text());
    if (vg.ok()) (void)validate_vg(*vg);
  }
  return 0;
}
