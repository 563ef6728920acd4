// Copy-on-write snapshots: the `snapshot-origin` and `snapshot` targets.
//
// An Origin owns the origin's real device (dm's "-real" device) and the
// snapshots taken of it (strongly: a snapshot never silently stops getting
// copies because a handle to it was dropped). A snapshot refers back to its
// origin weakly and fails I/O with ENODEV once the origin is gone. SnapshotOriginTarget is the origin as
// users see it; each SnapshotTarget is one snapshot, with its own exception store.
//
// Invariants, enforced in origin.cc and snapshot_target.cc:
//  1. An origin change (write, write-zeroes, discard) of a chunk that some
//     valid snapshot has no exception for first copies the old chunk into
//     every such snapshot's store and commits the exception durably (data
//     flushed, then metadata flushed); only then is the origin changed. So
//     a crash never leaves a snapshot reading data written after it was
//     taken.
//  2. Per-region locks order copy-outs against snapshot reads and writes:
//     a snapshot read of a chunk without an exception reads the origin
//     under the region's lock, so it returns the old data, never the new.
//     A region is the largest chunk size among the origin's snapshots,
//     fixed while any request is in flight (changed only at the barrier).
//     Region locks are striped; a request that needs several takes every
//     stripe it needs at once, in ascending stripe order, and nothing else
//     while it holds them, so lock holders cannot deadlock.
//  3. A store that cannot take one more exception, or whose metadata
//     commit fails, invalidates its own snapshot, persistently; the other
//     snapshots carry on. Invalidation is serialised per snapshot
//     (invalidate_mu_): the in-memory flag drops first, then the valid = 0
//     header is written and flushed. An origin change may skip a snapshot
//     only while that snapshot has exceptions for the whole range, or once
//     its invalid header is durable (durably_invalid()); a change that
//     finds it invalid but not yet durable waits for the invalidation in
//     progress, or retries the header write, and fails with EIO (the
//     origin unchanged) when the header cannot be written. So no crash
//     brings back a valid snapshot whose uncopied chunk the origin changed.
//     Every later read or write of an invalid snapshot fails with EIO; a
//     read checks validity after reading, so it never returns data the
//     origin overwrote after invalidation.
//  4. Exceptions enter a snapshot's ExceptionTable only after their store
//     committed them, so a lock-free table hit always means durable data.
//  5. A copy-out whose data write fails (ENOSPC from a full host
//     filesystem, EIO) fails the origin change with that errno before the
//     origin is touched, and leaves the snapshot valid: the chunk simply
//     stays uncopied and its reserved COW chunk is reused by the next
//     copy-out. Nothing on disk names that chunk, so reuse is safe.
//  6. The barrier prefers the suspender: once hold_io() waits, new
//     requests wait at a gate (enter_io) and those in flight drain, so
//     hold_io() returns in bounded time under any load, as dm's suspend.
//  7. Copy-outs to several snapshots run on a fixed pool of threads
//     (copy_out_pool.h) with the requesting thread taking part, so a
//     request never waits for a thread that cannot be had, and no
//     exception leaves the engine.
//
// Merging (lvconvert --merge: the `snapshot-merge` target, engine/dm/merge.cc).
// 13. Origin::start_merge() makes one valid persistent snapshot the
//     merging one, behind the barrier. From then on the origin shows that
//     snapshot's content: a chunk with an exception not yet merged is read
//     from and written to the snapshot's COW store, every other chunk is
//     the real device's. Origin changes copy out to the other snapshots
//     only, never to the merging one (it takes no new exceptions, so its
//     store never fills and it stays valid). The snapshot serves no I/O of
//     its own (EBUSY).
// 14. Origin::merge_next() copies back one run from the end of the
//     snapshot's table (ExceptionStore::prepare_merge), as an origin
//     change: under the run's region locks, after copying the old chunks
//     out to the other snapshots (invariant 1); then the real device is
//     flushed, the store drops the run durably (commit_merge) and only
//     then do the chunks count as merged. Origin I/O to a run waits on its
//     region locks while it is copied back; any other I/O goes on. A crash
//     at any point leaves every chunk either merged with its data home or
//     still in the table, to be copied again on restart.
// 15. Write-back origins cannot merge (ENOTSUP): the volume layer serves an
//     origin with a merging snapshot in the synchronous mode.
//
// Locking order: barrier (shared for I/O, exclusive for attach/detach) ->
// region lock -> (write-back) the pending table's mutex -> a snapshot's
// invalidation mutex -> its table lock -> the store's own locks.
//
// Write-back mode (WriteBackOptions::enabled; the default is the above,
// dm-snapshot's contract). The contract is a disk cache's: a crash may lose
// origin writes acknowledged since the last FLUSH, never a flushed write
// and never a snapshot's view.
//  8. An origin write that needs a copy-out is acknowledged once the old
//     content of its regions is in memory and the new content is in a
//     pending entry (engine/dm/write_back.h); a committer thread copies
//     every pending chunk out in one batch (one commit per store) and only
//     then hands the batch to a writer thread that writes the new origin
//     bytes to the real device. So invariant 1
//     holds for the device: new origin data reaches it only after the
//     exception naming its chunk is durable in every valid snapshot (or
//     that snapshot is durably invalid, invariant 3).
//  9. While a region has a pending entry every origin write to it goes into
//     the entry, never straight to the device, so pending data never
//     overtakes a newer write. Origin reads overlay pending bytes; snapshot
//     reads of a chunk still waiting for its copy-out are served from the
//     entry's old content; snapshot writes, write-zeroes and discards of a
//     region wait (under its region lock) until its entry is gone, then
//     take the synchronous path.
// 10. Pending memory is bounded by max_pending_bytes (two regions per
//     region waiting for its copy-out, one per region waiting for its
//     origin write; one request larger than the bound is admitted
//     alone). A writer waits for room before it takes any region lock, and
//     the committer takes neither region locks nor the barrier, so it
//     always progresses.
// 11. flush_origin() returns once every write acknowledged before it is on
//     the real device and the device is flushed. A copy-out that fails to
//     write its data (ENOSPC, EIO) keeps its batch pending and retried,
//     with the origin data held back; until a retry succeeds, flushes and
//     writes that need a copy-out fail with that error.
// 12. hold_io() drains all pending work before it returns (after taking the
//     barrier, so nothing new arrives): attach and detach see no pending
//     entry. If the drain fails (invariant 11), attach fails with the
//     error and detach drops the snapshot's pending needs. Destroying the
//     Origin drains too. Growing a store needs no barrier (grow_store).
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cowsnap/common/chunk.h"
#include "cowsnap/dm/mapped_device.h"
#include "cowsnap/store/exception_store.h"
#include "cowsnap/store/exception_table.h"

