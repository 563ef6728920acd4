// Shared by the fuzz targets: a device made of the fuzz input, and a check
// that turns a broken invariant into a crash the fuzzer reports.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "cowsnap/io/devices.h"

namespace cowsnap::fuzz {

// A MemoryDevice holding exactly `bytes`: the product opens stores and PVs
// through BlockDevice, so the targets read the input the way it reads a disk.
inline std::shared_ptr<MemoryDevice> device_from(std::span<const uint8_t> bytes, std::string name) {
  auto dev = std::make_shared<MemoryDevice>(bytes.size(), std::move(name));
  if (!bytes.empty() && !dev->write(0, bytes).ok()) std::abort();
  return dev;
}

// Aborts (a crash to libFuzzer) when a property the product relies on fails.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

}  // namespace cowsnap::fuzz
