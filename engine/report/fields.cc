// The field table and the values of each field.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>

#include "cowsnap/report/data_percent.h"
#include "cowsnap/report/report.h"
#include "cowsnap/vg/allocation.h"

namespace cowsnap::report {
namespace {

using K = ReportKind;

// Names, headings and widths follow lvm2's lib/report/columns.h. Percentages
// are numbers (-O) but lvm2 prints them left-aligned ("62.76 ").
const std::vector<FieldDef> kFields = {
    {"lv_name", "LV", K::kLv, false, 4, false},
    {"lv_uuid", "LV UUID", K::kLv, false, 38, false},
    {"lv_attr", "Attr", K::kLv, false, 4, false},
    {"lv_size", "LSize", K::kLv, true, 5, false},
    {"pool_lv", "Pool", K::kLv, false, 4, false},
    {"origin", "Origin", K::kLv, false, 6, false},
    {"data_percent", "Data%", K::kLv, true, 6, true},
    {"snap_percent", "Snap%", K::kLv, true, 6, true},
    {"metadata_percent", "Meta%", K::kLv, true, 6, true},
    {"move_pv", "Move", K::kLv, false, 4, false},
    {"mirror_log", "Log", K::kLv, false, 3, false},
    {"copy_percent", "Cpy%Sync", K::kLv, true, 6, true},
    {"convert_lv", "Convert", K::kLv, false, 7, false},
    {"devices", "Devices", K::kLv, false, 5, false},
    {"seg_pe_ranges", "PE Ranges", K::kLv, false, 5, false},
    {"chunk_size", "Chunk", K::kLv, true, 5, false},
    {"lv_permissions", "LPerms", K::kLv, false, 8, false},
    {"lv_active", "Active", K::kLv, false, 6, false},
    {"lv_time", "CTime", K::kLv, false, 26, false},
    {"lv_snapshot_invalid", "SnapInvalid", K::kLv, false, 15, false},
    {"lv_merging", "Merging", K::kLv, false, 7, false},
    {"lv_merge_failed", "MergeFailed", K::kLv, false, 11, false},
    {"seg_monitor", "Monitor", K::kLv, false, 7, false},
    {"seg_count", "#Seg", K::kLv, true, 4, false},
    {"pv_name", "PV", K::kPv, false, 10, false},
    {"pv_uuid", "PV UUID", K::kPv, false, 38, false},
    {"pv_fmt", "Fmt", K::kPv, false, 3, false},
    {"pv_attr", "Attr", K::kPv, false, 4, false},
    {"pv_size", "PSize", K::kPv, true, 5, false},
    {"pv_free", "PFree", K::kPv, true, 5, false},
    {"dev_size", "DevSize", K::kPv, true, 5, false},
    {"pe_start", "1st PE", K::kPv, true, 7, false},
    {"pv_pe_count", "PE", K::kPv, true, 3, false},
    {"pv_pe_alloc_count", "Alloc", K::kPv, true, 5, false},
    {"vg_name", "VG", K::kVg, false, 0, false},  // lvm2 2.03: no minimum beyond "VG"
    {"vg_uuid", "VG UUID", K::kVg, false, 38, false},
    {"pv_count", "#PV", K::kVg, true, 3, false},
    {"lv_count", "#LV", K::kVg, true, 3, false},
    {"snap_count", "#SN", K::kVg, true, 3, false},
    {"vg_attr", "Attr", K::kVg, false, 5, false},
    {"vg_size", "VSize", K::kVg, true, 5, false},
    {"vg_free", "VFree", K::kVg, true, 5, false},
    {"vg_extent_size", "Ext", K::kVg, true, 3, false},
    {"vg_extent_count", "#Ext", K::kVg, true, 4, false},
    {"vg_free_count", "Free", K::kVg, true, 4, false},
    {"vg_seqno", "Seq", K::kVg, true, 3, false},
};

std::string_view prefix_of(ReportKind kind) {
  switch (kind) {
    case K::kLv:
      return "lv_";
    case K::kVg:
      return "vg_";
    case K::kPv:
      return "pv_";
  }
  return "";
}

const FieldDef* exact(std::string_view name) {
  for (const FieldDef& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool allowed(ReportKind report, ReportKind field) { return report == field || field == K::kVg; }

std::string vg_value(std::string_view name, const vg::VolumeGroup* vg, const Units& units) {
  if (vg == nullptr) return "";
  const uint64_t ext = vg->extent_bytes();
  if (name == "vg_name") return vg->name;
  if (name == "vg_uuid") return vg->id;
  if (name == "pv_count") return std::to_string(vg->pvs.size());
  if (name == "lv_count") return std::to_string(visible_lv_count(*vg));
  if (name == "snap_count") return std::to_string(vg::snapshots(*vg).size());
  if (name == "vg_attr") return vg_attr(*vg);
  if (name == "vg_size") return format_size(vg->pe_total() * ext, units);
  if (name == "vg_free") return format_size(vg_free_extents(*vg) * ext, units);
  if (name == "vg_extent_size") return format_size(ext, units);
  if (name == "vg_extent_count") return std::to_string(vg->pe_total());
  if (name == "vg_free_count") return std::to_string(vg_free_extents(*vg));
  if (name == "vg_seqno") return std::to_string(vg->seqno);
  return "";
}

}  // namespace

const std::vector<FieldDef>& all_fields() { return kFields; }

const FieldDef* find_field(ReportKind kind, std::string_view name) {
  if (const FieldDef* f = exact(name); f != nullptr && allowed(kind, f->kind)) return f;
  // lvm2 lets "size" mean "lv_size" in lvs, "vg_size" in vgs, ...
  const std::string with_prefix = std::string(prefix_of(kind)) + std::string(name);
  if (const FieldDef* f = exact(with_prefix); f != nullptr) return f;
  if (kind != K::kVg) {
    if (const FieldDef* f = exact("vg_" + std::string(name)); f != nullptr) return f;
  }
  return nullptr;
}

std::vector<const FieldDef*> default_fields(ReportKind kind) {
  std::vector<std::string_view> names;
  switch (kind) {
    case K::kLv:
      names = {"lv_name",      "vg_name",          "lv_attr", "lv_size",    "pool_lv",      "origin",
               "data_percent", "metadata_percent", "move_pv", "mirror_log", "copy_percent", "convert_lv"};
      break;
    case K::kVg:
      names = {"vg_name", "pv_count", "lv_count", "snap_count", "vg_attr", "vg_size", "vg_free"};
      break;
    case K::kPv:
      names = {"pv_name", "vg_name", "pv_fmt", "pv_attr", "pv_size", "pv_free"};
      break;
  }
  std::vector<const FieldDef*> out;
  out.reserve(names.size());
  for (auto n : names) out.push_back(exact(n));
  return out;
}

Result<std::vector<const FieldDef*>> select_fields(ReportKind kind, const std::vector<std::string>& options) {
  std::vector<const FieldDef*> fields = default_fields(kind);
  for (const std::string& option : options) {
    std::string_view list = option;
    char mode = '=';
    if (!list.empty() && (list.front() == '+' || list.front() == '-')) {
      mode = list.front();
      list.remove_prefix(1);
    }
    std::vector<const FieldDef*> named;
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string_view::npos) comma = list.size();
      const std::string_view name = list.substr(start, comma - start);
      if (!name.empty()) {
        const FieldDef* f = find_field(kind, name);
        if (f == nullptr) return Status::Error(EINVAL, fmt::format("Unrecognised field: {}", name));
        named.push_back(f);
      }
      start = comma + 1;
    }
    if (mode == '=') {
      fields = named;
    } else if (mode == '+') {
      fields.insert(fields.end(), named.begin(), named.end());
    } else {
      std::erase_if(
          fields, [&](const FieldDef* f) { return std::find(named.begin(), named.end(), f) != named.end(); });
    }
  }
  return fields;
}

uint64_t vg_free_extents(const vg::VolumeGroup& vg) { return vg::free_extent_count(vg); }

uint64_t pv_free_extents(const vg::VolumeGroup& vg, const vg::PhysicalVolume& pv) {
  const uint64_t used = vg::used_extent_count(vg, pv.name);
  return used > pv.pe_count ? 0 : pv.pe_count - used;
}

uint64_t visible_lv_count(const vg::VolumeGroup& vg) {
  uint64_t n = 0;
  for (const auto& lv : vg.lvs) {
    if (vg::lv_user_visible(vg, lv)) ++n;
  }
  return n;
}

std::string format_lv_time(const vg::LogicalVolume& lv) {
  if (!lv.creation_time) return "";
  const auto t = static_cast<time_t>(*lv.creation_time);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::array<char, 64> buf{};
  if (std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S %z", &tm) == 0) return "";
  return buf.data();
}

namespace {

// lvm2's binary field snapshot_invalid: "unknown" where there is no
// snapshot or its state cannot be read, the field's name where true.
std::string snapshot_invalid_text(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv,
                                  const LvLiveState& live) {
  if (vg::lv_role(vg, lv.name) != vg::LvRole::kSnapshotCow || !live.failure.empty()) return "unknown";
  return live.snapshot_valid ? "" : "snapshot invalid";
}

// lvm2's lv_merging: from the metadata alone, for the origin and the
// snapshot of a merge.
bool lv_merging(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv) {
  for (const vg::SnapshotRef& ref : vg::snapshots(vg)) {
    if (ref.merging && (ref.cow_lv == lv.name || ref.origin_lv == lv.name)) return true;
  }
  return false;
}

// lvm2's lv_merge_failed: "unknown" without a snapshot status to read.
std::string merge_failed_text(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv,
                              const LvLiveState& live) {
  const bool snapshot_status = (vg::lv_role(vg, lv.name) == vg::LvRole::kSnapshotCow &&
                                live.failure.empty() && (live.active || live.usage)) ||
                               live.merging;
  if (!snapshot_status) return "unknown";
  return live.merge_failed ? "merge failed" : "";
}

}  // namespace

std::string snapshot_percent_text(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv,
                                  const LvLiveState& live) {
  if (live.merging) {
    // The snapshot-merge target's Data%, falling to 0; blank once failed.
    if (live.merge_failed || !live.usage) return "";
    return fmt::format("{:.2f}", snapshot_data_percent(*live.usage, true));
  }
  if (vg::lv_role(vg, lv.name) != vg::LvRole::kSnapshotCow) return "";
  if (!live.snapshot_valid) return "100.00";
  if (!live.usage) return "";
  return fmt::format("{:.2f}", snapshot_data_percent(*live.usage, live.snapshot_valid));
}

bool has_segment_fields(const std::vector<const FieldDef*>& fields) {
  return std::any_of(fields.begin(), fields.end(),
                     [](const FieldDef* f) { return f->name == "devices" || f->name == "seg_pe_ranges"; });
}

Row lv_row(const std::vector<const FieldDef*>& fields, const LvRowInput& in, const Units& units) {
  const vg::VolumeGroup& vg = *in.vg;
  const vg::LogicalVolume& lv = *in.lv;
  // The LV as far as the segment fields see it: one segment of it, or all.
  vg::LogicalVolume one_segment;
  if (in.segment && *in.segment < lv.segments.size()) {
    one_segment.name = lv.name;
    one_segment.segments = {lv.segments[*in.segment]};
  }
  const vg::LogicalVolume& seg_lv = in.segment ? one_segment : lv;
  const auto snap = vg::snapshot_for(vg, lv.name);
  const bool is_cow = snap && snap->cow_lv == lv.name;
  Row row;
  for (const FieldDef* f : fields) {
    const std::string_view n = f->name;
    std::string v;
    if (f->kind == K::kVg)
      v = vg_value(n, &vg, units);
    else if (n == "lv_name")
      v = in.bracketed ? "[" + lv.name + "]" : lv.name;
    else if (n == "lv_uuid")
      v = lv.id;
    else if (n == "lv_attr")
      v = lv_attr(vg, lv, in.live);
    else if (n == "lv_size")
      v = format_size(lv.extent_count() * vg.extent_bytes(), units);
    else if (n == "origin")
      v = is_cow ? snap->origin_lv : "";
    else if (n == "data_percent" || n == "snap_percent")
      v = snapshot_percent_text(vg, lv, in.live);
    else if (n == "devices")
      v = vg::lv_devices_string(vg, seg_lv, in.path_of);
    else if (n == "seg_pe_ranges")
      v = vg::lv_pe_ranges_string(vg, seg_lv, in.path_of);
    else if (n == "chunk_size")
      v = format_size(is_cow ? snap->chunk_size * 512 : 0, units);
    else if (n == "seg_count")
      v = std::to_string(lv.segments.size());
    else if (n == "lv_permissions")
      v = lv.has_status("WRITE") ? "writeable" : "read-only";
    else if (n == "lv_active")
      v = in.live.active ? "active" : "";
    else if (n == "lv_time")
      v = format_lv_time(lv);
    else if (n == "lv_snapshot_invalid")
      v = snapshot_invalid_text(vg, lv, in.live);
    else if (n == "lv_merging")
      v = lv_merging(vg, lv) ? "merging" : "";
    else if (n == "lv_merge_failed")
      v = merge_failed_text(vg, lv, in.live);
    else if (n == "seg_monitor")
      v = in.live.monitored ? (*in.live.monitored ? "monitored" : "not monitored") : "";
    row.push_back(std::move(v));
  }
  return row;
}

Row vg_row(const std::vector<const FieldDef*>& fields, const VgRowInput& in, const Units& units) {
  Row row;
  for (const FieldDef* f : fields) {
    std::string v = vg_value(f->name, in.vg, units);
    if (f->name == "vg_attr" && in.vg != nullptr) v = vg_attr(*in.vg, in.partial);
    row.push_back(std::move(v));
  }
  return row;
}

Row pv_row(const std::vector<const FieldDef*>& fields, const PvRowInput& in, const Units& units) {
  Row row;
  for (const FieldDef* f : fields) {
    const std::string_view n = f->name;
    std::string v;
    const bool in_vg = in.vg != nullptr && in.pv != nullptr;
    // lvm2: a PV in a VG is as large as its extents; an orphan, its device.
    const uint64_t pv_bytes = in_vg ? in.pv->pe_count * in.vg->extent_bytes() : in.device_bytes;
    if (f->kind == K::kVg)
      v = vg_value(n, in.vg, units);
    else if (n == "pv_name")
      v = in.path;
    else if (n == "pv_uuid")
      v = in.pv != nullptr ? in.pv->id : in.uuid;
    else if (n == "pv_fmt")
      v = "lvm2";
    else if (n == "pv_attr")
      v = pv_attr(in_vg ? in.pv : nullptr);
    else if (n == "pv_size")
      v = format_size(pv_bytes, units);
    else if (n == "pv_free")
      v = format_size(in_vg ? pv_free_extents(*in.vg, *in.pv) * in.vg->extent_bytes() : pv_bytes, units);
    else if (n == "dev_size")
      v = format_size(in.device_bytes, units);
    else if (n == "pe_start")
      v = format_size(in.pe_start_bytes, units);
    else if (n == "pv_pe_count")
      v = std::to_string(in_vg ? in.pv->pe_count : 0);
    else if (n == "pv_pe_alloc_count")
      v = std::to_string(in_vg ? in.pv->pe_count - pv_free_extents(*in.vg, *in.pv) : 0);
    row.push_back(std::move(v));
  }
  return row;
}

}  // namespace cowsnap::report
