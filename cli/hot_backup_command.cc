// `cowsnap backup VG/LV --to DIR`: the seed's online hot backup as one
// command (snapshot, copy, check, drop), full or incremental, and
// `cowsnap backup --list|--verify DIR`. The files it writes are described
// in cli/backup/manifest.h; docs/backup.md tells the story.
//
// Order of a backup, and why:
//   1. DIR/.lock is taken (a second backup into DIR is refused), and
//      leftovers of a killed backup (DIR/.partial-*) are removed.
//   2. --pre, fsfreeze --freeze, the snapshot (read-only, through the
//      server: online), fsfreeze --unfreeze, --post. The snapshot holds
//      every write acknowledged before it and none after.
//   3. Incremental: the previous backup's snapshot (the tracker) has an
//      exception for every chunk the origin changed since it was taken.
//      It is read *after* the new snapshot exists, so it lists every
//      change before the new snapshot (and maybe a few after, which only
//      costs their copy: the data comes from the new snapshot).
//   4. The copy, into DIR/.partial-NAME; then the snapshot must still be
//      valid (an overflow during the copy fails the backup); the file is
//      flushed, re-read against its digests, the manifest written and
//      flushed, and the directory renamed to DIR/NAME.
//   5. Only then are snapshots dropped: an incremental's old tracker, or
//      a full backup's snapshot unless --keep-snapshot or --incremental.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "backup/copier.h"
#include "backup/image_files.h"
#include "backup/manifest.h"
#include "backup/progress.h"
#include "command.h"
#include "cowsnap/control/client.h"
#include "cowsnap/report/size.h"
#include "cowsnap/vg/lock.h"
#include "cowsnap/vg/root.h"
#include "hot_backup.h"

