// Device-mapper emulation: targets and mapped devices.
//
// As in the kernel, a mapped device is a table of targets, each covering a
// range of sectors; a request is split at target boundaries and each piece
// is handed to its target with an offset relative to the target's start.
// Every target is itself a BlockDevice of its own length, so targets stack
// (a snapshot's origin-real is a mapped device of linear targets).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"

namespace cowsnap {

class Target : public BlockDevice {
 public:
  // The dm target type: "linear", "zero", "error", "snapshot-origin", ...
  [[nodiscard]] virtual std::string_view type_name() const = 0;
  // The target's arguments as `dmsetup table` prints them.
  [[nodiscard]] virtual std::string table_params() const = 0;
  // The target's status as `dmsetup status` prints it ("" when it has none).
  [[nodiscard]] virtual std::string status_params() const { return {}; }
  // The I/O size clients should use to avoid read-modify-write or partial
  // copy-outs (a snapshot's chunk size).
  [[nodiscard]] virtual uint32_t preferred_block_bytes() const { return 4096; }
  [[nodiscard]] std::string describe() const override { return std::string(type_name()) + " target"; }
};

// `linear <device> <offset>`: the range maps onto `device` from
// offset_sectors on. `device_name` is what the table line shows.
std::shared_ptr<Target> make_linear_target(std::shared_ptr<BlockDevice> device, std::string device_name,
                                           uint64_t offset_sectors, uint64_t length_sectors);
// `zero`: reads zeroes, swallows writes.
std::shared_ptr<Target> make_zero_target(uint64_t length_sectors);
// `error`: every request fails with EIO.
std::shared_ptr<Target> make_error_target(uint64_t length_sectors);

struct TableEntry {
  uint64_t start_sector = 0;
  uint64_t length_sectors = 0;
  std::shared_ptr<Target> target;
};

// A named device made of a table of targets.
// Thread safety: the table is fixed at construction; I/O may be concurrent.
class MappedDevice final : public BlockDevice {
 public:
  // EINVAL unless entries are contiguous from sector 0, non-empty, and each
  // target's size equals its entry's length.
  static Result<std::shared_ptr<MappedDevice>> create(std::string name, std::vector<TableEntry> table);

  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override;
  // Each target's part is a durable write of its own.
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override;
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override;
  [[nodiscard]] std::string describe() const override { return name_; }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::vector<TableEntry>& table() const { return table_; }
  // `dmsetup table` lines: "<start> <length> <type> <params>", one per target.
  [[nodiscard]] std::string table_text() const;
  // `dmsetup status` lines: "<start> <length> <type> <status>", the blank
  // before <status> kept when the target has none (as dmsetup prints it).
  [[nodiscard]] std::string status_text() const;
  [[nodiscard]] uint32_t preferred_block_bytes() const;

  MappedDevice(std::string name, std::vector<TableEntry> table, uint64_t size_bytes);

 private:
  template <typename Fn>
  Status for_each_piece(uint64_t offset, uint64_t length, Fn&& fn);

  std::string name_;
  std::vector<TableEntry> table_;
  uint64_t size_bytes_;
};

}  // namespace cowsnap
