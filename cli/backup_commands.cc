// vgcfgbackup, vgcfgrestore and vgck: lvm2's metadata backups and repair
// (engine: vg/metadata_backup.h, VolumeManager in vg/volume_manager.h).
//
// They work on the PVs directly, like the offline backend. With a server
// running, vgcfgrestore refuses a VG that has active LVs (the server's view
// of the VG would no longer match its metadata); lvm2 asks before
// restoring a VG with active LVs, cowsnap refuses.
#include <fmt/format.h>

#include <functional>

#include <cerrno>
#include <ctime>

#include "command.h"
#include "cowsnap/vg/metadata_backup.h"

namespace cowsnap::cli {
namespace {

struct BackupArgs {
  std::vector<std::string> vgs;
  std::string file;
  bool list = false;
  bool update_metadata = false;
};

Result<vg::VolumeManager> open_manager(Context& ctx) {
  vg::VolumeManagerOptions options;
  options.command_line = ctx.command_line();
  return vg::VolumeManager::open(ctx.root_dir(), std::move(options));
}

int vg_not_processed(const Status& why, const std::string& name) {
  complain(why.message());
  complain(fmt::format("Cannot process volume group {}", name));
  return kExitFailed;
}

// Every VG of the root, by name, when none is given (lvm2's default).
Result<std::vector<std::string>> vg_names(vg::VolumeManager& vm, const std::vector<std::string>& given) {
  if (!given.empty()) return given;
  COWSNAP_ASSIGN_OR_RETURN(vg::ScanResult s, vm.scan());
  std::vector<std::string> names;
  for (const auto& [name, v] : s.vgs) names.push_back(name);
  return names;
}

// Runs `one` on every VG named (all, when none is); a VG it fails on is
// reported and the others are still processed, as lvm2 does.
int for_each_vg(Context& ctx, const BackupArgs& args,
                const std::function<Status(vg::VolumeManager&, const std::string&)>& one) {
  auto vm = open_manager(ctx);
  if (!vm.ok()) return fail(vm.status());
  auto names = vg_names(*vm, args.vgs);
  if (!names.ok()) return fail(names.status());
  int rc = kExitOk;
  for (const std::string& name : *names) {
    Status s = one(*vm, name);
    if (!s.ok()) rc = vg_not_processed(s, name);
  }
  return rc;
}

int run_vgcfgbackup(Context& ctx, const BackupArgs& args) {
  return for_each_vg(ctx, args, [&](vg::VolumeManager& vm, const std::string& name) {
    COWSNAP_RETURN_IF_ERROR(vm.vgcfgbackup(name, args.file));
    say(fmt::format("Volume group \"{}\" successfully backed up.", name));
    return Status::Ok();
  });
}

// lvm2's ctime layout, local time.
std::string backup_time(int64_t t) {
  const auto tt = static_cast<time_t>(t);
  struct tm tm {};
  char buf[64] = {};
  if (::localtime_r(&tt, &tm) == nullptr ||
      std::strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm) == 0) {
    return std::to_string(t);
  }
  return buf;
}

void print_backup(const vg::BackupFile& b) {
  say(" ");
  say(fmt::format("File:\t\t{}", b.path));
  say(fmt::format("VG name:    \t{}", b.vg.name));
  say(fmt::format("Description:\t{}", b.description));
  say(fmt::format("Backup Time:\t{}", backup_time(b.time)));
  fmt::print("\n");
}

int run_list(Context& ctx, const BackupArgs& args) {
  if (!args.file.empty()) {
    auto b = vg::read_backup_file(args.file);
    if (!b.ok()) {
      complain(b.status().message());
      complain("Unable to read archive file.");
      return kExitFailed;
    }
    print_backup(*b);
    return kExitOk;
  }
  auto vm = open_manager(ctx);
  if (!vm.ok()) return fail(vm.status());
  auto list = vg::list_backups(vm->root().dir(), args.vgs.front());
  if (!list.ok()) return fail(list.status());
  if (list->empty()) say(fmt::format("No archives found in {}/archive.", vm->root().dir()));
  for (const vg::BackupFile& b : *list) print_backup(b);
  return kExitOk;
}

// With a server running, the number of the VG's LVs it has active.
Result<size_t> active_lvs(Context& ctx, const std::string& vg_name) {
  COWSNAP_ASSIGN_OR_RETURN(Backend * backend, ctx.backend());
  if (backend->kind() != "online") return size_t{0};
  auto disk = backend->read_vg(vg_name);
  if (!disk.ok()) return size_t{0};  // nothing readable, so nothing the server can hold active
  COWSNAP_ASSIGN_OR_RETURN(VgLiveState live, backend->live_state(*disk));
  size_t n = 0;
  for (const auto& [lv, state] : live) n += state.active ? 1U : 0U;
  return n;
}

int run_vgcfgrestore(Context& ctx, const BackupArgs& args) {
  if (args.list) return run_list(ctx, args);
  if (args.vgs.size() != 1) {
    complain("Please specify a *single* volume group to restore.");
    return kExitInvalidCommandLine;
  }
  const std::string& name = args.vgs.front();
  auto active = active_lvs(ctx, name);
  if (!active.ok()) return fail(active.status());
  if (*active != 0) {
    complain(fmt::format("WARNING: Found {} active volume(s) in volume group \"{}\".", *active, name));
    complain("Restoring VG with active LVs, may cause mismatch with its metadata.");
    complain("Restore aborted.");
    return kExitFailed;
  }
  auto vm = open_manager(ctx);
  if (!vm.ok()) return fail(vm.status());
  auto r = vm->vgcfgrestore(name, args.file);
  if (!r.ok()) {
    complain(r.status().message());
    complain("Restore failed.");
    return kExitFailed;
  }
  for (const std::string& notice : r->notices) say(notice);
  say(fmt::format("Restored volume group {}.", name));
  return kExitOk;
}

int run_vgck(Context& ctx, const BackupArgs& args) {
  return for_each_vg(ctx, args, [&](vg::VolumeManager& vm, const std::string& name) {
    COWSNAP_ASSIGN_OR_RETURN(auto report, vm.vgck(name, args.update_metadata));
    for (const std::string& w : report.warnings) complain(w);
    for (const std::string& w : report.repaired) complain(w);
    return Status::Ok();
  });
}

}  // namespace