namespace cowsnap::cli {

using backup::ChunkRun;
using backup::Manifest;
using nlohmann::json;
namespace fs = std::filesystem;

Result<control::Client> connect_server(const std::string& root, const std::string& verb) {
  auto client = control::Client::connect_root(root);
  if (!client.ok()) {
    return client.status().with_context(
        fmt::format("cowsnap {} works through a running server (cowsnap --root {} serve)", verb, root));
  }
  return client;
}

Result<control::LvState> find_lv(const std::vector<control::LvState>& lvs, const std::string& vg,
                                 const std::string& lv) {
  for (const control::LvState& s : lvs) {
    if (s.vg == vg && s.lv == lv) return s;
  }
  return Status::Error(ENOENT,
                       fmt::format("Failed to find logical volume \"{}/{}\" (or it is not active)", vg, lv));
}

Result<control::LvState> find_lv(control::Client& client, const std::string& vg, const std::string& lv) {
  COWSNAP_ASSIGN_OR_RETURN(std::vector<control::LvState> lvs, client.lvs());
  return find_lv(lvs, vg, lv);
}

backup::NbdAddress nbd_address(const std::string& root, const NbdArgs& args) {
  backup::NbdAddress a;
  if (args.port != 0) {
    a.port = args.port;
    a.host = args.host;
  } else {
    a.socket = args.socket.empty() ? root + "/nbd.sock" : vg::absolute_path(args.socket);
  }
  return a;
}

void add_nbd_options(CLI::App* cmd, NbdArgs& args) {
  auto* socket =
      cmd->add_option("--socket,-U", args.socket, "The server's NBD Unix socket (default ROOT/nbd.sock)");
  auto* port = cmd->add_option("--port,-p", args.port, "The server's NBD TCP port, instead of a socket")
                   ->check(CLI::Range(1, 65535));
  cmd->add_option("--host", args.host, "Host of --port (default localhost)")->needs(port);
  socket->excludes(port);
}

namespace {

// In a partial backup's directory: the name of its snapshot.
constexpr const char* kSnapshotFile = "snapshot";

struct HotBackupArgs {
  std::string lv_path;
  std::string to;
  std::string list_dir;
  std::string verify_dir;
  std::string snapshot_size;
  std::string extents = "20%ORIGIN";
  std::string chunk_size;
  bool incremental = false;
  bool keep_snapshot = false;
  bool json = false;
  bool quiet = false;
  std::string freeze;
  std::string pre;
  std::string post;
  int connections = 4;
  NbdArgs nbd;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs the user's command with sh; EIO naming it unless it exits 0.
Status run_hook(const std::string& what, const std::string& command) {
  // The user's own hook, run as the user asked; nothing else runs then.
  // NOLINTNEXTLINE(cert-env33-c,concurrency-mt-unsafe)
  const int rc = std::system(command.c_str());
  if (rc != 0) return Status::Error(EIO, fmt::format("{} command failed (status {}): {}", what, rc, command));
  return Status::Ok();
}

Status run_fsfreeze(const std::string& mode, const std::string& mountpoint) {
  const std::string cmd = fmt::format("fsfreeze {} {}", mode, shell_quote(mountpoint));
  // NOLINTNEXTLINE(cert-env33-c,concurrency-mt-unsafe): the mount point is quoted
  const int rc = std::system(cmd.c_str());
  if (rc != 0)
    return Status::Error(EIO, fmt::format("fsfreeze {} {} failed (status {})", mode, mountpoint, rc));
  return Status::Ok();
}

// An exclusive lock on DIR/.lock for the backup's lifetime; EBUSY when
// another backup holds it.
Result<vg::FileLock> lock_backup_dir(const std::string& dir) {
  const std::string path = dir + "/.lock";
  auto lock = vg::FileLock::acquire(path, /*wait=*/false);
  if (!lock.ok() && lock.status().errnum() == EWOULDBLOCK) {
    return Status::Error(EBUSY, fmt::format("another backup into {} is running ({} is locked)", dir, path));
  }
  return lock;
}

Status fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(fmt::format("cannot open {}", path));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Error(err, fmt::format("fsync {}", path));
  return Status::Ok();
}

Status write_file_durably(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(fmt::format("cannot create {}", path));
  Status s =
      backup::write_all(fd, 0, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), path);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(fmt::format("fsync {}", path));
  ::close(fd);
  return s;
}

std::string unused_snapshot_name(const std::vector<control::LvState>& lvs, const std::string& lv,
                                 const std::string& stamp) {
  std::string base = fmt::format("{}-backup-{}", lv, stamp);
  std::string name = base;
  for (int i = 2;
       std::any_of(lvs.begin(), lvs.end(), [&](const control::LvState& s) { return s.lv == name; }); ++i) {
    name = fmt::format("{}-{}", base, i);
  }
  return name;
}

// Takes the snapshot between the hooks; the hooks that undo (unfreeze,
// --post) run whatever happened.
Status take_snapshot(control::Client& client, const HotBackupArgs& args, const std::string& vg,
                     const std::string& origin, const std::string& snap, uint64_t size_bytes,
                     uint64_t chunk_sectors) {
  if (!args.pre.empty()) COWSNAP_RETURN_IF_ERROR(run_hook("--pre", args.pre));
  Status frozen = args.freeze.empty() ? Status::Ok() : run_fsfreeze("--freeze", args.freeze);
  Status created = frozen;
  if (frozen.ok()) {
    json request = {{"op", "lvcreate_snapshot"}, {"vg", vg},         {"origin", origin}, {"lv", snap},
                    {"size_bytes", size_bytes},  {"read_only", true}};
    if (chunk_sectors != 0) request["chunk_sectors"] = chunk_sectors;
    auto r = client.request(request);
    created = r.status();
    if (r.ok()) {
      for (const std::string& n : r->notices) complain(n);
    }
  }
  Status thawed =
      args.freeze.empty() || !frozen.ok() ? Status::Ok() : run_fsfreeze("--unfreeze", args.freeze);
  Status posted = args.post.empty() ? Status::Ok() : run_hook("--post", args.post);
  for (const Status& s : {created, thawed, posted}) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

void drop_snapshot(control::Client& client, const std::string& vg, const std::string& lv) {
  auto r = client.lvremove(vg, lv, /*force=*/false);
  if (!r.ok())
    complain(fmt::format("WARNING: cannot remove snapshot {}/{}: {}", vg, lv, r.status().message()));
}

Result<uint64_t> snapshot_bytes(const HotBackupArgs& args, uint64_t origin_bytes) {
  if (!args.snapshot_size.empty()) {
    auto size = report::parse_size(args.snapshot_size, 'm');
    if (!size.ok() || size->sign != report::SizeSign::kNone || size->bytes == 0) {
      return Status::Error(EINVAL,
                           fmt::format("Invalid argument for --snapshot-size: {}", args.snapshot_size));
    }
    return size->bytes;
  }
  auto ex = report::parse_extents(args.extents);
  if (!ex.ok() || ex->base != report::ExtentsBase::kOrigin || ex->sign != report::SizeSign::kNone ||
      ex->value == 0) {
    return Status::Error(
        EINVAL, fmt::format("Invalid argument for --extents: {} (backup takes N%ORIGIN)", args.extents));
  }
  return std::max<uint64_t>(1, origin_bytes / 100 * ex->value + origin_bytes % 100 * ex->value / 100);
}

struct Outcome {
  Manifest manifest;
  std::string dir;
  std::vector<std::string> notices;
};

Result<Outcome> make_backup(Context& ctx, const HotBackupArgs& args) {
  const std::string root = vg::absolute_path(ctx.root_dir());
  const auto names = split_lv_path(args.lv_path);
  const std::string& vg_name = names.first;
  const std::string& lv_name = names.second;
  if (vg_name.empty() || lv_name.empty()) {
    return Status::Error(EINVAL, fmt::format("\"{}\": give the LV to back up as VG/LV", args.lv_path));
  }
  COWSNAP_ASSIGN_OR_RETURN(control::Client client, connect_server(root, "backup"));
  // The server's LVs as the backup begins: what it checks before its own
  // snapshot exists needs no fresher view (snapshots it drops meanwhile
  // only keep their names from being reused).
  COWSNAP_ASSIGN_OR_RETURN(const std::vector<control::LvState> lvs, client.lvs());
  COWSNAP_ASSIGN_OR_RETURN(control::LvState origin, find_lv(lvs, vg_name, lv_name));
  if (origin.is_snapshot) {
    return Status::Error(EINVAL, fmt::format("{}/{} is a snapshot: back up its origin {}/{}", vg_name,
                                             lv_name, vg_name, origin.origin));
  }
  const std::string dir = vg::absolute_path(args.to);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Error(ec.value(), fmt::format("cannot create {}: {}", dir, ec.message()));
  COWSNAP_ASSIGN_OR_RETURN(vg::FileLock lock, lock_backup_dir(dir));
  Outcome out;
  out.dir = dir;
  COWSNAP_ASSIGN_OR_RETURN(std::vector<Manifest> backups, backup::list_backups(dir));
  if (!backups.empty() && (backups.back().vg != vg_name || backups.back().lv != lv_name)) {
    return Status::Error(EINVAL, fmt::format("{} holds backups of {}/{}, not of {}/{}", dir,
                                             backups.back().vg, backups.back().lv, vg_name, lv_name));
  }
  // What killed backups left: their directories, and the snapshots they
  // had named (in PARTIAL/snapshot, written before the snapshot was
  // taken); old trackers a later backup replaced but did not drop.
  auto is_our_snapshot = [&](const std::string& snap) {
    auto s = find_lv(lvs, vg_name, snap);
    return s.ok() && s->is_snapshot && s->origin == lv_name;
  };
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with(backup::kPartialPrefix)) continue;
    std::string snap_name;
    std::getline(std::ifstream(e.path() / kSnapshotFile), snap_name);
    if (!snap_name.empty() && is_our_snapshot(snap_name)) {
      drop_snapshot(client, vg_name, snap_name);
      out.notices.push_back(
          fmt::format("Removed snapshot {}/{} of a backup that did not complete", vg_name, snap_name));
    }
    fs::remove_all(e.path(), ec);
    out.notices.push_back(
        fmt::format("Removed {}, left by a backup that did not complete", e.path().string()));
  }
  for (size_t i = 0; i + 1 < backups.size(); ++i) {
    const std::string& old_tracker = backups[i].tracker;
    if (!old_tracker.empty() && old_tracker != backups.back().tracker && is_our_snapshot(old_tracker)) {
      drop_snapshot(client, vg_name, old_tracker);
      out.notices.push_back(
          fmt::format("Removed snapshot {}/{}, the change tracker of backup {}, which backup {} "
                      "replaced",
                      vg_name, old_tracker, backups[i].name, backups.back().name));
    }
  }

