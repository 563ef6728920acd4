// Committing one VG metadata text to every metadata area of every PV of
// the VG: the write order that makes a commit crash-safe.
//
// Order (enforced by commit_vg_text):
//   0. check the text fits every area — nothing is written otherwise;
//   1. write the text into every area (after the current text in its
//      circular buffer, see metadata_area.h) and flush each device; the
//      area headers still name the previous text;
//   2. rewrite each area's one-sector header to name the new text, and
//      flush, one area after the other.
// A power cut during step 1 leaves every area on its previous text. During
// step 2 some areas name the new text (seqno N+1) and the rest the previous
// one (N): every area holds one whole committed version, and a reader takes
// the highest seqno (pv_metadata.h, VolumeManager::scan), which is the new
// one as soon as one header made it. Never a mix, never nothing.
//
// An area whose header was bad (MetadataText::header_bad) gets its text at
// the start of its buffer and a fresh header: the commit repairs it.
// Areas lvm2 marks ignored are left alone.
//
// Thread safety: none; callers hold the VG lock.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"
#include "cowsnap/vg/physical_volume.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

// One PV being written by a commit.
struct PvCommit {
  std::string path;
  std::shared_ptr<BlockDevice> dev;
  PvOnDisk pv;               // as read just before the commit
  std::vector<size_t> only;  // if not empty: write these mda indexes only (vgck --updatemetadata)
};

// Opens and re-reads the PVs of `vg` for writing (pv_paths: PV name ->
// path), checking each still carries the uuid the metadata names. EIO when
// one is missing or changed.
Result<std::vector<PvCommit>> open_pvs_for_commit(const VolumeGroup& vg,
                                                  const std::map<std::string, std::string>& pv_paths);

// Sets or clears the label's "in use by a VG" flag (one sector, flushed);
// nothing is written when it is already so.
Status set_pv_in_use(PvCommit& w, bool in_use);

Status commit_vg_text(std::vector<PvCommit>& pvs, const std::string& text);

}  // namespace cowsnap::vg
