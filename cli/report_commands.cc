// lvs, vgs, pvs.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "command.h"
#include "cowsnap/vg/lvm_id.h"
#include "report_args.h"

namespace cowsnap::cli {

void add_report_options(CLI::App* command, ReportArgs& args, const std::string& names_help) {
  command->add_option("-o,--options", args.options, "Fields: a,b replaces the list, +a,b adds, -a removes")
      ->allow_extra_args(false);
  command->add_option("-O,--sort", args.sort, "Sort by fields: a,-b (- for descending)")
      ->allow_extra_args(false);
  command->add_flag("--noheadings", args.noheadings, "Do not print headings");
  command->add_option("--separator", args.separator, "Join columns with this string")
      ->each([&args](const std::string&) { args.separator_given = true; });
  command->add_flag("--aligned", args.aligned, "Pad columns also with --separator");
  command->add_option("--units", args.units, "Units: h H r R b s k m g t p e (upper case: powers of 1000)");
  command->add_flag("--nosuffix", args.nosuffix, "Print sizes without unit letters");
  command->add_option("--reportformat", args.reportformat, "basic or json")
      ->check(CLI::IsMember({"basic", "json"}));
  command->add_flag("-a,--all", args.all, "Also show internal LVs, in [brackets]");
  command->add_option("names", args.names, names_help);
}

Result<report::Units> report_units(const ReportArgs& args) {
  report::Units units;
  if (!args.units.empty()) {
    COWSNAP_ASSIGN_OR_RETURN(units, report::parse_units(args.units));
  }
  units.suffix = !args.nosuffix;
  return units;
}

report::OutputOptions output_options(const ReportArgs& args) {
  report::OutputOptions out;
  out.headings = !args.noheadings;
  if (args.separator_given) out.separator = args.separator;
  out.aligned = args.aligned;
  out.json = args.reportformat == "json";
  return out;
}

int warn_scan_problems(const vg::ScanResult& scan) {
  int printed = 0;
  for (const vg::ScannedDevice& dev : scan.devices) {
    for (const std::string& w : dev.warnings) complain(w);
    printed += static_cast<int>(dev.warnings.size());
    if (dev.status.ok() || dev.status.errnum() == ENODATA) continue;
    complain("WARNING: " + dev.status.message());
    ++printed;
  }
  for (const auto& [name, why] : scan.broken_vgs) {
    complain(fmt::format("WARNING: Volume group \"{}\" cannot be used: {}", name, why.message()));
    ++printed;
  }
  return printed;
}

Result<ScannedRoot> scan_and_warn(Context& ctx) {
  ScannedRoot root;
  COWSNAP_ASSIGN_OR_RETURN(root.backend, ctx.backend());
  COWSNAP_ASSIGN_OR_RETURN(root.scan, root.backend->scan());
  warn_scan_problems(root.scan);
  return root;
}

namespace {

// The report's fields, units, sort order and output options.
struct Prepared {
  std::vector<const report::FieldDef*> fields;
  report::Units units;
  std::vector<report::SortKey> sort;
  std::vector<const report::FieldDef*> sort_fields;
  report::OutputOptions output;
};

Result<Prepared> prepare(report::ReportKind kind, const ReportArgs& args) {
  Prepared p;
  COWSNAP_ASSIGN_OR_RETURN(p.fields, report::select_fields(kind, args.options));
  COWSNAP_ASSIGN_OR_RETURN(p.units, report_units(args));
  COWSNAP_ASSIGN_OR_RETURN(p.sort, report::select_sort_keys(kind, args.sort));
  for (const report::SortKey& k : p.sort) p.sort_fields.push_back(k.field);
  p.output = output_options(args);
  return p;
}

// A report's rows, in the default order (by name), and with -O each row's
// sort keys.
struct ReportRows {
  std::vector<report::Row> rows;
  std::vector<report::Row> keys;
};

template <typename Input>
using RowFn = report::Row (*)(const std::vector<const report::FieldDef*>&, const Input&,
                              const report::Units&);

template <typename Input>
void add_row(ReportRows& out, const Prepared& p, RowFn<Input> row, const Input& in) {
  out.rows.push_back(row(p.fields, in, p.units));
  if (!p.sort.empty()) out.keys.push_back(row(p.sort_fields, in, report::sort_units()));
}

int vg_not_found(const vg::ScanResult& scan, const std::string& name) {
  if (auto it = scan.broken_vgs.find(name); it != scan.broken_vgs.end()) {
    complain(it->second.message());
  } else {
    complain(fmt::format("Volume group \"{}\" not found", name));
  }
  complain(fmt::format("Cannot process volume group {}", name));
  return kExitFailed;
}

// Collects the report's rows from the scanned root; returns the exit code.
using CollectRows = int (*)(Backend& backend, const vg::ScanResult& scan, const ReportArgs& args,
                            const Prepared& prepared, ReportRows& out);

// What lvs, vgs and pvs share: the fields and options, the scan, and the
// rendered report of the rows `collect` gathered.
int run_report(Context& ctx, report::ReportKind kind, const ReportArgs& args, CollectRows collect) {
  auto prepared = prepare(kind, args);
  if (!prepared.ok()) return fail(prepared.status());
  auto root = scan_and_warn(ctx);
  if (!root.ok()) return fail(root.status());
  ReportRows out;
  const int rc = collect(*root->backend, root->scan, args, *prepared, out);
  report::sort_rows(out.rows, out.keys, prepared->sort);
  fmt::print("{}", report::render(kind, prepared->fields, out.rows, prepared->output));
  return rc;
}

int lv_rows(Backend& backend, const vg::ScanResult& scan, const ReportArgs& args, const Prepared& prepared,
            ReportRows& out) {
  int rc = kExitOk;
  // VG name -> wanted LV names (empty: all).
  std::map<std::string, std::vector<std::string>> wanted;
  if (args.names.empty()) {
    for (const auto& [name, disk] : scan.vgs) wanted[name];
  }
  for (const std::string& arg : args.names) {
    auto [vg_name, lv_name] = split_lv_path(arg);
    if (!scan.vgs.contains(vg_name)) {
      rc = vg_not_found(scan, vg_name);
      continue;
    }
    if (lv_name.empty()) {
      wanted[vg_name].clear();
      wanted[vg_name].emplace_back();  // marker: whole VG
    } else if (wanted[vg_name].empty() || !wanted[vg_name].front().empty()) {
      wanted[vg_name].push_back(lv_name);
    }
  }
  for (const auto& [vg_name, lv_names] : wanted) {
    const vg::VgOnDisk& disk = scan.vgs.at(vg_name);
    auto live = backend.live_state(disk);
    if (!live.ok()) {
      rc = fail(live.status());
      continue;
    }
    // As the kernel logs a failed snapshot table load; lvs exits 0.
    for (const auto& [lv_name, state] : *live) {
      if (!state.failure.empty()) {
        complain(fmt::format("WARNING: Snapshot {}/{} cannot be used: {}", vg_name, lv_name, state.failure));
      }
    }
    const bool whole = lv_names.empty() || lv_names.front().empty();
    for (const std::string& name : lv_names) {
      if (name.empty()) continue;
      const vg::LogicalVolume* lv = disk.vg.find_lv(name);
      if (lv == nullptr || vg::lv_role(disk.vg, name) == vg::LvRole::kSnapshotInternal) {
        complain(fmt::format("Failed to find logical volume \"{}/{}\"", vg_name, name));
        rc = kExitFailed;
      }
    }
    std::vector<const vg::LogicalVolume*> lvs;
    for (const vg::LogicalVolume& lv : disk.vg.lvs) {
      // lvm2 never lists a snapshot's internal snapshotN LV, even with -a.
      if (vg::lv_role(disk.vg, lv.name) == vg::LvRole::kSnapshotInternal) continue;
      const bool visible = vg::lv_user_visible(disk.vg, lv);
      // A hidden LV named on the command line is listed, as "[name]".
      if (!visible && !args.all && whole) continue;
      if (!whole && std::find(lv_names.begin(), lv_names.end(), lv.name) == lv_names.end()) continue;
      lvs.push_back(&lv);
    }
    std::sort(lvs.begin(), lvs.end(), [](auto* a, auto* b) { return a->name < b->name; });
    const bool per_segment =
        report::has_segment_fields(prepared.fields) || report::has_segment_fields(prepared.sort_fields);
    for (const vg::LogicalVolume* lv : lvs) {
      report::LvRowInput in;
      in.vg = &disk.vg;
      in.lv = lv;
      if (auto it = live->find(lv->name); it != live->end()) in.live = it->second;
      in.path_of = disk.path_lookup();
      in.bracketed = !vg::lv_user_visible(disk.vg, *lv);
      if (!per_segment || lv->segments.size() < 2) {
        add_row<report::LvRowInput>(out, prepared, report::lv_row, in);
        continue;
      }
      for (size_t s = 0; s < lv->segments.size(); ++s) {
        in.segment = s;
        add_row<report::LvRowInput>(out, prepared, report::lv_row, in);
      }
    }
  }
  return rc;
}

int vg_rows(Backend& /*backend*/, const vg::ScanResult& scan, const ReportArgs& args,
            const Prepared& prepared, ReportRows& out) {
  int rc = kExitOk;
  std::vector<std::string> names;
  for (const std::string& arg : args.names) {
    const std::string name = split_lv_path(arg).first;
    if (!scan.vgs.contains(name)) {
      rc = vg_not_found(scan, name);
    } else if (std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
    }
  }
  if (args.names.empty()) {
    for (const auto& [name, disk] : scan.vgs) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const vg::VgOnDisk& disk = scan.vgs.at(name);
    add_row<report::VgRowInput>(out, prepared, report::vg_row, {&disk.vg, !disk.missing_pvs.empty()});
  }
  return rc;
}

int pv_rows(Backend& /*backend*/, const vg::ScanResult& scan, const ReportArgs& args,
            const Prepared& prepared, ReportRows& out) {
  int rc = kExitOk;
  std::vector<std::string> wanted;
  for (const std::string& arg : args.names) wanted.push_back(vg::absolute_path(arg));
  std::vector<std::pair<std::string, report::PvRowInput>> inputs;
  for (const vg::ScannedDevice& dev : scan.devices) {
    if (!dev.pv) continue;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), dev.path) == wanted.end()) continue;
    report::PvRowInput in;
    in.path = dev.path;
    in.uuid = vg::format_lvm_id(dev.pv->header.uuid);
    in.device_bytes = dev.pv->header.device_size_bytes;
    in.pe_start_bytes = dev.pv->pe_start_bytes();
    if (auto it = scan.vgs.find(dev.vg_name); !dev.vg_name.empty() && it != scan.vgs.end()) {
      in.vg = &it->second.vg;
      in.pv = it->second.vg.find_pv_by_id(dev.pv->header.uuid);
    }
    inputs.emplace_back(dev.path, in);
  }
  for (const std::string& path : wanted) {
    if (std::none_of(inputs.begin(), inputs.end(), [&](const auto& p) { return p.first == path; })) {
      complain(fmt::format("Failed to find physical volume \"{}\".", path));
      rc = kExitFailed;
    }
  }
  std::sort(inputs.begin(), inputs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [path, in] : inputs) add_row<report::PvRowInput>(out, prepared, report::pv_row, in);
  return rc;
}

}  // namespace

void register_report_commands(CLI::App& app, CommandTable& table) {
  struct Commands {
    ReportArgs lvs, vgs, pvs;
  };
  auto args = std::make_shared<Commands>();
  CLI::App* lvs = app.add_subcommand("lvs", "Report logical volumes (as lvm2's lvs)");
  add_report_options(lvs, args->lvs, "VG or VG/LV to report (default: all)");
  table.add(lvs,
            [args](Context& ctx) { return run_report(ctx, report::ReportKind::kLv, args->lvs, lv_rows); });
  CLI::App* vgs = app.add_subcommand("vgs", "Report volume groups (as lvm2's vgs)");
  add_report_options(vgs, args->vgs, "VGs to report (default: all)");
  table.add(vgs,
            [args](Context& ctx) { return run_report(ctx, report::ReportKind::kVg, args->vgs, vg_rows); });
  CLI::App* pvs = app.add_subcommand("pvs", "Report physical volumes (as lvm2's pvs)");
  add_report_options(pvs, args->pvs, "PV paths to report (default: all)");
  table.add(pvs,
            [args](Context& ctx) { return run_report(ctx, report::ReportKind::kPv, args->pvs, pv_rows); });
}

}  // namespace cowsnap::cli