  // The parent and its tracker, when this can be an incremental.
  std::optional<Manifest> parent;
  std::optional<control::LvState> tracker;
  if (args.incremental && !backups.empty()) {
    const Manifest& last = backups.back();
    if (last.tracker.empty()) {
      out.notices.push_back(
          fmt::format("Backup {} kept no change tracker: this backup is a full one", last.name));
    } else if (auto t = find_lv(lvs, vg_name, last.tracker);
               !t.ok() || !t->is_snapshot || t->origin != lv_name) {
      out.notices.push_back(
          fmt::format("The change tracker {}/{} of backup {} is gone: this backup is a full one", vg_name,
                      last.tracker, last.name));
    } else if (!t->valid) {
      out.notices.push_back(
          fmt::format("The change tracker {}/{} of backup {} overflowed (Invalid): this backup is a full one",
                      vg_name, last.tracker, last.name));
      tracker = *t;  // dropped once this backup is complete
    } else if (last.size_bytes != origin.size_bytes) {
      out.notices.push_back(fmt::format("{}/{} changed size since backup {}: this backup is a full one",
                                        vg_name, lv_name, last.name));
      tracker = *t;
    } else {
      parent = last;
      tracker = *t;
    }
  }

  uint64_t chunk_sectors = 0;
  if (parent) {
    chunk_sectors = parent->chunk_bytes / 512;
  } else if (!args.chunk_size.empty()) {
    auto chunk = report::parse_size(args.chunk_size, 'k');
    if (!chunk.ok() || chunk->bytes % 512 != 0) {
      return Status::Error(EINVAL, fmt::format("Invalid argument for --chunksize: {}", args.chunk_size));
    }
    chunk_sectors = chunk->bytes / 512;
  }
  COWSNAP_ASSIGN_OR_RETURN(uint64_t cow_bytes, snapshot_bytes(args, origin.size_bytes));
  const std::string started = backup::utc_now_iso();
  std::string name = backup::backup_name_for(started, parent.has_value());
  for (int i = 2; fs::exists(fs::path(dir) / name); ++i) {
    name = fmt::format("{}-{}", backup::backup_name_for(started, parent.has_value()), i);
  }
  const std::string snap = unused_snapshot_name(lvs, lv_name, name.substr(0, 16));
  // The partial directory names the snapshot before it exists, so that a
  // backup killed from here on leaves nothing the next one cannot find.
  const std::string partial = dir + "/" + backup::kPartialPrefix + name;
  fs::create_directories(partial, ec);
  if (ec) return Status::Error(ec.value(), fmt::format("cannot create {}: {}", partial, ec.message()));
  for (const Status& s : {write_file_durably(partial + "/" + kSnapshotFile, snap + "\n"),
                          fsync_path(dir, O_RDONLY | O_DIRECTORY)}) {
    if (!s.ok()) {
      fs::remove_all(partial, ec);
      return s;
    }
  }
  if (Status s = take_snapshot(client, args, vg_name, lv_name, snap, cow_bytes, chunk_sectors); !s.ok()) {
    fs::remove_all(partial, ec);
    return s;
  }
  const std::string snapshot_time = backup::utc_now_iso();