void register_backup_commands(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<BackupArgs>();
  CLI::App* backup = app.add_subcommand("vgcfgbackup", "Back up VG metadata (default ROOT/backup/VG)");
  backup->add_option("-f,--file", args->file, "Write the backup to this file instead");
  backup->add_option("vgs", args->vgs, "VG names (default: all)");
  backup->footer("Example: cowsnap vgcfgbackup -f /srv/vgsrv.vg vgsrv");
  table.add(backup, [args](Context& ctx) { return run_vgcfgbackup(ctx, *args); });

  CLI::App* restore = app.add_subcommand(
      "vgcfgrestore", "Restore VG metadata from a backup (default ROOT/backup/VG) or list the archives");
  restore->add_option("-f,--file", args->file, "Restore from (or with --list, show) this file");
  restore->add_flag("-l,--list", args->list, "List the VG's archives and backup");
  restore->add_option("vgs", args->vgs, "VG name");
  restore->footer(
      "Examples: cowsnap vgcfgrestore --list vgsrv\n"
      "          cowsnap vgcfgrestore -f ROOT/archive/vgsrv_00002-123456.vg vgsrv");
  table.add(restore, [args](Context& ctx) {
    if (args->vgs.empty() && !(args->list && !args->file.empty())) {
      complain("Please specify a *single* volume group to restore.");
      return kExitInvalidCommandLine;
    }
    return run_vgcfgrestore(ctx, *args);
  });

  CLI::App* vgck = app.add_subcommand("vgck", "Check VG metadata; --updatemetadata repairs bad copies");
  vgck->add_flag("--updatemetadata", args->update_metadata,
                 "Rewrite bad or stale metadata areas with the VG's current metadata");
  vgck->add_option("vgs", args->vgs, "VG names (default: all)");
  table.add(vgck, [args](Context& ctx) { return run_vgck(ctx, *args); });
}

}  // namespace cowsnap::cli
