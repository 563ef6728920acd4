#include "cowsnap/common/block_device.h"

#include <fmt/format.h>

#include <algorithm>
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

Status BlockDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, gather_bytes(pieces)));
  for (const std::span<const uint8_t> piece : pieces) {
    COWSNAP_RETURN_IF_ERROR(write(offset, piece));
    offset += piece.size();
  }
  return flush();
}

Status BlockDevice::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  out.add(length, false);
  return Status::Ok();
}

void ExtentMap::add(uint64_t length, bool zero) {
  if (length == 0) return;
  length_ += length;
  if (!runs_.empty() && runs_.back().zero == zero) {
    runs_.back().length += length;
    return;
  }
  runs_.push_back(Run{length, zero});
}

void ExtentMap::append(const ExtentMap& other) {
  for (const Run& run : other.runs_) add(run.length, run.zero);
}

uint64_t ExtentMap::zero_bytes() const {
  uint64_t n = 0;
  for (const Run& run : runs_) n += run.zero ? run.length : 0;
  return n;
}

uint64_t gather_bytes(std::span<const std::span<const uint8_t>> pieces) {
  uint64_t n = 0;
  for (const std::span<const uint8_t> piece : pieces) n += piece.size();
  return n;
}

std::vector<std::span<const uint8_t>> gather_range(std::span<const std::span<const uint8_t>> pieces,
                                                   uint64_t from, uint64_t length) {
  std::vector<std::span<const uint8_t>> out;
  uint64_t at = 0;  // offset of the current piece in the concatenation
  for (const std::span<const uint8_t> piece : pieces) {
    if (length == 0) break;
    const uint64_t end = at + piece.size();
    if (end > from) {
      const uint64_t skip = from - at;
      const uint64_t n = std::min<uint64_t>(piece.size() - skip, length);
      out.push_back(piece.subspan(static_cast<size_t>(skip), static_cast<size_t>(n)));
      from += n;
      length -= n;
    }
    at = end;
  }
  return out;
}

}  // namespace cowsnap