  // From here on, a failure drops the new snapshot (never the tracker).
  auto abandon = [&](const Status& why) -> Status {
    fs::remove_all(partial, ec);
    drop_snapshot(client, vg_name, snap);
    return why;
  };
  auto snap_state = find_lv(client, vg_name, snap);
  if (!snap_state.ok()) return abandon(snap_state.status());

  Manifest& m = out.manifest;
  m.name = name;
  m.incremental = parent.has_value();
  m.vg = vg_name;
  m.lv = lv_name;
  m.size_bytes = origin.size_bytes;
  m.chunk_bytes = uint64_t{snap_state->chunk_sectors} * 512;
  m.snapshot = snap;
  m.snapshot_time = snapshot_time;
  if (parent) {
    m.parent = parent->name;
    m.digests = parent->digests;
    auto changed = client.changed(vg_name, tracker->lv);
    if (!changed.ok()) return abandon(changed.status());
    const uint64_t tracker_chunk = changed->body.value("chunk_bytes", uint64_t{0});
    if (tracker_chunk != m.chunk_bytes) {
      return abandon(Status::Error(EINVAL, fmt::format("the tracker's chunks are {} bytes, the backup's {}",
                                                       tracker_chunk, m.chunk_bytes)));
    }
    const json& runs = changed->body["runs"];
    for (const json& r : runs.is_array() ? runs : json::array()) {
      if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned()) {
        return abandon(Status::Error(EPROTO, "the server's changed runs are not [first, count] pairs"));
      }
      const ChunkRun run{r[0].get<uint64_t>(), r[1].get<uint64_t>()};
      const uint64_t after_last = m.changed.empty() ? 0 : m.changed.back().first + m.changed.back().count;
      if (run.count == 0 || run.first < after_last || run.first + run.count > m.chunk_count()) {
        return abandon(
            Status::Error(EPROTO, "the server's changed runs are not ascending runs within the LV"));
      }
      m.changed.push_back(run);
    }
  } else {
    m.digests.assign(m.chunk_count(), backup::Digest{0, 0});
  }

  const std::string data_path = partial + "/" + m.data_file();
  const int fd = ::open(data_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return abandon(Status::FromErrno(fmt::format("cannot create {}", data_path)));
  const uint64_t data_bytes = m.incremental ? m.changed_chunks() * m.chunk_bytes : m.size_bytes;
  Status copied = ::ftruncate(fd, static_cast<off_t>(data_bytes)) == 0
                      ? Status::Ok()
                      : Status::FromErrno(fmt::format("cannot size {}", data_path));
  const auto t0 = std::chrono::steady_clock::now();
  if (copied.ok()) {
    backup::ImageWriter writer(fd, m);
    std::atomic<uint64_t> done{0};
    const std::vector<ChunkRun> runs =
        m.incremental ? m.changed : std::vector<ChunkRun>{{0, m.chunk_count()}};
    uint64_t total = 0;
    for (const ChunkRun& r : runs) total += r.count * m.chunk_bytes;
    backup::CopyOptions options;
    options.connections = args.connections;
    options.done_bytes = &done;
    backup::Progress progress(fmt::format("{}/{}", vg_name, snap), std::min(total, m.size_bytes), done,
                              args.quiet || args.json);
    auto stats = backup::copy_chunks(nbd_address(root, args.nbd), vg_name + "/" + snap, m.size_bytes,
                                     m.chunk_bytes, runs, writer, options);
    progress.stop();
    if (stats.ok()) {
      m.copied_bytes = stats->copied_bytes;
      m.zero_bytes = stats->zero_bytes;
    }
    copied = stats.status();
    if (copied.ok() && ::fsync(fd) != 0) copied = Status::FromErrno(fmt::format("fsync {}", data_path));
  }
  ::close(fd);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The copy is only good if the snapshot held still all along.
  auto after = find_lv(client, vg_name, snap);
  if (after.ok() && !after->valid) {
    return abandon(Status::Error(
        EIO, fmt::format("Snapshot {}/{} overflowed during the copy (its {} of COW space filled up): "
                         "backup {} is incomplete and was discarded. Give the snapshot more room "
                         "(--snapshot-size larger than {}, or -l N%ORIGIN), or let it autoextend "
                         "(snapshot_autoextend_threshold in {}/lvm.conf)",
                         vg_name, snap,
                         backup::human_bytes(static_cast<double>(
                             after->usage ? after->usage->total_sectors * 512 : cow_bytes)),
                         name, backup::human_bytes(static_cast<double>(cow_bytes)), root)));
  }
  if (!copied.ok()) return abandon(copied.with_context(fmt::format("backup {} failed", name)));
  if (!after.ok()) return abandon(after.status());

  m.image = backup::image_digest(m.digests);
  m.created = backup::utc_now_iso();
  if (args.incremental) m.tracker = snap;
  auto problems = backup::verify_backup(partial, m);
  if (!problems.ok()) return abandon(problems.status());
  if (!problems->empty()) {
    return abandon(
        Status::Error(EIO, fmt::format("backup {} reads back wrong: {}", name, problems->front())));
  }
  for (const Status& s : {write_file_durably(partial + "/" + backup::kManifestFile, backup::to_json_text(m)),
                          fsync_path(partial, O_RDONLY | O_DIRECTORY)}) {
    if (!s.ok()) return abandon(s);
  }
  if (::rename(partial.c_str(), (dir + "/" + name).c_str()) != 0) {
    return abandon(Status::FromErrno(fmt::format("cannot rename {} to {}", partial, name)));
  }
  COWSNAP_RETURN_IF_ERROR(fsync_path(dir, O_RDONLY | O_DIRECTORY));

  // Complete: now the snapshots can go.
  if (tracker && tracker->lv != snap) drop_snapshot(client, vg_name, tracker->lv);
  if (!args.incremental && !args.keep_snapshot) drop_snapshot(client, vg_name, snap);
  return out;
}

