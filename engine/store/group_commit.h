// GroupCommit: many threads commit items; each caller's items become durable
// together, as part of a batch written by one of the callers, in the manner
// of LevelDB's writer queue.
//
// A caller queues its items and waits. The caller at the front of the queue
// becomes the leader: it takes every item queued so far (its own first, in
// arrival order) as one batch, releases the mutex, runs `write_batch` on
// the batch, then hands the batch's Status to every caller in it and wakes
// the next front, which leads the following batch. Callers arriving during
// the leader's I/O form that next batch, so under load one metadata write
// and one flush serve many commits.
//
// Invariant: at most one write_batch call runs at a time, and batches run in
// queue order; the state a write_batch touches therefore needs no lock of
// its own against other batches.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap {

template <typename Item>
class GroupCommit {
 public:
  // Returns the Status write_batch returned for the batch holding `items`
  // (a caller's items always go into one batch, in order).
  // `write_batch` is called as Status(std::span<const Item>) with the lock
  // released; it must not call commit() on this object.
  template <typename WriteBatch>
  Status commit(std::span<const Item> items, WriteBatch&& write_batch) {
    Waiter self{items};
    std::unique_lock lock(mu_);
    queue_.push_back(&self);
    while (!self.done && queue_.front() != &self) self.cv.wait(lock);
    if (self.done) return std::move(self.result);

    std::vector<Item> batch;
    const size_t batch_size = queue_.size();
    for (Waiter* w : queue_) batch.insert(batch.end(), w->items.begin(), w->items.end());
    lock.unlock();
    Status result = write_batch(std::span<const Item>(batch));
    lock.lock();

    for (size_t i = 0; i < batch_size; ++i) {
      Waiter* w = queue_.front();
      queue_.pop_front();
      if (w == &self) continue;
      w->result = result;
      w->done = true;
      w->cv.notify_one();
    }
    if (!queue_.empty()) queue_.front()->cv.notify_one();
    return result;
  }

 private:
  // Lives on its caller's stack until `done`, or until that caller leads.
  struct Waiter {
    explicit Waiter(std::span<const Item> i) : items(i) {}
    std::span<const Item> items;  // owned by the waiting caller
    Status result;                // guarded by mu_
    bool done = false;            // guarded by mu_
    std::condition_variable cv;
  };

  std::mutex mu_;
  std::deque<Waiter*> queue_;  // guarded by mu_; front is the leader
};

}  // namespace cowsnap
