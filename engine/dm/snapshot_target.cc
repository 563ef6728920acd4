// The snapshot's read and write paths (invariants 2-4 in cowsnap/snapshot.h).
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include "cowsnap/snapshot.h"

namespace cowsnap {

SnapshotTarget::SnapshotTarget(const std::shared_ptr<Origin>& origin, std::unique_ptr<ExceptionStore> store,
                               ExceptionTable exceptions, std::string cow_name)
    : origin_(origin),
      size_bytes_(origin->size_bytes()),
      store_(std::move(store)),
      geometry_(store_->geometry()),
      cow_name_(std::move(cow_name)),
      exceptions_(std::move(exceptions)),
      valid_(store_->valid()) {
  if (!valid_) invalid_reason_ = "the COW store's header marks it invalid";
}

std::string SnapshotTarget::table_params() const {
  auto origin = origin_.lock();
  return fmt::format("{} {} {} {}", origin ? origin->real_name() : "-", cow_name_, store_->type_code(),
                     geometry_.chunk_sectors());
}

std::string SnapshotTarget::status_params() const {
  if (!valid()) return "Invalid";
  const StoreUsage u = store_->usage();
  return fmt::format("{}/{} {}", u.allocated_sectors, u.total_sectors, u.metadata_sectors);
}

uint64_t SnapshotTarget::exception_count() const {
  std::shared_lock lock(table_mu_);
  return exceptions_.size();
}

size_t SnapshotTarget::exception_table_bytes() const {
  std::shared_lock lock(table_mu_);
  return exceptions_.memory_bytes();
}

bool SnapshotTarget::has_exception(ChunkIndex chunk) const { return find_exception(chunk).has_value(); }

std::optional<ChunkIndex> SnapshotTarget::find_exception(ChunkIndex chunk) const {
  std::shared_lock lock(table_mu_);
  return exceptions_.lookup(chunk);
}

void SnapshotTarget::invalidate(const Status& why) {
  if (!valid_.exchange(false)) return;
  const Status persisted = store_->invalidate();
  std::lock_guard<std::mutex> lock(why_mu_);
  invalid_reason_ = fmt::format("{} (invalid since {:%Y-%m-%d %H:%M:%S})", why.message(),
                                std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  if (!persisted.ok()) invalid_reason_ += "; marking the store invalid failed too: " + persisted.message();
}

Status SnapshotTarget::invalid_error() const {
  std::lock_guard<std::mutex> lock(why_mu_);
  return Status::Error(EIO, fmt::format("snapshot on {} is invalid: {}", cow_name_, invalid_reason_));
}

Result<std::shared_ptr<Origin>> SnapshotTarget::begin_request(uint64_t offset, uint64_t length) const {
  if (detached_.load()) return Status::Error(ENODEV, fmt::format("snapshot on {} was removed", cow_name_));
  if (!valid()) return invalid_error();
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  auto origin = origin_.lock();
  if (!origin) return Status::Error(ENODEV, fmt::format("snapshot on {}: its origin is gone", cow_name_));
  return origin;
}

Status SnapshotTarget::add_exception_locked(ChunkIndex chunk, std::span<const uint8_t> chunk_data) {
  auto fail = [&](const Status& s) {
    invalidate(s.errnum() == ENOSPC ? Status::Error(ENOSPC, "COW store full") : s);
    return invalid_error();
  };
  Result<ChunkIndex> cow_chunk = store_->prepare_exception();
  if (!cow_chunk.ok()) return fail(cow_chunk.status());
  Status s = store_->cow_device().write(geometry_.offset_of(*cow_chunk), chunk_data);
  if (!s.ok()) return fail(s);
  s = store_->commit_exception(chunk, *cow_chunk);
  if (!s.ok()) return fail(s);
  std::unique_lock lock(table_mu_);
  exceptions_.insert(chunk, *cow_chunk);
  return Status::Ok();
}

Status SnapshotTarget::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, buf.size()));
  std::shared_lock io(origin->barrier_);
  const uint64_t end = offset + buf.size();
  for (uint64_t pos = offset; pos < end;) {
    const ChunkIndex c = geometry_.chunk_of(pos);
    const uint64_t inner = geometry_.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - inner);
    std::span<uint8_t> piece = buf.subspan(pos - offset, n);
    if (auto e = find_exception(c)) {
      COWSNAP_RETURN_IF_ERROR(store_->cow_device().read(geometry_.offset_of(*e) + inner, piece));
    } else {
      // Under the region lock no copy-out is half done: either the chunk
      // is still unchanged on the origin or its exception is committed.
      std::lock_guard<std::mutex> lock(origin->region_lock(geometry_.offset_of(c)));
      if (auto e2 = find_exception(c)) {
        COWSNAP_RETURN_IF_ERROR(store_->cow_device().read(geometry_.offset_of(*e2) + inner, piece));
      } else {
        COWSNAP_RETURN_IF_ERROR(origin->real().read(pos, piece));
      }
    }
    pos += n;
  }
  // Checked after reading: an origin change that skipped this snapshot
  // happened only after it became invalid, so a snapshot still valid now
  // read nothing written after it was taken.
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::write_in_chunk(Origin& origin, ChunkIndex chunk, uint64_t offset_in_chunk,
                                      std::span<const uint8_t> data) {
  if (auto e = find_exception(chunk)) {
    return store_->cow_device().write(geometry_.offset_of(*e) + offset_in_chunk, data);
  }
  std::lock_guard<std::mutex> lock(origin.region_lock(geometry_.offset_of(chunk)));
  if (auto e = find_exception(chunk)) {
    return store_->cow_device().write(geometry_.offset_of(*e) + offset_in_chunk, data);
  }
  if (data.size() == geometry_.chunk_bytes()) return add_exception_locked(chunk, data);
  // A partial write: the rest of the chunk comes from the origin.
  std::vector<uint8_t> whole(geometry_.chunk_bytes(), 0);
  const uint64_t chunk_start = geometry_.offset_of(chunk);
  const uint64_t readable = std::min<uint64_t>(whole.size(), size_bytes_ - chunk_start);
  COWSNAP_RETURN_IF_ERROR(origin.real().read(chunk_start, std::span(whole).first(readable)));
  std::copy(data.begin(), data.end(), whole.begin() + static_cast<std::ptrdiff_t>(offset_in_chunk));
  return add_exception_locked(chunk, whole);
}

