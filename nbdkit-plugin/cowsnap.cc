// nbdkit-cowsnap-plugin: serves every LV under a cowsnap root as an NBD
// export "VG/LV". The callbacks only translate between nbdkit and the
// engine (VolumeService, ControlServer): engine Status errors become
// nbdkit_error(message) + nbdkit_set_error(errno) here and nowhere else.
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>

#include "cowsnap/control/protocol.h"
#include "cowsnap/io/rbd.h"
#include "cowsnap/server/control_server.h"
#include "cowsnap/server/volume_service.h"

// The project's version (CMake's PROJECT_VERSION), so the plugin and the
// CLI cannot disagree about which release they are.
#ifndef COWSNAP_VERSION
#error "COWSNAP_VERSION comes from nbdkit-plugin/CMakeLists.txt"
#endif

// Every connection gets its own handle; all requests of all connections
// may run in parallel (the engine is thread-safe, see block_device.h).
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace {

using cowsnap::Status;
using cowsnap::server::ControlServer;
using cowsnap::server::Export;
using cowsnap::server::VolumeService;

// Any byte range is served: the engine works in bytes (a partial chunk is
// copied out whole first), and FUSE clients such as fuse2fs over nbdfuse
// write a few bytes at a time. The preferred size tells clients what is cheap.
constexpr uint32_t kMinBlockBytes = 1;
constexpr uint32_t kMaxBlockBytes = 32 * 1024 * 1024;

// Set by config, read-only once nbdkit starts serving.
std::string root_dir;
cowsnap::WriteBackOptions write_back;
cowsnap::CephClient ceph;
cowsnap::vg::PvTakeOver take_over = cowsnap::vg::PvTakeOver::kNo;
// Created in get_ready (the control socket) and after_fork (the service,
// whose threads must live in the process that serves), destroyed in
// cleanup/unload; the pointers are not changed while connections exist,
// the objects are thread-safe.
std::unique_ptr<VolumeService> service;
std::unique_ptr<ControlServer> control_server;

struct Handle {
  std::shared_ptr<Export> exp;
};

int fail(const Status& s) {
  nbdkit_error("%s", s.message().c_str());
  nbdkit_set_error(s.errnum() != 0 ? s.errnum() : EIO);
  return -1;
}

// An exception as the error nbdkit reports (ENOMEM for bad_alloc).
Status from_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::bad_alloc&) {
    return Status::Error(ENOMEM, "cowsnap: out of memory");
  } catch (const std::exception& ex) {
    return Status::Error(EIO, std::string("cowsnap: internal error: ") + ex.what());
  } catch (...) {
    return Status::Error(EIO, "cowsnap: internal error");
  }
}

// Every callback runs through one of these: no C++ exception may cross into
// nbdkit (C), where it would abort the server and drop every export.
//
// guarded(fn): fn returns a Status; 0, or -1 with the error reported.
template <typename Fn>
int guarded(Fn&& fn) noexcept {
  try {
    Status s = fn();
    return s.ok() ? 0 : fail(s);
  } catch (...) {
    return fail(from_exception(std::current_exception()));
  }
}

// guarded_value(on_error, fn): fn's value, or on_error with the error
// reported (the callbacks that return a pointer or a size).
template <typename T, typename Fn>
T guarded_value(T on_error, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (...) {
    fail(from_exception(std::current_exception()));
    return on_error;
  }
}

Export& exp_of(void* handle) { return *static_cast<Handle*>(handle)->exp; }

void log_error(const std::string& msg) { nbdkit_error("%s", msg.c_str()); }
void log_debug(const std::string& msg) { nbdkit_debug("%s", msg.c_str()); }

// ---- configuration and lifecycle ----

