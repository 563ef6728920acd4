#include "display.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "cowsnap/report/report.h"
#include "cowsnap/report/size.h"
#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/lvm_id.h"
#include "report_args.h"

namespace cowsnap::cli {
namespace {

using report::format_size_long;

void item(std::string_view key, std::string_view value, size_t key_width = 21) {
  fmt::print("  {:<{}} {}\n", key, key_width, value);
}

void end_block() { fmt::print("   \n"); }

std::string creation(const vg::LogicalVolume& lv) {
  if (!lv.creation_time) return "";
  return fmt::format("{}, {}", lv.creation_host.value_or(""), report::format_lv_time(lv));
}

}  // namespace

int run_pvdisplay(Context& ctx, const std::vector<std::string>& paths) {
  auto root = scan_and_warn(ctx);
  if (!root.ok()) return fail(root.status());
  const vg::ScanResult& scan = root->scan;
  std::vector<std::string> wanted;
  wanted.reserve(paths.size());
  for (const auto& p : paths) wanted.push_back(vg::absolute_path(p));
  int rc = kExitOk;
  for (const std::string& w : wanted) {
    if (std::none_of(scan.devices.begin(), scan.devices.end(),
                     [&](const vg::ScannedDevice& d) { return d.path == w && d.pv; })) {
      complain(fmt::format("Failed to find physical volume \"{}\".", w));
      rc = kExitFailed;
    }
  }
  for (const vg::ScannedDevice& dev : scan.devices) {
    if (!dev.pv) continue;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), dev.path) == wanted.end()) continue;
    const vg::VgOnDisk* disk = nullptr;
    if (auto it = scan.vgs.find(dev.vg_name); it != scan.vgs.end()) disk = &it->second;
    const vg::PhysicalVolume* pv = disk ? disk->vg.find_pv_by_id(dev.pv->header.uuid) : nullptr;
    const std::string uuid = pv ? pv->id : vg::format_lvm_id(dev.pv->header.uuid);
    if (disk == nullptr || pv == nullptr) {
      say(fmt::format("\"{}\" is a new physical volume of \"{}\"", dev.path,
                      format_size_long(dev.pv->header.device_size_bytes)));
      say("--- NEW Physical volume ---");
      item("PV Name", dev.path);
      item("VG Name", "");
      item("PV Size", format_size_long(dev.pv->header.device_size_bytes));
      item("Allocatable", "NO");
      item("PE Size", "0   ");
      item("Total PE", "0");
      item("Free PE", "0");
      item("Allocated PE", "0");
      item("PV UUID", uuid);
      end_block();
      continue;
    }
    const uint64_t ext = disk->vg.extent_bytes();
    const uint64_t free = report::pv_free_extents(disk->vg, *pv);
    const uint64_t usable = pv->pe_count * ext;
    const uint64_t device_data = dev.pv->header.device_size_bytes - dev.pv->pe_start_bytes();
    say("--- Physical volume ---");
    item("PV Name", dev.path);
    item("VG Name", disk->vg.name);
    item("PV Size", fmt::format("{} / not usable {}", format_size_long(usable),
                                format_size_long(device_data > usable ? device_data - usable : 0)));
    item("Allocatable", pv->allocatable() ? (free == 0 ? "yes (but full)" : "yes ") : "NO");
    item("PE Size", format_size_long(ext));
    item("Total PE", std::to_string(pv->pe_count));
    item("Free PE", std::to_string(free));
    item("Allocated PE", std::to_string(pv->pe_count - free));
    item("PV UUID", uuid);
    end_block();
  }
  return rc;
}

int run_vgdisplay(Context& ctx, const std::vector<std::string>& vg_names) {
  auto root = scan_and_warn(ctx);
  if (!root.ok()) return fail(root.status());
  const vg::ScanResult& scan = root->scan;
  int rc = kExitOk;
  std::vector<std::string> names;
  for (const auto& n : vg_names) {
    if (!scan.vgs.contains(n)) {
      complain(fmt::format("Volume group \"{}\" not found", n));
      rc = kExitFailed;
    } else {
      names.push_back(n);
    }
  }
  if (vg_names.empty()) {
    for (const auto& [n, d] : scan.vgs) names.push_back(n);
  }
  for (const std::string& name : names) {
    const vg::VolumeGroup& vg = scan.vgs.at(name).vg;
    const uint64_t ext = vg.extent_bytes();
    const uint64_t free = report::vg_free_extents(vg);
    const uint64_t total = vg.pe_total();
    say("--- Volume group ---");
    item("VG Name", vg.name);
    item("System ID", "");
    item("Format", "lvm2");
    item("Metadata Areas", std::to_string(vg.pvs.size()));
    item("Metadata Sequence No", std::to_string(vg.seqno));
    item("VG Access", vg.writable() ? "read/write" : "read");
    item("VG Status", "resizable");
    item("MAX LV", std::to_string(vg.max_lv));
    item("Cur LV", std::to_string(report::visible_lv_count(vg)));
    item("Open LV", "0");
    item("Max PV", std::to_string(vg.max_pv));
    item("Cur PV", std::to_string(vg.pvs.size()));
    item("Act PV", std::to_string(vg.pvs.size() - scan.vgs.at(name).missing_pvs.size()));
    item("VG Size", format_size_long(total * ext));
    item("PE Size", format_size_long(ext));
    item("Total PE", std::to_string(total));
    item("Alloc PE / Size", fmt::format("{} / {}", total - free, format_size_long((total - free) * ext)));
    item("Free  PE / Size", fmt::format("{} / {}", free, format_size_long(free * ext)));
    item("VG UUID", vg.id);
    end_block();
  }
  return rc;
}

