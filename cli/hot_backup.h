// What the backup verbs (backup, restore, changed) share: the running
// server they work through, and the NBD address of its exports.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "backup/nbd_connection.h"
#include "cowsnap/common/status.h"
#include "cowsnap/control/client.h"

namespace cowsnap::cli {

struct NbdArgs {
  std::string socket;
  std::string host = "localhost";
  int port = 0;
};
// --socket/-U, --port/-p, --host.
void add_nbd_options(CLI::App* cmd, NbdArgs& args);
backup::NbdAddress nbd_address(const std::string& root, const NbdArgs& args);

// The server's control socket, or an error saying the verb needs one.
Result<control::Client> connect_server(const std::string& root, const std::string& verb);
// ENOENT in lvm2's words when the server does not serve VG/LV.
Result<control::LvState> find_lv(control::Client& client, const std::string& vg, const std::string& lv);
// The same lookup in a list already fetched.
Result<control::LvState> find_lv(const std::vector<control::LvState>& lvs, const std::string& vg,
                                 const std::string& lv);

}  // namespace cowsnap::cli
