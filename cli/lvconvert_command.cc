// lvconvert --merge VG/SNAP: rolls the origin back to the snapshot (the
// snapshot-merge target), and waits for it as lvm2's poll does: a progress
// line every -i seconds naming the origin, then the finish lines.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "command.h"
#include "cowsnap/report/data_percent.h"

namespace cowsnap::cli {
namespace {

struct ConvertArgs {
  bool merge = false;
  bool background = false;
  int interval = 15;  // lvm2's activation/polling_interval
  std::vector<std::string> targets;
};

// What the poll sees of the merge into `origin_lv`: the snapshot-merge
// target's usage, or nothing once the snapshot is gone.
struct MergeView {
  bool merging = false;
  bool failed = false;
  std::optional<StoreUsage> usage;
};

Result<MergeView> look(Backend& backend, const std::string& vg_name, const std::string& origin_lv) {
  COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, backend.read_vg(vg_name));
  MergeView view;
  for (const vg::SnapshotRef& ref : vg::snapshots_of(disk.vg, origin_lv))
    view.merging = view.merging || ref.merging;
  if (!view.merging) return view;
  COWSNAP_ASSIGN_OR_RETURN(VgLiveState live, backend.live_state(disk));
  if (auto it = live.find(origin_lv); it != live.end() && it->second.merging) {
    view.failed = it->second.merge_failed;
    view.usage = it->second.usage;
  }
  return view;
}

// "VG/ORIGIN: Merged: 37.50%" (lvm2's poll_merge_progress): 100 minus the
// snapshot-merge target's Data%. On a terminal a bar follows on the same
// line, redrawn in place.
void show_progress(const std::string& origin, double merged, bool terminal) {
  const std::string line = fmt::format("{}: Merged: {:.2f}%", origin, merged);
  if (!terminal) {
    say(line);
    return;
  }
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(merged * kWidth / 100.0);
  fmt::print("\r  {} [{}{}]", line, std::string(static_cast<size_t>(filled), '#'),
             std::string(static_cast<size_t>(kWidth - filled), '.'));
  (void)std::fflush(stdout);
}

int run_lvconvert(Context& ctx, const ConvertArgs& args) {
  if (!args.merge) {
    complain("Only --merge of a snapshot is supported (lvconvert --merge VG/SNAP).");
    return kExitInvalidCommandLine;
  }
  if (args.interval < 0) {
    complain("Argument to --interval cannot be negative.");
    return kExitInvalidCommandLine;
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  int rc = kExitOk;
  for (const std::string& target : args.targets) {
    auto [vg_name, lv_name] = split_lv_path(target);
    if (vg_name.empty() || lv_name.empty()) {
      complain(fmt::format("Please specify a logical volume path: {}", target));
      rc = kExitFailed;
      continue;
    }
    auto started = (*backend)->lvconvert_merge(vg_name, lv_name);
    if (!started.ok()) {
      rc = fail(started.status());
      continue;
    }
    for (const std::string& notice : started->commit.notices) say(notice);
    if (!started->started || args.background) continue;
    // Waits as lvm2's foreground poll: the first look at once.
    const std::string origin = fmt::format("{}/{}", vg_name, started->origin_lv);
    const bool terminal = ::isatty(STDOUT_FILENO) == 1 && args.interval > 0;
    for (;;) {
      auto view = look(**backend, vg_name, started->origin_lv);
      if (!view.ok()) {
        rc = fail(view.status().with_context(
            fmt::format("{}: Failed query for merging percentage. Aborting merge.", origin)));
        break;
      }
      if (view->failed) {
        if (terminal) fmt::print("\n");
        complain(fmt::format("{}: Merge failed. Retry merge or inspect manually.", origin));
        rc = kExitFailed;
        break;
      }
      if (!view->merging) {
        if (args.interval > 0) show_progress(origin, 100.0, terminal);
        if (terminal) fmt::print("\n");
        say(fmt::format("Merge of snapshot into logical volume {} has finished.", origin));
        say(fmt::format("Logical volume \"{}\" successfully removed.", lv_name));
        break;
      }
      if (args.interval > 0 && view->usage) {
        show_progress(origin, 100.0 - report::snapshot_data_percent(*view->usage, true), terminal);
      }
      // -i 0: no progress lines, and lvm2's shortest wait between looks.
      std::this_thread::sleep_for(args.interval > 0 ? std::chrono::milliseconds(args.interval * 1000)
                                                    : std::chrono::milliseconds(100));
    }
  }
  return rc;
}

}  // namespace

void register_lvconvert_command(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "lvconvert",
      "Merge a snapshot back into its origin (--merge): the origin returns to the snapshot's content");
  cmd->add_flag("--merge,--mergesnapshot", args->merge, "Merge the snapshot VG/SNAP into its origin");
  cmd->add_flag("-b,--background", args->background, "Return once the merge has started");
  cmd->add_option("-i,--interval", args->interval,
                  "Seconds between progress lines while waiting (default 15; 0: none)");
  cmd->add_option("lvs", args->targets, "VG/SNAP")->required();
  cmd->footer(
      "The merge starts at once when nothing holds the origin or its snapshots open; otherwise at the "
      "origin's "
      "next activation (server start, lvchange -ay), as lvm2 defers it.\n"
      "Example:\n  cowsnap lvconvert --merge vgsrv/sb64m2");
  table.add(cmd, [args](Context& ctx) { return run_lvconvert(ctx, *args); });
}

}  // namespace cowsnap::cli
