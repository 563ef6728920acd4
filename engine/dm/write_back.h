// WriteBack: the origin's ordered write-back mode (see "Write-back mode" in
// cowsnap/dm/snapshot.h for the contract).
//
// An origin write that needs a copy-out leaves a pending entry per region it
// touches instead of copying out in the request: the region's old content
// (what every snapshot lacking an exception still reads) and its new
// content with the write applied, plus which bytes are dirty and which
// chunks each snapshot still needs. One committer thread per origin takes
// every pending entry as one batch, copies the old chunks into each
// snapshot's store with one commit per store, and hands the batch to a
// writer thread, which writes the dirty bytes to the origin's real device
// and drops the entries. The two stages overlap: while batch k is written
// to the origin, batch k+1 (entries that are new, or changed since batch k
// took them) is copied out; batches reach the origin in the order they
// were taken.
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
//      (invariant 3) and the batch goes on for the others; a full store
//      with a grower set hands the batch back instead, and the committer
//      grows the store (set_grower) and takes the batch again.
//  W5. Batches reach the device one at a time, in the order they were
//      taken. A batch takes an entry that an earlier batch took and has not
//      written only when the entry changed since, and then writes all of
//      its dirty bytes; so a region's newer bytes are never overtaken by
//      older ones. An origin write that fails hands its batch back (the
//      next batch takes it again) and sets a sticky error like W4's.
//  W6. Once every chunk of an entry is copied out, its old content is
//      dropped (and its memory released): snapshots read those chunks from
//      their stores. A later write that leaves a chunk of the region missing
//      again (only possible when snapshots' chunk sizes differ) takes the
//      old content of that chunk from the device, which holds it: bytes of
//      a chunk nobody wrote since the entry appeared are not pending.
//
// Locking order: barrier -> region locks -> mu_ -> a snapshot's table
// lock. The committer: round_mu_ -> (no mu_ held) store and snapshot locks;
// round_mu_ -> mu_. The writer takes only mu_. Nothing takes round_mu_
// while holding mu_ or a region lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "cowsnap/common/buffer_pool.h"
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
  [[nodiscard]] WriteBackStats stats() const;
  [[nodiscard]] bool empty() const { return entry_count_.load(std::memory_order_acquire) == 0; }

 private:
  struct Missing {
    std::shared_ptr<SnapshotTarget> snapshot;
    std::vector<uint64_t> chunks;  // ascending
  };
  struct Entry {
    // The region before the first pending write. The entries one write
    // creates share one buffer, so that their chunks lie side by side in
    // memory and go to a COW store in one write.
    std::shared_ptr<const uint8_t> old_data;  // null once every chunk is copied out (W6)
    // The region as users see it; the entries one write creates share one
    // buffer too.
    std::shared_ptr<uint8_t[]> new_data;
    bool new_shared = false;  // a batch or a reader may be reading new_data: copy it before changing it
    std::map<uint64_t, uint64_t> dirty;  // [begin, end) in the region, merged
    std::vector<Missing> missing;
    uint64_t cost = 0;                      // memory accounted for it
    uint64_t gen = 0;                       // seq_ of the last change
    uint64_t first_unwritten = UINT64_MAX;  // lower bound on the seq_ of changes not on the device
    uint64_t taken_gen = 0;                 // the gen a batch took and has not yet written
  };
  // An entry's content as a batch took it.
  struct Item {
    uint64_t region;
    uint64_t gen;
    std::shared_ptr<const uint8_t[]> data;
    std::vector<std::pair<uint64_t, uint64_t>> dirty;
  };

  // The committer: takes a batch, copies it out, hands it to the writer.
  void run() noexcept;
  // Takes every entry not already taken in its current state. REQUIRES: mu_.
  std::vector<Item> take_locked();
  // Copies a batch's missing chunks out; false when that failed (the batch
  // is handed back then and copy_error_ is set) or a store must grow first
  // (handed back, no error). `to_grow`: the stores found full or past
  // their threshold, for the caller to grow with no lock held.
  bool copy_out(std::vector<Item>& items, std::vector<std::shared_ptr<SnapshotTarget>>& to_grow);
  // Entries of a batch that was not written become takeable again.
  // REQUIRES: mu_.
  void hand_back_locked(const std::vector<Item>& items);
  // The writer: writes the batches the committer hands over, in order.
  void write_loop() noexcept;
  Status write_items(const std::vector<Item>& items);
  // The first of the two stages' errors. REQUIRES: mu_.
  [[nodiscard]] Status error_locked() const { return copy_error_.ok() ? write_error_ : copy_error_; }
  // A buffer from buffers_.
  std::shared_ptr<uint8_t[]> buffer(uint64_t bytes);
  // Memory a write to [first, end) may add to the table. REQUIRES: mu_.
  [[nodiscard]] uint64_t bytes_needed_locked(uint64_t first, uint64_t end) const;
  void release(uint64_t reserved);
  static void add_dirty(Entry& e, uint64_t begin, uint64_t end);

  Origin& origin_;
  const WriteBackOptions options_;
  mutable std::mutex mu_;
  std::condition_variable changed_;      // entries added, removed, or a round ended
  std::map<uint64_t, Entry> entries_;    // by region start; guarded by mu_
  std::atomic<size_t> entry_count_{0};   // entries_.size()
  uint64_t seq_ = 0;                     // guarded by mu_
  uint64_t pending_bytes_ = 0;           // guarded by mu_
  uint64_t reserved_bytes_ = 0;          // guarded by mu_
  uint64_t peak_bytes_ = 0;              // guarded by mu_
  uint64_t rounds_ = 0;                  // batches ended (copy-out failed, or written); guarded by mu_
  uint64_t taken_seq_ = 0;               // seq_ when the last batch was taken; guarded by mu_
  bool retake_ = false;                  // a batch was handed back; guarded by mu_
  Status copy_error_ = Status::Ok();     // the last copy-out's; guarded by mu_
  Status write_error_ = Status::Ok();    // the last origin write's; guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  std::vector<Item> to_write_;           // the batch the writer writes; guarded by mu_
  bool writing_ = false;                 // to_write_ holds a batch; guarded by mu_
  std::condition_variable write_ready_;  // writing_ became true, or stopping_
  std::mutex round_mu_;                  // held by the committer while it takes and copies out a batch
  // Every pending buffer comes from here and goes back here (see
  // BufferPool for why); it keeps at most max_pending_bytes of free ones.
  std::shared_ptr<BufferPool> buffers_;
  std::thread committer_;
  std::thread writer_;
};

}  // namespace cowsnap
