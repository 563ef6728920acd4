// The snapshot-merge target's paths (invariants 13-15 in cowsnap/dm/snapshot.h):
// the origin shows the merging snapshot while its chunks are copied back.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "cowsnap/dm/snapshot.h"

namespace cowsnap {

Status Origin::start_merge(const std::shared_ptr<SnapshotTarget>& snapshot) {
  if (write_back_) {
    return Status::Error(ENOTSUP, fmt::format("{}: cannot merge a snapshot into an origin served in "
                                              "write-back mode",
                                              real_name_));
  }
  auto barrier = hold_io();
  if (merging_) {
    return Status::Error(EBUSY, fmt::format("{}: snapshot on {} is merging into it already", real_name_,
                                            merging_->cow_name()));
  }
  if (std::find(snapshots_.begin(), snapshots_.end(), snapshot) == snapshots_.end()) {
    return Status::Error(EINVAL, fmt::format("{}: snapshot on {} is not one of its snapshots", real_name_,
                                             snapshot->cow_name()));
  }
  if (!snapshot->valid()) {
    return Status::Error(EINVAL, fmt::format("Unable to merge invalid snapshot on {}", snapshot->cow_name()));
  }
  // The store's own refusal (a transient one cannot merge), before any
  // I/O sees the snapshot as merging.
  COWSNAP_RETURN_IF_ERROR(snapshot->store()->prepare_merge(1).status());
  merging_ = snapshot;
  snapshot->merging_.store(true, std::memory_order_release);
  merge_failed_.store(false, std::memory_order_release);
  merge_running_.store(true, std::memory_order_release);
  return Status::Ok();
}

std::shared_ptr<SnapshotTarget> Origin::merging_snapshot() const {
  std::shared_lock io(barrier_);
  return merging_;
}

bool Origin::merge_overlaps(uint64_t offset, uint64_t length) const {
  return merging_ && merging_->has_any_exception(offset, length);
}

Status Origin::on_pieces(uint64_t offset, uint64_t length, const PieceFn& fn) {
  if (!merging_) return fn(*real_, offset, 0, length);
  SnapshotTarget& snap = *merging_;
  const ChunkGeometry& g = snap.geometry();
  BlockDevice& cow = snap.store()->cow_device();
  // Neighbouring pieces that are neighbours on one device go as one.
  BlockDevice* run_device = nullptr;
  uint64_t run_at = 0, run_pos = 0, run_length = 0;
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const ChunkIndex c = g.chunk_of(pos);
    const uint64_t inner = g.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, g.chunk_bytes() - inner);
    BlockDevice* device = real_.get();
    uint64_t at = pos;
    if (auto e = snap.find_exception(c)) {
      device = &cow;
      at = g.offset_of(*e) + inner;
    }
    if (device != run_device || at != run_at + run_length) {
      if (run_length > 0) COWSNAP_RETURN_IF_ERROR(fn(*run_device, run_at, run_pos, run_length));
      run_device = device;
      run_at = at;
      run_pos = pos - offset;
      run_length = 0;
    }
    run_length += n;
    pos += n;
  }
  if (run_length > 0) COWSNAP_RETURN_IF_ERROR(fn(*run_device, run_at, run_pos, run_length));
  return Status::Ok();
}

Status Origin::read_merging(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*real_, offset, buf.size()));
  std::shared_lock io = enter_io();
  // A run being copied back holds its region locks until it counts as
  // merged, so a read under them finds each chunk wholly on one device.
  std::vector<std::unique_lock<std::mutex>> locks;
  if (merge_overlaps(offset, buf.size())) locks = lock_regions(offset, buf.size());
  return on_pieces(offset, buf.size(), [&](BlockDevice& device, uint64_t at, uint64_t pos, uint64_t n) {
    return device.read(at, buf.subspan(pos, n));
  });
}

Result<Origin::MergeStep> Origin::merge_next(uint64_t max_bytes) {
  std::shared_ptr<SnapshotTarget> snap = merging_snapshot();
  if (!snap) return Status::Error(EINVAL, fmt::format("{}: no snapshot is merging into it", real_name_));
  if (merge_failed()) {
    return Status::Error(
        EIO, fmt::format("{}: the merge of snapshot on {} failed earlier", real_name_, snap->cow_name()));
  }
  auto fail = [&](const Status& s) {
    merge_failed_.store(true, std::memory_order_release);
    return s.with_context(fmt::format("merging snapshot on {} into {}", snap->cow_name(), real_name_));
  };
  const std::shared_ptr<ExceptionStore> store = snap->store();
  const ChunkGeometry& g = snap->geometry();
  // Only the merge thread moves the store's merge position, and the
  // origin's writes never add to this snapshot's table.
  Result<ExceptionStore::MergeRun> run =
      store->prepare_merge(std::max<uint64_t>(1, max_bytes / g.chunk_bytes()));
  if (!run.ok()) return fail(run.status());
  if (run->chunks == 0) return MergeStep{.chunks = 0, .done = true};
  const uint64_t offset = g.offset_of(run->old_first);
  if (offset >= size_bytes()) {
    return fail(Status::Error(
        EINVAL, fmt::format("origin chunk {} is beyond the origin's end", run->old_first.value)));
  }
  const uint64_t length = std::min(run->chunks * g.chunk_bytes(), size_bytes() - offset);
  Status merged = change_origin(offset, length, [&]() -> Status {
    std::vector<uint8_t> data(length);
    COWSNAP_RETURN_IF_ERROR(store->cow_device().read(g.offset_of(run->cow_first), data));
    COWSNAP_RETURN_IF_ERROR(real_->write(offset, data));
    // The data is home before the table lets go of it (invariant 14).
    COWSNAP_RETURN_IF_ERROR(real_->flush());
    COWSNAP_RETURN_IF_ERROR(store->commit_merge(run->chunks));
    snap->mark_merged(run->old_first, run->chunks);
    return Status::Ok();
  });
  if (!merged.ok()) return fail(merged);
  return MergeStep{.chunks = run->chunks, .done = false};
}

}  // namespace cowsnap