namespace cowsnap {

class SnapshotTarget;
class WriteBack;

// Write-back mode (invariants 8-12). Off: dm-snapshot's synchronous
// copy-out.
struct WriteBackOptions {
  bool enabled = false;
  // Memory for pending copy-outs (old and new content of pending regions).
  uint64_t max_pending_bytes = uint64_t{64} << 20;
  // A test hook: the committer waits this long before each batch, so that
  // work stays pending longer and a crash test finds more of it.
  uint32_t test_commit_delay_ms = 0;
};

struct WriteBackStats {
  uint64_t pending_bytes = 0;
  uint64_t peak_pending_bytes = 0;  // of pending and reserved memory, ever
  uint64_t pending_regions = 0;
};

class Origin : public std::enable_shared_from_this<Origin> {
 public:
  // `real_name` is the name table lines use for the real device.
  static std::shared_ptr<Origin> create(std::shared_ptr<BlockDevice> real, std::string real_name,
                                        WriteBackOptions write_back = {});

  [[nodiscard]] BlockDevice& real() { return *real_; }
  [[nodiscard]] const std::string& real_name() const { return real_name_; }
  [[nodiscard]] uint64_t size_bytes() const { return real_->size_bytes(); }

  // Attaches a snapshot over `store`, whose committed exceptions are
  // `exceptions`. Holds origin I/O at the barrier while it attaches, after
  // flushing the origin: every origin write acknowledged before the call is
  // in the snapshot, none issued after it returns.
  // `cow_name` is the name table lines use for the COW device.
  // `held`, when given, is a barrier lock the caller already holds from
  // hold_io() (an online snapshot does more work behind the same barrier).
  Result<std::shared_ptr<SnapshotTarget>> attach_snapshot(
      std::unique_ptr<ExceptionStore> store, ExceptionTable exceptions, std::string cow_name,
      std::unique_lock<std::shared_mutex>* held = nullptr);
  // Detaches a snapshot (at the barrier, or under `held`). Its target fails
  // I/O with ENODEV afterwards.
  void detach_snapshot(const std::shared_ptr<SnapshotTarget>& snapshot,
                       std::unique_lock<std::shared_mutex>* held = nullptr);
  [[nodiscard]] std::vector<std::shared_ptr<SnapshotTarget>> snapshots() const;

