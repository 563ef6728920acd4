// The origin's write path: copy-out before change (invariants 1-3 in
// cowsnap/snapshot.h).
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <functional>
#include <new>
#include <optional>
#include <vector>

#include "copy_out_pool.h"
#include "cowsnap/dm/snapshot.h"
#include "write_back.h"

namespace cowsnap {

std::shared_ptr<Origin> Origin::create(std::shared_ptr<BlockDevice> real, std::string real_name,
                                       WriteBackOptions write_back) {
  return std::make_shared<Origin>(std::move(real), std::move(real_name), write_back);
}

Origin::Origin(std::shared_ptr<BlockDevice> real, std::string real_name, WriteBackOptions write_back)
    : real_(std::move(real)), real_name_(std::move(real_name)) {
  if (write_back.enabled) write_back_ = std::make_unique<WriteBack>(*this, write_back);
}

Origin::~Origin() { write_back_.reset(); }

WriteBackStats Origin::write_back_stats() const {
  return write_back_ ? write_back_->stats() : WriteBackStats{};
}

std::unique_lock<std::shared_mutex> Origin::hold_io() {
  {
    std::lock_guard gate(suspend_mu_);
    ++suspends_waiting_;
    suspend_pending_.store(true, std::memory_order_release);
  }
  std::unique_lock barrier(barrier_);
  // Held exclusively now, the barrier itself keeps new requests out; the
  // gate opens so that they queue on it rather than on the gate.
  {
    std::lock_guard gate(suspend_mu_);
    if (--suspends_waiting_ == 0) suspend_pending_.store(false, std::memory_order_release);
  }
  suspend_cv_.notify_all();
  // Invariant 12: nothing new can be pending now, and the committer needs
  // no barrier. A failed drain is acted on by the caller's operation.
  if (write_back_) (void)write_back_->drain();
  return barrier;
}

std::shared_lock<std::shared_mutex> Origin::enter_io() {
  if (suspend_pending_.load(std::memory_order_acquire)) {
    std::unique_lock gate(suspend_mu_);
    suspend_cv_.wait(gate, [&] { return suspends_waiting_ == 0; });
  }
  return std::shared_lock(barrier_);
}

Result<std::shared_ptr<SnapshotTarget>> Origin::attach_snapshot(std::unique_ptr<ExceptionStore> store,
                                                                ExceptionTable exceptions,
                                                                std::string cow_name,
                                                                std::unique_lock<std::shared_mutex>* held) {
  std::unique_lock<std::shared_mutex> own;
  if (held == nullptr) own = hold_io();
  // The new snapshot reads the origin device, which must hold every
  // acknowledged write (invariant 12).
  if (write_back_ && !write_back_->empty()) {
    COWSNAP_RETURN_IF_ERROR(write_back_->drain().with_context(
        fmt::format("snapshot of {}: pending write-back data cannot be written", real_name_)));
  }
  // Writes acknowledged before the barrier must be in the snapshot even
  // after a crash: the snapshot reads them from the origin.
  COWSNAP_RETURN_IF_ERROR(
      real_->flush().with_context(fmt::format("snapshot of {}: flushing origin", real_name_)));
  const auto chunk_shift = static_cast<uint32_t>(std::countr_zero(store->geometry().chunk_bytes()));
  auto snapshot = std::make_shared<SnapshotTarget>(shared_from_this(), std::move(store),
                                                   std::move(exceptions), std::move(cow_name));
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
  if (merging_ == snapshot) {
    merging_.reset();
    merge_running_.store(false, std::memory_order_release);
  }
  if (write_back_) write_back_->forget(snapshot.get());
}

std::vector<std::shared_ptr<SnapshotTarget>> Origin::snapshots() const {
  std::shared_lock io(barrier_);
  return snapshots_;
}

uint32_t Origin::region_bytes() const {
  std::shared_lock io(barrier_);
  return uint32_t{1} << region_shift_;
}

size_t Origin::stripe_of(uint64_t byte_offset) const {
  // Two regions may share a stripe, which costs parallelism only. Adjacent
  // regions get adjacent stripes, so a large sequential request (a 1 MiB
  // write is 256 regions of 4 KiB) shares no stripe with the requests just
  // before and after it; a hash would make such neighbours collide on some
  // stripe nearly always, serialising sequential writers.
  return static_cast<size_t>((byte_offset >> region_shift_) % kRegionLocks);
}

std::vector<std::unique_lock<std::mutex>> Origin::lock_regions(uint64_t offset, uint64_t length) {
  std::vector<bool> wanted(kRegionLocks, false);
  const uint64_t region = uint64_t{1} << region_shift_;
  size_t count = 0;
  for (uint64_t r = offset & ~(region - 1); r < offset + length && count < kRegionLocks; r += region) {
    const size_t stripe = stripe_of(r);
    if (!wanted[stripe]) ++count;
    wanted[stripe] = true;
  }
  std::vector<std::unique_lock<std::mutex>> held;
  held.reserve(count);
  for (size_t i = 0; i < kRegionLocks; ++i) {
    if (wanted[i]) held.emplace_back(region_locks_[i]);
  }
  return held;
}

Status Origin::read_origin(uint64_t offset, std::span<uint8_t> buf) {
  if (write_back_) {
    COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, buf.size()));
    std::shared_lock io = enter_io();
    return write_back_->read(offset, buf);
  }
  if (merge_running_.load(std::memory_order_acquire)) return read_merging(offset, buf);
  return real_->read(offset, buf);
}

