// Catch2 helpers shared by the engine tests: unwrap a Result or read a
// device, failing the test with the error's message.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"

namespace cowsnap::testing {

template <typename T>
T must(Result<T> r) {
  INFO(r.status().message());
  REQUIRE(r.ok());
  return std::move(r).value();
}

inline std::vector<uint8_t> read_bytes(BlockDevice& d, uint64_t offset, size_t length) {
  std::vector<uint8_t> v(length);
  Status s = d.read(offset, v);
  INFO(s.message());
  REQUIRE(s.ok());
  return v;
}

}  // namespace cowsnap::testing