  // Holds all origin and snapshot I/O until the returned lock is released:
  // the barrier an online snapshot is taken behind. New requests wait from
  // the moment this is called, so it returns once those in flight finish.
  [[nodiscard]] std::unique_lock<std::shared_mutex> hold_io();

  // The I/O paths of the two targets (see the invariants above).
  Status read_origin(uint64_t offset, std::span<uint8_t> buf);
  Status write_origin(uint64_t offset, std::span<const uint8_t> buf);
  Status write_zeroes_origin(uint64_t offset, uint64_t length);
  Status discard_origin(uint64_t offset, uint64_t length);
  Status flush_origin();
  // The origin's allocation map: the real device's, with ranges holding
  // pending write-back bytes as data; all data while a merge runs.
  Status extents_origin(uint64_t offset, uint64_t length, ExtentMap& out);

  // Merging (invariants 13-15). start_merge: EINVAL for a snapshot that is
  // not this origin's or is invalid, ENOTSUP for a transient store or a
  // write-back origin, EBUSY while another merge runs. Detaching the
  // merging snapshot ends its merge (done or not).
  Status start_merge(const std::shared_ptr<SnapshotTarget>& snapshot);
  struct MergeStep {
    uint64_t chunks = 0;  // merged by this step
    bool done = false;    // the table is empty: detach the snapshot
  };
  // Merges the next run of at most `max_bytes` (one chunk at least). EINVAL
  // when no merge runs; an I/O error fails the merge: the origin serves on
  // as it is (merge_failed() from then on) and nothing more is merged.
  Result<MergeStep> merge_next(uint64_t max_bytes);
  [[nodiscard]] std::shared_ptr<SnapshotTarget> merging_snapshot() const;
  [[nodiscard]] bool merge_failed() const { return merge_failed_.load(std::memory_order_acquire); }

  [[nodiscard]] uint32_t region_bytes() const;
  [[nodiscard]] bool write_back_enabled() const { return write_back_ != nullptr; }
  // All zero when write-back is off.
  [[nodiscard]] WriteBackStats write_back_stats() const;

  Origin(std::shared_ptr<BlockDevice> real, std::string real_name, WriteBackOptions write_back = {});
  Origin(const Origin&) = delete;
  Origin& operator=(const Origin&) = delete;
  // Drains pending write-back work (invariant 12).
  ~Origin();

 private:
  friend class SnapshotTarget;
  friend class WriteBack;
  // Whether some snapshot lacks an exception for a chunk of [offset, end).
  static bool needs_copy(const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots, uint64_t offset,
                         uint64_t end);
  using ChangeFn = std::function<Status()>;
  // Applies `change` to [offset, offset+length) of the origin after
  // copying old chunks out where invariant 1 requires; all copy-outs of the
  // request share one commit per snapshot.
  Status change_origin(uint64_t offset, uint64_t length, const ChangeFn& change);
  // The valid snapshots, after waiting for invalid ones to be durably so.
  // REQUIRES: the barrier is held (shared).
  Result<std::vector<std::shared_ptr<SnapshotTarget>>> active_snapshots();
  // Copies the range's old chunks into every valid snapshot lacking them.
  // REQUIRES: the region locks for [offset, offset+length) are held.
  Status copy_out_locked(uint64_t offset, uint64_t length,
                         const std::vector<std::shared_ptr<SnapshotTarget>>& snapshots);
  // REQUIRES: the barrier is held (shared), so the region size is fixed.
  [[nodiscard]] size_t stripe_of(uint64_t byte_offset) const;
  // Takes the region locks covering [offset, offset+length) (invariant 2).
  // REQUIRES: the barrier is held (shared).
  [[nodiscard]] std::vector<std::unique_lock<std::mutex>> lock_regions(uint64_t offset, uint64_t length);
  // A change of [offset, offset+length), applied piece by piece to the
  // device holding each piece: `at` on `device`, `pos` from `offset`.
  using PieceFn = std::function<Status(BlockDevice& device, uint64_t at, uint64_t pos, uint64_t length)>;
  // The real device's pieces, and while merging the merging snapshot's
  // (invariant 13). REQUIRES: the barrier is held (shared).
  Status on_pieces(uint64_t offset, uint64_t length, const PieceFn& fn);
  // Whether the merging snapshot (if any) still has exceptions in the
  // range. REQUIRES: the barrier is held (shared).
  [[nodiscard]] bool merge_overlaps(uint64_t offset, uint64_t length) const;
  // A read while merging (invariant 13).
  Status read_merging(uint64_t offset, std::span<uint8_t> buf);
  // Takes the barrier for one request, waiting first while a hold_io() is
  // pending (invariant 6). Not reentrant with a pending hold_io(): a
  // request takes it once, at its start.
  [[nodiscard]] std::shared_lock<std::shared_mutex> enter_io();

