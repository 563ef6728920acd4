// The device of a snapshot whose table could not be loaded (its COW store
// failed to open: bad magic, version or chunk size, a bad exception...).
// As with a dm device present without a table, every request fails with
// EIO, here naming the reason. Internal to engine/volume.
#pragma once

#include <memory>
#include <string>

#include "cowsnap/common/status.h"
#include "cowsnap/dm/mapped_device.h"

namespace cowsnap {

// `what` names the snapshot ("vg/snap"), `why` is the activation error.
std::shared_ptr<Target> make_failed_snapshot_target(uint64_t size_bytes, const std::string& what,
                                                    const Status& why);

}  // namespace cowsnap
