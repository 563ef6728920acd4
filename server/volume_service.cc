#include "cowsnap/server/volume_service.h"

#include <cerrno>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cowsnap/report/data_percent.h"
#include "cowsnap/report/size.h"
#include "cowsnap/vg/allocation.h"

namespace cowsnap::server {

using nlohmann::json;
using report::format_size_long;

Result<std::unique_ptr<VolumeService>> VolumeService::start(const std::string& root_dir, Options options) {
  COWSNAP_ASSIGN_OR_RETURN(vg::VolumeManager vm, vg::VolumeManager::open(root_dir));
  vm.set_command_line(options.command_line);
  COWSNAP_ASSIGN_OR_RETURN(vg::LvmConfig lvm_config, vg::load_lvm_config(root_dir));
  std::unique_ptr<VolumeService> service(new VolumeService(root_dir, std::move(vm), std::move(options)));
  service->lvm_config_ = lvm_config;
  std::lock_guard control(service->control_mu_);
  std::unique_lock exports(service->exports_mu_);
  std::vector<std::string> notices;
  COWSNAP_RETURN_IF_ERROR(service->activate_all(notices));
  for (const std::string& n : notices) service->log_error(n);
  service->rebuild_exports();
  if (service->options_.monitor_interval.count() > 0) {
    VolumeService* self = service.get();
    self->monitor_thread_ = std::thread([self] {
      std::unique_lock lock(self->monitor_stop_mu_);
      while (!self->monitor_wake_.wait_for(lock, self->options_.monitor_interval,
                                           [self] { return self->monitor_stopping_; })) {
        lock.unlock();
        self->monitor_snapshots();
        lock.lock();
      }
    });
  }
  VolumeService* self = service.get();
  self->merge_thread_ = std::thread([self] {
    std::unique_lock lock(self->merge_mu_);
    while (!self->merge_stopping_) {
      lock.unlock();
      const bool running = self->merge_snapshots();
      lock.lock();
      // Idle until an activation starts a merge (rebuild_exports kicks).
      if (!running)
        self->merge_wake_.wait(lock, [self] { return self->merge_stopping_ || self->merge_kicked_; });
      self->merge_kicked_ = false;
    }
  });
  return service;
}

void VolumeService::kick_merges() {
  {
    std::lock_guard lock(merge_mu_);
    merge_kicked_ = true;
  }
  merge_wake_.notify_all();
}

bool VolumeService::merge_snapshots() {
  // Steps run as I/O through the origin's export, with no lock of this
  // service held: a step's copy-out may call autoextend, which takes the
  // control and exports locks; and a change that retires the export waits
  // for the step, as for any request, so no step outlives its objects.
  std::vector<std::shared_ptr<Export>> origins;
  {
    std::shared_lock exports(exports_mu_);
    for (const auto& [vg_name, active] : vgs_) {
      for (const std::string& origin : active->merging_origins()) {
        if (auto it = exports_.find(fmt::format("{}/{}", vg_name, origin)); it != exports_.end())
          origins.push_back(it->second);
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> done;  // VG, origin
  bool running = false;
  for (const std::shared_ptr<Export>& exp : origins) {
    if (options_.test_merge_step_limit != 0 && merge_steps_ >= options_.test_merge_step_limit) return false;
    ++merge_steps_;
    bool finished = false;
    Status stepped = exp->io([&](Target& /*device*/) -> Status {
      const std::shared_ptr<Origin>& origin = exp->volume()->origin;
      COWSNAP_ASSIGN_OR_RETURN(Origin::MergeStep step, origin->merge_next(options_.merge_step_bytes));
      finished = step.done;
      return Status::Ok();
    });
    if (stepped.errnum() == ENODEV) continue;  // retired meanwhile: a later look finds its successor
    if (!stepped.ok()) {
      log_error(fmt::format("{}: Merge failed. Retry merge or inspect manually. ({})", exp->name(),
                            stepped.message()));
      continue;
    }
    running = true;
    if (finished) done.emplace_back(exp->vg(), exp->lv());
  }
  for (const auto& [vg_name, origin] : done) {
    std::lock_guard control(control_mu_);
    std::unique_lock exports(exports_mu_);
    auto vg = active_vg(vg_name);
    if (!vg.ok()) continue;
    std::string snapshot;
    auto commit = (*vg)->finish_merge(vm_, origin, snapshot);
    if (!commit.ok()) {
      log_error(fmt::format("Could not remove snapshot {}/{} merged into {}/{}: {}", vg_name, snapshot,
                            vg_name, origin, commit.status().message()));
      continue;
    }
    log_error(fmt::format("Merge of snapshot into logical volume {}/{} has finished.", vg_name, origin));
    log_error(fmt::format("Logical volume \"{}\" successfully removed.", snapshot));
    rebuild_exports();
  }
  return running;
}

Status VolumeService::check_root(const std::string& root_dir) {
  COWSNAP_ASSIGN_OR_RETURN(vg::VolumeManager vm, vg::VolumeManager::open(root_dir));
  COWSNAP_RETURN_IF_ERROR(vm.scan().status());
  return vg::load_lvm_config(root_dir).status();
}

VolumeService::~VolumeService() {
  {
    std::lock_guard lock(merge_mu_);
    merge_stopping_ = true;
  }
  merge_wake_.notify_all();
  if (merge_thread_.joinable()) merge_thread_.join();
  {
    std::lock_guard lock(monitor_stop_mu_);
    monitor_stopping_ = true;
  }
  monitor_wake_.notify_all();
  if (monitor_thread_.joinable()) monitor_thread_.join();
}

void VolumeService::monitor_snapshots() {
  std::lock_guard monitor(monitor_mu_);
  std::vector<SnapshotMonitor::Observation> seen;
  {
    std::shared_lock exports(exports_mu_);
    for (const auto& [name, exp] : exports_) {
      const std::shared_ptr<ActiveVolume>& volume = exp->volume();
      if (!volume->is_snapshot() || !volume->snapshot || !volume->monitored) continue;
      auto vg = vgs_.find(exp->vg());
      if (vg == vgs_.end()) continue;
      const SnapshotTarget& snap = *volume->snapshot;
      seen.push_back({.device = vg->second->dm_name(exp->lv()),
                      .usage = snap.usage(),
                      .length_sectors = snap.size_bytes() / kSectorBytes,
                      .valid = snap.valid(),
                      .status = snap.status_params()});
    }
  }
  std::vector<std::string> devices;
  for (const SnapshotMonitor::Observation& o : seen) {
    devices.push_back(o.device);
    for (const std::string& line : monitor_.check(o)) log_error(line);
  }
  monitor_.keep_only(devices);
}

Status VolumeService::activate_all(std::vector<std::string>& notices) {
  COWSNAP_ASSIGN_OR_RETURN(vg::ScanResult scan, vm_.scan());
  for (const auto& [name, why] : scan.broken_vgs) {
    notices.push_back(fmt::format("volume group {} not served: {}", name, why.message()));
  }
  for (const auto& [name, disk] : scan.vgs) {
    // Another root's server (or command) owning a PV of the VG: serving it
    // too would let two sets of live objects write one VG.
    if (Status owned = own_pvs(disk); !owned.ok()) {
      notices.push_back(fmt::format("volume group {} not served: {}", name, owned.message()));
      if (vgs_.count(name) == 0) unserved_[name] = owned;
      continue;
    }
    unserved_.erase(name);
    auto it = vgs_.find(name);
    if (it != vgs_.end()) {
      // Already live: pick up LVs other commands made meanwhile.
      Status s = it->second->refresh(vm_);
      if (!s.ok()) notices.push_back(fmt::format("volume group {} not refreshed: {}", name, s.message()));
      continue;
    }
    ActiveVolumeGroup::Options vg_options;
    vg_options.read_only = options_.read_only;
    vg_options.write_back = options_.write_back;
    auto active = ActiveVolumeGroup::activate(disk, vg_options);
    if (!active.ok()) {
      notices.push_back(fmt::format("volume group {} not served: {}", name, active.status().message()));
      continue;
    }
    log_debug(fmt::format("activated volume group {}", name));
    for (const auto& volume : (*active)->volumes()) {
      if (volume->failed()) {
        notices.push_back(fmt::format("snapshot {}/{} not activated: {}", name, volume->lv_name,
                                      volume->failure.message()));
      }
    }
    vgs_[name] = std::move(active).value();
  }
  return Status::Ok();
}

Status VolumeService::own_pvs(const vg::VgOnDisk& disk) {
  std::map<std::string, vg::PvLock> taken;
  for (const auto& [pv_name, path] : disk.pv_paths) {
    if (pv_locks_.count(path) != 0 || taken.count(path) != 0) continue;
    COWSNAP_ASSIGN_OR_RETURN(vg::PvLock lock,
                             vg::PvLock::acquire(path, vm_.root().dir(), 10000, options_.take_over));
    taken.emplace(path, std::move(lock));
  }
  pv_locks_.merge(taken);
  return Status::Ok();
}

void VolumeService::rebuild_exports() {
  std::map<std::string, std::shared_ptr<Export>> next;
  for (const auto& [vg_name, active] : vgs_) {
    for (const std::shared_ptr<ActiveVolume>& volume : active->volumes()) {
      // A merging snapshot has no device of its own (its origin shows it).
      if (volume->snapshot && volume->snapshot->merging()) continue;
      const std::string name = vg_name + "/" + volume->lv_name;
      auto old = exports_.find(name);
      if (old != exports_.end() && old->second->volume() == volume) {
        next[name] = old->second;
      } else {
        // Activation monitors as lvm.conf's activation/monitoring says.
        volume->monitored = lvm_config_.monitoring != 0;
        if (!volume->merge_error.empty())
          log_error(fmt::format("{}: merge not started: {}", name, volume->merge_error));
        next[name] = std::make_shared<Export>(vg_name, volume->lv_name, volume);
      }
    }
  }
  // Exports whose volume went away (or was re-activated as a new object)
  // are retired: taking alive_mu_ exclusively waits for their in-flight
  // requests, and later ones fail with ENODEV. This happens before the
  // control operation releases control_mu_, so before any later command
  // could hand the freed extents to another LV.
  for (const auto& [name, exp] : exports_) {
    auto it = next.find(name);
    if (it == next.end() || it->second != exp) {
      std::unique_lock alive(exp->alive_mu_);
      exp->retired_ = true;
    }
  }
  exports_ = std::move(next);
  install_growers();
  // An activation may have started a merge (deferred ones start so).
  for (const auto& [vg_name, active] : vgs_) {
    if (!active->merging_origins().empty()) kick_merges();
  }
}

void VolumeService::install_growers() {
  if (!lvm_config_.autoextend()) return;
  for (const auto& [name, exp] : exports_) {
    const std::shared_ptr<ActiveVolume>& volume = exp->volume();
    if (!volume->is_snapshot() || !volume->snapshot) continue;
    // Autoextend is dmeventd's work in lvm2: an unmonitored snapshot has none.
    if (!volume->monitored) {
      volume->snapshot->set_grower({});
      continue;
    }
    volume->snapshot->set_grower(
        [this, vg_name = exp->vg(), lv_name = exp->lv()] { return autoextend(vg_name, lv_name); },
        lvm_config_.threshold_percent());
  }
}

Status VolumeService::autoextend(const std::string& vg_name, const std::string& lv_name) {
  std::unique_lock control(control_mu_, kGrowLockWait);
  if (!control.owns_lock()) {
    Status busy = Status::Error(EBUSY, fmt::format("Autoextend of {}/{} skipped: another command holds the "
                                                   "volume group",
                                                   vg_name, lv_name));
    log_error(busy.message());
    return busy;
  }
  auto fail = [&](const Status& s) {
    log_error(fmt::format("Failed to extend snapshot {}/{}: {}", vg_name, lv_name, s.message()));
    return s;
  };
  auto disk = vm_.read_vg(vg_name);
  if (!disk.ok()) return fail(disk.status());
  const vg::LogicalVolume* lv = disk->vg.find_lv(lv_name);
  if (lv == nullptr) return fail(Status::Error(ENOENT, "it is gone"));
  const uint64_t current = lv->extent_count();
  const uint64_t wanted = lvm_config_.grown_extents(current);
  const uint64_t free = vg::free_extent_count(disk->vg);
  if (wanted - current > free) {
    return fail(
        Status::Error(ENOSPC, fmt::format("Insufficient free space: {} extents needed, but only {} available",
                                          wanted - current, free)));
  }
  std::unique_lock exports(exports_mu_);
  auto active = active_vg(vg_name);
  if (!active.ok()) return fail(active.status());
  auto commit = (*active)->grow_snapshot(vm_, lv_name, wanted);
  if (!commit.ok()) return fail(commit.status());
  for (const std::string& notice : commit->notices) log_error(notice);
  const vg::LogicalVolume* grown = commit->vg.find_lv(lv_name);
  const uint64_t now = grown != nullptr ? grown->extent_count() : wanted;
  const uint64_t ext = commit->vg.extent_bytes();
  log_error(fmt::format("Size of logical volume {}/{} changed from {} ({} extents) to {} ({} extents).",
                        vg_name, lv_name, format_size_long(current * ext), current,
                        format_size_long(now * ext), now));
  log_error(fmt::format("Logical volume {}/{} successfully resized.", vg_name, lv_name));
  return Status::Ok();
}

Result<std::shared_ptr<Export>> VolumeService::connect(const std::string& requested) {
  std::shared_lock lock(exports_mu_);
  std::string name = requested;
  if (name.empty() && !exports_.empty()) name = exports_.begin()->first;
  auto it = exports_.find(name);
  if (it == exports_.end()) {
    if (exports_.empty()) {
      return Status::Error(ENOENT, fmt::format("no export \"{}\": no logical volume is active under {}",
                                               requested, root_dir_));
    }
    return Status::Error(ENOENT, fmt::format("no export \"{}\": exports are named VG/LV, e.g. \"{}\"",
                                             requested, exports_.begin()->first));
  }
  it->second->connections_.fetch_add(1, std::memory_order_acq_rel);
  return it->second;
}

void VolumeService::disconnect(const std::shared_ptr<Export>& exp) {
  exp->connections_.fetch_sub(1, std::memory_order_acq_rel);
}

std::vector<ExportListing> VolumeService::list_exports() const {
  std::shared_lock lock(exports_mu_);
  std::vector<ExportListing> out;
  for (const auto& [name, exp] : exports_) out.push_back({name, describe_locked(*exp)});
  return out;
}

std::string VolumeService::default_export() const {
  std::shared_lock lock(exports_mu_);
  return exports_.empty() ? std::string() : exports_.begin()->first;
}

std::string VolumeService::describe(const Export& exp) const {
  std::shared_lock lock(exports_mu_);
  return describe_locked(exp);
}

std::string VolumeService::describe_locked(const Export& exp) const {
  const control::LvState s = state_of(exp);
  const std::string size = format_size_long(s.size_bytes);
  if (!s.failure.empty())
    return fmt::format("{}, snapshot of {}/{}, FAILED: {}", size, s.vg, s.origin, s.failure);
  if (s.is_snapshot) {
    const uint64_t cow_bytes = s.usage ? s.usage->total_sectors * kSectorBytes : 0;
    return fmt::format("{}, snapshot of {}/{}, Data% {:.2f}{} (COW {}, chunk {})", size, s.vg, s.origin,
                       s.data_percent, s.valid ? "" : ", INVALID", format_size_long(cow_bytes),
                       format_size_long(uint64_t{s.chunk_sectors} * kSectorBytes));
  }
  if (s.snapshot_count > 0) {
    return fmt::format("{}, origin of {} snapshot{}", size, s.snapshot_count,
                       s.snapshot_count == 1 ? "" : "s");
  }
  return fmt::format("{}, linear", size);
}

control::LvState VolumeService::state_of(const Export& exp) const {
  const ActiveVolume& v = *exp.volume();
  control::LvState s;
  s.vg = exp.vg();
  s.lv = exp.lv();
  s.active = true;
  s.open_connections = exp.connections();
  s.size_bytes = v.device->size_bytes();
  s.preferred_block_bytes = v.device->preferred_block_bytes();
  s.is_snapshot = v.is_snapshot();
  if (v.failed()) {
    s.origin = v.origin_lv;
    s.valid = false;
    s.failure = v.failure.message();
  } else if (v.is_snapshot()) {
    const StoreUsage usage = v.snapshot->usage();
    s.origin = v.origin_lv;
    s.valid = v.snapshot->valid();
    s.chunk_sectors = v.snapshot->geometry().chunk_sectors();
    s.monitored = v.monitored;
    s.usage = control::Usage{usage.total_sectors, usage.allocated_sectors, usage.metadata_sectors};
    s.data_percent = report::snapshot_data_percent(usage, s.valid);
  } else if (v.origin) {
    s.snapshot_count = static_cast<int64_t>(v.origin->snapshots().size());
    if (auto merging = v.origin->merging_snapshot()) {
      // lvm2 reports the snapshot-merge target's status for the origin.
      const StoreUsage usage = merging->usage();
      s.merging = true;
      s.merge_failed = v.origin->merge_failed();
      s.usage = control::Usage{usage.total_sectors, usage.allocated_sectors, usage.metadata_sectors};
    }
  }
  return s;
}

Status VolumeService::flush_all() {
  // Flushed with no lock of this service held: a write-back flush waits for
  // the committer, whose autoextend takes exports_mu_ exclusively.
  std::map<std::string, std::shared_ptr<Export>> exports;
  {
    std::shared_lock lock(exports_mu_);
    exports = exports_;
  }
  Status first;
  for (const auto& [name, exp] : exports) {
    if (exp->volume()->failed()) continue;  // fails every request by design
    Status s = exp->io([](Target& dev) { return dev.flush(); });
    if (!s.ok() && s.errnum() != ENODEV && first.ok()) first = s.with_context("flushing " + name);
  }
  return first;
}

// ---- control operations ----

control::Response VolumeService::handle(const json& request) {
  try {
    const std::string op = request.value("op", std::string());
    log_debug(fmt::format("control request: {}", request.dump()));
    if (op == "lvs" || op == "state") return op_lvs();
    if (op == "lvcreate") return op_lvcreate(request);
    if (op == "lvcreate_snapshot") return op_lvcreate_snapshot(request);
    if (op == "lvremove") return op_lvremove(request);
    if (op == "lvextend") return op_lvextend(request);
    if (op == "refresh") return op_refresh();
    if (op == "lvchange") return op_lvchange(request);
    if (op == "lvrename") return op_lvrename(request);
    if (op == "lvconvert") return op_lvconvert(request);
    if (op == "dmsetup_table") return op_dmsetup(request, false);
    if (op == "dmsetup_status") return op_dmsetup(request, true);
    if (op == "changed") return op_changed(request);
    return control::Response::from_status(
        Status::Error(EINVAL, op.empty() ? "request has no \"op\"" : fmt::format("unknown op \"{}\"", op)));
  } catch (const std::exception& e) {
    // nlohmann::json throws on type mismatches in odd requests; nothing
    // below throws while a VG is half changed.
    return control::Response::from_status(Status::Error(EINVAL, fmt::format("bad request: {}", e.what())));
  }
}

Result<ActiveVolumeGroup*> VolumeService::active_vg(const std::string& vg_name) {
  auto it = vgs_.find(vg_name);
  if (auto why = unserved_.find(vg_name); it == vgs_.end() && why != unserved_.end()) {
    return why->second.with_context(fmt::format("Volume group \"{}\" is not served by this server", vg_name));
  }
  if (it == vgs_.end()) {
    return Status::Error(
        ENOENT, fmt::format("Volume group \"{}\" not found (or not active in this server)", vg_name));
  }
  return it->second.get();
}

std::vector<std::string> VolumeService::busy_exports(const std::string& vg_name, const std::string& lv_name,
                                                     const ActiveVolume& volume) const {
  std::vector<std::string> busy;
  for (const auto& [name, exp] : exports_) {
    if (exp->vg() != vg_name || exp->connections() == 0) continue;
    const bool affected = exp->lv() == lv_name || (!volume.is_snapshot() && exp->volume()->is_snapshot() &&
                                                   exp->volume()->origin_lv == lv_name);
    if (affected) {
      busy.push_back(
          fmt::format("{} ({} connection{})", name, exp->connections(), exp->connections() == 1 ? "" : "s"));
    }
  }
  return busy;
}

Result<uint64_t> VolumeService::extents_arg(const json& request, const std::string& vg_name,
                                            std::vector<std::string>& notices) {
  if (request.contains("extents")) {
    COWSNAP_ASSIGN_OR_RETURN(uint64_t extents, control::uint_arg(request, "extents"));
    if (extents == 0) return Status::Error(EINVAL, "Size must be larger than 0 extents");
    return extents;
  }
  COWSNAP_ASSIGN_OR_RETURN(uint64_t bytes, control::uint_arg(request, "size_bytes"));
  if (bytes == 0) return Status::Error(EINVAL, "Size must be larger than 0");
  COWSNAP_ASSIGN_OR_RETURN(vg::VgOnDisk disk, vm_.read_vg(vg_name));
  const uint64_t extents = vg::extents_for_bytes(disk.vg, bytes);
  if (extents * disk.vg.extent_bytes() != bytes) {
    notices.push_back(fmt::format("Rounding up size to full physical extent {}",
                                  format_size_long(extents * disk.vg.extent_bytes())));
  }
  return extents;
}

Result<VolumeService::SizedChange> VolumeService::sized_change(const json& request,
                                                               const std::string& vg_name) {
  SizedChange change;
  auto extents = extents_arg(request, vg_name, change.notices);
  if (!extents.ok()) return extents.status();
  change.extents = *extents;
  change.exports = std::unique_lock(exports_mu_);
  auto vg = active_vg(vg_name);
  if (!vg.ok()) return vg.status();
  change.vg = *vg;
  return change;
}

control::Response VolumeService::op_lvs() {
  std::shared_lock lock(exports_mu_);
  control::Response r;
  json lvs = json::array();
  for (const auto& [name, exp] : exports_) lvs.push_back(control::to_json(state_of(*exp)));
  r.body["lvs"] = std::move(lvs);
  return r;
}

namespace {
struct VgLvArgs {
  std::string vg;
  std::string lv;
};

// The request's "vg" and "lv"; the error of the first one missing.
Result<VgLvArgs> vg_lv_args(const json& request) {
  auto vg_name = control::string_arg(request, "vg");
  auto lv_name = control::string_arg(request, "lv");
  if (!vg_name.ok()) return vg_name.status();
  if (!lv_name.ok()) return lv_name.status();
  return VgLvArgs{std::move(vg_name).value(), std::move(lv_name).value()};
}

// The active volume `lv_name` of `vg`; ENOENT when it has none.
Result<std::shared_ptr<ActiveVolume>> find_volume(const ActiveVolumeGroup& vg, const std::string& vg_name,
                                                  const std::string& lv_name) {
  auto volume = vg.find(lv_name);
  if (!volume)
    return Status::Error(ENOENT, fmt::format("Failed to find logical volume \"{}/{}\"", vg_name, lv_name));
  return volume;
}

// lvcreate's "read_only" argument (lvcreate -p r).
vg::LvPermission permission_arg(const json& request) {
  return control::bool_arg(request, "read_only", false) ? vg::LvPermission::kReadOnly
                                                        : vg::LvPermission::kReadWrite;
}

control::Response committed(const Result<vg::CommitResult>& commit, std::vector<std::string> notices) {
  if (!commit.ok()) {
    control::Response r = control::Response::from_status(commit.status());
    r.notices = std::move(notices);
    return r;
  }
  control::Response r;
  r.notices = std::move(notices);
  r.notices.insert(r.notices.end(), commit->notices.begin(), commit->notices.end());
  r.body["seqno"] = commit->vg.seqno;
  return r;
}
}  // namespace

control::Response VolumeService::op_lvcreate(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  auto change = sized_change(request, names->vg);
  if (!change.ok()) return control::Response::from_status(change.status());
  auto commit = change->vg->create_volume(vm_, names->lv, change->extents, permission_arg(request));
  rebuild_exports();
  return committed(commit, std::move(change->notices));
}

control::Response VolumeService::op_lvcreate_snapshot(const json& request) {
  std::lock_guard control(control_mu_);
  auto vg_name = control::string_arg(request, "vg");
  auto origin = control::string_arg(request, "origin");
  auto snap = control::string_arg(request, "lv");
  for (const Status& s : {vg_name.status(), origin.status(), snap.status()}) {
    if (!s.ok()) return control::Response::from_status(s);
  }
  uint64_t chunk_sectors = vg::kDefaultChunkSectors;
  if (request.contains("chunk_sectors")) {
    auto c = control::uint_arg(request, "chunk_sectors");
    if (!c.ok()) return control::Response::from_status(c.status());
    chunk_sectors = *c;
  }
  auto change = sized_change(request, *vg_name);
  if (!change.ok()) return control::Response::from_status(change.status());
  // The engine holds the origin's I/O at its barrier while the metadata
  // commits and the store is initialised; the export appears (rebuild
  // below) before exports_mu_ is released, so the first client to see it
  // opens a complete snapshot.
  auto commit = change->vg->create_snapshot(vm_, *origin, *snap, change->extents, chunk_sectors,
                                            permission_arg(request));
  rebuild_exports();
  if (commit.ok()) log_debug(fmt::format("created snapshot {}/{} of {}", *vg_name, *snap, *origin));
  return committed(commit, std::move(change->notices));
}

control::Response VolumeService::op_changed(const json& request) {
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  const std::string name = names->vg + "/" + names->lv;
  std::shared_ptr<Export> exp;
  {
    std::shared_lock lock(exports_mu_);
    if (auto it = exports_.find(name); it != exports_.end()) exp = it->second;
  }
  if (!exp) {
    return control::Response::from_status(Status::Error(
        ENOENT, fmt::format("Failed to find logical volume \"{}\" (or it is not active)", name)));
  }
  const std::shared_ptr<SnapshotTarget> snap = exp->volume()->snapshot;
  if (!snap) {
    return control::Response::from_status(
        Status::Error(EINVAL, fmt::format("Logical volume {} is not a usable snapshot", name)));
  }
  // A write-back origin's pending copy-outs enter the table when they
  // commit: flush first, so that every origin write acknowledged before
  // this request is listed. No service lock is held meanwhile (a committer
  // may need exports_mu_ to grow a store).
  Status flushed = exp->io([&](Target&) {
    std::shared_ptr<Origin> origin = snap->origin();
    return origin ? origin->flush_origin()
                  : Status::Error(ENODEV, fmt::format("snapshot {} was removed", name));
  });
  if (!flushed.ok()) return control::Response::from_status(flushed);
  if (!snap->valid()) {
    return control::Response::from_status(Status::Error(
        EIO,
        fmt::format("Snapshot {} is invalid: its exception table no longer records every change", name)));
  }
  control::Response r;
  json runs = json::array();
  uint64_t chunks = 0;
  for (const SnapshotTarget::ChunkRun& run : snap->changed_chunks()) {
    runs.push_back(json::array({run.first, run.count}));
    chunks += run.count;
  }
  r.body["origin"] = exp->volume()->origin_lv;
  r.body["chunk_bytes"] = snap->geometry().chunk_bytes();
  r.body["size_bytes"] = snap->size_bytes();
  r.body["changed_chunks"] = chunks;
  r.body["runs"] = std::move(runs);
  return r;
}

control::Response VolumeService::op_lvremove(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  const std::string& vg_name = names->vg;
  const std::string& lv_name = names->lv;
  const bool force = control::bool_arg(request, "force", false);
  std::unique_lock exports(exports_mu_);
  auto vg = active_vg(vg_name);
  if (!vg.ok()) return control::Response::from_status(vg.status());
  auto found = find_volume(**vg, vg_name, lv_name);
  if (!found.ok()) return control::Response::from_status(found.status());
  const std::shared_ptr<ActiveVolume>& volume = *found;
  // The LV, and for an origin its snapshots (which go with it when forced),
  // must have no NBD client unless forced: removing a volume under a client
  // turns its next request into ENODEV.
  const std::vector<std::string> busy = busy_exports(vg_name, lv_name, *volume);
  std::vector<std::string> notices;
  if (!busy.empty()) {
    const std::string list = fmt::format("{}", fmt::join(busy, ", "));
    if (!force) {
      return control::Response::from_status(Status::Error(
          EBUSY,
          fmt::format("Logical volume {}/{} in use: NBD clients connected to {} (use --force to remove "
                      "anyway; their requests then fail with ENODEV)",
                      vg_name, lv_name, list)));
    }
    notices.push_back(fmt::format("Removing {}/{} with NBD clients connected to {}", vg_name, lv_name, list));
  }
  auto commit = (*vg)->remove_volume(vm_, lv_name, force);
  rebuild_exports();
  return committed(commit, std::move(notices));
}

control::Response VolumeService::op_lvextend(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  const std::string& vg_name = names->vg;
  const std::string& lv_name = names->lv;
  auto change = sized_change(request, vg_name);
  if (!change.ok()) return control::Response::from_status(change.status());
  const uint64_t extents = change->extents;
  std::vector<std::string>& notices = change->notices;
  auto found = find_volume(*change->vg, vg_name, lv_name);
  if (!found.ok()) return control::Response::from_status(found.status());
  const std::shared_ptr<ActiveVolume>& volume = *found;
  if (volume->is_snapshot()) {
    // The rescue of a filling snapshot: its COW store grows behind the
    // origin's barrier while its clients stay connected.
    auto commit = change->vg->grow_snapshot(vm_, lv_name, extents);
    return committed(commit, std::move(notices));
  }
  if (!volume->origin->snapshots().empty()) {
    return control::Response::from_status(Status::Error(
        ENOTSUP, fmt::format("cannot extend {}/{} online: it is an origin with snapshots (lvm2 cannot resize "
                             "one either)",
                             vg_name, lv_name)));
  }
  const uint64_t current = volume->device->size_bytes();
  // A live device has a fixed size, so growing means re-activating the VG:
  // safe only while no client holds a device of it (a connected client
  // would keep writing through the old objects, bypassing the new ones).
  int64_t connections = 0;
  for (const auto& [name, exp] : exports_) {
    if (exp->vg() == vg_name) connections += exp->connections();
  }
  if (connections > 0) {
    return control::Response::from_status(Status::Error(
        ENOTSUP,
        fmt::format("cannot extend {}/{} online while {} NBD connection{} open on volume group {}: "
                    "disconnect the clients (or stop the server and use the offline command) and retry",
                    vg_name, lv_name, connections, connections == 1 ? " is" : "s are", vg_name)));
  }
  auto disk_before = vm_.read_vg(vg_name);
  if (!disk_before.ok()) return control::Response::from_status(disk_before.status());
  if (extents * disk_before->vg.extent_bytes() <= current) {
    return control::Response::from_status(Status::Error(
        EINVAL, fmt::format("New size given ({} extents) not larger than existing size ({} extents)", extents,
                            current / disk_before->vg.extent_bytes())));
  }
  auto commit = vm_.lvresize(vg_name, lv_name, extents);
  if (!commit.ok()) return committed(commit, std::move(notices));
  // Re-activate the VG from the committed metadata.
  Status flushed = change->vg->find(lv_name)->device->flush();
  if (!flushed.ok()) log_error(flushed.with_context("flushing before re-activation").message());
  auto disk = vm_.read_vg(vg_name);
  Result<std::unique_ptr<ActiveVolumeGroup>> fresh =
      disk.ok() ? ActiveVolumeGroup::activate(
                      *disk, ActiveVolumeGroup::Options{options_.read_only, options_.write_back})
                : Result<std::unique_ptr<ActiveVolumeGroup>>(disk.status());
  if (!fresh.ok()) {
    // The metadata grew but the old devices keep serving the old size.
    notices.push_back(
        fmt::format("extended on disk but not re-activated ({}); restart the server to serve the "
                    "new size",
                    fresh.status().message()));
    return committed(commit, std::move(notices));
  }
  vgs_[vg_name] = std::move(fresh).value();
  rebuild_exports();
  return committed(commit, std::move(notices));
}

control::Response VolumeService::op_lvchange(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  const bool active = control::bool_arg(request, "active", true);
  std::unique_lock exports(exports_mu_);
  auto vg = active_vg(names->vg);
  if (!vg.ok()) return control::Response::from_status(vg.status());
  if (request.contains("monitor")) {
    // lvchange --monitor: an origin's snapshots with it, as lvm2 monitors
    // them through their origin.
    auto found = find_volume(**vg, names->vg, names->lv);
    if (!found.ok()) return control::Response::from_status(found.status());
    const bool monitor = control::bool_arg(request, "monitor", true);
    for (const auto& v : (*vg)->with_snapshots(*found)) v->monitored = monitor;
    install_growers();
    return control::Response::from_status(Status::Ok());
  }
  if (request.contains("permission")) {
    // lvchange -p: connected clients stay; their next write sees it.
    const std::string permission = request.value("permission", std::string());
    if (permission != "r" && permission != "rw") {
      return control::Response::from_status(
          Status::Error(EINVAL, fmt::format("Invalid argument for --permission: {}", permission)));
    }
    auto commit = (*vg)->set_permission(
        vm_, names->lv, permission == "r" ? vg::LvPermission::kReadOnly : vg::LvPermission::kReadWrite);
    return committed(commit, {});
  }
  if (active) {
    Status s = (*vg)->activate_volume(vm_, names->lv);
    rebuild_exports();
    return control::Response::from_status(s);
  }
  // Deactivating takes the LV (and an origin's snapshots) away from its
  // clients, so it is refused while any is connected, as lvm2 refuses an
  // open LV.
  auto found = find_volume(**vg, names->vg, names->lv);
  if (!found.ok()) return control::Response::from_status(found.status());
  if (auto busy = busy_exports(names->vg, names->lv, **found); !busy.empty()) {
    return control::Response::from_status(
        Status::Error(EBUSY, fmt::format("Logical volume {}/{} in use: NBD clients connected to {}",
                                         names->vg, names->lv, fmt::join(busy, ", "))));
  }
  Status s = (*vg)->deactivate_volume(names->lv);
  rebuild_exports();
  return control::Response::from_status(s);
}

control::Response VolumeService::op_lvconvert(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  if (!control::bool_arg(request, "merge", false)) {
    return control::Response::from_status(
        Status::Error(EINVAL, "lvconvert: only --merge of a snapshot is supported"));
  }
  std::unique_lock exports(exports_mu_);
  auto vg = active_vg(names->vg);
  if (!vg.ok()) return control::Response::from_status(vg.status());
  auto disk = vm_.read_vg(names->vg);
  if (!disk.ok()) return control::Response::from_status(disk.status());
  const auto ref = vg::snapshot_for(disk->vg, names->lv);
  const std::string snap_name = fmt::format("{}/{}", names->vg, names->lv);
  std::vector<std::string> notices;
  std::string delayed;
  bool start_now = false;
  if (ref && ref->cow_lv == names->lv && !ref->merging) {
    const auto origin = (*vg)->find(ref->origin_lv);
    const auto snap = (*vg)->find(names->lv);
    if (snap && (snap->failed() || (snap->snapshot && !snap->snapshot->valid()))) {
      return control::Response::from_status(
          Status::Error(EINVAL, fmt::format("Unable to merge invalidated snapshot LV {}.", snap_name)));
    }
    if (origin && snap) {
      // lvm2 defers while the origin or the snapshot is open; re-activating
      // the origin would also take every other snapshot of it from its
      // clients, so any of them open defers too.
      auto origin_export = exports_.find(fmt::format("{}/{}", names->vg, ref->origin_lv));
      const bool origin_open = origin_export != exports_.end() && origin_export->second->connections() > 0;
      const bool any_open = !busy_exports(names->vg, ref->origin_lv, *origin).empty();
      if (origin_open) {
        delayed = "Delaying merge since origin is open.";
      } else if (any_open) {
        delayed = "Delaying merge since snapshot is open.";
      }
      start_now = !any_open;
    }
  }
  auto commit = (*vg)->merge_snapshot(vm_, names->lv, start_now);
  if (commit.ok()) {
    rebuild_exports();
    if (start_now) {
      notices.push_back(fmt::format("Merging of volume {} started.", snap_name));
    } else {
      if (!delayed.empty()) notices.push_back(delayed);
      notices.push_back(fmt::format("Merging of snapshot {} will occur on next activation of {}/{}.",
                                    snap_name, names->vg, ref ? ref->origin_lv : "?"));
    }
  }
  control::Response r = committed(commit, std::move(notices));
  r.body["started"] = start_now && commit.ok();
  if (ref) r.body["origin"] = ref->origin_lv;
  return r;
}

control::Response VolumeService::op_lvrename(const json& request) {
  std::lock_guard control(control_mu_);
  auto names = vg_lv_args(request);
  if (!names.ok()) return control::Response::from_status(names.status());
  auto new_name = control::string_arg(request, "new_lv");
  if (!new_name.ok()) return control::Response::from_status(new_name.status());
  std::unique_lock exports(exports_mu_);
  auto vg = active_vg(names->vg);
  if (!vg.ok()) return control::Response::from_status(vg.status());
  // The export is named after the LV, and a connected client keeps the
  // objects it opened, which the rename replaces: so, unlike lvm2 (which
  // renames an open dm device), refuse while a client is connected to the
  // LV or, for an origin, to one of its snapshots.
  if (auto found = (*vg)->find(names->lv)) {
    if (auto busy = busy_exports(names->vg, names->lv, *found); !busy.empty()) {
      return control::Response::from_status(Status::Error(
          EBUSY,
          fmt::format("Cannot rename {}/{} while NBD clients are connected to {}: its export is renamed "
                      "too; disconnect them and retry",
                      names->vg, names->lv, fmt::join(busy, ", "))));
    }
  }
  auto commit = (*vg)->rename_volume(vm_, names->lv, *new_name);
  rebuild_exports();
  if (commit.ok()) log_debug(fmt::format("renamed {}/{} to {}", names->vg, names->lv, *new_name));
  return committed(commit, {});
}

control::Response VolumeService::op_refresh() {
  std::lock_guard control(control_mu_);
  std::unique_lock exports(exports_mu_);
  control::Response r;
  Status s = activate_all(r.notices);
  rebuild_exports();
  if (!s.ok()) {
    auto notices = std::move(r.notices);
    r = control::Response::from_status(s);
    r.notices = std::move(notices);
  }
  return r;
}

control::Response VolumeService::op_dmsetup(const json& request, bool status) {
  std::shared_lock lock(exports_mu_);
  const std::string only = request.value("vg", std::string());
  std::string text;
  for (const auto& [name, vg] : vgs_) {
    if (only.empty() || only == name) text += status ? vg->dm_status() : vg->dm_table();
  }
  if (!only.empty()) {
    if (auto vg = active_vg(only); !vg.ok()) return control::Response::from_status(vg.status());
  }
  control::Response r;
  r.body["text"] = text;
  return r;
}

}  // namespace cowsnap::server