int run_lvdisplay(Context& ctx, const std::vector<std::string>& targets) {
  auto root = scan_and_warn(ctx);
  if (!root.ok()) return fail(root.status());
  const vg::ScanResult& scan = root->scan;
  int rc = kExitOk;
  std::vector<std::pair<std::string, std::string>> wanted;
  for (const auto& t : targets) {
    auto split = split_lv_path(t);
    if (!scan.vgs.contains(split.first)) {
      complain(fmt::format("Volume group \"{}\" not found", split.first));
      rc = kExitFailed;
      continue;
    }
    wanted.push_back(split);
  }
  if (targets.empty()) {
    for (const auto& [n, d] : scan.vgs) wanted.emplace_back(n, "");
  }
  for (const auto& [vg_name, lv_name] : wanted) {
    const vg::VgOnDisk& disk = scan.vgs.at(vg_name);
    const vg::VolumeGroup& vg = disk.vg;
    auto live = root->backend->live_state(disk);
    if (!live.ok()) {
      rc = fail(live.status());
      continue;
    }
    bool found = false;
    for (const vg::LogicalVolume& lv : vg.lvs) {
      if (!vg::lv_user_visible(vg, lv) || (!lv_name.empty() && lv.name != lv_name)) continue;
      found = true;
      const LiveLvState state = live->contains(lv.name) ? live->at(lv.name) : LiveLvState{};
      const uint64_t ext = vg.extent_bytes();
      const auto snap = vg::snapshot_for(vg, lv.name);
      say("--- Logical volume ---");
      constexpr size_t w = 22;
      item("LV Path", fmt::format("/dev/{}/{}", vg.name, lv.name), w);
      item("LV Name", lv.name, w);
      item("VG Name", vg.name, w);
      item("LV UUID", lv.id, w);
      item("LV Write Access", lv.has_status("WRITE") ? "read/write" : "read only", w);
      item("LV Creation host, time", creation(lv), w);
      const auto snaps = vg::snapshots_of(vg, lv.name);
      if (!snaps.empty()) {
        item("LV snapshot status", "source of", w);
        for (const auto& s : snaps) {
          const bool valid = !live->contains(s.cow_lv) || live->at(s.cow_lv).snapshot_valid;
          fmt::print("  {:<{}} {} [{}]\n", "", w, s.cow_lv,
                     valid ? (state.active ? "active" : "INACTIVE") : "INVALID");
        }
      }
      if (snap) {
        const char* what = !state.snapshot_valid ? "INACTIVE" : state.active ? "active" : "INACTIVE";
        item("LV snapshot status", fmt::format("{} destination for {}", what, snap->origin_lv), w);
      }
      item("LV Status", state.active ? "available" : "NOT available", w);
      if (snap) {
        item("LV Size", format_size_long(snap->origin_extents * ext), w);
        item("Current LE", std::to_string(snap->origin_extents), w);
        item("COW-table size", format_size_long(lv.extent_count() * ext), w);
        item("COW-table LE", std::to_string(lv.extent_count()), w);
        // lvm2 leaves the line out for an invalid snapshot.
        const std::string pct = report::snapshot_percent_text(vg, lv, state);
        if (!pct.empty() && state.snapshot_valid) item("Allocated to snapshot", pct + "%", w);
        item("Snapshot chunk size", format_size_long(snap->chunk_size * 512), w);
      } else {
        item("LV Size", format_size_long(lv.extent_count() * ext), w);
        item("Current LE", std::to_string(lv.extent_count()), w);
      }
      item("Segments", std::to_string(lv.segments.size()), w);
      item("Allocation", "inherit", w);
      item("Read ahead sectors", "auto", w);
      end_block();
    }
    if (!found && !lv_name.empty()) {
      complain(fmt::format("Failed to find logical volume \"{}/{}\"", vg_name, lv_name));
      rc = kExitFailed;
    }
  }
  return rc;
}

}  // namespace cowsnap::cli
