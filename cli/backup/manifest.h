// A backup directory and the manifests in it.
//
// Layout of DIR (one chain of backups of one LV):
//   DIR/.lock              flock()ed by the backup writing into DIR
//   DIR/NAME/manifest.json what NAME is (below)
//   DIR/NAME/image.raw     a full backup: the LV's bytes, sparse
//   DIR/NAME/delta.raw     an incremental: its changed chunks back to back,
//                          in ascending chunk order
//   DIR/.partial-NAME/     a backup being written: renamed to NAME only
//                          once complete, flushed and checked, so a killed
//                          backup never looks complete
//
// Every manifest lists the XXH3-128 digest of every chunk of the image it
// stands for (for an incremental: its parent's with the changed chunks'
// replaced), and the image digest, the XXH3-128 of those chunk digests in
// order (16 bytes each, canonical big-endian). Restore checks the rebuilt
// image against them; verify checks each file's chunks.
#pragma once

#include <xxhash.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap::backup {

inline constexpr const char* kManifestFormat = "cowsnap-backup 1";
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kFullImageFile = "image.raw";
inline constexpr const char* kDeltaFile = "delta.raw";
inline constexpr const char* kPartialPrefix = ".partial-";

using Digest = XXH128_hash_t;

Digest digest_of(std::span<const uint8_t> data);
std::string to_hex(const Digest& d);
Result<Digest> digest_from_hex(const std::string& hex);
bool same_digest(const Digest& a, const Digest& b);
// The image digest: over the chunk digests, in order.
Digest image_digest(std::span<const Digest> chunk_digests);

struct ChunkRun {
  uint64_t first = 0;
  uint64_t count = 0;
};

struct Manifest {
  std::string name;  // the backup's directory name in DIR
  bool incremental = false;
  std::string parent;  // incremental: the backup it applies on top of
  std::string vg, lv;
  uint64_t size_bytes = 0;
  uint64_t chunk_bytes = 0;
  std::string snapshot;       // the snapshot LV it was copied from
  std::string snapshot_time;  // when that snapshot was taken (UTC, ISO 8601)
  std::string created;        // when the backup completed (UTC, ISO 8601)
  // The snapshot kept as change tracker for the next incremental ("" when
  // none was kept).
  std::string tracker;
  std::vector<ChunkRun> changed;  // incremental: the chunks in delta.raw
  std::vector<Digest> digests;    // every chunk of the image
  Digest image = {0, 0};
  uint64_t copied_bytes = 0;  // read from the snapshot
  uint64_t zero_bytes = 0;    // skipped as zeroes
  double seconds = 0;

  [[nodiscard]] uint64_t chunk_count() const { return (size_bytes + chunk_bytes - 1) / chunk_bytes; }
  [[nodiscard]] uint64_t changed_chunks() const;
  [[nodiscard]] const char* data_file() const { return incremental ? kDeltaFile : kFullImageFile; }
  // Bytes of chunk i (the last may be short).
  [[nodiscard]] uint64_t chunk_length(uint64_t i) const;
};

// What a backup is, without its digest lists: the manifest's common part,
// and what `backup --json` and `backup --list --json` print.
nlohmann::json summary_of(const Manifest& m);
std::string to_json_text(const Manifest& m);
// EINVAL naming `where` and the field for anything malformed.
Result<Manifest> manifest_from_json_text(const std::string& text, const std::string& where);
Result<Manifest> read_manifest(const std::string& backup_dir);

// The complete backups in DIR, oldest first (by creation time, then name).
Result<std::vector<Manifest>> list_backups(const std::string& dir);
// The backups `target` is rebuilt from: its full backup first, it last.
// ENOENT naming the missing link when a parent is gone.
Result<std::vector<Manifest>> chain_of(const std::vector<Manifest>& backups, const std::string& target);
// The backup `at` names (a name, or a UTC time "YYYY-MM-DDTHH:MM:SS[Z]" /
// "YYYY-MM-DD HH:MM[:SS]": the newest backup created at or before it);
// the newest when `at` is empty.
Result<Manifest> pick_backup(const std::vector<Manifest>& backups, const std::string& at);

// Now, as the manifests write times: "2026-12-02T15:22:00Z".
std::string utc_now_iso();
// A directory name from a time and a kind: "20261202T152200Z-full".
std::string backup_name_for(const std::string& iso_time, bool incremental);

}  // namespace cowsnap::backup
