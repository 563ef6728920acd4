#include "cowsnap/vg/pv_metadata.h"

#include <fmt/format.h>

#include "cowsnap/vg/lvm_id.h"

namespace cowsnap::vg {
namespace {

// lvm2's sequence for a text it cannot use, at absolute byte offset `at`.
void warn_bad_text(PvMetadata& out, const std::string& path, size_t mda, uint64_t at, bool checksum) {
  if (checksum) out.warnings.push_back(fmt::format("WARNING: Checksum error on {} at offset {}.", path, at));
  out.warnings.push_back(fmt::format("WARNING: invalid metadata text from {} at {}.", path, at));
  out.warnings.push_back(fmt::format("WARNING: metadata on {} at {} has invalid summary for VG.", path, at));
  out.warnings.push_back(fmt::format("WARNING: bad metadata text on {} in mda{}", path, mda + 1));
}

void warn_unusable(PvMetadata& out, const std::string& path, size_t mda) {
  out.warnings.push_back(
      fmt::format("WARNING: scanning {} mda{} failed to read metadata summary.", path, mda + 1));
  out.warnings.push_back(fmt::format("WARNING: repair VG metadata on {} with vgck --updatemetadata.", path));
}

uint64_t text_offset(const MetadataText& m) {
  return m.header.start + (m.header.raw_locns.empty() ? 0 : m.header.raw_locns.front().offset);
}

}  // namespace

PvMetadata read_pv_metadata(const PvOnDisk& pv) {
  PvMetadata out;
  std::vector<std::optional<VolumeGroup>> copies(pv.mdas.size());
  for (size_t i = 0; i < pv.mdas.size(); ++i) {
    const MetadataText& m = pv.mdas[i];
    if (m.header_bad) {
      out.warnings.push_back(
          fmt::format("WARNING: bad metadata header on {} at {}.", pv.name, m.header.start));
      warn_unusable(out, pv.name, i);
      out.repairs.push_back({i, kBadMdaHeader});
      continue;
    }
    if (!m.problem.ok()) {
      const bool checksum = m.problem.message().find("checksum") != std::string::npos;
      warn_bad_text(out, pv.name, i, text_offset(m), checksum);
      warn_unusable(out, pv.name, i);
      out.repairs.push_back({i, kBadMdaText});
      continue;
    }
    if (!m.text) continue;
    Result<VolumeGroup> vg = parse_vg_text(*m.text);
    if (!vg.ok()) {
      warn_bad_text(out, pv.name, i, text_offset(m), false);
      warn_unusable(out, pv.name, i);
      out.repairs.push_back({i, kBadMdaText});
      continue;
    }
    copies[i] = std::move(*vg);
    if (!out.vg || copies[i]->seqno > out.vg->seqno) {
      out.vg = copies[i];
      out.mda = i;
    }
  }
  for (size_t i = 0; i < copies.size() && out.vg; ++i) {
    if (!copies[i] || i == out.mda || *copies[i] == *out.vg) continue;
    out.warnings.push_back(
        fmt::format("WARNING: ignoring metadata seqno {} on {} for seqno {} on {} for VG {}.",
                    copies[i]->seqno, pv.name, out.vg->seqno, pv.name, out.vg->name));
    out.repairs.push_back({i, kBadMdaMismatch});
  }
  const bool in_use = (pv.header.extension_flags & kPvExtUsed) != 0;
  if (!out.vg && in_use) {
    if (!out.repairs.empty()) {
      out.warnings.push_back(fmt::format("WARNING: scan failed to get metadata summary from {} PVID {}",
                                         pv.name, pv.header.uuid));
    }
    out.warnings.push_back(
        fmt::format("WARNING: PV {} is marked in use but no VG was found using it.", pv.name));
    out.warnings.push_back(fmt::format("WARNING: PV {} might need repairing.", pv.name));
  }
  return out;
}

std::string no_label_warning(BlockDevice& dev, const std::string& path) {
  std::string id = "none";
  const DiskArea area{kDefaultMdaOffsetBytes, kDefaultPeStartSectors * kLvmSector - kDefaultMdaOffsetBytes};
  if (dev.size_bytes() > area.offset_bytes + area.size_bytes) {
    if (auto m = read_metadata_area(dev, area, path); m.ok() && m->text) {
      if (auto vg = parse_vg_text(*m->text); vg.ok()) {
        for (const PhysicalVolume& p : vg->pvs) {
          if (p.device != path) continue;
          if (auto raw = parse_lvm_id(p.id); raw.ok()) id = *raw;
        }
      }
    }
  }
  return fmt::format("Device {} has no PVID (devices file {})", path, id);
}

}  // namespace cowsnap::vg
