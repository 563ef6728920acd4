// lvcreate (plain and -s), lvremove, lvrename, lvextend/lvresize, lvchange,
// lvdisplay.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>

#include "command.h"
#include "cowsnap/report/size.h"
#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/names.h"
#include "display.h"
#include "report_args.h"

namespace cowsnap::cli {
namespace {

struct LvArgs {
  std::string size;     // -L
  std::string extents;  // -l
  std::string name;     // -n
  // Whether -L, -l, -n were given at all: "-L ''" or "-n ''" is an error,
  // not the default.
  bool size_given = false;
  bool extents_given = false;
  bool name_given = false;
  bool snapshot = false;
  std::string chunk;  // -c
  bool force = false;
  std::string activate;    // lvchange -a
  std::string permission;  // lvcreate -p, lvchange -p
  std::string monitor;     // lvchange --monitor
  std::vector<std::string> targets;
};

int read_vg_or_fail(Backend& backend, const std::string& vg_name, vg::VgOnDisk& out) {
  auto disk = backend.read_vg(vg_name);
  if (!disk.ok()) {
    complain(disk.status().message());
    if (disk.status().errnum() == ENOENT) {
      // Say why, when a damaged device may have held it.
      if (auto scan = backend.scan(); scan.ok()) warn_scan_problems(*scan);
      complain(fmt::format("Cannot process volume group {}", vg_name));
    }
    return kExitFailed;
  }
  out = std::move(disk).value();
  return kExitOk;
}

int lv_not_found(const std::string& vg_name, const std::string& lv_name) {
  complain(fmt::format("Failed to find logical volume \"{}/{}\"", vg_name, lv_name));
  return kExitFailed;
}

// The LV named `lv_name` when the user may see it, else null.
const vg::LogicalVolume* visible_lv(const vg::VolumeGroup& vg, const std::string& lv_name) {
  const vg::LogicalVolume* lv = lv_name.empty() ? nullptr : vg.find_lv(lv_name);
  return lv == nullptr || !vg::lv_user_visible(vg, *lv) ? nullptr : lv;
}

// Runs `fn(vg_name, lv_name, disk)` for each VG/LV target that names a
// visible LV; the others are reported. Returns kExitOk, or kExitFailed when a
// target was not found or `fn` failed.
using TargetFn =
    std::function<int(const std::string& vg_name, const std::string& lv_name, const vg::VgOnDisk& disk)>;
int for_each_target_lv(Backend& backend, const std::vector<std::string>& targets, const TargetFn& fn) {
  int rc = kExitOk;
  for (const std::string& target : targets) {
    auto [vg_name, lv_name] = split_lv_path(target);
    vg::VgOnDisk disk;
    if (read_vg_or_fail(backend, vg_name, disk) != kExitOk) {
      rc = kExitFailed;
      continue;
    }
    if (visible_lv(disk.vg, lv_name) == nullptr) {
      rc = lv_not_found(vg_name, lv_name);
      continue;
    }
    if (int r = fn(vg_name, lv_name, disk); r != kExitOk) rc = r;
  }
  return rc;
}

// lvm2's ending for a command line it refuses before reading any VG.
int bad_command_line(std::string_view command) {
  complain(fmt::format("Run `{} --help' for more information.", command));
  return kExitInvalidCommandLine;
}

// lvm2's ending for an option value it cannot parse.
bool bad_option_value(std::string_view why, std::string_view option, std::string_view value) {
  complain(why);
  complain(fmt::format("Invalid argument for --{}: {}", option, value));
  complain("Error during parsing of command line.");
  return false;
}

// -p r|rw, as lvm2 parses it; complains and returns nullopt otherwise.
std::optional<vg::LvPermission> parse_permission(const std::string& value) {
  if (value == "r") return vg::LvPermission::kReadOnly;
  if (value == "rw") return vg::LvPermission::kReadWrite;
  complain(fmt::format("Invalid argument for --permission: {}", value));
  complain("Error during parsing of command line.");
  return std::nullopt;
}

// -L and -l: exactly one of them, well formed; a sign '-' only when
// `minus_ok` (lvresize). Checked as lvm2 parses its command line, so with
// its messages; complains and returns false otherwise.
bool size_args_ok(const LvArgs& args, bool minus_ok) {
  if (args.size_given) {
    const std::string_view v = args.size;
    if (v.empty()) return bad_option_value("Size requires number argument.", "size", v);
    if (v.front() == '-' && !minus_ok) return bad_option_value("Size may not be negative.", "size", v);
    if (!report::parse_size(v, 'm').ok()) return bad_option_value("Can't parse size argument.", "size", v);
  }
  if (args.extents_given) {
    const std::string_view v = args.extents;
    if (!v.empty() && v.front() == '-' && !minus_ok)
      return bad_option_value("Extents may not be negative.", "extents", v);
    if (auto ex = report::parse_extents(v); !ex.ok()) {
      if (!v.empty()) complain(ex.status().message());
      complain(fmt::format("Invalid argument for --extents: {}", v));
      complain("Error during parsing of command line.");
      return false;
    }
  }
  if (args.size_given == args.extents_given) {
    complain("Please specify either size or extents (not both).");
    return false;
  }
  return true;
}

// A new LV name as lvm2 checks it on the command line: characters and
// length ('Logical volume name "X" is invalid.'), then the reserved names.
// `what` prefixes the first message ("New " for lvrename, as lvm2).
bool lv_name_ok(std::string_view vg_name, std::string_view lv_name, std::string_view what = "",
                std::string_view period = ".") {
  if (!vg::lv_name_well_formed(lv_name)) {
    complain(fmt::format("{}{}ogical volume name \"{}\" is invalid{}", what, what.empty() ? "L" : "l",
                         lv_name, period));
    return false;
  }
  if (Status s = vg::validate_lv_name(vg_name, lv_name); !s.ok()) {
    complain(s.message());
    return false;
  }
  return true;
}

// The first free "lvolN", lvm2's name for an LV created without -n.
std::string next_lvol_name(const vg::VolumeGroup& vg) {
  for (int i = 0;; ++i) {
    std::string name = fmt::format("lvol{}", i);
    if (vg.find_lv(name) == nullptr) return name;
  }
}

// Extents for -L/-l relative to `current` (0 for lvcreate); sets
// `rounded` when -L was not a whole number of extents. -1 on a bad argument.
struct SizeRequest {
  int64_t extents = -1;
  bool rounded = false;
};

SizeRequest requested_extents(const LvArgs& args, const vg::VolumeGroup& vg, uint64_t current,
                              uint64_t origin_extents) {
  SizeRequest req;
  const uint64_t ext = vg.extent_bytes();
  report::SizeSign sign = report::SizeSign::kNone;
  uint64_t amount = 0;
  if (args.size_given) {
    auto size = report::parse_size(args.size, 'm');
    if (!size.ok()) {
      complain(fmt::format("Invalid argument for --size: {}", args.size));
      return req;
    }
    sign = size->sign;
    amount = vg::extents_for_bytes(vg, size->bytes);
    req.rounded = size->bytes % ext != 0;
  } else {
    auto ex = report::parse_extents(args.extents);
    if (!ex.ok()) {
      complain(ex.status().message());
      return req;
    }
    sign = ex->sign;
    switch (ex->base) {
      case report::ExtentsBase::kExtents:
        amount = ex->value;
        break;
      case report::ExtentsBase::kFree:
        amount = report::percent_of_extents(ex->value, vg::free_extent_count(vg));
        break;
      case report::ExtentsBase::kVg:
      case report::ExtentsBase::kPvs:
        amount = report::percent_of_extents(ex->value, vg.pe_total());
        break;
      case report::ExtentsBase::kOrigin:
        if (origin_extents == 0) {
          complain("--extents N%ORIGIN is only valid for snapshots");
          return req;
        }
        amount = report::percent_of_extents(ex->value, origin_extents);
        break;
    }
  }
  uint64_t total = amount;
  if (sign == report::SizeSign::kPlus) total = current + amount;
  if (sign == report::SizeSign::kMinus) total = amount >= current ? 0 : current - amount;
  req.extents = static_cast<int64_t>(total);
  return req;
}

int run_lvcreate(Context& ctx, const LvArgs& args) {
  if (!size_args_ok(args, false)) return kExitInvalidCommandLine;
  const std::optional<vg::LvPermission> permission =
      args.permission.empty() ? vg::LvPermission::kReadWrite : parse_permission(args.permission);
  if (!permission) return kExitInvalidCommandLine;
  if (args.size_given && report::parse_size(args.size, 'm')->bytes == 0) {
    complain("--size may not be zero.");
    return bad_command_line("lvcreate");
  }
  if (args.targets.size() != 1) {
    complain(args.snapshot ? "Please specify the origin as VG/LV." : "Please provide a volume group name");
    return kExitInvalidCommandLine;
  }
  auto [vg_name, origin] = split_lv_path(args.targets.front());
  std::string lv_name = args.name;
  // -n VG/LV names the VG too; it must be the target's (lvm2's checks).
  if (args.name_given && lv_name.find('/') != std::string::npos) {
    auto [name_vg, name_lv] = split_lv_path(lv_name);
    if (name_vg != vg_name) {
      complain(
          args.snapshot
              ? fmt::format("Please use a single volume group name (\"{}\" or \"{}\").", vg_name, name_vg)
              : fmt::format("Inconsistent volume group names given: \"{}\" and \"{}\"", name_vg, vg_name));
      return bad_command_line("lvcreate");
    }
    lv_name = name_lv;
  }
  if (args.name_given && !lv_name_ok(vg_name, lv_name)) return bad_command_line("lvcreate");
  if (args.snapshot && origin.empty()) {
    complain("Please specify the origin as VG/LV.");
    return kExitInvalidCommandLine;
  }
  if (!args.snapshot && !origin.empty()) {
    complain(fmt::format("Unexpected logical volume \"{}\" for a new volume (use -n)", origin));
    return kExitInvalidCommandLine;
  }
  uint64_t chunk_sectors = vg::kDefaultChunkSectors;
  if (!args.chunk.empty()) {
    auto chunk = report::parse_size(args.chunk, 'k');
    if (!chunk.ok() || chunk->sign != report::SizeSign::kNone || chunk->bytes % 512 != 0) {
      complain(fmt::format("Invalid argument for --chunksize: {}", args.chunk));
      return kExitInvalidCommandLine;
    }
    chunk_sectors = chunk->bytes / 512;
    if (Status s = vg::validate_chunk_size(chunk_sectors); !s.ok()) {
      complain(s.message());
      return kExitInvalidCommandLine;
    }
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  vg::VgOnDisk disk;
  if (int rc = read_vg_or_fail(**backend, vg_name, disk); rc != kExitOk) return rc;
  const vg::VolumeGroup& vg = disk.vg;
  uint64_t origin_extents = 0;
  if (args.snapshot) {
    const vg::LogicalVolume* lv = visible_lv(vg, origin);
    if (lv == nullptr) return lv_not_found(vg_name, origin);
    origin_extents = lv->extent_count();
  }
  if (lv_name.empty()) lv_name = next_lvol_name(vg);
  const SizeRequest req = requested_extents(args, vg, 0, origin_extents);
  if (req.extents < 0) return kExitInvalidCommandLine;
  auto extents = static_cast<uint64_t>(req.extents);
  if (extents == 0) {
    complain("Unable to create new logical volume with no extents.");
    return kExitFailed;
  }
  if (req.rounded)
    say("Rounding up size to full physical extent " + report::format_size_long(extents * vg.extent_bytes()));
  // lvm2 checks free space for what it will really allocate: a COW above
  // its useful maximum is trimmed first.
  uint64_t needed = extents;
  if (args.snapshot) needed = std::min(needed, vg::cow_max_extents(vg, origin_extents, chunk_sectors));
  const uint64_t free = vg::free_extent_count(vg);
  if (needed > free) {
    complain(fmt::format("Volume group \"{}\" has insufficient free space ({} extents): {} required.",
                         vg_name, free, needed));
    return kExitFailed;
  }
  auto result = args.snapshot ? (*backend)->lvcreate_snapshot(vg_name, origin, lv_name, extents,
                                                              chunk_sectors, *permission)
                              : (*backend)->lvcreate(vg_name, lv_name, extents, *permission);
  if (!result.ok()) return fail(result.status());
  for (const std::string& notice : result->notices) say(notice);
  say(fmt::format("Logical volume \"{}\" created.", lv_name));
  return kExitOk;
}

int run_lvremove(Context& ctx, const LvArgs& args) {
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  return for_each_target_lv(
      **backend, args.targets,
      [&](const std::string& vg_name, const std::string& lv_name, const vg::VgOnDisk& disk) {
        auto result = (*backend)->lvremove(vg_name, lv_name, args.force);
        if (!result.ok()) {
          complain(result.status().message());
          complain(fmt::format("Logical volume \"{}\" not removed.", lv_name));
          return kExitFailed;
        }
        for (const auto& ref : vg::snapshots_of(disk.vg, lv_name)) {
          say(fmt::format("Logical volume \"{}\" successfully removed.", ref.cow_lv));
        }
        say(fmt::format("Logical volume \"{}\" successfully removed.", lv_name));
        return kExitOk;
      });
}

int run_lvrename(Context& ctx, const LvArgs& args) {
  std::string vg_name, old_name, new_name;
  const auto& t = args.targets;
  if (t.size() == 3) {
    vg_name = t[0];
    old_name = t[1];
    new_name = t[2];
  } else if (t.size() == 2) {
    std::tie(vg_name, old_name) = split_lv_path(t[0]);
    auto [new_vg, new_lv] = split_lv_path(t[1]);
    new_name = new_lv.empty() ? new_vg : new_lv;
    if (!new_lv.empty() && new_vg != vg_name) {
      complain(fmt::format("Logical volume names must have the same volume group (\"{}\" or \"{}\").",
                           vg_name, new_vg));
      return kExitInvalidCommandLine;
    }
  }
  if (vg_name.empty() || old_name.empty() || new_name.empty()) {
    complain("Old and new logical volume names required");
    return kExitInvalidCommandLine;
  }
  if (!lv_name_ok(vg_name, new_name, "New ", "")) return bad_command_line("lvrename");
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  vg::VgOnDisk disk;
  if (int rc = read_vg_or_fail(**backend, vg_name, disk); rc != kExitOk) return rc;
  if (visible_lv(disk.vg, old_name) == nullptr) return lv_not_found(vg_name, old_name);
  auto result = (*backend)->lvrename(vg_name, old_name, new_name);
  if (!result.ok()) return fail(result.status());
  say(fmt::format("Renamed \"{}\" to \"{}\" in volume group \"{}\"", old_name, new_name, vg_name));
  return kExitOk;
}

// lvextend (grow only) and lvresize.
int run_lvresize(Context& ctx, const LvArgs& args, bool extend_only) {
  const char* command = extend_only ? "lvextend" : "lvresize";
  if (!size_args_ok(args, !extend_only)) return kExitInvalidCommandLine;
  if (args.targets.size() != 1) {
    complain("Please provide the logical volume as VG/LV.");
    return kExitInvalidCommandLine;
  }
  auto [vg_name, lv_name] = split_lv_path(args.targets.front());
  if (!lv_name.empty() && !vg::lv_name_well_formed(lv_name)) {
    complain(fmt::format("Logical volume name \"{}\" is invalid.", lv_name));
    return bad_command_line(command);
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  vg::VgOnDisk disk;
  if (int rc = read_vg_or_fail(**backend, vg_name, disk); rc != kExitOk) return rc;
  const vg::VolumeGroup& vg = disk.vg;
  const vg::LogicalVolume* lv = visible_lv(vg, lv_name);
  if (lv == nullptr) return lv_not_found(vg_name, lv_name);
  const uint64_t current = lv->extent_count();
  uint64_t origin_extents = 0;
  if (auto ref = vg::snapshot_for(vg, lv_name)) {
    origin_extents = ref->origin_extents;
    // A bigger COW store cannot bring back what an invalid snapshot lost.
    auto live = (*backend)->live_state(disk);
    if (!live.ok()) return fail(live.status());
    if (auto it = live->find(lv_name); it != live->end() && !it->second.snapshot_valid) {
      complain(
          fmt::format("Snapshot {}/{} is invalid: resizing its COW store cannot make it valid again "
                      "(remove it with lvremove).",
                      vg_name, lv_name));
      return kExitFailed;
    }
  }
  const SizeRequest req = requested_extents(args, vg, current, origin_extents);
  if (req.extents < 0) return kExitInvalidCommandLine;
  const auto wanted = static_cast<uint64_t>(req.extents);
  const uint64_t ext = vg.extent_bytes();
  if (req.rounded)
    say(fmt::format("Rounding size to boundary between physical extents: {}.",
                    report::format_size_long(wanted * ext)));
  if (extend_only && wanted <= current) {
    complain(fmt::format("New size given ({} extents) not larger than existing size ({} extents)", wanted,
                         current));
    return kExitFailed;
  }
  if (wanted == current) {
    complain(fmt::format("New size ({} extents) matches existing size ({} extents).", wanted, current));
    return kExitFailed;
  }
  if (wanted == 0) {
    complain("Cannot reduce a logical volume to zero extents.");
    return kExitFailed;
  }
  const uint64_t free = vg::free_extent_count(vg);
  if (wanted > current && wanted - current > free) {
    complain(fmt::format("Insufficient free space: {} extents needed, but only {} available",
                         wanted - current, free));
    return kExitFailed;
  }
  auto result = (*backend)->lvresize(vg_name, lv_name, wanted);
  if (!result.ok()) return fail(result.status());
  for (const std::string& notice : result->notices) say(notice);
  // The size now in force: a snapshot's COW stops at its maximum size.
  const vg::LogicalVolume* resized = result->vg.find_lv(lv_name);
  const uint64_t now_extents = resized != nullptr ? resized->extent_count() : wanted;
  say(fmt::format("Size of logical volume {}/{} changed from {} ({} extents) to {} ({} extents).", vg_name,
                  lv_name, report::format_size_long(current * ext), current,
                  report::format_size_long(now_extents * ext), now_extents));
  say(fmt::format("Logical volume {}/{} successfully resized.", vg_name, lv_name));
  return kExitOk;
}

int run_lvchange(Context& ctx, const LvArgs& args) {
  if (args.activate.empty() && args.permission.empty() && args.monitor.empty()) {
    complain("Need one or more command options (cowsnap supports -a y|n, -p r|rw and --monitor y|n).");
    return kExitInvalidCommandLine;
  }
  std::optional<vg::LvPermission> permission;
  if (!args.permission.empty()) {
    permission = parse_permission(args.permission);
    if (!permission) return kExitInvalidCommandLine;
  }
  const bool active = args.activate == "y" || args.activate == "ay";
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  return for_each_target_lv(**backend, args.targets,
                            [&](const std::string& vg_name, const std::string& lv_name, const vg::VgOnDisk&) {
                              if (permission) {
                                auto changed = (*backend)->set_permission(vg_name, lv_name, *permission);
                                if (!changed.ok()) return fail(changed.status());
                                for (const std::string& notice : changed->notices) say(notice);
                                say(fmt::format("Logical volume {}/{} changed.", vg_name, lv_name));
                              }
                              if (!args.monitor.empty()) {
                                Status m = (*backend)->set_monitor(vg_name, lv_name, args.monitor == "y");
                                if (!m.ok()) return fail(m);
                              }
                              if (args.activate.empty()) return kExitOk;
                              Status s = (*backend)->set_active(vg_name, lv_name, active);
                              return s.ok() ? kExitOk : fail(s);
                            });
}

// -L/-l; `given` records in `args` which were on the command line.
void add_size_options(CLI::App* command, LvArgs& args) {
  auto* size = command->add_option("-L,--size", args.size, "Size, e.g. 64M, 1.5G, +32M (default unit MiB)");
  size->each([&args](const std::string&) { args.size_given = true; });
  command->add_option("-l,--extents", args.extents, "Extents: N, +N, N%FREE, N%VG, N%ORIGIN")
      ->excludes(size)
      ->each([&args](const std::string&) { args.extents_given = true; });
}

}  // namespace

void register_lv_commands(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<LvArgs>();
  CLI::App* lvcreate = app.add_subcommand("lvcreate", "Create a logical volume, or with -s a snapshot");
  add_size_options(lvcreate, *args);
  lvcreate->add_option("-n,--name", args->name, "LV name (default lvolN)")
      ->each([a = args.get()](const std::string&) { a->name_given = true; });
  lvcreate->add_flag("-s,--snapshot", args->snapshot, "Create a snapshot of the origin VG/LV");
  lvcreate->add_option("-c,--chunksize", args->chunk,
                       "Snapshot chunk size, power of two 4K-512K (default 4K, unit KiB)");
  lvcreate->add_option("-p,--permission", args->permission, "r (read-only) or rw (the default)");
  lvcreate->add_option("target", args->targets, "VG, or VG/LV (the origin) with -s");
  lvcreate->footer(
      "Examples:\n  cowsnap lvcreate -L 64M -n b64m vgsrv\n  cowsnap lvcreate -L 32M -s -n sb64m vgsrv/b64m");
  table.add(lvcreate, [args](Context& ctx) { return run_lvcreate(ctx, *args); });

  CLI::App* lvremove = app.add_subcommand("lvremove", "Remove logical volumes");
  lvremove->add_flag("-f,--force", args->force, "Also remove an origin's snapshots");
  lvremove->add_option("lvs", args->targets, "VG/LV")->required();
  table.add(lvremove, [args](Context& ctx) { return run_lvremove(ctx, *args); });

  CLI::App* lvrename = app.add_subcommand("lvrename", "Rename a logical volume");
  lvrename->add_option("names", args->targets, "VG OLD NEW, or VG/OLD NEW")->required();
  table.add(lvrename, [args](Context& ctx) { return run_lvrename(ctx, *args); });

  CLI::App* lvextend = app.add_subcommand("lvextend", "Grow a logical volume (a snapshot: its COW store)");
  add_size_options(lvextend, *args);
  lvextend->add_option("lv", args->targets, "VG/LV")->required();
  table.add(lvextend, [args](Context& ctx) { return run_lvresize(ctx, *args, true); });

  CLI::App* lvresize = app.add_subcommand("lvresize", "Resize a logical volume");
  add_size_options(lvresize, *args);
  lvresize->add_option("lv", args->targets, "VG/LV")->required();
  table.add(lvresize, [args](Context& ctx) { return run_lvresize(ctx, *args, false); });

  CLI::App* lvchange = app.add_subcommand(
      "lvchange",
      "Activate (-a y) or deactivate (-a n) LVs (needs a running server, which serves active LVs), or "
      "change their permission (-p r|rw)");
  lvchange->add_option("-a,--activate", args->activate, "y or n")->check(CLI::IsMember({"y", "n", "ay"}));
  lvchange->add_option("-p,--permission", args->permission, "r (read-only) or rw");
  lvchange
      ->add_option("--monitor", args->monitor,
                   "y or n: watch the LV's snapshots as dmeventd does (full warnings, autoextend)")
      ->check(CLI::IsMember({"y", "n"}));
  lvchange->add_option("lvs", args->targets, "VG/LV")->required();
  table.add(lvchange, [args](Context& ctx) { return run_lvchange(ctx, *args); });

  CLI::App* lvdisplay = app.add_subcommand("lvdisplay", "Show logical volumes in detail");
  lvdisplay->add_option("lvs", args->targets, "VG or VG/LV (default: all)");
  table.add(lvdisplay, [args](Context& ctx) { return run_lvdisplay(ctx, args->targets); });
}

}  // namespace cowsnap::cli