int cowsnap_config(const char* key, const char* value) {
  if (std::strcmp(key, "root") == 0) {
    char* abs = nbdkit_absolute_path(value);  // nbdkit chdirs to / later
    if (abs == nullptr) return -1;
    const int r = guarded([abs] {
      root_dir = abs;
      return Status::Ok();
    });
    std::free(abs);
    return r;
  }
  if (std::strcmp(key, "writeback") == 0) {
    const int on = nbdkit_parse_bool(value);
    if (on == -1) return -1;
    write_back.enabled = on == 1;
    return 0;
  }
  if (std::strcmp(key, "writeback-memory") == 0) {
    const int64_t bytes = nbdkit_parse_size(value);
    if (bytes == -1) return -1;
    if (bytes < int64_t{64} * 1024) {
      nbdkit_error("writeback-memory=%s: at least 64K is needed", value);
      return -1;
    }
    write_back.max_pending_bytes = static_cast<uint64_t>(bytes);
    return 0;
  }
  if (std::strcmp(key, "ceph-conf") == 0) {
    char* abs = nbdkit_absolute_path(value);
    if (abs == nullptr) return -1;
    const int r = guarded([abs] {
      ceph.conf_path = abs;
      return Status::Ok();
    });
    std::free(abs);
    return r;
  }
  if (std::strcmp(key, "ceph-id") == 0) {
    return guarded([value] {
      ceph.id = value;
      return Status::Ok();
    });
  }
  if (std::strcmp(key, "takeover") == 0) {
    if (std::strcmp(value, "force") == 0) {
      take_over = cowsnap::vg::PvTakeOver::kForce;
      return 0;
    }
    const int on = nbdkit_parse_bool(value);
    if (on == -1) return -1;
    take_over = on == 1 ? cowsnap::vg::PvTakeOver::kDeadOwner : cowsnap::vg::PvTakeOver::kNo;
    return 0;
  }
  nbdkit_error(
      "unknown parameter '%s' (the cowsnap plugin takes root=DIR, writeback=on|off, "
      "writeback-memory=SIZE, ceph-conf=FILE, ceph-id=ID, takeover=on|off|force)",
      key);
  return -1;
}

int cowsnap_config_complete() {
  if (root_dir.empty()) {
    nbdkit_error("the root=DIR parameter is required (the cowsnap root holding the devices file)");
    return -1;
  }
  return 0;
}

void cowsnap_dump_plugin() {
  std::printf("cowsnap_thread_model=parallel\n");
  std::printf("cowsnap_exports=VG/LV\n");
  std::printf("cowsnap_control_socket=ROOT/%s\n", cowsnap::control::kSocketName);
  std::printf("cowsnap_writeback=%s\n", write_back.enabled ? "on" : "off");
  std::printf("cowsnap_writeback_memory=%llu\n",
              static_cast<unsigned long long>(write_back.max_pending_bytes));
}

int cowsnap_get_ready() {
  return guarded([] {
    // A bad root is reported here, before nbdkit forks into the
    // background, where the user sees it. The service itself starts after
    // the fork: its threads (write-back committers, the snapshot monitor)
    // would not survive it.
    if (Status s = VolumeService::check_root(root_dir); !s.ok()) {
      return Status::Error(s.errnum(), "cannot serve cowsnap root " + root_dir + ": " + s.message());
    }
    // The socket is bound before nbdkit forks, so a second server on the
    // same root fails here, visibly, instead of in the background. It
    // accepts nothing before after_fork has started the service.
    auto listening = ControlServer::listen(
        cowsnap::control::socket_path(root_dir),
        [](const nlohmann::json& request) { return service->handle(request); }, log_error);
    if (!listening.ok()) return listening.status();
    control_server = std::move(listening).value();
    return Status::Ok();
  });
}

