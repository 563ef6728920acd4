// A client of a running cowsnap server's control socket (see protocol.h).
//
// Thread safety: one Client is one connection; use it from one thread at a
// time (or give each thread its own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cowsnap/common/status.h"
#include "cowsnap/control/protocol.h"

namespace cowsnap::control {

class Client {
 public:
  // Connects to `socket_path`. ENOENT / ECONNREFUSED when no server runs.
  static Result<Client> connect(const std::string& socket_path);
  // Connects to ROOT/control.sock.
  static Result<Client> connect_root(const std::string& root_dir) { return connect(socket_path(root_dir)); }
  // True when a server answers on ROOT/control.sock (a stale socket file
  // left by a killed server does not count).
  static bool server_running(const std::string& root_dir);

  Client(Client&& other) noexcept : fd_(other.fd_), buffer_(std::move(other.buffer_)) { other.fd_ = -1; }
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Sends one request and reads its response. A transport failure is the
  // returned Status; a server-side failure is a Response with ok == false.
  Result<Response> call(const nlohmann::json& request);
  // As call(), but a server-side failure becomes the returned Status too
  // (its notices are lost then).
  Result<Response> request(const nlohmann::json& request);

  // Typed requests.
  Result<std::vector<LvState>> lvs();
  Result<Response> lvcreate(const std::string& vg, const std::string& lv, uint64_t size_bytes);
  // read_only: lvcreate -p r.
  Result<Response> lvcreate_extents(const std::string& vg, const std::string& lv, uint64_t extents,
                                    bool read_only = false);
  // chunk_sectors 0: the default (4 KiB).
  Result<Response> lvcreate_snapshot(const std::string& vg, const std::string& origin,
                                     const std::string& snap, uint64_t size_bytes,
                                     uint64_t chunk_sectors = 0);
  Result<Response> lvcreate_snapshot_extents(const std::string& vg, const std::string& origin,
                                             const std::string& snap, uint64_t extents,
                                             uint64_t chunk_sectors = 0, bool read_only = false);
  Result<Response> lvremove(const std::string& vg, const std::string& lv, bool force);
  Result<Response> lvextend(const std::string& vg, const std::string& lv, uint64_t new_size_bytes);
  Result<Response> lvextend_extents(const std::string& vg, const std::string& lv, uint64_t new_extents);
  Result<Response> refresh();
  // lvrename VG/LV NEW.
  Result<Response> lvrename(const std::string& vg, const std::string& lv, const std::string& new_lv);
  // lvchange -a y|n.
  Result<Response> lvchange(const std::string& vg, const std::string& lv, bool active);
  // lvchange --monitor y|n.
  Result<Response> lvchange_monitor(const std::string& vg, const std::string& lv, bool monitor);
  // lvchange -p r|rw.
  Result<Response> lvchange_permission(const std::string& vg, const std::string& lv, bool writable);
  // lvconvert --merge of a snapshot ("started", "origin" in the body).
  Result<Response> lvconvert_merge(const std::string& vg, const std::string& lv);
  // A snapshot's changed chunks (the "changed" op's body).
  Result<Response> changed(const std::string& vg, const std::string& lv);
  // `dmsetup table` / `dmsetup status` text; an empty vg means every VG.
  Result<std::string> dmsetup(bool status, const std::string& vg = {});

 private:
  explicit Client(int fd) : fd_(fd) {}
  Status send_line(const std::string& line);
  Result<std::string> read_line();

  int fd_ = -1;
  std::string buffer_;  // bytes read past the last line
};

}  // namespace cowsnap::control