  std::shared_ptr<BlockDevice> real_;
  std::string real_name_;
  mutable std::shared_mutex barrier_;
  std::mutex suspend_mu_;
  std::condition_variable suspend_cv_;
  uint32_t suspends_waiting_ = 0;                           // guarded by suspend_mu_
  std::atomic<bool> suspend_pending_{false};                // suspends_waiting_ != 0, read without the lock
  std::vector<std::shared_ptr<SnapshotTarget>> snapshots_;  // guarded by barrier_
  uint32_t region_shift_ = 12;                              // guarded by barrier_
  std::shared_ptr<SnapshotTarget> merging_;                 // guarded by barrier_
  std::atomic<bool> merge_running_{false};                  // merging_ is set, read without the barrier
  std::atomic<bool> merge_failed_{false};
  static constexpr size_t kRegionLocks = 1024;
  std::array<std::mutex, kRegionLocks> region_locks_;
  // Last, so that it is destroyed (drained) first.
  std::unique_ptr<WriteBack> write_back_;
};

// `snapshot-origin <origin-real>`.
class SnapshotOriginTarget final : public Target {
 public:
  explicit SnapshotOriginTarget(std::shared_ptr<Origin> origin) : origin_(std::move(origin)) {}
  [[nodiscard]] uint64_t size_bytes() const override { return origin_->size_bytes(); }
  Status read(uint64_t offset, std::span<uint8_t> buf) override { return origin_->read_origin(offset, buf); }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    return origin_->write_origin(offset, buf);
  }
  Status flush() override { return origin_->flush_origin(); }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    return origin_->write_zeroes_origin(offset, length);
  }
  Status discard(uint64_t offset, uint64_t length) override {
    return origin_->discard_origin(offset, length);
  }
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override {
    return origin_->extents_origin(offset, length, out);
  }
  [[nodiscard]] std::string_view type_name() const override { return "snapshot-origin"; }
  [[nodiscard]] std::string table_params() const override { return origin_->real_name(); }
  [[nodiscard]] uint32_t preferred_block_bytes() const override { return origin_->region_bytes(); }
  [[nodiscard]] const std::shared_ptr<Origin>& origin() const { return origin_; }

 private:
  std::shared_ptr<Origin> origin_;
};

// `snapshot <origin-real> <cow> <P|N> <chunk-sectors>`: one snapshot.
// Reads see the origin as it was when the snapshot was attached; writes go
// to the COW store (a partial-chunk write copies the rest of the chunk from
// the origin first).
class SnapshotTarget final : public Target {
  friend class WriteBack;

 public:
  SnapshotTarget(const std::shared_ptr<Origin>& origin, std::unique_ptr<ExceptionStore> store,
                 ExceptionTable exceptions, std::string cow_name);

  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override;
  // Both allocate exceptions and write zeroes into the COW store.
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override { return write_zeroes(offset, length); }
  // Chunks with an exception are data; the others are the origin's real
  // device's map, which for them still holds what the snapshot shows.
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override;
  [[nodiscard]] std::string_view type_name() const override { return "snapshot"; }
  [[nodiscard]] std::string table_params() const override;
  // "<allocated>/<total> <metadata>" in sectors, or "Invalid".
  [[nodiscard]] std::string status_params() const override;
  [[nodiscard]] uint32_t preferred_block_bytes() const override {
    return static_cast<uint32_t>(geometry_.chunk_bytes());
  }

