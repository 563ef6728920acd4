// lvm2's metadata backups, kept under the root directory as lvm2 keeps
// them under /etc/lvm:
//
//   ROOT/archive/VG_NNNNN-RANDOM.vg  every committed version, written
//                                    *before* the change that replaces it
//                                    (description "Created *before*
//                                    executing '...'"); NNNNN counts up
//   ROOT/backup/VG                   the version in force *after* the last
//                                    change ("Created *after* ...")
//
// The files are lvm2's text format with lvm2's header (comment line,
// contents, version, description, creation_host, creation_time, then the
// VG section, tab-indented), so lvm2's `vgcfgrestore -f` reads them and
// cowsnap reads lvm2's.
//
// Crash safety: every file is written to a temporary name, fsync'd and
// renamed, so it is whole or absent. VolumeManager writes the archive
// before it writes any metadata area, and refuses the change when the
// archive cannot be written (as lvm2 does): whatever happens to the
// commit, the version it replaces is on file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::vg {

struct BackupInfo {
  std::string description;  // e.g. "Created *before* executing 'cowsnap lvcreate ...'"
  std::string host;         // creation_host
  int64_t time = 0;         // creation_time, seconds since the epoch
};

// The whole file, as lvm2 writes it.
std::string backup_file_text(const VolumeGroup& vg, const BackupInfo& info);

// Writes `path` atomically (temporary file, fsync, rename, fsync of the
// directory).
Status write_backup_file(const std::string& path, const VolumeGroup& vg, const BackupInfo& info);

// ROOT/archive/VG_NNNNN-RANDOM.vg with NNNNN one above the highest in use;
// returns its path. Then prunes the VG's archives as lvm2 does by default:
// one goes only when it is older than 30 days and not among the newest 10.
Result<std::string> write_archive(const std::string& root_dir, const VolumeGroup& vg, const BackupInfo& info);
std::string backup_path(const std::string& root_dir, const std::string& vg_name);
// Removes ROOT/backup/VG (vgremove); absent is fine.
Status remove_backup(const std::string& root_dir, const std::string& vg_name);

// A backup or archive file as read back.
struct BackupFile {
  std::string path;
  VolumeGroup vg;
  std::string description;
  int64_t time = 0;
};

// EINVAL "PATH: ..." when it does not parse or holds no VG.
Result<BackupFile> read_backup_file(const std::string& path);

// The archives of one VG in index order, then its backup file: what
// `vgcfgrestore --list VG` shows. Files that do not parse are skipped.
Result<std::vector<BackupFile>> list_backups(const std::string& root_dir, const std::string& vg_name);

}  // namespace cowsnap::vg