Status SnapshotTarget::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, buf.size()));
  std::shared_lock io(origin->barrier_);
  const uint64_t end = offset + buf.size();
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t inner = geometry_.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - inner);
    COWSNAP_RETURN_IF_ERROR(write_in_chunk(*origin, geometry_.chunk_of(pos), inner, buf.subspan(pos - offset, n)));
    pos += n;
  }
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, length));
  std::shared_lock io(origin->barrier_);
  const std::vector<uint8_t> zeroes(geometry_.chunk_bytes(), 0);
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t inner = geometry_.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - inner);
    COWSNAP_RETURN_IF_ERROR(write_in_chunk(*origin, geometry_.chunk_of(pos), inner, std::span(zeroes).first(n)));
    pos += n;
  }
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::flush() {
  if (detached_.load()) return Status::Error(ENODEV, fmt::format("snapshot on {} was removed", cow_name_));
  if (!valid()) return invalid_error();
  return store_->cow_device().flush();
}

double snapshot_data_percent(const StoreUsage& usage, bool valid) {
  if (!valid || usage.total_sectors == 0) return 100.0;
  if (usage.allocated_sectors <= usage.metadata_sectors) return 0.0;
  if (usage.allocated_sectors >= usage.total_sectors) return 100.0;
  const double p = 100.0 * static_cast<double>(usage.allocated_sectors) / static_cast<double>(usage.total_sectors);
  // lvm2 never shows a partial use as 0.00 nor a not-quite-full store as 100.00.
  return std::clamp(p, 0.01, 99.99);
}

}  // namespace cowsnap
