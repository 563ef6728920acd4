#include "cowsnap/vg/vg_commit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "cowsnap/vg/lvm_id.h"

namespace cowsnap::vg {
namespace {

// lvm2 can mark a metadata area ignored (pvchange --metadataignore y): it
// keeps the flag and holds no text, and a commit must leave it so.
bool mda_ignored(const MdaHeader& h) {
  return !h.raw_locns.empty() && (h.raw_locns.front().flags & kRawLocnIgnored) != 0;
}

bool selected(const PvCommit& w, size_t i) {
  if (mda_ignored(w.pv.mdas[i].header)) return false;
  return w.only.empty() || std::find(w.only.begin(), w.only.end(), i) != w.only.end();
}

}  // namespace

Result<std::vector<PvCommit>> open_pvs_for_commit(const VolumeGroup& vg,
                                                  const std::map<std::string, std::string>& pv_paths) {
  std::vector<PvCommit> out;
  for (const PhysicalVolume& p : vg.pvs) {
    auto it = pv_paths.find(p.name);
    if (it == pv_paths.end()) {
      return Status::Error(
          EIO, fmt::format("Cannot change VG {} while PV {} ({}) is missing", vg.name, p.name, p.id));
    }
    PvCommit w;
    w.path = it->second;
    COWSNAP_ASSIGN_OR_RETURN(w.dev, open_pv_device(w.path, false));
    COWSNAP_ASSIGN_OR_RETURN(w.pv, read_pv(*w.dev, w.path));
    COWSNAP_ASSIGN_OR_RETURN(std::string raw, parse_lvm_id(p.id));
    if (w.pv.header.uuid != raw) {
      return Status::Error(EIO, fmt::format("{}: PV uuid changed under VG {}", w.path, vg.name));
    }
    if (w.pv.mdas.empty() && vg.pvs.size() == 1) {
      return Status::Error(EINVAL, fmt::format("{}: PV has no metadata area", w.path));
    }
    out.push_back(std::move(w));
  }
  return out;
}

Status set_pv_in_use(PvCommit& w, bool in_use) {
  PvHeader h = w.pv.header;
  if (in_use) {
    h.extension_flags |= kPvExtUsed;
  } else {
    h.extension_flags &= ~kPvExtUsed;
  }
  if (h.extension_version == 0) h.extension_version = kPvHeaderExtensionVersion;
  if (h == w.pv.header) return Status::Ok();
  return write_pv_label(*w.dev, w.pv, h);
}

Status commit_vg_text(std::vector<PvCommit>& pvs, const std::string& text) {
  // Step 0: everything must fit before anything is written.
  for (PvCommit& w : pvs) {
    for (size_t i = 0; i < w.pv.mdas.size(); ++i) {
      if (!selected(w, i)) continue;
      COWSNAP_RETURN_IF_ERROR(next_text_location(w.pv.mdas[i].header, text.size() + 1, w.path).status());
    }
  }
  // Step 1: texts, flushed. The headers still name the old texts.
  std::vector<std::vector<MdaHeader>> next(pvs.size());
  for (size_t p = 0; p < pvs.size(); ++p) {
    PvCommit& w = pvs[p];
    for (size_t i = 0; i < w.pv.mdas.size(); ++i) {
      if (!selected(w, i)) continue;
      COWSNAP_ASSIGN_OR_RETURN(MdaHeader h, write_metadata_text(*w.dev, w.pv.mdas[i].header, text, w.path));
      next[p].push_back(std::move(h));
    }
  }
  // Step 2: one sector per area, flushed.
  for (size_t p = 0; p < pvs.size(); ++p) {
    for (const MdaHeader& h : next[p]) COWSNAP_RETURN_IF_ERROR(write_mda_header(*pvs[p].dev, h, pvs[p].path));
  }
  return Status::Ok();
}

}  // namespace cowsnap::vg
