#include "cowsnap/report/data_percent.h"

#include <algorithm>

namespace cowsnap::report {

double snapshot_data_percent(const StoreUsage& usage, bool valid) {
  if (!valid || usage.total_sectors == 0) return 100.0;
  if (usage.allocated_sectors <= usage.metadata_sectors) return 0.0;
  if (usage.allocated_sectors >= usage.total_sectors) return 100.0;
  const double p =
      100.0 * static_cast<double>(usage.allocated_sectors) / static_cast<double>(usage.total_sectors);
  // lvm2 never shows a partial use as 0.00 nor a not-quite-full store as 100.00.
  return std::clamp(p, 0.01, 99.99);
}

}  // namespace cowsnap::report
