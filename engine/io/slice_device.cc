#include <fmt/format.h>

#include <cassert>

#include "cowsnap/io/devices.h"

namespace cowsnap {

SliceDevice::SliceDevice(std::shared_ptr<BlockDevice> base, uint64_t offset, uint64_t length)
    : base_(std::move(base)), offset_(offset), length_(length) {
  assert(offset <= base_->size_bytes() && length <= base_->size_bytes() - offset);
}

Status SliceDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  return base_->read(offset_ + offset, buf);
}

Status SliceDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  return base_->write(offset_ + offset, buf);
}

Status SliceDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, gather_bytes(pieces)));
  return base_->write_gather_durable(offset_ + offset, pieces);
}

Status SliceDevice::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  return base_->write_zeroes(offset_ + offset, length);
}

Status SliceDevice::discard(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  return base_->discard(offset_ + offset, length);
}

Status SliceDevice::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  return base_->extents(offset_ + offset, length, out);
}

std::string SliceDevice::describe() const {
  return fmt::format("{} [{}+{}]", base_->describe(), offset_, length_);
}

}  // namespace cowsnap