  [[nodiscard]] bool valid() const { return valid_.load(std::memory_order_acquire); }
  [[nodiscard]] StoreUsage usage() const { return store()->usage(); }
  [[nodiscard]] const ChunkGeometry& geometry() const { return geometry_; }
  [[nodiscard]] bool has_exception(ChunkIndex chunk) const;
  [[nodiscard]] uint64_t exception_count() const;
  // The origin chunks this snapshot has exceptions for -- every chunk the
  // origin (or the snapshot itself) changed since the snapshot was taken,
  // as far as the committed table knows -- as ascending runs
  // [first, first + count). Incremental backups copy these; a write-back
  // origin's pending copy-outs are not in it until flushed.
  struct ChunkRun {
    uint64_t first = 0;
    uint64_t count = 0;
  };
  [[nodiscard]] std::vector<ChunkRun> changed_chunks() const;
  [[nodiscard]] size_t exception_table_bytes() const;
  // lvextend of a snapshot (the admin's rescue of a filling one) and
  // autoextend, online and without the barrier: requests go on while the
  // COW LV grows, and a write-back committer can grow a store it found
  // full. The two steps of ExceptionStore::prepare_growth / grow, around
  // the commit of the COW LV's new size: `grown` is the COW LV's device at
  // that size.
  Status prepare_growth(BlockDevice& grown) { return store()->prepare_growth(grown); }
  Status grow_store(std::shared_ptr<BlockDevice> grown) { return store()->grow(std::move(grown)); }

  // Autoextend's promise (lvm.conf's snapshot_autoextend_*, kept by the
  // volume layer's owner): while a grower is set, nothing that finds this
  // snapshot's store full overflows it. A synchronous origin change and the
  // snapshot's own write let go of their region locks and the barrier,
  // call the grower (which grows the store through prepare_growth and
  // grow_store) and start again; a write-back batch is handed back, the
  // committer calls the grower and takes it again (the batch's origin
  // bytes stay pending meanwhile). Only once the grower has failed (no
  // free extents, or the most COW the origin can fill) does a full store
  // overflow the snapshot as before; a grower that answers EBUSY (the VG
  // is locked by a command that may itself wait for the committer) fails
  // the committer's round with that error instead, so that the command's
  // drain ends, and the batch is retried. One grower call at a time;
  // concurrent changes that found the store full wait for it and retry.
  // With `threshold_percent` < 100, a copy-out that leaves the store at
  // least that full calls the grower too, after the change and before it
  // returns (lvm2's threshold); a committer calls it after the batch.
  using GrowFn = std::function<Status()>;
  void set_grower(GrowFn grow, uint32_t threshold_percent = 100);

  // Persistently invalidates the snapshot (idempotent); `why` is logged in
  // the error messages of later requests. Returns once the valid = 0 header
  // is durable, or with EIO naming the store when it cannot be written (the
  // snapshot is invalid in memory then, and origin changes that would skip
  // it retry the header write and fail until it lands: invariant 3). The
  // engine calls it on overflow and failed commits; an owner calls it for a
  // snapshot it can no longer keep in step with its origin.
  Status invalidate_durably(const Status& why);
  // invalidate_durably() for callers with no use for the outcome.
  void invalidate(const Status& why) { (void)invalidate_durably(why); }
  // Invalid, and the store's valid = 0 header is durable.
  [[nodiscard]] bool durably_invalid() const { return invalid_durable_.load(std::memory_order_acquire); }

  // Being merged into its origin (Origin::start_merge); its own I/O is
  // refused then.
  [[nodiscard]] bool merging() const { return merging_.load(std::memory_order_acquire); }

  // Null once the origin is gone.
  [[nodiscard]] std::shared_ptr<Origin> origin() const { return origin_.lock(); }
  [[nodiscard]] const std::string& cow_name() const { return cow_name_; }

