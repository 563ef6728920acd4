// The typed model of one volume group's metadata, as lvm2 writes it, and
// its conversion from and to metadata text.
//
// Units follow lvm2's text: extent_size, dev_size, pe_start and chunk_size
// in 512-byte sectors; pe_count, start_extent, extent_count and first_pe in
// extents.
//
// Nothing is dropped: keys the model does not know (at VG, PV, LV and
// segment level) are kept in `extra` and written back after the known ones;
// status and flags keep every word, known or not; a segment of a type the
// model does not know keeps all its keys in `extra`. Operations that cannot
// handle such things refuse with a clear error rather than guess.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/config_tree.h"

namespace cowsnap::vg {

struct Stripe {
  std::string pv_name;  // "pv0", a key of physical_volumes
  uint64_t first_pe = 0;
  bool operator==(const Stripe&) const = default;
};

struct Segment {
  uint64_t start_extent = 0;
  uint64_t extent_count = 0;
  std::string type = "striped";
  // type "striped" (stripe_count = stripes.size(); 1 = linear).
  std::vector<Stripe> stripes;
  uint64_t stripe_size = 0;  // sectors; written only with 2+ stripes
  // type "snapshot".
  uint64_t chunk_size = 0;  // sectors
  std::string origin;
  std::string cow_store;
  bool merging = false;  // lvm2 writes merging_store instead of cow_store
  ConfigSection extra;

  [[nodiscard]] bool is_striped() const { return type == "striped"; }
  [[nodiscard]] bool is_linear() const { return is_striped() && stripes.size() == 1; }
  [[nodiscard]] bool is_snapshot() const { return type == "snapshot"; }
  bool operator==(const Segment&) const = default;
};

struct LogicalVolume {
  std::string name;
  std::string id;  // dashed form
  std::vector<std::string> status = {"READ", "WRITE", "VISIBLE"};
  std::vector<std::string> flags;
  std::optional<int64_t> creation_time;  // seconds since the epoch
  std::optional<std::string> creation_host;
  std::vector<Segment> segments;
  ConfigSection extra;

  [[nodiscard]] uint64_t extent_count() const;
  [[nodiscard]] bool has_status(std::string_view word) const;
  [[nodiscard]] bool visible() const { return has_status("VISIBLE"); }
  bool operator==(const LogicalVolume&) const = default;
};

struct PhysicalVolume {
  std::string name;    // "pv0", "pv1", ...
  std::string id;      // dashed form
  std::string device;  // a hint only: where the PV was last seen
  std::vector<std::string> status = {"ALLOCATABLE"};
  std::vector<std::string> flags;
  uint64_t dev_size = 0;  // sectors
  uint64_t pe_start = 0;  // sectors
  uint64_t pe_count = 0;
  ConfigSection extra;

  [[nodiscard]] bool allocatable() const;
  bool operator==(const PhysicalVolume&) const = default;
};

struct VolumeGroup {
  std::string name;
  std::string id;  // dashed form
  uint64_t seqno = 0;
  std::string format = "lvm2";
  std::vector<std::string> status = {"RESIZEABLE", "READ", "WRITE"};
  std::vector<std::string> flags;
  uint64_t extent_size = 8192;  // sectors (4 MiB)
  uint64_t max_lv = 0;
  uint64_t max_pv = 0;
  uint64_t metadata_copies = 0;
  std::vector<PhysicalVolume> pvs;
  std::vector<LogicalVolume> lvs;
  ConfigSection extra;

  [[nodiscard]] uint64_t extent_bytes() const { return extent_size * 512; }
  [[nodiscard]] const PhysicalVolume* find_pv(std::string_view pv_name) const;
  [[nodiscard]] const PhysicalVolume* find_pv_by_id(std::string_view pv_id) const;  // either id form
  [[nodiscard]] const LogicalVolume* find_lv(std::string_view lv_name) const;
  [[nodiscard]] LogicalVolume* find_lv(std::string_view lv_name);
  [[nodiscard]] uint64_t pe_total() const;
  [[nodiscard]] bool writable() const;  // status has WRITE and RESIZEABLE
  bool operator==(const VolumeGroup&) const = default;
};

// How an LV takes part in snapshots. lvm2 records a snapshot as two LVs: the
// COW LV (named as the user named the snapshot, no VISIBLE flag) and a
// hidden-by-convention `snapshotN` LV whose one segment of type "snapshot"
// names origin, cow_store and chunk_size.
enum class LvRole {
  kPlain,             // striped segments, no snapshots
  kOrigin,            // has one or more snapshots
  kSnapshotCow,       // the user-visible snapshot: COW store of a snapshotN
  kSnapshotInternal,  // snapshotN
  kOther,             // a segment type cowsnap does not handle
};

struct SnapshotRef {
  std::string internal_lv;  // snapshotN
  std::string cow_lv;       // the user's snapshot name
  std::string origin_lv;
  uint64_t chunk_size = 0;      // sectors
  uint64_t origin_extents = 0;  // the snapshot segment's extent_count
  bool merging = false;
};

std::vector<SnapshotRef> snapshots(const VolumeGroup& vg);
std::vector<SnapshotRef> snapshots_of(const VolumeGroup& vg, std::string_view origin_lv);
// The snapshot whose COW LV or internal LV is `lv_name`, if any.
std::optional<SnapshotRef> snapshot_for(const VolumeGroup& vg, std::string_view lv_name);
LvRole lv_role(const VolumeGroup& vg, std::string_view lv_name);
// What users see: every LV except the snapshotN ones, as `lvs` lists them.
bool lv_user_visible(const VolumeGroup& vg, const LogicalVolume& lv);

// Puts the LVs in the order lvm2 writes them: those lv_user_visible()
// first, then the rest (snapshotN and hidden LVs), each group in its
// existing order. Parsing and writing both apply it, so a model read back
// equals the model written.
void sort_lvs_like_lvm2(VolumeGroup& vg);

// Checks references and extents: every stripe names a PV of the VG and lies
// within its pe_count, no extent is used twice, segments are contiguous
// from extent 0, snapshot segments name existing LVs, ids are valid.
// EINVAL naming what is wrong.
Status validate_vg(const VolumeGroup& vg);

// Text <-> model.
Result<VolumeGroup> vg_from_config(std::string_view vg_name, const ConfigSection& vg_section);
// The first section of a parsed metadata text (lvm2 ignores top-level
// values such as contents/version/description when looking for the VG).
Result<VolumeGroup> parse_vg_text(std::string_view text);
ConfigSection vg_to_config(const VolumeGroup& vg);  // the VG's own section body

// The lines lvm2 puts around the VG section.
struct TextTrailer {
  std::string description;    // e.g. "Write from cowsnap lvcreate ..."
  std::string creation_host;  // hostname
  int64_t creation_time = 0;  // seconds since the epoch
};

// The whole text: kDisk puts the VG first and the contents/version/
// description/creation_host/creation_time lines after it, as lvm2 stores
// metadata; kFile puts them first, as vgcfgbackup files do.
std::string vg_to_text(const VolumeGroup& vg, TextStyle style, const TextTrailer& trailer);

}  // namespace cowsnap::vg
