// Helpers for the vg tests: real lvm2 on loop devices (scratch
// directories, shell commands and loop devices: support/system.h).
#pragma once

#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "support/system.h"

namespace cowsnap::vg::testing {

using ::cowsnap::testing::in_ci;
using ::cowsnap::testing::LoopDevice;
using ::cowsnap::testing::run_command;

// lvm2 without device-mapper and without its devices file, quiet, and
// looking at `dev` only: other tests on this machine may have loop devices
// with VGs of the same names attached.
inline std::string lvm(const std::string& args, const std::string& dev) {
  return "LVM_SUPPRESS_FD_WARNINGS=1 " + args +
         " --driverloaded n --config 'devices{use_devicesfile=0 global_filter=[\"a|^" + dev +
         "$|\",\"r|.*|\"]}' 2>/dev/null";
}

// Why real lvm2 cannot be used here, or "" when it can.
inline std::string lvm2_unavailable_reason() {
  if (::geteuid() != 0) return "not root";
  if (::access("/sbin/pvcreate", X_OK) != 0 && ::access("/usr/sbin/pvcreate", X_OK) != 0) {
    return "lvm2 tools (pvcreate) not installed";
  }
  if (run_command("losetup -f >/dev/null 2>&1").exit_code != 0) return "no free loop device";
  return "";
}

// Skips the test (with a warning) when lvm2 cannot be used, or fails it
// under CI=true where it must run.
#define COWSNAP_REQUIRE_LVM2()                                                             \
  do {                                                                                     \
    const std::string why_ = ::cowsnap::vg::testing::lvm2_unavailable_reason();            \
    if (!why_.empty()) {                                                                   \
      if (::cowsnap::vg::testing::in_ci()) FAIL("lvm2 interop test cannot run: " << why_); \
      WARN("SKIPPED: lvm2 interop test needs root, lvm2 and loop devices: " << why_);      \
      return;                                                                              \
    }                                                                                      \
  } while (false)

// A loop device over `file` (see support/system.h); fails the test when
// none can be attached.
inline LoopDevice attach_loop(const std::string& file) {
  std::string error;
  std::optional<LoopDevice> loop = LoopDevice::attach(file, &error);
  if (!loop) FAIL("cannot attach a loop device over " << file << ": " << error);
  return std::move(*loop);
}

}  // namespace cowsnap::vg::testing