json summary_json(const Outcome& o) {
  json j = backup::summary_of(o.manifest);
  j["dir"] = o.dir;
  j["notices"] = o.notices;
  return j;
}

int backup_command(Context& ctx, const HotBackupArgs& args) {
  auto outcome = make_backup(ctx, args);
  if (!outcome.ok()) return fail(outcome.status());
  for (const std::string& n : outcome->notices) complain(n);
  const Manifest& m = outcome->manifest;
  if (args.json) {
    fmt::print("{}\n", summary_json(*outcome).dump(2));
    return kExitOk;
  }
  const double rate = m.seconds > 0 ? static_cast<double>(m.copied_bytes + m.zero_bytes) / m.seconds : 0;
  say(fmt::format(
      "Backup {} of {}/{} is complete in {}/{}: {}, {} copied, {} skipped as zeroes, {:.2f} s ({}/s)", m.name,
      m.vg, m.lv, outcome->dir, m.name,
      m.incremental ? fmt::format("incremental on {}, {} changed chunks", m.parent, m.changed_chunks())
                    : "full",
      backup::human_bytes(static_cast<double>(m.copied_bytes)),
      backup::human_bytes(static_cast<double>(m.zero_bytes)), m.seconds, backup::human_bytes(rate)));
  if (!m.tracker.empty())
    say(fmt::format("Snapshot {}/{} tracks changes for the next incremental", m.vg, m.tracker));
  if (args.keep_snapshot && m.tracker.empty()) say(fmt::format("Snapshot {}/{} kept", m.vg, m.snapshot));
  return kExitOk;
}

