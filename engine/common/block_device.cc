#include "cowsnap/common/block_device.h"

#include <fmt/format.h>

#include <cerrno>

namespace cowsnap {

Status check_range(const BlockDevice& dev, uint64_t offset, uint64_t length) {
  const uint64_t size = dev.size_bytes();
  if (offset > size || length > size - offset) {
    return Status::Error(EINVAL, fmt::format("{}: range {}+{} is beyond the device's end ({} bytes)",
                                             dev.describe(), offset, length, size));
  }
  return Status::Ok();
}

}  // namespace cowsnap
