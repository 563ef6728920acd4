// The origin's write path: copy-out before change (invariants 1-3 in
// cowsnap/snapshot.h).
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <vector>

#include "cowsnap/snapshot.h"

namespace cowsnap {

std::shared_ptr<Origin> Origin::create(std::shared_ptr<BlockDevice> real, std::string real_name) {
  return std::make_shared<Origin>(std::move(real), std::move(real_name));
}

Origin::Origin(std::shared_ptr<BlockDevice> real, std::string real_name)
    : real_(std::move(real)), real_name_(std::move(real_name)) {}

std::unique_lock<std::shared_mutex> Origin::hold_io() { return std::unique_lock(barrier_); }

Result<std::shared_ptr<SnapshotTarget>> Origin::attach_snapshot(std::unique_ptr<ExceptionStore> store,
                                                                ExceptionTable exceptions, std::string cow_name,
                                                                std::unique_lock<std::shared_mutex>* held) {
  std::unique_lock<std::shared_mutex> own;
  if (held == nullptr) own = hold_io();
  // Writes acknowledged before the barrier must be in the snapshot even
  // after a crash: the snapshot reads them from the origin.
  COWSNAP_RETURN_IF_ERROR(real_->flush().with_context(fmt::format("snapshot of {}: flushing origin", real_name_)));
  const auto chunk_shift = static_cast<uint32_t>(std::countr_zero(store->geometry().chunk_bytes()));
  auto snapshot =
      std::make_shared<SnapshotTarget>(shared_from_this(), std::move(store), std::move(exceptions), std::move(cow_name));
  snapshots_.push_back(snapshot);
  region_shift_ = std::max(region_shift_, chunk_shift);
  return snapshot;
}

void Origin::detach_snapshot(const std::shared_ptr<SnapshotTarget>& snapshot,
                             std::unique_lock<std::shared_mutex>* held) {
  std::unique_lock<std::shared_mutex> own;
  if (held == nullptr) own = hold_io();
  std::erase(snapshots_, snapshot);
  snapshot->detached_.store(true);
}

std::vector<std::shared_ptr<SnapshotTarget>> Origin::snapshots() const {
  std::shared_lock io(barrier_);
  return snapshots_;
}

uint32_t Origin::region_bytes() const {
  std::shared_lock io(barrier_);
  return uint32_t{1} << region_shift_;
}

std::mutex& Origin::region_lock(uint64_t byte_offset) {
  // Stripes: two regions may share a mutex, which costs parallelism only;
  // a request holds one region lock at a time, so sharing cannot deadlock.
  const uint64_t region = byte_offset >> region_shift_;
  return region_locks_[(region * 0x9E3779B97F4A7C15ULL >> 40) % kRegionLocks];
}

Status Origin::read_origin(uint64_t offset, std::span<uint8_t> buf) { return real_->read(offset, buf); }

Status Origin::write_origin(uint64_t offset, std::span<const uint8_t> buf) {
  return change_origin(offset, buf.size(), [&](uint64_t at, uint64_t n) {
    return real_->write(at, buf.subspan(at - offset, n));
  });
}

Status Origin::write_zeroes_origin(uint64_t offset, uint64_t length) {
  return change_origin(offset, length, [&](uint64_t at, uint64_t n) { return real_->write_zeroes(at, n); });
}

Status Origin::discard_origin(uint64_t offset, uint64_t length) {
  return change_origin(offset, length, [&](uint64_t at, uint64_t n) { return real_->discard(at, n); });
}

Status Origin::flush_origin() { return real_->flush(); }

namespace {

// Whether some snapshot lacks an exception for a chunk of [offset, end).
bool needs_copy(const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots, uint64_t offset, uint64_t end) {
  for (const auto& s : snapshots) {
    const ChunkGeometry& g = s->geometry();
    for (ChunkIndex c = g.chunk_of(offset); g.offset_of(c) < end; ++c.value) {
      if (!s->has_exception(c)) return true;
    }
  }
  return false;
}

}  // namespace

Status Origin::change_origin(uint64_t offset, uint64_t length, const PieceFn& change) {
  COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, length));
  std::shared_lock io(barrier_);
  std::vector<std::shared_ptr<SnapshotTarget>> active;
  for (const auto& s : snapshots_) {
    if (s->valid()) active.push_back(s);
  }
  if (active.empty()) return change(offset, length);

  const uint64_t region = uint64_t{1} << region_shift_;
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t region_start = pos & ~(region - 1);
    const uint64_t piece_end = std::min(end, region_start + region);
    // Exceptions are only ever added, and only after they are durable, so
    // a piece every snapshot already holds needs neither lock nor copy.
    if (needs_copy(active, pos, piece_end)) {
      std::lock_guard<std::mutex> lock(region_lock(region_start));
      COWSNAP_RETURN_IF_ERROR(copy_out_locked(pos, piece_end - pos, active));
      COWSNAP_RETURN_IF_ERROR(change(pos, piece_end - pos));
    } else {
      COWSNAP_RETURN_IF_ERROR(change(pos, piece_end - pos));
    }
    pos = piece_end;
  }
  return Status::Ok();
}

Status Origin::copy_out_locked(uint64_t offset, uint64_t length,
                               const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots) {
  // The old content of the whole region, read once for all snapshots.
  const uint64_t region = uint64_t{1} << region_shift_;
  const uint64_t region_start = offset & ~(region - 1);
  const uint64_t region_len = std::min(region, real_->size_bytes() - region_start);
  std::vector<uint8_t> old;
  for (const auto& s : snapshots) {
    const ChunkGeometry& g = s->geometry();
    for (ChunkIndex c = g.chunk_of(offset); g.offset_of(c) < offset + length; ++c.value) {
      if (!s->valid()) break;
      if (s->has_exception(c)) continue;
      if (old.empty()) {
        // Padded to a whole region so that a short last chunk copies as a
        // full chunk whose tail is zeroes.
        old.assign(region, 0);
        COWSNAP_RETURN_IF_ERROR(real_->read(region_start, std::span(old).first(region_len))
                                    .with_context(fmt::format("copy-out from {}", real_name_)));
      }
      const uint64_t at = g.offset_of(c) - region_start;
      // A failure here invalidates that snapshot only; the origin carries on.
      (void)s->add_exception_locked(c, std::span<const uint8_t>(old).subspan(at, g.chunk_bytes()));
    }
  }
  return Status::Ok();
}

}  // namespace cowsnap