int list_command(const HotBackupArgs& args) {
  auto backups = backup::list_backups(vg::absolute_path(args.list_dir));
  if (!backups.ok()) return fail(backups.status());
  if (args.json) {
    json list = json::array();
    for (const Manifest& m : *backups) list.push_back(backup::summary_of(m));
    fmt::print("{}\n", json{{"backups", list}}.dump(2));
    return kExitOk;
  }
  fmt::print("  {:<24} {:<11} {:<24} {:<24} {:>10} {:>10} {}\n", "Backup", "Kind", "Parent", "Created",
             "Size", "Copied", "LV");
  for (const Manifest& m : *backups) {
    fmt::print("  {:<24} {:<11} {:<24} {:<24} {:>10} {:>10} {}/{}\n", m.name,
               m.incremental ? "incremental" : "full", m.incremental ? m.parent : "-", m.created,
               backup::human_bytes(static_cast<double>(m.size_bytes)),
               backup::human_bytes(static_cast<double>(m.copied_bytes)), m.vg, m.lv);
  }
  return kExitOk;
}

int verify_command(const HotBackupArgs& args) {
  const std::string dir = vg::absolute_path(args.verify_dir);
  auto backups = backup::list_backups(dir);
  if (!backups.ok()) return fail(backups.status());
  if (backups->empty()) return fail(Status::Error(ENOENT, fmt::format("{} holds no complete backup", dir)));
  int rc = kExitOk;
  for (const Manifest& m : *backups) {
    auto problems = backup::verify_backup(dir + "/" + m.name, m);
    if (!problems.ok()) {
      rc = fail(problems.status());
      continue;
    }
    if (auto chain = backup::chain_of(*backups, m.name); !chain.ok())
      problems->push_back(chain.status().message());
    if (problems->empty()) {
      say(fmt::format("Backup {}: every chunk matches its digest ({} chunks checked)", m.name,
                      m.incremental ? m.changed_chunks() : m.chunk_count()));
      continue;
    }
    rc = kExitFailed;
    for (const std::string& p : *problems) complain(p);
    complain(fmt::format("Backup {} is damaged", m.name));
  }
  return rc;
}

}  // namespace

