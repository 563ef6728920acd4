// BlockDevice: a fixed-size array of bytes that can be read, written,
// flushed, discarded and zeroed. Everything in cowsnap that stores data sits
// on one: files, memory, PV extents, dm targets, mapped devices.
//
// Thread safety: every implementation accepts concurrent calls from many
// threads. Concurrent writes to overlapping ranges leave either one's bytes
// (no tearing guarantee below 512-byte sectors is made); ordering between
// overlapping requests is the caller's business.
//
// Durability: a write is durable only after a later flush() returns OK. A
// device may lose any write that was not followed by a successful flush
// (FaultyDevice's power cut does exactly that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap {

inline constexpr uint64_t kSectorBytes = 512;

class BlockDevice {
 public:
  BlockDevice() = default;
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;
  virtual ~BlockDevice() = default;

  // Size in bytes; constant for the device's lifetime, except that a
  // store's view of a COW LV may grow (engine/store/growable_device.h).
  [[nodiscard]] virtual uint64_t size_bytes() const = 0;

  // REQUIRES for every call below: offset + length <= size_bytes();
  // otherwise the call fails with EINVAL and touches nothing.
  virtual Status read(uint64_t offset, std::span<uint8_t> buf) = 0;
  virtual Status write(uint64_t offset, std::span<const uint8_t> buf) = 0;
  // Makes every write that returned before this call durable.
  virtual Status flush() = 0;
  // A write of `pieces`, back to back from `offset`, that is durable when
  // it returns OK, as if flush() followed it, but that need not make any
  // other write durable. A file does it with one O_DSYNC gather write,
  // which leaves the file's other dirty pages where they are: committing a
  // copy-out then costs the copy, not also every origin write that happens
  // to share the PV file. The default writes each piece, then flushes.
  virtual Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces);
  Status write_durable(uint64_t offset, std::span<const uint8_t> buf) {
    return write_gather_durable(offset, std::span(&buf, 1));
  }
  // The range reads as zeroes afterwards.
  virtual Status write_zeroes(uint64_t offset, uint64_t length) = 0;
  // The device may forget the range's content; afterwards it reads as
  // zeroes or as what it held before, whichever the device finds cheaper.
  // Every device here reads zeroes after a discard.
  virtual Status discard(uint64_t offset, uint64_t length) { return write_zeroes(offset, length); }

  // A short human description for messages, e.g. "file /srv/pv0.img".
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Checks a request's range against the device; EINVAL naming the device.
Status check_range(const BlockDevice& dev, uint64_t offset, uint64_t length);

// The bytes of a gather list.
uint64_t gather_bytes(std::span<const std::span<const uint8_t>> pieces);
// The pieces holding bytes [from, from + length) of a gather list's
// concatenation. REQUIRES: from + length <= gather_bytes(pieces).
std::vector<std::span<const uint8_t>> gather_range(std::span<const std::span<const uint8_t>> pieces,
                                                   uint64_t from, uint64_t length);

}  // namespace cowsnap
