// `dmsetup table` and `dmsetup status`: the device-mapper tables lvm2 would
// load for every VG, from a read-only activation when no server runs.
#include <fmt/format.h>

#include "command.h"
#include "report_args.h"

namespace cowsnap::cli {
namespace {

struct DmArgs {
  std::string what;  // table or status
  std::string device;
};

int run_dmsetup(Context& ctx, const DmArgs& args) {
  auto root = scan_and_warn(ctx);
  if (!root.ok()) return fail(root.status());
  int rc = kExitOk;
  std::string out;
  for (const auto& [name, disk] : root->scan.vgs) {
    auto text = root->backend->dm_text(disk, args.what == "status");
    if (!text.ok()) {
      rc = fail(text.status());
      continue;
    }
    out += *text;
  }
  if (!args.device.empty()) {
    // Keep only the named device's lines ("NAME: start length ...").
    std::string filtered;
    size_t start = 0;
    while (start < out.size()) {
      size_t nl = out.find('\n', start);
      if (nl == std::string::npos) nl = out.size();
      const std::string line = out.substr(start, nl - start);
      if (line.starts_with(args.device + ": ")) filtered += line.substr(args.device.size() + 2) + "\n";
      start = nl + 1;
    }
    if (filtered.empty() && rc == kExitOk) {
      fmt::print(stderr, "Device {} not found\nCommand failed.\n", args.device);
      return 1;
    }
    out = filtered;
  }
  fmt::print("{}", out);
  return rc;
}

}  // namespace

void register_dmsetup_command(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<DmArgs>();
  CLI::App* dmsetup =
      app.add_subcommand("dmsetup", "Show the device-mapper tables (table) or status of all LVs");
  dmsetup->add_option("what", args->what, "table or status")
      ->required()
      ->check(CLI::IsMember({"table", "status"}));
  dmsetup->add_option("device", args->device, "Only this device, e.g. vgsrv-b64m");
  table.add(dmsetup, [args](Context& ctx) { return run_dmsetup(ctx, *args); });
}

}  // namespace cowsnap::cli