int cowsnap_after_fork() {
  return guarded([] {
    VolumeService::Options options;
    options.log_error = log_error;
    options.log_debug = log_debug;
    options.command_line = "nbdkit cowsnap plugin (online change)";
    options.write_back = write_back;
    options.take_over = take_over;
    // librados starts threads: the client is made here, after the fork.
    cowsnap::set_ceph_client(ceph);
    // A test hook (fault-injection tests only): see the man page.
    // NOLINTNEXTLINE(concurrency-mt-unsafe): before nbdkit starts threads
    if (const char* delay = std::getenv("COWSNAP_TEST_WRITEBACK_DELAY_MS"); delay != nullptr) {
      options.write_back.test_commit_delay_ms = static_cast<uint32_t>(std::strtoul(delay, nullptr, 10));
    }
    // NOLINTNEXTLINE(concurrency-mt-unsafe): before nbdkit starts threads
    if (const char* limit = std::getenv("COWSNAP_TEST_MERGE_STEP_LIMIT"); limit != nullptr) {
      options.test_merge_step_limit = std::strtoull(limit, nullptr, 10);
    }
    if (write_back.enabled) {
      nbdkit_debug("write-back mode, %llu bytes for pending copy-outs",
                   static_cast<unsigned long long>(write_back.max_pending_bytes));
    }
    auto started = VolumeService::start(root_dir, options);
    if (!started.ok()) {
      return Status::Error(started.status().errnum(),
                           "cannot serve cowsnap root " + root_dir + ": " + started.status().message());
    }
    service = std::move(started).value();
    return control_server->start();
  });
}

void cowsnap_cleanup() {
  (void)guarded([] {
    if (control_server) control_server->stop();
    return service ? service->flush_all() : Status::Ok();
  });
}

void cowsnap_unload() {
  (void)guarded([] {
    control_server.reset();
    service.reset();
    return Status::Ok();
  });
}

// ---- exports ----

int cowsnap_list_exports(int /*readonly*/, int /*is_tls*/, struct nbdkit_exports* exports) {
  return guarded([exports] {
    for (const auto& e : service->list_exports()) {
      // nbdkit has reported its own error.
      if (nbdkit_add_export(exports, e.name.c_str(), e.description.c_str()) == -1)
        return Status::Error(ENOMEM, "cowsnap: cannot list export " + e.name);
    }
    return Status::Ok();
  });
}

const char* cowsnap_default_export(int /*readonly*/, int /*is_tls*/) {
  return guarded_value<const char*>(nullptr, []() -> const char* {
    const std::string name = service->default_export();
    return name.empty() ? nullptr : nbdkit_strdup_intern(name.c_str());
  });
}

void* cowsnap_open(int /*readonly*/) {
  return guarded_value<void*>(nullptr, []() -> void* {
    const char* name = nbdkit_export_name();
    if (name == nullptr) return nullptr;
    auto exp = service->connect(name);
    if (!exp.ok()) {
      fail(exp.status());
      return nullptr;
    }
    // Owned by nbdkit from here; the unique_ptr only covers a throw below.
    auto handle = std::make_unique<Handle>(Handle{std::move(exp).value()});
    nbdkit_debug("cowsnap: connection to %s", name);
    return handle.release();
  });
}

void cowsnap_close(void* handle) {
  std::unique_ptr<Handle> h(static_cast<Handle*>(handle));
  (void)guarded([&h] {
    service->disconnect(h->exp);
    return Status::Ok();
  });
}

const char* cowsnap_export_description(void* handle) {
  return guarded_value<const char*>(
      nullptr, [handle] { return nbdkit_strdup_intern(service->describe(exp_of(handle)).c_str()); });
}

int64_t cowsnap_get_size(void* handle) {
  return guarded_value<int64_t>(
      -1, [handle] { return static_cast<int64_t>(exp_of(handle).device().size_bytes()); });
}

int cowsnap_block_size(void* handle, uint32_t* minimum, uint32_t* preferred, uint32_t* maximum) {
  // Preferred: the chunk size (a snapshot) or the copy-out region (an
  // origin): a smaller write costs a read-modify-write of a whole chunk.
  return guarded([=] {
    const uint32_t chunk = exp_of(handle).device().preferred_block_bytes();
    *minimum = kMinBlockBytes;
    *preferred = std::clamp(std::bit_floor(std::max(chunk, kMinBlockBytes)), kMinBlockBytes, kMaxBlockBytes);
    *maximum = kMaxBlockBytes;
    return Status::Ok();
  });
}

int cowsnap_can_true(void* /*handle*/) { return 1; }

