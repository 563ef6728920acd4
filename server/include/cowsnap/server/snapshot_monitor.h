// SnapshotMonitor: dmeventd's snapshot plugin's warnings, for the server.
//
// dmeventd watches every monitored snapshot and writes to syslog when its
// COW store passes 80 % and then each further 5 % step, and once when it
// becomes invalid; cowsnap's server has no dmeventd, so it keeps the same
// state per snapshot and says the same lines in its log. (Growing the store
// is not this class's job: the server does that in the write path, see
// docs/autoextend.md.) Fed by polling: check() takes one observation of one
// snapshot, and may be called as often as wanted.
//
// Thread safety: none; the server calls it from its one monitor thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cowsnap/store/exception_store.h"

namespace cowsnap {

class SnapshotMonitor {
 public:
  struct Observation {
    std::string device;           // the dm name, "vg-snap" (lvm2's device name for the LV)
    StoreUsage usage;             // as `dmsetup status` reports it
    uint64_t length_sectors = 0;  // the snapshot's size (its origin's)
    bool valid = true;
    std::string status;  // `dmsetup status` parameters ("Invalid" once invalid)
  };

  // The lines dmeventd would log for this observation (most often none).
  std::vector<std::string> check(const Observation& seen);
  // Snapshots not in `devices` are forgotten (removed or deactivated).
  void keep_only(const std::vector<std::string>& devices);

  // dm's percentage (libdevmapper's dm_make_percent): used/total in
  // millionths of a percent, never 0 for some use nor 100 short of all.
  static int64_t dm_percent(uint64_t used, uint64_t total);
  // "%.2f" of a dm percentage, as dmeventd prints it: rounded, but never
  // 100.00 short of full nor 0.00 above empty.
  static std::string percent_text(int64_t percent);

 private:
  struct State {
    int64_t percent_check = 0;  // the next level that calls for a look; 0: no longer monitored
    uint64_t known_size = 0;    // total_sectors when percent_check was last reset
  };
  std::map<std::string, State> states_;
};

}  // namespace cowsnap
