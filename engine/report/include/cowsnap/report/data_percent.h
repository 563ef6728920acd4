// lvm2's Data% (Snap%) of a snapshot, from its store's usage.
#pragma once

#include "cowsnap/store/exception_store.h"

namespace cowsnap::report {

// 0 when only header and metadata are used, 100 when full or invalid,
// otherwise allocated/total with lvm2's clamping (never 0.00 for a non-zero
// use, never 100.00 short of full). Returns the percentage as a double
// ready for "%.2f".
double snapshot_data_percent(const StoreUsage& usage, bool valid);

}  // namespace cowsnap::report