// A read-only LV (lvcreate -p r, lvchange -p r) is a read-only export, so
// nbdkit refuses writes itself; one made read-only while a client is
// connected refuses them in write_io (EROFS).
// (An atomic load: nothing here can throw.)
int cowsnap_can_write(void* handle) noexcept { return exp_of(handle).read_only() ? 0 : 1; }

int cowsnap_can_fua(void* /*handle*/) { return NBDKIT_FUA_NATIVE; }

// Fast zero: zeroing is never cheaper than writing here (an origin zero may
// copy chunks out to snapshots, a snapshot zero allocates exceptions), so
// we let clients know up front.
int cowsnap_can_fast_zero(void* /*handle*/) { return 0; }

// Multi-conn is safe: every connection to an export uses the same engine
// Target (one per LV, owned by its ActiveVolumeGroup) over the same backing
// devices, the engine keeps no per-connection write cache (write-back's
// pending copy-outs belong to the origin, shared by all its connections),
// and flush() writes them and flushes the shared backing devices (PV
// files). So a flush on one connection makes durable every write that
// completed before it on any connection, which is what
// NBD_FLAG_CAN_MULTI_CONN promises.
int cowsnap_can_multi_conn(void* /*handle*/) { return 1; }

// ---- data ----

// What a snapshot request that touches no data checks: the snapshot is
// still there and valid (EIO/ENODEV otherwise, as its reads and writes).
Status snapshot_usable(const cowsnap::SnapshotTarget& snap, const std::string& name) {
  if (snap.origin() == nullptr) return Status::Error(ENODEV, "snapshot " + name + " was removed");
  if (!snap.valid()) return Status::Error(EIO, "snapshot " + name + " is invalid");
  return Status::Ok();
}

int flush_if_fua(Export& exp, uint32_t flags) {
  if ((flags & NBDKIT_FLAG_FUA) == 0) return 0;
  return guarded([&] { return exp.io([](cowsnap::Target& dev) { return dev.flush(); }); });
}

int cowsnap_pread(void* handle, void* buf, uint32_t count, uint64_t offset, uint32_t /*flags*/) {
  std::span<uint8_t> out(static_cast<uint8_t*>(buf), count);
  return guarded(
      [&] { return exp_of(handle).io([&](cowsnap::Target& dev) { return dev.read(offset, out); }); });
}

int cowsnap_pwrite(void* handle, const void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  std::span<const uint8_t> in(static_cast<const uint8_t*>(buf), count);
  Export& exp = exp_of(handle);
  if (guarded([&] { return exp.write_io([&](cowsnap::Target& dev) { return dev.write(offset, in); }); }) != 0)
    return -1;
  return flush_if_fua(exp, flags);
}

int cowsnap_flush(void* handle, uint32_t /*flags*/) {
  return guarded([&] { return exp_of(handle).io([](cowsnap::Target& dev) { return dev.flush(); }); });
}

int cowsnap_trim(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  Export& exp = exp_of(handle);
  // Trim is advisory in NBD. On a snapshot it would allocate exceptions
  // (COW space) just to forget data, so it discards nothing there -- but it
  // fails as every other request does on a removed (ENODEV) or invalid (EIO)
  // snapshot; on an origin it is a real discard, which first copies the old
  // chunks out to its snapshots.
  const std::shared_ptr<cowsnap::SnapshotTarget>& snap = exp.volume()->snapshot;
  if (guarded([&] {
        return exp.write_io([&](cowsnap::Target& dev) {
          return snap ? snapshot_usable(*snap, exp.name()) : dev.discard(offset, count);
        });
      }) != 0) {
    return -1;
  }
  return flush_if_fua(exp, flags);
}

int cowsnap_zero(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  Export& exp = exp_of(handle);
  // MAY_TRIM allows a discard, which reads back as zeroes on every device
  // here (block_device.h), except that snapshot trims are no-ops above.
  const bool discard = (flags & NBDKIT_FLAG_MAY_TRIM) != 0 && !exp.volume()->is_snapshot();
  const int r = guarded([&] {
    return exp.write_io([&](cowsnap::Target& dev) {
      return discard ? dev.discard(offset, count) : dev.write_zeroes(offset, count);
    });
  });
  if (r != 0) return -1;
  return flush_if_fua(exp, flags);
}

