#include <fmt/format.h>

#include <cerrno>

#include "cowsnap/io/devices.h"

namespace cowsnap {

// Every call runs under mu_, reads included: a mutation captures its undo
// bytes and reaches the target in one critical section, so the undo log
// replayed newest-first restores exactly the image of the last flush, and no
// read can observe a half-replayed power cut.

Status FaultyDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  std::lock_guard lock(mu_);
  if (cut_) return Status::Error(EIO, fmt::format("{}: read after power cut", describe()));
  return DeviceWrapper::read(offset, buf);
}

Status FaultyDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  std::lock_guard lock(mu_);
  COWSNAP_RETURN_IF_ERROR(before_mutation(offset, buf.size()));
  return DeviceWrapper::write(offset, buf);
}

Status FaultyDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  std::lock_guard lock(mu_);
  const uint64_t bytes = gather_bytes(pieces);
  COWSNAP_RETURN_IF_ERROR(before_mutation(offset, bytes));
  // Through the target's write(): durable here is this device's promise,
  // kept in the undo log, whatever the target would do with it.
  uint64_t at = offset;
  for (const std::span<const uint8_t> piece : pieces) {
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write(at, piece));
    at += piece.size();
  }
  keep_locked(offset, bytes);
  return Status::Ok();
}

Status FaultyDevice::write_zeroes(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  COWSNAP_RETURN_IF_ERROR(before_mutation(offset, length));
  return DeviceWrapper::write_zeroes(offset, length);
}

Status FaultyDevice::discard(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  COWSNAP_RETURN_IF_ERROR(before_mutation(offset, length));
  return DeviceWrapper::discard(offset, length);
}

Status FaultyDevice::flush() {
  std::lock_guard lock(mu_);
  COWSNAP_RETURN_IF_ERROR(count_operation_locked("flush"));
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::flush());
  // Everything written so far is durable now; a later cut must keep it.
  undo_.clear();
  return Status::Ok();
}

Status FaultyDevice::count_operation_locked(std::string_view what) {
  if (cut_) return Status::Error(EIO, fmt::format("{}: {} after power cut", describe(), what));
  const uint64_t ordinal = operations_++;
  if (cut_at_ == ordinal) {
    cut_locked();
    return Status::Error(EIO, fmt::format("{}: injected power cut at {}", describe(), what));
  }
  return Status::Ok();
}

Status FaultyDevice::before_mutation(uint64_t offset, uint64_t length) {
  if (cut_) return Status::Error(EIO, fmt::format("{}: write after power cut", describe()));
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  COWSNAP_RETURN_IF_ERROR(count_operation_locked("write"));
  const uint64_t write_ordinal = write_ops_++;
  if (fail_write_at_ == write_ordinal) {
    fail_write_at_.reset();
    return Status::Error(EIO, fmt::format("{}: injected write failure at {}+{}", describe(), offset, length));
  }
  Undo undo{offset, std::vector<uint8_t>(static_cast<size_t>(length))};
  COWSNAP_RETURN_IF_ERROR(DeviceWrapper::read(offset, undo.old_bytes)
                              .with_context(fmt::format("{}: saving undo bytes", describe())));
  undo_.push_back(std::move(undo));
  return Status::Ok();
}

void FaultyDevice::keep_locked(uint64_t offset, uint64_t length) {
  const uint64_t end = offset + length;
  std::vector<Undo> kept;
  kept.reserve(undo_.size());
  for (Undo& u : undo_) {
    const uint64_t u_end = u.offset + u.old_bytes.size();
    if (u_end <= offset || u.offset >= end) {
      kept.push_back(std::move(u));
      continue;
    }
    // The parts outside the durable range still roll back.
    if (u.offset < offset) {
      kept.push_back(Undo{
          u.offset, std::vector<uint8_t>(u.old_bytes.begin(),
                                         u.old_bytes.begin() + static_cast<ptrdiff_t>(offset - u.offset))});
    }
    if (u_end > end) {
      kept.push_back(
          Undo{end, std::vector<uint8_t>(u.old_bytes.begin() + static_cast<ptrdiff_t>(end - u.offset),
                                         u.old_bytes.end())});
    }
  }
  undo_ = std::move(kept);
}

void FaultyDevice::cut_locked() {
  if (cut_) return;
  // Newest first, so where writes overlap the oldest undo (the flushed
  // bytes) lands last.
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    // A target that cannot take the restore is beyond what a test can
    // recover from; the cut still happens.
    [[maybe_unused]] const Status st = DeviceWrapper::write(it->offset, it->old_bytes);
  }
  undo_.clear();
  undo_.shrink_to_fit();
  cut_ = true;
}

void FaultyDevice::fail_write_after(uint64_t n) {
  std::lock_guard lock(mu_);
  fail_write_at_ = write_ops_ + n;
}

void FaultyDevice::power_cut() {
  std::lock_guard lock(mu_);
  cut_locked();
}

void FaultyDevice::power_cut_after(uint64_t n) {
  std::lock_guard lock(mu_);
  cut_at_ = operations_ + n;
}

bool FaultyDevice::is_cut() const {
  std::lock_guard lock(mu_);
  return cut_;
}

uint64_t FaultyDevice::operations() const {
  std::lock_guard lock(mu_);
  return operations_;
}

}  // namespace cowsnap
