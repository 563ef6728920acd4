// vgcreate, vgextend, vgremove, vgdisplay.
#include <fmt/format.h>

#include <functional>
#include <string_view>

#include "command.h"
#include "cowsnap/report/size.h"
#include "display.h"

namespace cowsnap::cli {
namespace {

struct VgArgs {
  std::string name;
  std::vector<std::string> pvs;
  std::string extent_size;
  bool force = false;
  std::vector<std::string> names;
};

std::vector<std::string> absolute_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  out.reserve(paths.size());
  for (const auto& p : paths) out.push_back(vg::absolute_path(p));
  return out;
}

// vgcreate's and vgextend's end: runs `op` on the backend, then prints its
// notices and "Volume group "NAME" successfully <done>".
int change_vg(Context& ctx, const std::string& name, std::string_view done,
              const std::function<Result<vg::CommitResult>(Backend& backend)>& op) {
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  auto result = op(**backend);
  if (!result.ok()) return fail(result.status());
  for (const std::string& notice : result->notices) say(notice);
  say(fmt::format("Volume group \"{}\" successfully {}", name, done));
  return kExitOk;
}

int run_vgcreate(Context& ctx, const VgArgs& args) {
  uint64_t extent_sectors = vg::kDefaultExtentSectors;
  if (!args.extent_size.empty()) {
    auto size = report::parse_size(args.extent_size, 'm');
    if (!size.ok() || size->sign != report::SizeSign::kNone || size->bytes == 0 || size->bytes % 512 != 0) {
      complain(fmt::format("Invalid argument for --physicalextentsize: {}", args.extent_size));
      return kExitInvalidCommandLine;
    }
    extent_sectors = size->bytes / 512;
  }
  return change_vg(ctx, args.name, "created", [&](Backend& backend) {
    return backend.vgcreate(args.name, absolute_paths(args.pvs), extent_sectors);
  });
}

int run_vgextend(Context& ctx, const VgArgs& args) {
  return change_vg(ctx, args.name, "extended",
                   [&](Backend& backend) { return backend.vgextend(args.name, absolute_paths(args.pvs)); });
}

int run_vgremove(Context& ctx, const VgArgs& args) {
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  int rc = kExitOk;
  for (const std::string& arg : args.names) {
    const std::string name = split_lv_path(arg).first;
    auto disk = (*backend)->read_vg(name);
    if (!disk.ok()) {
      rc = fail(disk.status());
      continue;
    }
    Status s = (*backend)->vgremove(name, args.force);
    if (!s.ok()) {
      complain(s.message());
      complain(fmt::format("Volume group \"{}\" not removed", name));
      rc = kExitFailed;
      continue;
    }
    // What -f took with it, snapshots before their origins as lvm2 does.
    std::vector<std::string> removed;
    for (const auto& ref : vg::snapshots(disk->vg)) removed.push_back(ref.cow_lv);
    for (const auto& lv : disk->vg.lvs) {
      if (vg::lv_user_visible(disk->vg, lv) && !vg::snapshot_for(disk->vg, lv.name))
        removed.push_back(lv.name);
    }
    for (const auto& lv : removed) say(fmt::format("Logical volume \"{}\" successfully removed.", lv));
    say(fmt::format("Volume group \"{}\" successfully removed", name));
  }
  return rc;
}

}  // namespace

void register_vg_commands(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<VgArgs>();
  CLI::App* vgcreate = app.add_subcommand("vgcreate", "Create a volume group from orphan PVs");
  vgcreate->add_option("-s,--physicalextentsize", args->extent_size,
                       "Extent size (default 4M; default unit MiB)");
  vgcreate->add_option("vg", args->name, "VG name")->required();
  vgcreate->add_option("pvs", args->pvs, "PV paths")->required();
  vgcreate->footer("Example: cowsnap vgcreate -s 32M vgsrv /srv/pv0.img");
  table.add(vgcreate, [args](Context& ctx) { return run_vgcreate(ctx, *args); });

  CLI::App* vgextend = app.add_subcommand("vgextend", "Add orphan PVs to a volume group");
  vgextend->add_option("vg", args->name, "VG name")->required();
  vgextend->add_option("pvs", args->pvs, "PV paths")->required();
  table.add(vgextend, [args](Context& ctx) { return run_vgextend(ctx, *args); });

  CLI::App* vgremove = app.add_subcommand("vgremove", "Remove volume groups (their PVs become orphans)");
  vgremove->add_flag("-f,--force", args->force, "Also remove the VG's logical volumes");
  vgremove->add_option("vgs", args->names, "VG names")->required();
  table.add(vgremove, [args](Context& ctx) { return run_vgremove(ctx, *args); });

  CLI::App* vgdisplay = app.add_subcommand("vgdisplay", "Show volume groups in detail");
  vgdisplay->add_option("vgs", args->names, "VG names (default: all)");
  table.add(vgdisplay, [args](Context& ctx) { return run_vgdisplay(ctx, args->names); });
}

}  // namespace cowsnap::cli
