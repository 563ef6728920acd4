#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "cowsnap/dm/mapped_device.h"

namespace cowsnap {

Result<std::shared_ptr<MappedDevice>> MappedDevice::create(std::string name, std::vector<TableEntry> table) {
  if (table.empty()) return Status::Error(EINVAL, fmt::format("{}: empty table", name));
  uint64_t next = 0;
  for (const TableEntry& e : table) {
    if (!e.target)
      return Status::Error(EINVAL, fmt::format("{}: table entry at {} has no target", name, next));
    if (e.start_sector != next) {
      return Status::Error(
          EINVAL, fmt::format("{}: table has a gap or overlap at sector {} (entry starts at {})", name, next,
                              e.start_sector));
    }
    if (e.length_sectors == 0 || e.target->size_bytes() != e.length_sectors * kSectorBytes) {
      return Status::Error(EINVAL, fmt::format("{}: {} at sector {} is {} bytes, entry says {} sectors", name,
                                               e.target->type_name(), e.start_sector, e.target->size_bytes(),
                                               e.length_sectors));
    }
    next += e.length_sectors;
  }
  const uint64_t size = next * kSectorBytes;
  return std::make_shared<MappedDevice>(std::move(name), std::move(table), size);
}

MappedDevice::MappedDevice(std::string name, std::vector<TableEntry> table, uint64_t size_bytes)
    : name_(std::move(name)), table_(std::move(table)), size_bytes_(size_bytes) {}

// Calls fn(target, offset_in_target, offset_in_request, length) for each
// piece of the request, in order; stops at the first error.
template <typename Fn>
Status MappedDevice::for_each_piece(uint64_t offset, uint64_t length, Fn&& fn) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  auto it = std::upper_bound(table_.begin(), table_.end(), offset, [](uint64_t off, const TableEntry& e) {
    return off < e.start_sector * kSectorBytes;
  });
  --it;  // the entry containing offset: entries start at 0, so one exists
  uint64_t done = 0;
  while (done < length) {
    const uint64_t start = it->start_sector * kSectorBytes;
    const uint64_t in_target = offset + done - start;
    const uint64_t n = std::min(length - done, it->length_sectors * kSectorBytes - in_target);
    COWSNAP_RETURN_IF_ERROR(fn(*it->target, in_target, done, n));
    done += n;
    ++it;
  }
  return Status::Ok();
}

Status MappedDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  return for_each_piece(offset, buf.size(), [&](Target& t, uint64_t at, uint64_t pos, uint64_t n) {
    return t.read(at, buf.subspan(pos, n));
  });
}

Status MappedDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  return for_each_piece(offset, buf.size(), [&](Target& t, uint64_t at, uint64_t pos, uint64_t n) {
    return t.write(at, buf.subspan(pos, n));
  });
}

Status MappedDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  return for_each_piece(offset, gather_bytes(pieces), [&](Target& t, uint64_t at, uint64_t pos, uint64_t n) {
    return t.write_gather_durable(at, gather_range(pieces, pos, n));
  });
}

Status MappedDevice::write_zeroes(uint64_t offset, uint64_t length) {
  return for_each_piece(offset, length,
                        [&](Target& t, uint64_t at, uint64_t, uint64_t n) { return t.write_zeroes(at, n); });
}

Status MappedDevice::discard(uint64_t offset, uint64_t length) {
  return for_each_piece(offset, length,
                        [&](Target& t, uint64_t at, uint64_t, uint64_t n) { return t.discard(at, n); });
}

Status MappedDevice::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  return for_each_piece(offset, length,
                        [&](Target& t, uint64_t at, uint64_t, uint64_t n) { return t.extents(at, n, out); });
}

Status MappedDevice::flush() {
  Status first_error;
  for (const TableEntry& e : table_) {
    Status s = e.target->flush();
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

std::string MappedDevice::table_text() const {
  std::string out;
  for (const TableEntry& e : table_) {
    out += fmt::format("{} {} {} {}\n", e.start_sector, e.length_sectors, e.target->type_name(),
                       e.target->table_params());
  }
  return out;
}

std::string MappedDevice::status_text() const {
  // As lvm2's dmsetup prints it: "start length type " and then the
  // target's status, so a target with none (linear) ends in a blank.
  std::string out;
  for (const TableEntry& e : table_) {
    out += fmt::format("{} {} {} {}\n", e.start_sector, e.length_sectors, e.target->type_name(),
                       e.target->status_params());
  }
  return out;
}

uint32_t MappedDevice::preferred_block_bytes() const {
  uint32_t best = 512;
  for (const TableEntry& e : table_) best = std::max(best, e.target->preferred_block_bytes());
  return best;
}

}  // namespace cowsnap
