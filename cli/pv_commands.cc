// pvcreate, pvremove, pvdisplay, lvmdevices.
#include <fmt/format.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <string_view>

#include "command.h"
#include "cowsnap/io/rbd.h"
#include "cowsnap/report/size.h"
#include "display.h"

namespace cowsnap::cli {
namespace {

struct PvArgs {
  std::vector<std::string> paths;
  std::string size;
  bool size_given = false;  // --size '' is an error, not "no size"
  uint32_t metadata_copies = 1;
  std::string adddev;
  std::string deldev;
};

// pvcreate's and pvremove's loop: `op` on each path, made absolute. A
// failure prints its message and "PATH: <not_done>", and makes the result
// kExitFailed; a success prints "<done_what> "PATH" successfully <done_how>.".
struct PvStep {
  std::function<Status(Backend& backend, const std::string& abs)> op;
  std::string_view not_done;
  std::string_view done_what;
  std::string_view done_how;
};

int for_each_pv_path(Context& ctx, const std::vector<std::string>& paths, const PvStep& step) {
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  int rc = kExitOk;
  for (const std::string& path : paths) {
    const std::string abs = vg::absolute_path(path);
    Status s = step.op(**backend, abs);
    if (!s.ok()) {
      complain(s.message());
      complain(fmt::format("{}: {}", abs, step.not_done));
      rc = kExitFailed;
      continue;
    }
    say(fmt::format("{} \"{}\" successfully {}.", step.done_what, abs, step.done_how));
  }
  return rc;
}

int run_pvcreate(Context& ctx, const PvArgs& args) {
  uint64_t size_bytes = 0;
  if (args.size_given) {
    auto size = report::parse_size(args.size, 'm');
    if (!size.ok() || size->sign != report::SizeSign::kNone || size->bytes == 0) {
      complain(fmt::format("Invalid argument for --size: {}", args.size));
      return kExitInvalidCommandLine;
    }
    size_bytes = size->bytes;
  }
  vg::PvCreateOptions options;
  options.metadata_copies = args.metadata_copies;
  return for_each_pv_path(ctx, args.paths,
                          {[size_bytes, options](Backend& backend, const std::string& abs) {
                             // A refused pvcreate leaves nothing behind: a
                             // file it created for --size goes again.
                             // An RBD image it created stays: removing
                             // images is the rbd tool's business.
                             std::error_code ec;
                             const bool existed =
                                 is_rbd_name(abs) || std::filesystem::symlink_status(abs, ec).type() !=
                                                         std::filesystem::file_type::not_found;
                             Status s = backend.pvcreate(abs, size_bytes, options).status();
                             if (!s.ok() && !existed) std::filesystem::remove(abs, ec);
                             return s;
                           },
                           "physical volume not initialized.", "Physical volume", "created"});
}

int run_pvremove(Context& ctx, const PvArgs& args) {
  return for_each_pv_path(ctx, args.paths,
                          {[](Backend& backend, const std::string& abs) { return backend.pvremove(abs); },
                           "physical volume label not removed.", "Labels on physical volume", "wiped"});
}

int run_lvmdevices(Context& ctx, const PvArgs& args) {
  auto backend = ctx.backend();
  if (!backend.ok()) return fail(backend.status());
  if (!args.adddev.empty()) {
    Status s = (*backend)->add_device(vg::absolute_path(args.adddev));
    return s.ok() ? kExitOk : fail(s);
  }
  if (!args.deldev.empty()) {
    Status s = (*backend)->remove_device(vg::absolute_path(args.deldev));
    return s.ok() ? kExitOk : fail(s);
  }
  auto scan = (*backend)->scan();
  if (!scan.ok()) return fail(scan.status());
  // lvm2's layout: one "Device ..." line per entry.
  for (const vg::ScannedDevice& dev : scan->devices) {
    const std::string pvid = dev.pv ? dev.pv->header.uuid : "none";
    say(fmt::format(
        "Device {} IDTYPE=devname IDNAME={} DEVNAME={} PVID={}{}", dev.path, dev.path, dev.path, pvid,
        dev.status.ok() || dev.status.errnum() == ENODATA ? "" : " (" + dev.status.message() + ")"));
  }
  return kExitOk;
}

}  // namespace

void register_pv_commands(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<PvArgs>();
  CLI::App* pvcreate = app.add_subcommand("pvcreate", "Initialise files or devices as LVM2 physical volumes");
  pvcreate
      ->add_option("--size", args->size,
                   "Create the file sparse with this size when missing (e.g. 6625M; default unit MiB)")
      ->each([a = args.get()](const std::string&) { a->size_given = true; });
  pvcreate
      ->add_option("--pvmetadatacopies", args->metadata_copies,
                   "Metadata areas: 1, or 2 for a second copy at the PV's end (as lvm2 places it)")
      ->check(CLI::Range(1, 2));
  pvcreate->add_option("paths", args->paths, "Files or block devices")->required();
  pvcreate->footer("Example: cowsnap pvcreate --size 6625M /srv/pv0.img");
  table.add(pvcreate, [args](Context& ctx) { return run_pvcreate(ctx, *args); });

  CLI::App* pvremove = app.add_subcommand("pvremove", "Wipe the PV label of devices in no VG");
  pvremove->add_option("paths", args->paths, "PV paths")->required();
  table.add(pvremove, [args](Context& ctx) { return run_pvremove(ctx, *args); });

  CLI::App* pvdisplay = app.add_subcommand("pvdisplay", "Show physical volumes in detail");
  pvdisplay->add_option("paths", args->paths, "PV paths (default: all)");
  table.add(pvdisplay, [args](Context& ctx) { return run_pvdisplay(ctx, args->paths); });

  CLI::App* lvmdevices = app.add_subcommand("lvmdevices", "List or edit the devices file (ROOT/devices)");
  auto* add = lvmdevices->add_option("--adddev", args->adddev, "Add a device path");
  lvmdevices->add_option("--deldev", args->deldev, "Remove a device path")->excludes(add);
  table.add(lvmdevices, [args](Context& ctx) { return run_lvmdevices(ctx, *args); });
}

}  // namespace cowsnap::cli
