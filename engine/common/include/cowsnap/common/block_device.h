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

// A device's allocation map over a range, as NBD block status reports it:
// consecutive runs from the range's start, each either known to read as
// zeroes and to hold no storage (a hole: a file's unallocated range, a
// discarded range, a memory page never written) or possibly holding data.
// Adjacent runs of one kind are merged as they are added.
class ExtentMap {
 public:
  struct Run {
    uint64_t length = 0;
    bool zero = false;
  };
  void add(uint64_t length, bool zero);
  // Adds `other`'s runs after this map's.
  void append(const ExtentMap& other);
  [[nodiscard]] const std::vector<Run>& runs() const { return runs_; }
  [[nodiscard]] uint64_t length() const { return length_; }
  // The zero bytes among the runs.
  [[nodiscard]] uint64_t zero_bytes() const;

 private:
  std::vector<Run> runs_;
  uint64_t length_ = 0;
};

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

  // The allocation map of [offset, offset + length), appended to `out`
  // (exactly `length` bytes of runs). A hint for copiers: a run may be
  // reported as data when it reads as zeroes, never as zero when it holds
  // bytes written before the call began (a write racing with the call may
  // go either way, as with SEEK_HOLE on a file). The default: one data run.
  virtual Status extents(uint64_t offset, uint64_t length, ExtentMap& out);

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
