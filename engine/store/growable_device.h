// The COW device as a store sees it: a device that can be exchanged for a
// larger one (the COW LV after lvextend or autoextend) while requests run.
#pragma once

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cowsnap/common/block_device.h"

namespace cowsnap {

// Each request loads the current device once and runs on it whole, so a
// request that began on the old device ends there; that is sound because
// the grown device reads and writes the old one's bytes at the same
// offsets (an LV's first extents keep their place when it grows). The old
// device lives on until its last request ends.
class GrowableDevice final : public BlockDevice {
 public:
  explicit GrowableDevice(std::shared_ptr<BlockDevice> device) : current_(std::move(device)) {}

  // Only ever larger: EINVAL for a device that is not.
  Status grow(std::shared_ptr<BlockDevice> grown) {
    const uint64_t now = size_bytes();
    if (grown->size_bytes() <= now) {
      return Status::Error(
          EINVAL, fmt::format("{}: cannot grow from {} to {} bytes", describe(), now, grown->size_bytes()));
    }
    current_.store(std::move(grown), std::memory_order_release);
    return Status::Ok();
  }

  [[nodiscard]] uint64_t size_bytes() const override { return device()->size_bytes(); }
  Status read(uint64_t offset, std::span<uint8_t> buf) override { return device()->read(offset, buf); }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    return device()->write(offset, buf);
  }
  // The grown device reaches every PV the old one did, so its flush covers
  // writes that went through the old one.
  Status flush() override { return device()->flush(); }
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override {
    return device()->write_gather_durable(offset, pieces);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    return device()->write_zeroes(offset, length);
  }
  Status discard(uint64_t offset, uint64_t length) override { return device()->discard(offset, length); }
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override {
    return device()->extents(offset, length, out);
  }
  [[nodiscard]] std::string describe() const override { return device()->describe(); }

 private:
  [[nodiscard]] std::shared_ptr<BlockDevice> device() const {
    return current_.load(std::memory_order_acquire);
  }
  std::atomic<std::shared_ptr<BlockDevice>> current_;
};

}  // namespace cowsnap