 private:
  friend class Origin;
  [[nodiscard]] std::optional<ChunkIndex> find_exception(ChunkIndex chunk) const;
  // REQUIRES: table_mu_ held (shared at least).
  [[nodiscard]] std::optional<ChunkIndex> lookup_locked(ChunkIndex chunk) const;
  [[nodiscard]] bool has_all_exceptions(uint64_t offset, uint64_t length) const;
  [[nodiscard]] bool has_any_exception(uint64_t offset, uint64_t length) const;
  // The chunks [first, first + count) were merged into the origin: their
  // exceptions no longer count (invariant 14).
  void mark_merged(ChunkIndex first, uint64_t count);
  using ChunkDataFn = std::function<std::span<const uint8_t>(ChunkIndex chunk)>;
  // Adds exceptions for `chunks` (none of which has one), copying
  // chunk_data(c) (one whole chunk each) into the store and committing them
  // as one batch. A full store or a failed commit invalidates the snapshot
  // (durably, before this returns) and returns EIO; a failed data write
  // returns its own errno and leaves the snapshot valid (invariant 5).
  // REQUIRES: the chunks' region locks are held.
  struct CopyOptions {
    // With a grower set, a full store returns kMustGrow instead (nothing is
    // copied; the caller lets go of its locks and calls grow_for_change()).
    bool may_grow = false;
    // Each run of chunks goes out as one durable gather write and the commit
    // flushes nothing (NewException::data_durable). Worth it for large
    // batches (the write-back committer's): a flush of the PV file would
    // also write out every origin write waiting in its page cache.
    bool durable_writes = false;
  };
  Status add_exceptions_locked(std::span<const ChunkIndex> chunks, const ChunkDataFn& chunk_data,
                               CopyOptions options);
  Status add_exceptions_locked(std::span<const ChunkIndex> chunks, const ChunkDataFn& chunk_data) {
    return add_exceptions_locked(chunks, chunk_data, CopyOptions{});
  }
  static constexpr int kMustGrow = EAGAIN;
  // After add_exceptions_locked returned kMustGrow (or left the store past
  // its threshold): calls the grower unless another change already did
  // since, and returns what it said. A failure stops growth for good,
  // except EBUSY when `retry_busy`. REQUIRES: no region lock, no barrier.
  Status grow_for_change(bool retry_busy = false);
  [[nodiscard]] bool must_grow() const { return must_grow_.load(std::memory_order_acquire); }
  Status invalid_error() const;
  // Before an origin change skips this invalid snapshot: waits for an
  // invalidation in progress, retrying the header write if it failed.
  // REQUIRES: !valid().
  Status await_durably_invalid();
  // Writes and flushes the valid = 0 header unless already durable.
  // REQUIRES: invalidate_mu_ held.
  Status persist_invalid_locked();
  // Pins the origin for one request, after the validity checks.
  Result<std::shared_ptr<Origin>> begin_request(uint64_t offset, uint64_t length) const;
  // Writes `buf` at `offset`, allocating exceptions (copying the rest of a
  // partly written chunk from the origin) for chunks that have none.
  // REQUIRES: the barrier is held (shared). kMustGrow when the store must
  // grow first (nothing that needed a new exception was written).
  Status write_range(Origin& origin, uint64_t offset, std::span<const uint8_t> buf);
  // write_range behind the barrier, growing the store (and starting again)
  // when it must. REQUIRES: no barrier, no region lock.
  Status write_growing(Origin& origin, uint64_t offset, std::span<const uint8_t> buf);

  [[nodiscard]] const std::shared_ptr<ExceptionStore>& store() const { return store_; }

  std::weak_ptr<Origin> origin_;
  uint64_t size_bytes_;
  const std::shared_ptr<ExceptionStore> store_;
  ChunkGeometry geometry_;
  std::string cow_name_;
  mutable std::shared_mutex table_mu_;
  ExceptionTable exceptions_;  // guarded by table_mu_
  // Guarded by table_mu_: runs [first, end) of chunks merged back, whose
  // entries in exceptions_ are void (a merging snapshot only loses them).
  std::map<uint64_t, uint64_t> merged_;
  uint64_t merged_chunks_ = 0;         // guarded by table_mu_
  std::atomic<bool> merging_{false};   // set once, under the origin's barrier
  std::mutex invalidate_mu_;           // serialises invalidation (invariant 3)
  std::atomic<bool> valid_;            // written under invalidate_mu_ (after construction)
  std::atomic<bool> invalid_durable_;  // written under invalidate_mu_; implies !valid_
  std::atomic<bool> detached_{false};
  mutable std::mutex why_mu_;
  std::string invalid_reason_;                 // guarded by why_mu_
  std::mutex grow_mu_;                         // one grower call at a time
  GrowFn grower_;                              // guarded by grow_mu_
  std::atomic<bool> growable_{false};          // a grower is set and has not failed
  std::atomic<bool> must_grow_{false};         // a change found the store full (or past the threshold)
  std::atomic<uint32_t> grow_threshold_{100};  // percent
};

// Opens the snapshot stored on `cow` and attaches it to `origin`.
// "P": a new store when `create`; otherwise the existing one — or a new one
// when its header is all zeroes, as the kernel does (lvm2 creates a COW LV
// with its first chunk zeroed). "N": always new.
// `held`: see Origin::attach_snapshot.
struct SnapshotSpec {
  std::shared_ptr<BlockDevice> cow;
  std::string cow_name;
  char store_type = 'P';  // 'P' persistent or 'N' transient
  uint32_t chunk_sectors = 8;
  bool create = false;
};
Result<std::shared_ptr<SnapshotTarget>> open_snapshot(const std::shared_ptr<Origin>& origin,
                                                      const SnapshotSpec& spec,
                                                      std::unique_lock<std::shared_mutex>* held = nullptr);

}  // namespace cowsnap
