// SnapshotMonitor: dmeventd's snapshot warnings, step by step.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cowsnap/server/snapshot_monitor.h"

using cowsnap::SnapshotMonitor;
using cowsnap::StoreUsage;

namespace {

// A snapshot of 1000 sectors of COW (8 of them metadata) over a large
// origin, `used` sectors in use.
SnapshotMonitor::Observation at(uint64_t used, uint64_t total = 1000) {
  return {.device = "vg-snap",
          .usage = StoreUsage{.total_sectors = total, .allocated_sectors = used, .metadata_sectors = 8},
          .length_sectors = 1u << 20,
          .valid = true,
          .status = ""};
}

std::vector<std::string> lines(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

}  // namespace

TEST_CASE("snapshot monitor: a warning at 80 % and at each 5 % step after, as dmeventd") {
  SnapshotMonitor m;
  CHECK(m.check(at(400)).empty());
  CHECK(m.check(at(790)).empty());  // 50 % passed: a look, no warning below 80 %
  CHECK(m.check(at(800)) == lines({"WARNING: Snapshot vg-snap is now 80.00% full."}));
  CHECK(m.check(at(801)).empty());  // next look at 85 %
  CHECK(m.check(at(849)).empty());
  CHECK(m.check(at(862)) == lines({"WARNING: Snapshot vg-snap is now 86.20% full."}));
  CHECK(m.check(at(899)).empty());  // next at 90 %
  CHECK(m.check(at(975)) == lines({"WARNING: Snapshot vg-snap is now 97.50% full."}));
  CHECK(m.check(at(999)).empty());  // next at 100 %
  auto invalid = at(1000);
  invalid.valid = false;
  invalid.status = "Invalid";
  CHECK(m.check(invalid) ==
        lines({"WARNING: Snapshot vg-snap changed state to: Invalid and should be removed."}));
  CHECK(m.check(invalid).empty());  // said once; the snapshot is no longer watched
}

TEST_CASE("snapshot monitor: a grown store starts the steps again; a forgotten one too") {
  SnapshotMonitor m;
  CHECK(m.check(at(900)) == lines({"WARNING: Snapshot vg-snap is now 90.00% full."}));
  CHECK(m.check(at(910)).empty());
  // lvextend: 910 of 1200 is 75.83 %, below the warnings.
  CHECK(m.check(at(910, 1200)).empty());
  CHECK(m.check(at(1000, 1200)) == lines({"WARNING: Snapshot vg-snap is now 83.33% full."}));
  m.keep_only({"vg-other"});
  CHECK(m.check(at(1000, 1200)) == lines({"WARNING: Snapshot vg-snap is now 83.33% full."}));
}

TEST_CASE("snapshot monitor: a store that can hold the whole origin is not warned about") {
  SnapshotMonitor m;
  auto full_size = at(950);
  full_size.length_sectors = 900;  // 942 data sectors in use already cover the origin
  CHECK(m.check(full_size).empty());
}

TEST_CASE("snapshot monitor: dm's percentages, rounded as dmeventd prints them") {
  CHECK(SnapshotMonitor::dm_percent(0, 10) == 0);
  CHECK(SnapshotMonitor::dm_percent(10, 10) == 100'000'000);
  CHECK(SnapshotMonitor::dm_percent(1, 3) == 33'333'333);
  CHECK(SnapshotMonitor::percent_text(SnapshotMonitor::dm_percent(1, 3)) == "33.33");
  CHECK(SnapshotMonitor::percent_text(SnapshotMonitor::dm_percent(999'999, 1'000'000)) == "99.99");
  CHECK(SnapshotMonitor::percent_text(SnapshotMonitor::dm_percent(1, 1'000'000)) == "0.01");
  CHECK(SnapshotMonitor::percent_text(SnapshotMonitor::dm_percent(10, 10)) == "100.00");
  CHECK(SnapshotMonitor::percent_text(SnapshotMonitor::dm_percent(2, 3)) == "66.67");
}