void register_hot_backup_command(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<HotBackupArgs>();
  CLI::App* cmd = app.add_subcommand(
      "backup", "Online hot backup of an LV through a snapshot, full or incremental; --list, --verify");
  cmd->add_option("LV", args->lv_path, "The LV to back up, VG/LV");
  auto* to = cmd->add_option("--to", args->to, "The backup directory (one chain of backups of one LV)");
  auto* list = cmd->add_option("--list", args->list_dir, "List the backups in DIR");
  auto* verify =
      cmd->add_option("--verify", args->verify_dir, "Re-read every backup in DIR against its digests");
  list->excludes(to)->excludes(verify);
  verify->excludes(to);
  auto* size = cmd->add_option("--snapshot-size,-L", args->snapshot_size,
                               "COW space of the backup's snapshot (default -l 20%ORIGIN)");
  cmd->add_option("--extents,-l", args->extents, "COW space of the snapshot as N%ORIGIN (default 20%ORIGIN)")
      ->excludes(size);
  cmd->add_option("--chunksize,-c", args->chunk_size,
                  "Chunk size of the snapshot and of the backup's digests (full backups; default 4k)");
  cmd->add_flag("--incremental,-i", args->incremental,
                "Keep the snapshot as change tracker, and copy only what changed since the last backup");
  cmd->add_flag("--keep-snapshot", args->keep_snapshot, "Keep the backup's snapshot");
  cmd->add_option("--freeze", args->freeze, "fsfreeze this mount point around the snapshot");
  cmd->add_option("--pre", args->pre, "Run this shell command just before the snapshot");
  cmd->add_option("--post", args->post, "Run this shell command just after the snapshot");
  cmd->add_option("--connections", args->connections, "NBD connections for the copy (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--json", args->json, "A machine-readable summary on stdout");
  cmd->add_flag("--quiet,-q", args->quiet, "No progress display");
  add_nbd_options(cmd, args->nbd);
  table.add(cmd, [args](Context& ctx) {
    if (!args->list_dir.empty()) return list_command(*args);
    if (!args->verify_dir.empty()) return verify_command(*args);
    if (args->lv_path.empty() || args->to.empty()) {
      complain("backup needs VG/LV and --to DIR (or --list DIR, --verify DIR)");
      return kExitInvalidCommandLine;
    }
    return backup_command(ctx, *args);
  });
}

}  // namespace cowsnap::cli
