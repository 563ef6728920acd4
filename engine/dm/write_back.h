// WriteBack: the origin's ordered write-back mode (see "Write-back mode" in
// cowsnap/dm/snapshot.h for the contract).
//
// An origin write that needs a copy-out leaves a pending entry per region it
// touches instead of copying out in the request: the region's old content
// (what every snapshot lacking an exception still reads) and its new
// content with the write applied, plus which bytes are dirty and which
// chunks each snapshot still needs. One committer thread per origin takes
// every pending entry as one batch, copies the old chunks into each
// snapshot's store with one commit per store, and only after that writes
// the dirty bytes to the origin's real device and drops the entries.
//
// Ordering, the reason this is crash safe:
//  W1. Dirty bytes of an entry reach the real device only after every
//      chunk they belong to has a durable exception in every valid snapshot
//      that lacked one when the bytes were written (or that snapshot is
//      durably invalid). The batch's dirty bytes are copied (copy on write
//      of the entry's buffer) when the batch is taken, so bytes written
//      later, whose chunks may still be missing, are not in it.
//  W2. While an entry exists, every origin change of its region goes into
//      the entry, never to the device, so older pending bytes never
//      overtake a newer write. Entries are created and updated only under
//      the region's lock; the committer takes no region lock and no
//      barrier, so waiting for it (flush, memory, a drain) under either
//      always ends.
//  W3. A chunk leaves an entry's missing set only after its exception is
//      in the snapshot's table; so a snapshot read (under the region lock)
//      that finds the chunk neither missing nor in the table may read the
//      origin device, whose bytes for that chunk are still the old ones.
//  W4. A copy-out whose data write fails keeps the batch pending (the
//      origin data is not written), sets a sticky error that fails FLUSH
//      and later write-back writes until a retry succeeds, and is retried.
//      A full store or failed commit invalidates the snapshot durably
//      (invariant 3) and the batch goes on for the others.
//
// Locking order: barrier -> region locks -> mu_ -> a snapshot's table
// lock. The committer: round_mu_ -> (no mu_ held) store and snapshot locks;
// round_mu_ -> mu_. Nothing takes round_mu_ while holding mu_ or a region
// lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "cowsnap/common/status.h"
#include "cowsnap/dm/snapshot.h"

namespace cowsnap {

class WriteBack {
 public:
  WriteBack(Origin& origin, WriteBackOptions options);
  WriteBack(const WriteBack&) = delete;
  WriteBack& operator=(const WriteBack&) = delete;
  // Drains (best effort) and stops the committer.
  ~WriteBack();

  // An origin write. REQUIRES: the barrier is held (shared); no region lock.
  // `active` are the valid snapshots.
  Status write(uint64_t offset, std::span<const uint8_t> buf,
               const std::vector<std::shared_ptr<SnapshotTarget>>& active);
  // Whether some pending entry has dirty bytes in [offset, offset+length).
  [[nodiscard]] bool dirty_overlaps(uint64_t offset, uint64_t length) const;
  // Waits until no entry covers a region of [offset, offset+length).
  // REQUIRES: the region locks of the range are held (so no new entry
  // appears). Fails with the sticky error when the committer cannot make
  // progress.
  Status wait_regions_clear(uint64_t offset, uint64_t length);
  // Reads [offset, offset+buf.size()) of the origin as users see it: the
  // device overlaid with pending dirty bytes.
  Status read(uint64_t offset, std::span<uint8_t> buf);
  // When `chunk` of `snapshot` still waits for its copy-out, copies
  // `dst.size()` bytes of its old content from `inner` into dst.
  // REQUIRES: the chunk's region lock is held.
  bool read_old(const SnapshotTarget& snapshot, ChunkIndex chunk, uint64_t inner, std::span<uint8_t> dst);
  // Waits until every write acknowledged before the call is on the real
  // device, then flushes the device.
  Status flush();
  // Waits until nothing is pending, or fails with the sticky error.
  Status drain();
  // Forgets what `snapshot` still needs (it was detached).
  void forget(const SnapshotTarget* snapshot);
  // Keeps the committer between batches while held (a store swap).
  [[nodiscard]] std::unique_lock<std::mutex> pause() { return std::unique_lock(round_mu_); }
  [[nodiscard]] WriteBackStats stats() const;
  [[nodiscard]] bool empty() const { return entry_count_.load(std::memory_order_acquire) == 0; }

 private:
  using Bytes = std::vector<uint8_t>;
  struct Missing {
    std::shared_ptr<SnapshotTarget> snapshot;
    std::set<uint64_t> chunks;
  };
  struct Entry {
    std::shared_ptr<const Bytes> old_data;  // the region before the first pending write
    std::shared_ptr<Bytes> new_data;        // shared with a batch in flight: clone before changing
    std::map<uint64_t, uint64_t> dirty;     // [begin, end) in the region, merged
    std::vector<Missing> missing;
    uint64_t cost = 0;                      // memory accounted for it
    uint64_t gen = 0;                       // seq_ of the last change
    uint64_t first_unwritten = UINT64_MAX;  // lower bound on the seq_ of changes not on the device
  };

  void run() noexcept;
  // One batch; false when it failed (error_ is set then).
  bool round();
  uint64_t entry_cost() const;
  void release(uint64_t reserved);
  static void add_dirty(Entry& e, uint64_t begin, uint64_t end);

  Origin& origin_;
  const WriteBackOptions options_;
  mutable std::mutex mu_;
  std::condition_variable changed_;     // entries added, removed, or a round ended
  std::map<uint64_t, Entry> entries_;   // by region start; guarded by mu_
  std::atomic<size_t> entry_count_{0};  // entries_.size()
  uint64_t seq_ = 0;                    // guarded by mu_
  uint64_t pending_bytes_ = 0;          // guarded by mu_
  uint64_t reserved_bytes_ = 0;         // guarded by mu_
  uint64_t peak_bytes_ = 0;             // guarded by mu_
  uint64_t rounds_ = 0;                 // rounds ended; guarded by mu_
  Status error_ = Status::Ok();         // guarded by mu_
  bool stopping_ = false;               // guarded by mu_
  std::mutex round_mu_;                 // held by the committer for one batch
  std::thread committer_;
};

}  // namespace cowsnap
