#include <unistd.h>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/io/rbd.h"

namespace cowsnap {

Result<std::shared_ptr<BlockDevice>> open_device(const std::string& name, DeviceOpenOptions options) {
  if (is_rbd_name(name)) {
    COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<RbdDevice> dev,
                             RbdDevice::open(name, {.read_only = options.read_only,
                                                    .create_size_bytes = options.create_size_bytes}));
    return std::shared_ptr<BlockDevice>(std::move(dev));
  }
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<FileDevice> dev,
                           FileDevice::open(name, {.read_only = options.read_only,
                                                   .create_size_bytes = options.create_size_bytes}));
  return std::shared_ptr<BlockDevice>(std::move(dev));
}

Result<bool> device_exists(const std::string& name) {
  if (is_rbd_name(name)) return RbdDevice::exists(name);
  return ::access(name.c_str(), F_OK) == 0;
}

}  // namespace cowsnap
