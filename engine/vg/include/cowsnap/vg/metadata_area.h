// The metadata area's circular text buffer.
//
// Crash-ordering invariant (enforced here): a commit writes the new text
// after the current one (512-byte aligned, wrapping past the area's end to
// just after the header), flushes, and only then rewrites the one-sector
// mda_header to point at it, and flushes again. A crash or error before the
// header write leaves the previous text in force; the header is one sector,
// so it is either old or new.
//
// Thread safety: none; callers serialise per device (the VG lock does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"
#include "cowsnap/vg/pv_format.h"

namespace cowsnap::vg {

struct MetadataText {
  MdaHeader header;
  // The current text without lvm2's trailing NUL; nullopt when the header
  // names no text (a PV that is in no VG), or when the area is bad.
  std::optional<std::string> text;
  // Set by read_pv (physical_volume.h) when the area cannot be used: ok, or
  // why. A bad area does not make the PV unreadable, as in lvm2: its VG is
  // read from another area, and the next commit rewrites this one.
  Status problem;
  // The problem is in the header itself (checksum, magic, start, size):
  // `header` is then a fresh empty header for the area, which a commit
  // writes anew. Otherwise the header is good and its text is bad.
  bool header_bad = false;
};

// Writes an empty mda_header (no text) at `area`: what pvcreate does.
Status init_metadata_area(BlockDevice& dev, const DiskArea& area, std::string_view name);

// Reads and verifies the header and the current text. Errors (EINVAL):
// header errors from decode_mda_header, "metadata text checksum mismatch",
// "metadata text location out of the area".
Result<MetadataText> read_metadata_area(BlockDevice& dev, const DiskArea& area, std::string_view name);

// Where commit_metadata_text would put a text of `text_bytes` bytes
// (including the NUL) after `current`. ENOSPC when it cannot fit without
// overwriting the current text.
Result<RawLocn> next_text_location(const MdaHeader& current, uint64_t text_bytes, std::string_view name);

// Step 1 of a commit: writes `text` (a NUL is appended) at the next location
// and flushes. Returns the header that step 2 must write. The header on
// disk is untouched, so the old text stays in force.
Result<MdaHeader> write_metadata_text(BlockDevice& dev, const MdaHeader& current, std::string_view text,
                                      std::string_view name);

// Step 2: writes the one-sector header and flushes.
Status write_mda_header(BlockDevice& dev, const MdaHeader& header, std::string_view name);

// Both steps for a single device.
Status commit_metadata_text(BlockDevice& dev, const MdaHeader& current, std::string_view text,
                            std::string_view name);

}  // namespace cowsnap::vg
