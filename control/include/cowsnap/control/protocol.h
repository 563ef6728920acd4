// The control protocol between a running cowsnap server (the nbdkit
// plugin) and its clients (the `cowsnap` CLI).
//
// Transport: a Unix stream socket ROOT/control.sock, mode 0600; the server
// accepts peers with its own uid or uid 0 (SO_PEERCRED). Framing: one JSON
// object per line ('\n'), a request then its response, any number of pairs
// per connection.
//
// Request:  {"op": "...", ...arguments}
//   lvs | state                     every LV's live state ("lvs" array)
//   lvcreate          vg lv (size_bytes | extents) [read_only]
//   lvcreate_snapshot vg origin lv (size_bytes | extents) [chunk_sectors]
//                     [read_only]
//   lvremove          vg lv [force]
//   lvextend          vg lv (size_bytes | extents)   (new total size)
//   lvrename          vg lv new_lv
//   lvchange          vg lv (active | permission: "r" | "rw" | monitor)
//   lvconvert         vg lv merge    ("started": bool, "origin": str)
//   refresh                         re-scan; activate VGs/LVs made offline
//   dmsetup_table | dmsetup_status  [vg]  ("text")
//   changed           vg lv    a snapshot's changed chunks: "origin",
//                     "chunk_bytes", "size_bytes", "changed_chunks" and
//                     "runs" ([[first_chunk, count], ...], ascending),
//                     after flushing the origin's pending copy-outs
// Response: {"ok": bool, "errno": int, "message": str, "notices": [str],
//            ...op-specific fields}
// errno values are Linux errno numbers (EBUSY, ENOENT, ENOTSUP, ...), so a
// client can map them back to a Status unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cowsnap/common/status.h"

namespace cowsnap::control {

inline constexpr const char* kSocketName = "control.sock";
// Longest request or response line accepted (a guard against garbage).
inline constexpr size_t kMaxLineBytes = 16 * 1024 * 1024;

// ROOT/control.sock.
std::string socket_path(const std::string& root_dir);

// A snapshot's COW usage, as dm's status line gives it (512-byte sectors).
struct Usage {
  uint64_t total_sectors = 0;
  uint64_t allocated_sectors = 0;
  uint64_t metadata_sectors = 0;
};

// One LV as the running server sees it.
struct LvState {
  std::string vg;
  std::string lv;
  bool active = false;
  int64_t open_connections = 0;  // NBD clients connected to the export
  uint64_t size_bytes = 0;       // the export's size (a snapshot: its origin's)
  bool is_snapshot = false;
  std::string origin;          // a snapshot's origin LV
  int64_t snapshot_count = 0;  // an origin's snapshots
  // An origin with a merging snapshot (lvconvert --merge): its usage is
  // the snapshot-merge target's (the merging snapshot's store).
  bool merging = false;
  bool merge_failed = false;
  bool monitored = true;  // lvchange --monitor (snapshots)
  // Snapshot only (and a merging origin's usage):
  bool valid = true;
  uint32_t chunk_sectors = 0;
  std::optional<Usage> usage;
  double data_percent = 0.0;  // lvm2's Data%, two decimals meaningful
  // A snapshot whose activation failed (damaged store): why; "" otherwise.
  // Its export fails every request with EIO.
  std::string failure;
  uint32_t preferred_block_bytes = 0;

  [[nodiscard]] std::string export_name() const { return vg + "/" + lv; }
};

struct Response {
  bool ok = true;
  int errnum = 0;
  std::string message;
  std::vector<std::string> notices;
  nlohmann::json body = nlohmann::json::object();  // op-specific fields

  static Response from_status(const Status& s);
  // The error as a Status (Ok when ok).
  [[nodiscard]] Status status() const;
};

nlohmann::json to_json(const LvState& s);
Result<LvState> lv_state_from_json(const nlohmann::json& j);

nlohmann::json to_json(const Response& r);
Result<Response> response_from_json(const nlohmann::json& j);

// Parses one line of the protocol; EPROTO with the parser's reason.
Result<nlohmann::json> parse_line(const std::string& line);

// Argument helpers for the server: EINVAL naming the missing field.
Result<std::string> string_arg(const nlohmann::json& request, const char* key);
Result<uint64_t> uint_arg(const nlohmann::json& request, const char* key);
bool bool_arg(const nlohmann::json& request, const char* key, bool fallback);

}  // namespace cowsnap::control