// Block status: holes of the PV files under the LV, ranges of a snapshot
// that neither it nor its origin ever wrote. nbdcopy, qemu-img convert and
// the backup copier skip them.
int cowsnap_extents(void* handle, uint32_t count, uint64_t offset, uint32_t /*flags*/,
                    struct nbdkit_extents* extents) {
  return guarded([&] {
    cowsnap::ExtentMap map;
    COWSNAP_RETURN_IF_ERROR(
        exp_of(handle).io([&](cowsnap::Target& dev) { return dev.extents(offset, count, map); }));
    uint64_t at = offset;
    for (const cowsnap::ExtentMap::Run& run : map.runs()) {
      const uint32_t type = run.zero ? (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) : 0;
      // nbdkit has reported its own error.
      if (nbdkit_add_extent(extents, at, run.length, type) == -1) {
        return Status::Error(errno != 0 ? errno : ENOMEM, "cowsnap: cannot add an extent");
      }
      at += run.length;
    }
    return Status::Ok();
  });
}

nbdkit_plugin make_plugin() {
  nbdkit_plugin p{};
  p.name = "cowsnap";
  p.longname = "cowsnap copy-on-write snapshot volumes";
  p.version = COWSNAP_VERSION;
  p.description = "Serves the LVM-style volumes and dm-snapshot-style snapshots of a cowsnap root";
  p.unload = cowsnap_unload;
  p.config = cowsnap_config;
  p.config_complete = cowsnap_config_complete;
  p.config_help =
      "root=DIR       (required) cowsnap root directory: its devices file lists the PVs to serve.\n"
      "writeback=on|off  (default off) acknowledge origin writes that need a snapshot copy-out\n"
      "               before the copy-out is durable; a crash may lose writes since the last\n"
      "               flush, never a snapshot's view or a flushed write.\n"
      "writeback-memory=SIZE  (default 64M) memory for pending copy-outs; writers wait when full.\n"
      "ceph-conf=FILE (default $CEPH_CONF, /etc/ceph/ceph.conf) the cluster of rbd:POOL/IMAGE PVs.\n"
      "ceph-id=ID     (default admin) the Ceph client id (client.ID) to connect as.\n"
      "takeover=on|off|force  (default off) break another server's exclusive lock on an RBD PV:\n"
      "               on once that owner is dead (its watch has lapsed), force even if alive.\n"
      "Every active LV is served as export \"VG/LV\"; ROOT/control.sock takes online commands.";
  p.dump_plugin = cowsnap_dump_plugin;
  p.get_ready = cowsnap_get_ready;
  p.after_fork = cowsnap_after_fork;
  p.cleanup = cowsnap_cleanup;
  p.list_exports = cowsnap_list_exports;
  p.default_export = cowsnap_default_export;
  p.open = cowsnap_open;
  p.close = cowsnap_close;
  p.export_description = cowsnap_export_description;
  p.get_size = cowsnap_get_size;
  p.block_size = cowsnap_block_size;
  p.can_write = cowsnap_can_write;
  p.can_flush = cowsnap_can_true;
  p.can_trim = cowsnap_can_true;
  p.can_zero = cowsnap_can_true;
  p.can_fua = cowsnap_can_fua;
  p.can_fast_zero = cowsnap_can_fast_zero;
  p.can_multi_conn = cowsnap_can_multi_conn;
  p.pread = cowsnap_pread;
  p.pwrite = cowsnap_pwrite;
  p.flush = cowsnap_flush;
  p.trim = cowsnap_trim;
  p.zero = cowsnap_zero;
  p.can_extents = cowsnap_can_true;
  p.extents = cowsnap_extents;
  p.errno_is_preserved = 0;
  return p;
}

nbdkit_plugin plugin = make_plugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
