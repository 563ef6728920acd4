// Options shared by lvs, vgs and pvs, as lvm2 spells them.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "command.h"
#include "cowsnap/report/report.h"
#include "cowsnap/vg/volume_manager.h"

namespace cowsnap::cli {

struct ReportArgs {
  std::vector<std::string> options;  // -o, in order
  std::vector<std::string> sort;     // -O, in order (the last one counts)
  bool noheadings = false;
  std::string separator;
  bool separator_given = false;
  bool aligned = false;
  std::string units;
  bool nosuffix = false;
  std::string reportformat = "basic";
  bool all = false;
  std::vector<std::string> names;
};

void add_report_options(CLI::App* command, ReportArgs& args, const std::string& names_help);

// Units and output options from the parsed arguments; EINVAL for bad ones.
Result<report::Units> report_units(const ReportArgs& args);
report::OutputOptions output_options(const ReportArgs& args);

// Prints "  WARNING: ..." on stderr for every listed device that could not
// be read as a PV (other than "not a PV"), and every VG that could not be
// assembled. Returns how many it printed.
int warn_scan_problems(const vg::ScanResult& scan);

// The backend and a scan of ROOT, whose problems warn_scan_problems has
// already printed.
struct ScannedRoot {
  Backend* backend = nullptr;
  vg::ScanResult scan;
};
Result<ScannedRoot> scan_and_warn(Context& ctx);

}  // namespace cowsnap::cli