Status Origin::write_origin(uint64_t offset, std::span<const uint8_t> buf) {
  if (write_back_) {
    COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, buf.size()));
    std::shared_lock io = enter_io();
    COWSNAP_ASSIGN_OR_RETURN(auto active, active_snapshots());
    return write_back_->write(offset, buf, active);
  }
  return change_origin(offset, buf.size(), [&] {
    return on_pieces(offset, buf.size(), [&](BlockDevice& device, uint64_t at, uint64_t pos, uint64_t n) {
      return device.write(at, buf.subspan(pos, n));
    });
  });
}

Status Origin::write_zeroes_origin(uint64_t offset, uint64_t length) {
  return change_origin(offset, length, [&] {
    return on_pieces(offset, length, [](BlockDevice& device, uint64_t at, uint64_t /*pos*/, uint64_t n) {
      return device.write_zeroes(at, n);
    });
  });
}

Status Origin::discard_origin(uint64_t offset, uint64_t length) {
  return change_origin(offset, length, [&] {
    return on_pieces(offset, length, [](BlockDevice& device, uint64_t at, uint64_t /*pos*/, uint64_t n) {
      return device.discard(at, n);
    });
  });
}

Status Origin::flush_origin() {
  if (write_back_) return write_back_->flush();
  if (merge_running_.load(std::memory_order_acquire)) {
    // Writes to chunks not yet merged went to the merging snapshot's store.
    std::shared_ptr<SnapshotTarget> merging = merging_snapshot();
    if (merging) COWSNAP_RETURN_IF_ERROR(merging->store()->cow_device().flush());
  }
  return real_->flush();
}

Status Origin::extents_origin(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, length));
  std::shared_lock io = enter_io();
  // While merging, chunks not yet merged read from the snapshot's store.
  if (merge_running_.load(std::memory_order_acquire)) {
    out.add(length, false);
    return Status::Ok();
  }
  if (!write_back_) return real_->extents(offset, length, out);
  // Pending bytes reach the real device only later, and leave the pending
  // set only once they are there: so a range is looked up in the pending
  // set first, then (when clean) on the device. Dirty ranges are halved
  // down to a region, so a few pending regions do not hide a large hole.
  const uint64_t region = uint64_t{1} << region_shift_;  // the barrier is held
  std::function<Status(uint64_t, uint64_t)> walk = [&](uint64_t at, uint64_t n) -> Status {
    if (!write_back_->dirty_overlaps(at, n)) return real_->extents(at, n, out);
    if (n <= region) {
      out.add(n, false);
      return Status::Ok();
    }
    // Whole regions, so the halving ends.
    const uint64_t half = std::max(region, (n / 2) & ~(region - 1));
    COWSNAP_RETURN_IF_ERROR(walk(at, half));
    return walk(at + half, n - half);
  };
  return walk(offset, length);
}

Result<std::vector<std::shared_ptr<SnapshotTarget>>> Origin::active_snapshots() {
  std::vector<std::shared_ptr<SnapshotTarget>> active;
  for (const auto& s : snapshots_) {
    if (s == merging_) continue;  // it takes no copies (invariant 13)
    if (s->valid()) {
      active.push_back(s);
    } else {
      // Skipped only once no crash can bring it back valid (invariant 3).
      COWSNAP_RETURN_IF_ERROR(s->await_durably_invalid());
    }
  }
  return active;
}

bool Origin::needs_copy(const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots, uint64_t offset,
                        uint64_t end) {
  for (const auto& s : snapshots) {
    const ChunkGeometry& g = s->geometry();
    for (ChunkIndex c = g.chunk_of(offset); g.offset_of(c) < end; ++c.value) {
      if (!s->has_exception(c)) return true;
    }
  }
  return false;
}

