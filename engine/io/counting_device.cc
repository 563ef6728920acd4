#include "cowsnap/io/devices.h"

namespace cowsnap {

// Only successful calls are counted: a failed call moved no data that write
// amplification figures should include. Relaxed ordering suffices because
// each counter is read on its own; counters() is not one atomic snapshot.

Status CountingDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::read(offset, buf));
  reads_.fetch_add(1, std::memory_order_relaxed);
  bytes_read_.fetch_add(buf.size(), std::memory_order_relaxed);
  return Status::Ok();
}

Status CountingDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write(offset, buf));
  writes_.fetch_add(1, std::memory_order_relaxed);
  bytes_written_.fetch_add(buf.size(), std::memory_order_relaxed);
  return Status::Ok();
}

Status CountingDevice::write_gather_durable(uint64_t offset,
                                            std::span<const std::span<const uint8_t>> pieces) {
  const uint64_t bytes = gather_bytes(pieces);
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, bytes));
  COWSNAP_RETURN_IF_ERROR(target()->write_gather_durable(offset, pieces));
  writes_.fetch_add(1, std::memory_order_relaxed);
  bytes_written_.fetch_add(bytes, std::memory_order_relaxed);
  durable_writes_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status CountingDevice::flush() {
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::flush());
  flushes_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status CountingDevice::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write_zeroes(offset, length));
  zero_ops_.fetch_add(1, std::memory_order_relaxed);
  bytes_zeroed_.fetch_add(length, std::memory_order_relaxed);
  return Status::Ok();
}

Status CountingDevice::discard(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::discard(offset, length));
  zero_ops_.fetch_add(1, std::memory_order_relaxed);
  bytes_zeroed_.fetch_add(length, std::memory_order_relaxed);
  return Status::Ok();
}

CountingDevice::Counters CountingDevice::counters() const {
  Counters c;
  c.reads = reads_.load(std::memory_order_relaxed);
  c.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  c.writes = writes_.load(std::memory_order_relaxed);
  c.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  c.zero_ops = zero_ops_.load(std::memory_order_relaxed);
  c.bytes_zeroed = bytes_zeroed_.load(std::memory_order_relaxed);
  c.flushes = flushes_.load(std::memory_order_relaxed);
  c.durable_writes = durable_writes_.load(std::memory_order_relaxed);
  return c;
}

void CountingDevice::reset() {
  for (auto* counter : {&reads_, &bytes_read_, &writes_, &bytes_written_, &zero_ops_, &bytes_zeroed_,
                        &flushes_, &durable_writes_}) {
    counter->store(0, std::memory_order_relaxed);
  }
}

}  // namespace cowsnap
