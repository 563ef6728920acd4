// lvm2-style reports (lvs, vgs, pvs): fields with lvm2's names and
// headings, column selection (-o), text output aligned as lvm2 aligns it,
// --separator, --noheadings and --reportformat json.
//
// Text layout (checked against lvm2 2.03.16): every line starts with two
// spaces; a column is as wide as its widest value, its heading, and the
// field's minimum width; headings are left-aligned, values of size and
// count fields right-aligned, percentages (Data% "62.76 ") and text
// left-aligned; columns are
// joined by one space and the last one is padded too. A report without
// rows prints nothing. With --separator columns are joined by it, not
// padded (unless aligned).
//
// JSON layout (also lvm2's): two spaces before every line, four per
// level; one object per line with "key":"value" pairs joined by ", ";
// every value a string.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/report/attrs.h"
#include "cowsnap/report/size.h"
#include "cowsnap/vg/lv_map.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::report {

enum class ReportKind { kLv, kVg, kPv };

struct FieldDef {
  std::string_view name;     // lvm2's field name, also the JSON key
  std::string_view heading;  // lvm2's column heading
  ReportKind kind;           // the object the field describes
  bool numeric;              // sizes, counts, percentages: -O compares them as numbers
  size_t min_width;          // lvm2's declared width
  bool left_aligned;         // a number printed left-aligned, as lvm2 prints percentages
};
// Sizes and counts are right-aligned, percentages and text left-aligned.
inline bool right_aligned(const FieldDef& f) { return f.numeric && !f.left_aligned; }

// Every field cowsnap reports.
const std::vector<FieldDef>& all_fields();
// The field called `name` in a `kind` report: exact names first, then
// lvm2's short forms ("size" -> "lv_size" in lvs). VG fields are allowed in
// lv and pv reports. Null when unknown.
const FieldDef* find_field(ReportKind kind, std::string_view name);
// lvs: LV VG Attr LSize Pool Origin Data% Meta% Move Log Cpy%Sync Convert;
// vgs: VG #PV #LV #SN Attr VSize VFree; pvs: PV VG Fmt Attr PSize PFree.
std::vector<const FieldDef*> default_fields(ReportKind kind);
// Applies -o arguments in order: "a,b" replaces the list, "+a,b" appends,
// "-a" removes. EINVAL "Unrecognised field: X" for an unknown field.
Result<std::vector<const FieldDef*>> select_fields(ReportKind kind, const std::vector<std::string>& options);

// -O/--sort: the fields rows are ordered by, in order of precedence.
struct SortKey {
  const FieldDef* field = nullptr;
  bool descending = false;  // "-field"
};
// Parses -O arguments ("a,-b", and "+a" = "a"); a later -O replaces an
// earlier one, as in lvm2. EINVAL "Unrecognised field: X" for an unknown
// field.
Result<std::vector<SortKey>> select_sort_keys(ReportKind kind, const std::vector<std::string>& options);
// The units sort keys are rendered in: bytes, no suffix, so sizes compare
// as numbers.
Units sort_units();

// The objects rows are made of.
struct LvRowInput {
  const vg::VolumeGroup* vg = nullptr;
  const vg::LogicalVolume* lv = nullptr;
  LvLiveState live;
  vg::PvPathLookup path_of;
  bool bracketed = false;  // an internal LV shown by -a: "[name]"
  // Set in a per-segment report: the segment fields (devices,
  // seg_pe_ranges) show only this segment of the LV.
  std::optional<size_t> segment;
};
// True when `fields` holds a segment field: lvm2 then reports one row per
// LV segment, repeating the LV's other fields.
bool has_segment_fields(const std::vector<const FieldDef*>& fields);
struct VgRowInput {
  const vg::VolumeGroup* vg = nullptr;
  bool partial = false;
};
struct PvRowInput {
  std::string path;
  std::string uuid;                        // the label's, dashed
  const vg::VolumeGroup* vg = nullptr;     // null: an orphan PV
  const vg::PhysicalVolume* pv = nullptr;  // its entry in vg
  uint64_t device_bytes = 0;
  uint64_t pe_start_bytes = 0;
};

using Row = std::vector<std::string>;  // one value per selected field

Row lv_row(const std::vector<const FieldDef*>& fields, const LvRowInput& in, const Units& units);
Row vg_row(const std::vector<const FieldDef*>& fields, const VgRowInput& in, const Units& units);
Row pv_row(const std::vector<const FieldDef*>& fields, const PvRowInput& in, const Units& units);

struct OutputOptions {
  bool headings = true;
  std::optional<std::string> separator;
  bool aligned = false;  // with a separator: pad columns too
  bool json = false;
};

// Stable-sorts `rows` by `sort`: keys[i] holds row i's values of the sort
// fields (rendered with sort_units()). Right-aligned fields (sizes, counts,
// percentages) compare as numbers, an empty value below every number;
// the others as strings. Rows equal on every key keep their order.
void sort_rows(std::vector<Row>& rows, const std::vector<Row>& keys, const std::vector<SortKey>& sort);

std::string render(ReportKind kind, const std::vector<const FieldDef*>& fields, const std::vector<Row>& rows,
                   const OutputOptions& options);

// lvm2's numbers used in reports.
uint64_t vg_free_extents(const vg::VolumeGroup& vg);
uint64_t pv_free_extents(const vg::VolumeGroup& vg, const vg::PhysicalVolume& pv);
// #LV as vgs counts it: user-visible LVs (snapshots included).
uint64_t visible_lv_count(const vg::VolumeGroup& vg);
// An LV's creation time as lvm2 prints it (lv_time, lvdisplay): local
// time, "%Y-%m-%d %H:%M:%S %z"; "" when the metadata has none.
std::string format_lv_time(const vg::LogicalVolume& lv);
// Data% of a snapshot ("" when not a snapshot or usage unknown).
std::string snapshot_percent_text(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv,
                                  const LvLiveState& live);

}  // namespace cowsnap::report