Status Origin::change_origin(uint64_t offset, uint64_t length, const ChangeFn& change) {
  COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, length));
  for (;;) {
    std::vector<std::shared_ptr<SnapshotTarget>> full;
    std::optional<Status> changed;
    {
      std::shared_lock io = enter_io();
      COWSNAP_ASSIGN_OR_RETURN(auto active, active_snapshots());
      // Exceptions are only ever added, and only after they are durable, so
      // a range every snapshot already holds needs neither lock nor copy; in
      // write-back mode, pending bytes there must not overtake it
      // (invariant 9).
      if (!needs_copy(active, offset, offset + length) &&
          (!write_back_ || !write_back_->dirty_overlaps(offset, length)) && !merge_overlaps(offset, length)) {
        return change();
      }
      auto locks = lock_regions(offset, length);
      if (write_back_) COWSNAP_RETURN_IF_ERROR(write_back_->wait_regions_clear(offset, length));
      Status copied = copy_out_locked(offset, length, active);
      if (copied.errnum() != SnapshotTarget::kMustGrow) {
        COWSNAP_RETURN_IF_ERROR(copied);
        changed = change();
      }
      for (const auto& s : active) {
        if (s->must_grow()) full.push_back(s);
      }
    }
    // Autoextend (SnapshotTarget::set_grower), with the locks and the
    // barrier let go so that the stores can grow: a store past its
    // threshold grows before the change returns; a full one grows and the
    // change (which left the origin as it was) starts again.
    for (const auto& s : full) (void)s->grow_for_change();
    if (changed) return *changed;
  }
}

Status Origin::copy_out_locked(uint64_t offset, uint64_t length,
                               const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots) {
  struct CopyOut {
    SnapshotTarget* snapshot;
    std::vector<ChunkIndex> missing;
    Status status;
  };
  std::vector<CopyOut> copies;
  for (const auto& s : snapshots) {
    if (!s->valid()) {
      COWSNAP_RETURN_IF_ERROR(s->await_durably_invalid());
      continue;
    }
    const ChunkGeometry& g = s->geometry();
    CopyOut copy{s.get(), {}, {}};
    for (ChunkIndex c = g.chunk_of(offset); g.offset_of(c) < offset + length; ++c.value) {
      if (!s->has_exception(c)) copy.missing.push_back(c);
    }
    if (!copy.missing.empty()) copies.push_back(std::move(copy));
  }
  if (copies.empty()) return Status::Ok();

  // The old content of the regions covering the range, read once for all
  // snapshots, padded to whole regions so that a short last chunk copies as
  // a full chunk whose tail is zeroes.
  const uint64_t region = uint64_t{1} << region_shift_;
  const uint64_t start = offset & ~(region - 1);
  const uint64_t padded = ((offset + length + region - 1) & ~(region - 1)) - start;
  std::vector<uint8_t> old(padded, 0);
  const uint64_t readable = std::min(padded, real_->size_bytes() - start);
  COWSNAP_RETURN_IF_ERROR(real_->read(start, std::span(old).first(readable))
                              .with_context(fmt::format("copy-out from {}", real_name_)));

  // The snapshots' stores commit side by side, so a request waits for one
  // commit rather than one per snapshot, and concurrent requests meet in
  // larger batches at every store. The region locks held by this thread
  // cover the pool's work, which ends before run() returns.
  const std::function<void(size_t)> copy_out = [&](size_t i) {
    CopyOut& copy = copies[i];
    const ChunkGeometry& g = copy.snapshot->geometry();
    try {
      copy.status = copy.snapshot->add_exceptions_locked(
          copy.missing,
          [&](ChunkIndex c) {
            return std::span<const uint8_t>(old).subspan(g.offset_of(c) - start, g.chunk_bytes());
          },
          SnapshotTarget::CopyOptions{.may_grow = true});
    } catch (const std::bad_alloc&) {
      copy.status =
          Status::Error(ENOMEM, fmt::format("copy-out to {}: out of memory", copy.snapshot->cow_name()));
    } catch (...) {
      copy.status = Status::Error(EIO, fmt::format("copy-out to {} failed", copy.snapshot->cow_name()));
    }
  };
  CopyOutPool::shared().run(copies.size(), copy_out);
  // A snapshot that became durably invalid does not hold the origin back
  // (invariant 3); any other failure leaves its chunks uncopied, so the
  // origin must stay as it is (invariant 5).
  // A store that must grow comes last: a real failure of another wins.
  Status must_grow = Status::Ok();
  for (const CopyOut& copy : copies) {
    if (copy.status.ok() || copy.snapshot->durably_invalid()) continue;
    if (copy.status.errnum() != SnapshotTarget::kMustGrow) return copy.status;
    must_grow = copy.status;
  }
  return must_grow;
}

}  // namespace cowsnap
