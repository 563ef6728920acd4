#include "cowsnap/server/snapshot_monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace cowsnap {
namespace {

// libdevmapper's scale: 100 % is 100 000 000.
constexpr int64_t kPercent1 = 1'000'000;
constexpr int64_t kPercent100 = 100 * kPercent1;
// dmeventd's levels: warnings from 80 %, a look every 5 %, nothing below 50 %.
constexpr int64_t kWarnFrom = 80 * kPercent1;
constexpr int64_t kStep = 5 * kPercent1;
constexpr int64_t kFirstCheck = 50 * kPercent1;

}  // namespace

int64_t SnapshotMonitor::dm_percent(uint64_t used, uint64_t total) {
  if (used == 0 || total == 0) return 0;
  if (used >= total) return kPercent100;
  const auto p = static_cast<int64_t>(static_cast<long double>(used) * kPercent100 / total);
  return std::clamp<int64_t>(p, 1, kPercent100 - 1);
}

std::string SnapshotMonitor::percent_text(int64_t percent) {
  double value = std::round(static_cast<double>(percent) / static_cast<double>(kPercent1) * 100.0) / 100.0;
  if (percent > 0 && percent < kPercent100) value = std::clamp(value, 0.01, 99.99);
  return fmt::format("{:.2f}", value);
}

std::vector<std::string> SnapshotMonitor::check(const Observation& seen) {
  std::vector<std::string> lines;
  auto [it, added] = states_.try_emplace(seen.device, State{kFirstCheck, seen.usage.total_sectors});
  State& state = it->second;
  if (state.percent_check == 0) return lines;
  if (!seen.valid || seen.usage.total_sectors == 0) {
    lines.push_back(fmt::format("WARNING: Snapshot {} changed state to: {} and should be removed.",
                                seen.device, seen.status));
    state.percent_check = 0;
    return lines;
  }
  // A store as large as its origin's data can never fill: nothing to watch.
  const uint64_t data_sectors = seen.usage.allocated_sectors > seen.usage.metadata_sectors
                                    ? seen.usage.allocated_sectors - seen.usage.metadata_sectors
                                    : 0;
  if (seen.length_sectors <= data_sectors) return lines;
  if (state.known_size != seen.usage.total_sectors) {
    // Grown (lvextend, autoextend): the steps start again.
    state.percent_check = kFirstCheck;
    state.known_size = seen.usage.total_sectors;
  }
  const int64_t percent = dm_percent(seen.usage.allocated_sectors, seen.usage.total_sectors);
  if (percent >= state.percent_check) {
    state.percent_check = percent / kStep * kStep + kStep;
    if (percent >= kWarnFrom) {
      lines.push_back(
          fmt::format("WARNING: Snapshot {} is now {}% full.", seen.device, percent_text(percent)));
    }
  }
  return lines;
}

void SnapshotMonitor::keep_only(const std::vector<std::string>& devices) {
  const std::set<std::string> keep(devices.begin(), devices.end());
  std::erase_if(states_, [&](const auto& entry) { return keep.count(entry.first) == 0; });
}

}  // namespace cowsnap
